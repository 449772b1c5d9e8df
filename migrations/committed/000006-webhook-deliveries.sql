--! Previous: sha1:fafae743e20f2733b911b6d4b9d15df137551777
--! Hash: sha1:6083ec3f26e8ba39610dd2830ac3fdce8c77bd59
--! Message: webhook-deliveries

-- 000006 Webhook deliveries: every audit entry that matches an active webhook of its tenant is
-- queued for delivery in the transaction that wrote it (a committed entry is never missed, a
-- rolled-back change never announced). One job per webhook drains its deliveries in order.

alter table app_public.webhooks add column consecutive_failures int not null default 0;
alter table app_public.webhooks add column disabled_reason text;
comment on column app_public.webhooks.consecutive_failures is 'Failed delivery attempts in a row; reaching the limit disables the webhook.';
comment on column app_public.webhooks.disabled_reason is 'Why the webhook was disabled automatically, if it was.';
-- Delivery bookkeeping is not a change a person made: keep it out of the audit diff.
create or replace function app_private.audit_ignored_columns(resource text) returns text[]
language sql immutable set search_path = pg_catalog as $$
  select array['tenant_id', 'id', 'updated_at'] || case resource
    when 'incident' then array['deleted_by']
    when 'milestone' then array['completed_by']
    when 'export' then array['progress', 'started_at', 'last_downloaded_at']
    when 'api_token' then array['last_used_at']
    when 'session' then array['created_at']
    when 'webhook' then array['consecutive_failures']
    else array[]::text[]
  end
$$;

create table app_private.webhook_deliveries (
  tenant_id uuid not null,
  id uuid not null default gen_random_uuid(),
  webhook_id uuid not null,
  audit_seq bigint,
  action text not null,
  is_test boolean not null default false,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts int not null default 0,
  last_status_code int,
  last_error text,
  last_attempt_at timestamptz,
  next_attempt_at timestamptz,
  delivered_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, webhook_id) references app_public.webhooks on delete cascade
);
create index webhook_deliveries_pending_idx on app_private.webhook_deliveries (tenant_id, webhook_id, created_at, audit_seq)
  where status = 'pending';
create index webhook_deliveries_recent_idx on app_private.webhook_deliveries (tenant_id, webhook_id, created_at desc);
comment on table app_private.webhook_deliveries is
  'Each audit entry (or test event) to deliver to a webhook, and how its delivery went.';

/** Whether an action matches a webhook's filter: exact names or prefixes like incident.*; empty = all. */
create function app_private.webhook_wants(actions text[], action text) returns boolean
language sql immutable set search_path = pg_catalog as $$
  select cardinality(actions) = 0
      or action = any (actions)
      or exists (select 1 from unnest(actions) a where a like '%.*' and action like left(a, -1) || '%')
$$;

create function app_private.enqueue_webhook_delivery(p_tenant_id uuid, p_webhook_id uuid) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  perform graphile_worker.add_job(
    'deliver_webhook',
    json_build_object('tenantId', p_tenant_id, 'webhookId', p_webhook_id),
    queue_name := 'webhook:' || p_webhook_id::text,
    job_key := 'webhook:' || p_webhook_id::text,
    job_key_mode := 'preserve_run_at',
    max_attempts := 1000
  );
end;
$$;

create function app_private.tg_audit_log__webhooks() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_hook record;
begin
  for v_hook in
    select w.id from app_public.webhooks w
    where w.tenant_id = new.tenant_id and w.active and app_private.webhook_wants(w.actions, new.action)
  loop
    insert into app_private.webhook_deliveries (tenant_id, webhook_id, audit_seq, action)
    values (new.tenant_id, v_hook.id, new.seq, new.action);
    perform app_private.enqueue_webhook_delivery(new.tenant_id, v_hook.id);
  end loop;
  return null;
end;
$$;
comment on function app_private.tg_audit_log__webhooks() is
  'Queues the delivery of a new audit entry to each active webhook of its tenant that wants it (one indexed lookup when there are none).';
-- The owner gave up TRIGGER on the audit log in 000001; it takes it back only for this.
grant trigger on app_public.audit_log to :DATABASE_OWNER;
create trigger _900_webhooks after insert on app_public.audit_log
  for each row execute function app_private.tg_audit_log__webhooks();
revoke trigger on app_public.audit_log from :DATABASE_OWNER;

------------------------------------------------------------------------------
-- What the pages and the API may do with deliveries
------------------------------------------------------------------------------
create function app_public.webhook_deliveries(webhook_id uuid, max_rows int default 20)
returns table (id uuid, audit_seq bigint, action text, is_test boolean, status text, attempts int,
               last_status_code int, last_error text, last_attempt_at timestamptz, next_attempt_at timestamptz,
               delivered_at timestamptz, created_at timestamptz)
language sql stable security definer set search_path = pg_catalog, public as $$
  select d.id, d.audit_seq, d.action, d.is_test, d.status, d.attempts, d.last_status_code, d.last_error,
         d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.created_at
  from app_private.webhook_deliveries d
  where d.tenant_id = app_public.current_tenant_id() and d.webhook_id = webhook_deliveries.webhook_id
    and app_public.current_tenant_role() in ('owner', 'admin')
  order by d.created_at desc, d.audit_seq desc nulls first
  limit least(greatest(max_rows, 1), 100)
$$;
comment on function app_public.webhook_deliveries(uuid, int) is
  'The latest deliveries of a webhook of the current tenant, newest first (owner/admin).';

create function app_public.send_webhook_test(webhook_id uuid) returns uuid
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_id uuid;
begin
  if app_public.current_tenant_role() is null or app_public.current_tenant_role() not in ('owner', 'admin') then
    raise exception 'Only an owner or admin can send test events' using errcode = '42501';
  end if;
  perform 1 from app_public.webhooks w where w.tenant_id = app_public.current_tenant_id() and w.id = send_webhook_test.webhook_id;
  if not found then
    raise exception 'No webhook with that id in this tenant' using errcode = 'P0002';
  end if;
  insert into app_private.webhook_deliveries (tenant_id, webhook_id, action, is_test)
  values (app_public.current_tenant_id(), send_webhook_test.webhook_id, 'webhook.test', true)
  returning id into v_id;
  perform app_private.enqueue_webhook_delivery(app_public.current_tenant_id(), send_webhook_test.webhook_id);
  return v_id;
end;
$$;
comment on function app_public.send_webhook_test(uuid) is 'Queues a test event to a webhook (owner/admin).';

create function app_public.redeliver_webhook_delivery(delivery_id uuid) returns uuid
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_delivery app_private.webhook_deliveries;
begin
  if app_public.current_tenant_role() is null or app_public.current_tenant_role() not in ('owner', 'admin') then
    raise exception 'Only an owner or admin can redeliver events' using errcode = '42501';
  end if;
  update app_private.webhook_deliveries d
  set status = 'pending', next_attempt_at = null, last_error = null
  where d.tenant_id = app_public.current_tenant_id() and d.id = redeliver_webhook_delivery.delivery_id and d.status = 'failed'
  returning * into v_delivery;
  if v_delivery.id is null then
    raise exception 'No failed delivery with that id in this tenant' using errcode = 'P0002';
  end if;
  perform app_private.enqueue_webhook_delivery(v_delivery.tenant_id, v_delivery.webhook_id);
  return v_delivery.id;
end;
$$;
comment on function app_public.redeliver_webhook_delivery(uuid) is 'Queues a failed delivery again (owner/admin).';

grant execute on function app_public.webhook_deliveries(uuid, int), app_public.send_webhook_test(uuid),
  app_public.redeliver_webhook_delivery(uuid) to :DATABASE_VISITOR;
