--! Previous: sha1:37c560923944b854a54c2d6e7ebb896c6efd41c8
--! Hash: sha1:82267dde5b0985d870b9a2b5c7cdee1cfe394410
--! Message: audit-core-v2

-- 000008 Audit core v2: capture without a tenant lock; a sealer that orders committed entries
-- into a per-tenant Merkle log (RFC 9162 hashing) with signed checkpoints; proofs; verification.
-- Design and reasoning: src/audit/DESIGN.md. Runs in a superuser session (the DDL guard).
--
-- Capture (in the writing transaction) inserts the entry with a capture number (`id`, from a
-- sequence) and its transaction id (`xid`). Nothing on that path is shared by the writers of a
-- tenant. The sealer (app_private.seal_audit_entries) later gives every committed entry its
-- position `seq` in its tenant's log, strictly in (xid, id) order, and only for transactions
-- older than every transaction of this database still running (app_private.audit_seal_horizon):
-- a transaction that commits later can never take a position before an entry that is already
-- sealed, and no entry is skipped, because every transaction below the horizon has ended.

------------------------------------------------------------------------------
-- 1. The entry: capture number, transaction id, API token; the v1 chain becomes history
------------------------------------------------------------------------------
create sequence app_private.audit_entry_id_seq;
comment on sequence app_private.audit_entry_id_seq is 'Capture numbers of audit entries (unique, not gapless, not the log position).';

alter table app_public.audit_log rename column seq to v1_seq;
alter table app_public.audit_log rename column prev_hash to v1_prev_hash;
alter table app_public.audit_log rename column hash to v1_hash;
alter table app_public.audit_log drop constraint audit_log_pkey;
alter table app_public.audit_log alter column v1_seq drop not null;
alter table app_public.audit_log alter column v1_hash drop not null;
alter table app_public.audit_log drop constraint audit_log_check;
alter table app_public.audit_log add constraint audit_log_v1_check
  check ((v1_seq = 1) = (v1_prev_hash is null) and (v1_seq is null) = (v1_hash is null));
alter table app_public.audit_log add column id bigint;
alter table app_public.audit_log add column xid bigint;
alter table app_public.audit_log add column api_token_id uuid;

-- Existing entries keep their v1 fields; they get capture numbers in their chain order and the
-- pseudo transaction id 1, below every real one (they are sealed by this migration).
grant update on app_public.audit_log to :DATABASE_OWNER;
alter table app_public.audit_log disable trigger _000_immutable;
update app_public.audit_log e
   set id = n.id, xid = 1
  from (select tenant_id, v1_seq, nextval('app_private.audit_entry_id_seq') as id
          from (select tenant_id, v1_seq from app_public.audit_log order by tenant_id, v1_seq) o) n
 where n.tenant_id = e.tenant_id and n.v1_seq = e.v1_seq;
alter table app_public.audit_log enable trigger _000_immutable;
revoke update on app_public.audit_log from :DATABASE_OWNER;

alter table app_public.audit_log alter column id set not null;
alter table app_public.audit_log alter column xid set not null;
alter table app_public.audit_log add primary key (tenant_id, id);
-- Only entries captured before v2 have a v1 position: a partial index, which new entries skip.
create unique index audit_log_v1_seq_idx on app_public.audit_log (tenant_id, v1_seq) where v1_seq is not null;

drop index app_public.audit_log_tenant_time_idx;
drop index app_public.audit_log_tenant_action_idx;
drop index app_public.audit_log_tenant_incident_idx;
drop index app_public.audit_log_tenant_actor_idx;
create index audit_log_tenant_time_idx on app_public.audit_log (tenant_id, occurred_at desc, id desc);
create index audit_log_tenant_action_idx on app_public.audit_log (tenant_id, action text_pattern_ops, id desc);
create index audit_log_tenant_incident_idx on app_public.audit_log (tenant_id, incident_id, id) where incident_id is not null;
create index audit_log_tenant_actor_idx on app_public.audit_log (tenant_id, actor_label, id desc);
-- The search box's trigram index (000003) also serves the actor and label conditions (their
-- queries add its expression), so the two single-column trigram indexes go: every entry wrote
-- three GIN indexes, now one.
drop index app_public.audit_log_tenant_label_trgm_idx;
drop index app_public.audit_log_tenant_actor_trgm_idx;
-- The sealer's queue: entries in (xid, id) order. New entries land at the right edge.
create index audit_log_seal_order_idx on app_public.audit_log (xid, id);

comment on table app_public.audit_log is
  E'@behavior -insert -update -delete -filterBy\nAppend-only record of every create, update and delete in a tenant, written only by triggers and sealed into the tenant''s Merkle log (see seq, sealed).';
comment on column app_public.audit_log.id is 'Capture number: unique, increasing in capture order (not gapless, not the log position; see seq).';
comment on column app_public.audit_log.xid is E'@behavior -*\nThe writing transaction (64-bit xid, pg_current_xact_id()); the sealer orders entries by (xid, id).';
comment on column app_public.audit_log.api_token_id is 'The API token the change was made with, if any.';
comment on column app_public.audit_log.v1_seq is E'@behavior -*\nPosition in the tenant''s v1 hash chain (entries captured before core v2 only).';
comment on column app_public.audit_log.v1_prev_hash is E'@behavior -*\nThe v1 chain link (entries captured before core v2 only).';
comment on column app_public.audit_log.v1_hash is E'@behavior -*\nSHA-256 of the v1 canonical document (entries captured before core v2 only).';

-- The head row that every writer of a tenant locked is gone.
drop table app_private.audit_heads;

------------------------------------------------------------------------------
-- 2. Capture: one statement-level trigger per audited table and operation writes one entry per
--    changed row, set-based from the statement's transition tables. Who/where is worked out once
--    per statement. Nothing shared by the writers of a tenant is read or written.
------------------------------------------------------------------------------
alter function app_private.canonical_json(jsonb) parallel safe;

-- The v1 document functions read the renamed columns (v1 packs and v1 leaves still use them).
create or replace function app_private.audit_document(e app_public.audit_log) returns jsonb
language sql stable parallel safe set search_path = pg_catalog as $$
  select jsonb_build_object(
    'v', 1,
    'tenant_id', e.tenant_id,
    'seq', e.v1_seq,
    'occurred_at', to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'actor_user_id', e.actor_user_id,
    'actor_label', e.actor_label,
    'db_role', e.db_role,
    'action', e.action,
    'resource_type', e.resource_type,
    'resource_id', e.resource_id,
    'resource_label', e.resource_label,
    'incident_id', e.incident_id,
    'changes', e.changes,
    'request_id', e.request_id,
    'ip', host(e.ip),
    'user_agent', e.user_agent,
    'surface', e.surface,
    'prev_hash', encode(e.v1_prev_hash, 'hex')
  )
$$;

-- The row helpers below are plain immutable SQL over built-in operators, so the planner inlines
-- them into the capture statement instead of calling them once per row. (They pin no search_path
-- for that reason; they reference nothing outside pg_catalog, which is always searched first.)
create or replace function app_private.audit_action(resource text, op text, old_row jsonb, new_row jsonb) returns text
language sql immutable as $$
  select case
    when resource = 'session' then case when op = 'INSERT' then 'session.' || (new_row->>'kind') end
    when op = 'INSERT' then case resource
      when 'evidence' then 'evidence.uploaded'
      when 'export' then 'export.requested'
      else resource || '.created' end
    when op = 'DELETE' then resource || '.deleted'
    -- updates
    when resource = 'incident' and old_row->>'deleted_at' is null and new_row->>'deleted_at' is not null then 'incident.deleted'
    when resource = 'incident' and old_row->>'deleted_at' is not null and new_row->>'deleted_at' is null then 'incident.restored'
    when resource = 'milestone' and old_row->>'completed_at' is null and new_row->>'completed_at' is not null then 'milestone.completed'
    when resource = 'milestone' and old_row->>'completed_at' is not null and new_row->>'completed_at' is null then 'milestone.reopened'
    when resource = 'api_token' and old_row->>'revoked_at' is null and new_row->>'revoked_at' is not null then 'api_token.revoked'
    when resource = 'webhook' and (old_row->>'active')::boolean and not (new_row->>'active')::boolean then 'webhook.disabled'
    when resource = 'webhook' and not (old_row->>'active')::boolean and (new_row->>'active')::boolean then 'webhook.enabled'
    when resource = 'export' then case
      when new_row->>'status' = old_row->>'status' then
        case when (new_row->>'download_count')::int > (old_row->>'download_count')::int then 'export.downloaded' end
      when new_row->>'status' = 'ready' then 'export.completed'
      when new_row->>'status' = 'failed' then 'export.failed'
      end
    else resource || '.updated'
  end
$$;

create or replace function app_private.audit_resource_of(schema_name text, table_name text) returns text
language sql immutable as $$
  select case schema_name || '.' || table_name
    when 'app_public.tenants' then 'tenant'
    when 'app_public.memberships' then 'membership'
    when 'app_public.api_tokens' then 'api_token'
    when 'app_public.incidents' then 'incident'
    when 'app_public.evidence' then 'evidence'
    when 'app_public.nis2_milestones' then 'milestone'
    when 'app_public.exports' then 'export'
    when 'app_public.webhooks' then 'webhook'
    when 'app_public.session_events' then 'session'
  end
$$;

create or replace function app_private.audit_ignored_columns(resource text) returns text[]
language sql immutable as $$
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

-- What one row change records: its tenant, action, resource, label (as it was named then),
-- incident and diff; no row when the change is not audited (export progress ticks) or an update
-- changed nothing. Inlined into the capture statement (plain SQL, no SET, not SECURITY DEFINER).
create function app_private.audit_entry_of(resource text, op text, old_row jsonb, new_row jsonb)
returns table (tenant_id uuid, action text, resource_id uuid, resource_label text, incident_id uuid, changes jsonb)
language sql stable as $$
  select coalesce((x.r->>'tenant_id')::uuid, (x.r->>'id')::uuid),
         x.action,
         case resource when 'membership' then (x.r->>'user_id')::uuid when 'session' then (x.r->>'user_id')::uuid
                       else (x.r->>'id')::uuid end,
         left(case resource
           when 'incident' then x.r->>'title'
           when 'evidence' then x.r->>'filename'
           when 'milestone' then
             (case x.r->>'kind' when 'early_warning' then 'Early Warning'
                               when 'full_notification' then 'Full Notification'
                               else 'Final Report' end)
             || ' · ' || coalesce((select i.title from app_public.incidents i
                                   where i.tenant_id = (x.r->>'tenant_id')::uuid and i.id = (x.r->>'incident_id')::uuid), '?')
           when 'export' then 'Evidence pack · ' || coalesce((select i.title from app_public.incidents i
                                   where i.tenant_id = (x.r->>'tenant_id')::uuid and i.id = (x.r->>'incident_id')::uuid), '?')
           when 'webhook' then x.r->>'url'
           when 'membership' then (select u.email from app_public.users u where u.id = (x.r->>'user_id')::uuid)
           when 'api_token' then x.r->>'name'
           when 'tenant' then x.r->>'name'
           when 'session' then x.r->>'email'
         end, 500),
         case resource when 'incident' then (x.r->>'id')::uuid
                       when 'evidence' then (x.r->>'incident_id')::uuid
                       when 'milestone' then (x.r->>'incident_id')::uuid
                       when 'export' then (x.r->>'incident_id')::uuid end,
         x.changes
  from (
    select coalesce(new_row, old_row) as r,
           app_private.audit_action(resource, op, old_row, new_row) as action,
           -- the field-level diff: {"field": {"old": …, "new": …}}; only "new" on create and only
           -- "old" on delete, listing set fields only (a subquery, not a function: it is planned
           -- once with the capture statement instead of on every call)
           (select coalesce(jsonb_object_agg(key,
                     case when op = 'INSERT' then jsonb_build_object('new', n.value)
                          when op = 'DELETE' then jsonb_build_object('old', o.value)
                          else jsonb_build_object('old', o.value, 'new', n.value) end), '{}')
            from jsonb_each(coalesce(old_row, '{}')) o
            full join jsonb_each(coalesce(new_row, '{}')) n using (key)
            where key <> all (app_private.audit_ignored_columns(resource))
              and o.value is distinct from n.value
              and (op = 'UPDATE' or coalesce(n.value, o.value) <> 'null'::jsonb)) as changes
  ) x
  where x.action is not null
    and not (op = 'UPDATE' and x.changes = '{}') -- an update that changes nothing records nothing
$$;
comment on function app_private.audit_entry_of(text, text, jsonb, jsonb) is
  'What a row change records in the audit log (tenant, action, resource, label, incident, diff), or no row.';

drop function app_private.tg__audit() cascade; -- the row-level _500_audit triggers go with it
create function app_private.tg__audit() returns trigger
language plpgsql security definer set search_path = pg_catalog, public
  -- One cached plan per statement shape: with custom plans the capture statement was planned
  -- again on every write (half of capture's cost).
  set plan_cache_mode = force_generic_plan as $$
declare
  v_resource text := tg_argv[0];
  v_key text := case tg_argv[0] when 'membership' then 'user_id' else 'id' end;
  v_token uuid;
  v_user uuid;
  v_email text;
  v_ip inet;
  v_role text := coalesce(nullif(current_setting('role'), 'none'), session_user);
  -- (current_setting inline, not app_private.setting(): this runs once per audited statement)
  v_request text := left(nullif(current_setting('attest.request_id', true), ''), 200);
  v_agent text := left(nullif(current_setting('attest.user_agent', true), ''), 500);
  v_surface text := coalesce(nullif(current_setting('attest.surface', true), ''), 'sql');
begin
  -- Only the tables this trigger was written for: attached to any other table it would let that
  -- table's rows pose as audited changes.
  if app_private.audit_resource_of(tg_table_schema, tg_table_name) is distinct from v_resource
     or tg_level <> 'STATEMENT' then
    raise exception 'app_private.tg__audit(%) is not the capture trigger of %.%', v_resource, tg_table_schema, tg_table_name
      using errcode = '42501';
  end if;
  -- Who and where, once per statement. A user (and their API token) is named only when the
  -- change comes through the server's roles (the user role, or the authenticator's own sign-in
  -- functions): any other role (the owner, the worker, a DBA) is recorded as "system" with its
  -- role name, whatever sessions or settings it arranged.
  if current_setting('role') = ':DATABASE_VISITOR'
     or (current_setting('role') = 'none' and session_user = ':DATABASE_AUTHENTICATOR') then
    v_token := (app_hidden.current_api_token()).id;
    v_user := app_public.current_user_id();
    v_email := (select u.email from app_public.users u where u.id = v_user);
  end if;
  if nullif(current_setting('attest.ip', true), '') is not null then
    begin
      v_ip := current_setting('attest.ip', true)::inet;
    exception when others then
      v_ip := null;
    end;
  end if;

  if tg_op = 'INSERT' then
    insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_user_id, actor_label, api_token_id, db_role,
                                      action, resource_type, resource_id, resource_label, incident_id, changes,
                                      request_id, ip, user_agent, surface)
    select e.tenant_id, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint, date_trunc('milliseconds', clock_timestamp()),
           v_user, coalesce(v_email, 'system'), v_token, v_role, e.action, v_resource, e.resource_id, e.resource_label,
           e.incident_id, e.changes, v_request, v_ip, v_agent, v_surface
    from new_rows nr cross join lateral app_private.audit_entry_of(v_resource, tg_op, null, to_jsonb(nr)) e;
  elsif tg_op = 'DELETE' then
    insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_user_id, actor_label, api_token_id, db_role,
                                      action, resource_type, resource_id, resource_label, incident_id, changes,
                                      request_id, ip, user_agent, surface)
    select e.tenant_id, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint, date_trunc('milliseconds', clock_timestamp()),
           v_user, coalesce(v_email, 'system'), v_token, v_role, e.action, v_resource, e.resource_id, e.resource_label,
           e.incident_id, e.changes, v_request, v_ip, v_agent, v_surface
    from old_rows orow cross join lateral app_private.audit_entry_of(v_resource, tg_op, to_jsonb(orow), null) e;
  else
    insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_user_id, actor_label, api_token_id, db_role,
                                      action, resource_type, resource_id, resource_label, incident_id, changes,
                                      request_id, ip, user_agent, surface)
    select e.tenant_id, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint, date_trunc('milliseconds', clock_timestamp()),
           v_user, coalesce(v_email, 'system'), v_token, v_role, e.action, v_resource, e.resource_id, e.resource_label,
           e.incident_id, e.changes, v_request, v_ip, v_agent, v_surface
    from (select to_jsonb(orow) as o from old_rows orow) a
    join (select to_jsonb(nr) as n from new_rows nr) b
      on a.o->>v_key = b.n->>v_key and coalesce(a.o->>'tenant_id', '') = coalesce(b.n->>'tenant_id', '')
    cross join lateral app_private.audit_entry_of(v_resource, tg_op, a.o, b.n) e;
  end if;
  return null;
end;
$$;
comment on function app_private.tg__audit() is
  'Capture trigger (AFTER … FOR EACH STATEMENT with transition tables old_rows/new_rows): one audit entry per changed row, in the same transaction. Argument: the resource name.';

create function app_private.tg__audited_no_truncate() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  raise exception 'audited tables cannot be truncated: delete the rows instead (each deletion is recorded)'
    using errcode = '42501';
end;
$$;
comment on function app_private.tg__audited_no_truncate() is 'Refuses TRUNCATE of an audited table (it would remove rows without recording it).';

-- Three statement triggers per audited table (PostgreSQL allows transition tables on triggers of
-- one event only). The table list is the one audit_resource_of knows.
do $$
declare
  r record;
begin
  for r in
    select c.oid::regclass as tbl, app_private.audit_resource_of(n.nspname, c.relname) as resource
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and app_private.audit_resource_of(n.nspname, c.relname) is not null
  loop
    execute format('create trigger _500_audit_insert after insert on %s referencing new table as new_rows
                    for each statement execute function app_private.tg__audit(%L)', r.tbl, r.resource);
    execute format('create trigger _500_audit_update after update on %s referencing old table as old_rows new table as new_rows
                    for each statement execute function app_private.tg__audit(%L)', r.tbl, r.resource);
    execute format('create trigger _500_audit_delete after delete on %s referencing old table as old_rows
                    for each statement execute function app_private.tg__audit(%L)', r.tbl, r.resource);
    -- TRUNCATE fires no row or statement DML triggers: refuse it on audited tables.
    execute format('create trigger _000_no_truncate before truncate on %s
                    for each statement execute function app_private.tg__audited_no_truncate()', r.tbl);
  end loop;
end;
$$;

-- NIS2 milestones are created once a statement's incidents are captured, so the log reads
-- "incident.updated (NIS2 on)" before the "milestone.created" entries it caused.
drop trigger _600_nis2_milestones on app_public.incidents;
create or replace function app_private.tg_incidents__nis2_milestones() returns trigger
language plpgsql security definer set search_path = pg_catalog, public set plan_cache_mode = force_generic_plan as $$
begin
  if not exists (select 1 from new_rows n where n.nis2_enabled) then
    return null; -- most statements: no incident with NIS2 on
  end if;
  if tg_op = 'INSERT' then
    insert into app_public.nis2_milestones (tenant_id, incident_id, kind, due_at)
    select n.tenant_id, n.id, k.kind, n.created_at + k.after
    from new_rows n
    cross join (values ('early_warning', interval '24 hours'),
                       ('full_notification', interval '72 hours'),
                       ('final_report', interval '30 days')) as k(kind, after)
    where n.nis2_enabled
    on conflict (tenant_id, incident_id, kind) do nothing;
  else
    insert into app_public.nis2_milestones (tenant_id, incident_id, kind, due_at)
    select n.tenant_id, n.id, k.kind, n.created_at + k.after
    from new_rows n
    join old_rows o on o.tenant_id = n.tenant_id and o.id = n.id
    cross join (values ('early_warning', interval '24 hours'),
                       ('full_notification', interval '72 hours'),
                       ('final_report', interval '30 days')) as k(kind, after)
    where n.nis2_enabled and not o.nis2_enabled
    on conflict (tenant_id, incident_id, kind) do nothing;
  end if;
  return null;
end;
$$;
create trigger _600_nis2_milestones_insert after insert on app_public.incidents referencing new table as new_rows
  for each statement execute function app_private.tg_incidents__nis2_milestones();
create trigger _600_nis2_milestones_update after update on app_public.incidents
  referencing old table as old_rows new table as new_rows
  for each statement execute function app_private.tg_incidents__nis2_milestones();

-- Entries come only from the capture triggers: a statement-level guard on the log.
create function app_private.tg_audit_log__capture_only() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  if pg_trigger_depth() < 2 then
    raise exception 'audit entries are written only by the database''s capture triggers'
      using errcode = '42501';
  end if;
  return null;
end;
$$;
comment on function app_private.tg_audit_log__capture_only() is 'Refuses any INSERT into the audit log that a capture trigger did not make.';

drop trigger _100_seal on app_public.audit_log;
drop function app_private.tg_audit_log__seal();
grant trigger on app_public.audit_log to :DATABASE_OWNER;
create trigger _000_capture_only before insert on app_public.audit_log
  for each statement execute function app_private.tg_audit_log__capture_only();
revoke trigger on app_public.audit_log from :DATABASE_OWNER;

------------------------------------------------------------------------------
-- 3. Entry bytes: what a leaf of the Merkle tree covers
------------------------------------------------------------------------------
-- The body of an entry: its fields as one JSON object, built from the columns in one pass (no
-- recursion): keys in a fixed order, strings escaped by PostgreSQL's JSON encoder. v1 entries
-- keep their v1 canonical document (what their v1 hash covers).
create function app_private.audit_entry_body(e app_public.audit_log) returns text
language sql stable parallel safe as $$ -- no SET: the planner inlines it into the sealer's and the verifier's set-based queries
  select case when e.v1_hash is not null then app_private.canonical_json(app_private.audit_document(e)) else
    '{"v":2,"tenant_id":"' || e.tenant_id || '","id":' || e.id
    || ',"occurred_at":"' || to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    || '","actor_user_id":' || coalesce('"' || e.actor_user_id || '"', 'null')
    || ',"actor_label":' || to_json(e.actor_label)
    || ',"api_token_id":' || coalesce('"' || e.api_token_id || '"', 'null')
    || ',"db_role":' || to_json(e.db_role)
    || ',"surface":' || to_json(e.surface)
    || ',"request_id":' || coalesce(to_json(e.request_id)::text, 'null')
    || ',"ip":' || coalesce('"' || host(e.ip) || '"', 'null')
    || ',"user_agent":' || coalesce(to_json(e.user_agent)::text, 'null')
    || ',"action":' || to_json(e.action)
    || ',"resource_type":' || to_json(e.resource_type)
    || ',"resource_id":' || coalesce('"' || e.resource_id || '"', 'null')
    || ',"resource_label":' || coalesce(to_json(e.resource_label)::text, 'null')
    || ',"incident_id":' || coalesce('"' || e.incident_id || '"', 'null')
    || ',"changes":' || e.changes::text
    || '}'
  end
$$;
comment on function app_private.audit_entry_body(app_public.audit_log) is
  'The JSON body of an audit entry as its leaf covers it (v2: fixed key order from the columns; v1 entries: their v1 canonical document).';

-- The leaf: a header (format, position, link to the previous entry of the same incident), a blank
-- line, the body. leaf hash = SHA-256(0x00 || these bytes) (RFC 9162).
create function app_private.audit_leaf_bytes(seq bigint, incident_prev text, body text) returns bytea
language sql immutable parallel safe as $$ -- no SET, so that it is inlined (it names only built-ins, found in pg_catalog first)
  select convert_to('attest-audit-entry/2' || E'\nseq ' || seq || E'\n'
                    || coalesce('incident-prev ' || incident_prev || E'\n', '') || E'\n' || body, 'UTF8')
$$;
comment on function app_private.audit_leaf_bytes(bigint, text, text) is
  'The bytes of a leaf: "attest-audit-entry/2", "seq <n>", "incident-prev <seq> <leaf hash hex>|none" (incident entries only), a blank line, the body.';

------------------------------------------------------------------------------
-- 4. The log: leaves with the subtree hashes they complete, trees, checkpoints
------------------------------------------------------------------------------
create table app_hidden.audit_leaves (
  tenant_id uuid not null,
  seq bigint not null check (seq >= 1),
  entry_id bigint not null,
  incident_id uuid,
  leaf_hash bytea not null check (octet_length(leaf_hash) = 32),
  -- The hashes of the complete subtrees whose last leaf this is, level 1 upwards (32 bytes each):
  -- the tree's interior nodes, each stored once, found by (level, index) with one key lookup.
  nodes bytea not null check (octet_length(nodes) % 32 = 0),
  -- The leaf's link to the previous entry of its incident ("<seq> <leaf hash hex>" or "none"), as
  -- sealed; null for entries without an incident. Verification checks it against the log.
  incident_prev text,
  sealed_at timestamptz not null default now(),
  primary key (tenant_id, seq),
  -- (no foreign key to the entry: its check would need UPDATE on the log, which nobody has;
  -- verification finds a leaf whose entry is gone)
  unique (tenant_id, entry_id)
);
create index audit_leaves_incident_idx on app_hidden.audit_leaves (tenant_id, incident_id, seq) where incident_id is not null;
comment on table app_hidden.audit_leaves is
  'Each sealed audit entry''s position (seq) in its tenant''s Merkle log, its leaf hash, and the interior nodes it completes. Written only by the sealer.';

create table app_private.audit_trees (
  tenant_id uuid primary key references app_public.tenants,
  size bigint not null,
  -- The hashes of the complete subtrees along the right edge, indexed by level + 1 (null where
  -- the size has a 0 bit): everything needed to append the next leaf.
  frontier bytea[] not null,
  updated_at timestamptz not null default now()
);
comment on table app_private.audit_trees is 'The sealer''s working state per tenant: tree size and right-edge subtree hashes.';

create table app_private.audit_seal_state (
  id boolean primary key default true check (id),
  last_xid bigint not null,
  last_id bigint not null
);
comment on table app_private.audit_seal_state is 'The sealer''s cursor: every entry at or before (last_xid, last_id) in (xid, id) order is sealed.';

create table app_public.audit_checkpoints (
  tenant_id uuid not null references app_public.tenants,
  tree_size bigint not null check (tree_size >= 1),
  root_hash bytea not null check (octet_length(root_hash) = 32),
  created_at timestamptz not null default now(),
  origin text not null,
  note text not null,
  key_fingerprint text not null,
  primary key (tenant_id, tree_size)
);
comment on table app_public.audit_checkpoints is
  E'@behavior -insert -update -delete\nSigned checkpoints of a tenant''s audit log (C2SP tlog-checkpoint signed notes): tree size, root hash and time, signed with the installation''s Ed25519 key.';
comment on column app_public.audit_checkpoints.root_hash is E'@behavior -*\nThe root hash (see rootHashHex).';
comment on column app_public.audit_checkpoints.note is 'The checkpoint as a C2SP signed note: origin, tree size, base64 root hash, a "time" extension line, then the signature line.';

-- Nobody rewrites the log's records, not even the owner.
create function app_private.tg__append_only() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  raise exception '% is append-only: % is not allowed', tg_table_name, tg_op using errcode = '42501';
end;
$$;
create trigger _000_immutable before update or delete on app_hidden.audit_leaves
  for each row execute function app_private.tg__append_only();
create trigger _000_no_truncate before truncate on app_hidden.audit_leaves
  for each statement execute function app_private.tg__append_only();
create trigger _000_immutable before update or delete on app_public.audit_checkpoints
  for each row execute function app_private.tg__append_only();
create trigger _000_no_truncate before truncate on app_public.audit_checkpoints
  for each statement execute function app_private.tg__append_only();
revoke update, delete, truncate, references on app_hidden.audit_leaves, app_public.audit_checkpoints from :DATABASE_OWNER;

-- The root of a tree from its right-edge subtree hashes (lowest level first, each folded under
-- the larger subtree to its left). Null for an empty tree.
create function app_private.audit_frontier_root(frontier bytea[]) returns bytea
language plpgsql immutable set search_path = pg_catalog as $$
declare
  v_root bytea := null;
begin
  for h in 1 .. coalesce(array_length(frontier, 1), 0) loop
    if frontier[h] is not null then
      v_root := case when v_root is null then frontier[h] else sha256('\x01'::bytea || frontier[h] || v_root) end;
    end if;
  end loop;
  return v_root;
end;
$$;
comment on function app_private.audit_frontier_root(bytea[]) is 'The Merkle root from the right-edge subtree hashes of a tree.';

-- The sealing horizon: every transaction of this database with an xid below it has ended.
-- Taken from the snapshot's xmax (xids handed out later are above it) and the xids of this
-- database's transactions still running (each holds the lock on its own xid until it ends;
-- pg_locks and pg_stat_activity's datname are readable by every role). Transactions of other
-- databases in the cluster do not hold the horizon back: they cannot write this log.
create function app_private.audit_seal_horizon() returns bigint
language sql volatile set search_path = pg_catalog as $$
  with next as (
    select pg_snapshot_xmax(pg_current_snapshot()) as xmax
  ), running as (
    select l.transactionid as x
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'transactionid' and l.mode = 'ExclusiveLock' and a.datname = current_database()
    union all
    select p.transaction from pg_prepared_xacts p where p.database = current_database()
  ), widened as (
    -- 32-bit xids to 64-bit ones: the epoch of the next xid, or the one before for xids above it.
    select (((n.xmax::text::bigint >> 32) << 32) + r.x::text::bigint
            - case when r.x::text::bigint > (n.xmax::text::bigint & 4294967295) then 4294967296 else 0 end) as x
    from running r cross join next n
  )
  select least((select xmax::text::bigint from next), (select min(x) from widened))
$$;
comment on function app_private.audit_seal_horizon() is
  'Every transaction of this database with an xid below this one has ended (committed or rolled back).';

------------------------------------------------------------------------------
-- 5. The sealer
------------------------------------------------------------------------------
create function app_private.seal_audit_entries(max_entries int default 50000)
returns table (tenant_id uuid, tree_size bigint, root_hash bytea, sealed bigint)
language plpgsql volatile security definer set search_path = pg_catalog, public set work_mem = '64MB' as $$
declare
  v_horizon bigint;
  v_state app_private.audit_seal_state;
  r record;
  v_tenant uuid := null;
  v_size bigint;
  v_base bigint;
  v_start int;
  v_frontier bytea[];
  v_leaf bytea;
  v_carry bytea;
  v_nodes bytea;
  v_link text;
  h int;
  n int := 0;
  a_tenant uuid[] := '{}';
  a_seq bigint[] := '{}';
  a_entry bigint[] := '{}';
  a_incident uuid[] := '{}';
  a_leaf bytea[] := '{}';
  a_nodes bytea[] := '{}';
  a_prev text[] := '{}';
  t_tenant uuid[] := '{}';
  t_size bigint[] := '{}';
  t_frontier text[] := '{}';
  t_sealed bigint[] := '{}';
  v_last_xid bigint;
  v_last_id bigint;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'the sealer runs in READ COMMITTED (each statement must see what committed before it)'
      using errcode = '25001';
  end if;
  -- One sealer at a time; a second one waits here and then continues from the first one's cursor.
  perform pg_advisory_xact_lock(7295061840133851321);
  select * into v_state from app_private.audit_seal_state;
  -- Every transaction below the horizon has ended: its entries are all visible now, or never.
  v_horizon := app_private.audit_seal_horizon();
  v_last_xid := v_state.last_xid;
  v_last_id := v_state.last_id;

  for r in
    with batch as (
      select e.tenant_id, e.id, e.xid, e.incident_id, app_private.audit_entry_body(e) as body
      from app_public.audit_log e
      where (e.xid, e.id) > (v_state.last_xid, v_state.last_id) and e.xid < v_horizon
      order by e.xid, e.id
      limit max_entries
    ), numbered as (
      select b.*, coalesce(t.size, 0) + row_number() over (partition by b.tenant_id order by b.xid, b.id) as seq
      from batch b left join app_private.audit_trees t on t.tenant_id = b.tenant_id
    ), linked as (
      select nb.*, lag(nb.seq) over (partition by nb.tenant_id, nb.incident_id order by nb.seq) as pseq
      from numbered nb
    )
    select l.*,
           case when l.incident_id is not null and l.pseq is null then
             (select x.seq || ' ' || encode(x.leaf_hash, 'hex') from app_hidden.audit_leaves x
               where x.tenant_id = l.tenant_id and x.incident_id = l.incident_id
               order by x.seq desc limit 1)
           end as stored_prev
    from linked l
    order by l.tenant_id, l.seq
  loop
    if v_tenant is distinct from r.tenant_id then
      if v_tenant is not null then
        t_tenant := t_tenant || v_tenant; t_size := t_size || v_size; t_frontier := t_frontier || v_frontier::text;
        t_sealed := t_sealed || (v_size - v_base);
      end if;
      v_tenant := r.tenant_id;
      select t.size, t.frontier into v_size, v_frontier from app_private.audit_trees t where t.tenant_id = r.tenant_id;
      v_size := coalesce(v_size, 0);
      v_frontier := coalesce(v_frontier, '{}');
      v_base := v_size;
      v_start := n;
    end if;
    v_link := case
      when r.incident_id is null then null
      when r.pseq is not null then r.pseq || ' ' || encode(a_leaf[(v_start + (r.pseq - v_base))::int], 'hex')
      else coalesce(r.stored_prev, 'none')
    end;
    v_leaf := sha256('\x00'::bytea || app_private.audit_leaf_bytes(r.seq, v_link, r.body));
    v_carry := v_leaf;
    v_nodes := '\x';
    h := 0;
    while (v_size >> h) & 1 = 1 loop
      v_carry := sha256('\x01'::bytea || v_frontier[h + 1] || v_carry);
      v_nodes := v_nodes || v_carry;
      v_frontier[h + 1] := null;
      h := h + 1;
    end loop;
    v_frontier[h + 1] := v_carry;
    v_size := v_size + 1;
    n := n + 1;
    a_tenant[n] := r.tenant_id; a_seq[n] := r.seq; a_entry[n] := r.id; a_incident[n] := r.incident_id;
    a_leaf[n] := v_leaf; a_nodes[n] := v_nodes; a_prev[n] := v_link;
    if (r.xid, r.id) > (v_last_xid, v_last_id) then
      v_last_xid := r.xid;
      v_last_id := r.id;
    end if;
  end loop;
  if n = 0 then
    return;
  end if;
  t_tenant := t_tenant || v_tenant; t_size := t_size || v_size; t_frontier := t_frontier || v_frontier::text;
  t_sealed := t_sealed || (v_size - v_base);

  insert into app_hidden.audit_leaves (tenant_id, seq, entry_id, incident_id, leaf_hash, nodes, incident_prev)
  select * from unnest(a_tenant, a_seq, a_entry, a_incident, a_leaf, a_nodes, a_prev);
  insert into app_private.audit_trees as t (tenant_id, size, frontier)
  select u.tenant_id, u.size, u.frontier::bytea[] from unnest(t_tenant, t_size, t_frontier) as u(tenant_id, size, frontier)
  on conflict on constraint audit_trees_pkey do update set size = excluded.size, frontier = excluded.frontier, updated_at = now();
  update app_private.audit_seal_state set last_xid = v_last_xid, last_id = v_last_id;

  return query
    select u.tenant_id, u.size, app_private.audit_frontier_root(u.frontier::bytea[]), u.sealed
    from unnest(t_tenant, t_size, t_frontier, t_sealed) as u(tenant_id, size, frontier, sealed);
end;
$$;
comment on function app_private.seal_audit_entries(int) is
  'Seals up to max_entries committed audit entries (in (xid, id) order, below the snapshot horizon): positions, leaves, interior nodes. Returns each changed tenant''s new tree size and root and how many entries it sealed there; the caller signs a checkpoint for each in the same transaction.';

-- Start: nothing sealed yet; the existing entries (xid 1) go first, in v1 chain order.
insert into app_private.audit_seal_state (last_xid, last_id) values (0, 0);

------------------------------------------------------------------------------
-- 6. Reading the tree: nodes, subtree hashes, proofs (RFC 9162 §2.1)
------------------------------------------------------------------------------
-- The hash of the complete subtree at (level, index): leaves index·2^level … (index+1)·2^level − 1.
create function app_private.audit_node(p_tenant uuid, p_level int, p_index bigint) returns bytea
language sql stable set search_path = pg_catalog as $$
  select case when p_level = 0 then l.leaf_hash else substring(l.nodes from (p_level - 1) * 32 + 1 for 32) end
  from app_hidden.audit_leaves l
  where l.tenant_id = p_tenant and l.seq = (p_index + 1) << p_level
$$;

-- MTH(D[lo:hi]) of RFC 9162: complete subtrees are stored; others are folded from them.
create function app_private.audit_subtree_hash(p_tenant uuid, p_lo bigint, p_hi bigint) returns bytea
language plpgsql stable set search_path = pg_catalog as $$
declare
  v_n bigint := p_hi - p_lo;
  v_k bigint := 1;
  v_level int := 0;
  v_hash bytea;
begin
  if v_n <= 0 then
    return sha256(''::bytea);
  end if;
  if v_n & (v_n - 1) = 0 and p_lo % v_n = 0 then
    while (1::bigint << v_level) < v_n loop
      v_level := v_level + 1;
    end loop;
    v_hash := app_private.audit_node(p_tenant, v_level, p_lo >> v_level);
    if v_hash is null then
      raise exception 'the audit log of tenant % has no node for leaves % to %', p_tenant, p_lo, p_hi - 1 using errcode = 'P0002';
    end if;
    return v_hash;
  end if;
  while v_k * 2 < v_n loop
    v_k := v_k * 2;
  end loop;
  return sha256('\x01'::bytea || app_private.audit_subtree_hash(p_tenant, p_lo, p_lo + v_k)
                              || app_private.audit_subtree_hash(p_tenant, p_lo + v_k, p_hi));
end;
$$;

-- The inclusion proof of leaf `p_index` (0-based) in the tree of size `p_size`, leaf side first.
create function app_private.audit_inclusion_path(p_tenant uuid, p_index bigint, p_size bigint) returns bytea[]
language plpgsql stable set search_path = pg_catalog as $$
declare
  v_lo bigint := 0;
  v_hi bigint := p_size;
  v_k bigint;
  v_top_down bytea[] := '{}';
begin
  if p_index < 0 or p_index >= p_size then
    raise exception 'leaf % is not in a tree of size %', p_index, p_size using errcode = '22023';
  end if;
  while v_hi - v_lo > 1 loop
    v_k := 1;
    while v_k * 2 < v_hi - v_lo loop
      v_k := v_k * 2;
    end loop;
    if p_index < v_lo + v_k then
      v_top_down := v_top_down || app_private.audit_subtree_hash(p_tenant, v_lo + v_k, v_hi);
      v_hi := v_lo + v_k;
    else
      v_top_down := v_top_down || app_private.audit_subtree_hash(p_tenant, v_lo, v_lo + v_k);
      v_lo := v_lo + v_k;
    end if;
  end loop;
  return array(select v_top_down[i] from generate_series(coalesce(array_length(v_top_down, 1), 0), 1, -1) i);
end;
$$;

-- The consistency proof between the trees of sizes p_old and p_new (RFC 9162 §2.1.4.1).
create function app_private.audit_consistency_path(p_tenant uuid, p_old bigint, p_new bigint) returns bytea[]
language plpgsql stable set search_path = pg_catalog as $$
declare
  v_lo bigint := 0;
  v_hi bigint := p_new;
  v_m bigint := p_old;
  v_complete boolean := true;
  v_k bigint;
  v_top_down bytea[] := '{}';
  v_base bytea[] := '{}';
begin
  if p_old < 1 or p_old > p_new then
    raise exception 'no consistency proof from size % to size %', p_old, p_new using errcode = '22023';
  end if;
  if p_old = p_new then
    return '{}';
  end if;
  loop
    if v_m = v_hi - v_lo then
      if not v_complete then
        v_base := array[app_private.audit_subtree_hash(p_tenant, v_lo, v_hi)];
      end if;
      exit;
    end if;
    v_k := 1;
    while v_k * 2 < v_hi - v_lo loop
      v_k := v_k * 2;
    end loop;
    if v_m <= v_k then
      v_top_down := v_top_down || app_private.audit_subtree_hash(p_tenant, v_lo + v_k, v_hi);
      v_hi := v_lo + v_k;
    else
      v_top_down := v_top_down || app_private.audit_subtree_hash(p_tenant, v_lo, v_lo + v_k);
      v_m := v_m - v_k;
      v_lo := v_lo + v_k;
      v_complete := false;
    end if;
  end loop;
  return v_base || array(select v_top_down[i] from generate_series(coalesce(array_length(v_top_down, 1), 0), 1, -1) i);
end;
$$;

-- The leaf bytes of the sealed entries of one incident up to a tree size, oldest first, each with
-- its inclusion proof in the tree of that size (for evidence packs).
create function app_private.incident_leaves(p_tenant uuid, p_incident uuid, p_tree_size bigint)
returns table (seq bigint, leaf bytea, leaf_hash bytea, proof bytea[])
language sql stable security definer set search_path = pg_catalog, public as $$
  select x.seq,
         app_private.audit_leaf_bytes(x.seq, x.incident_prev, app_private.audit_entry_body(e)),
         x.leaf_hash,
         app_private.audit_inclusion_path(p_tenant, x.seq - 1, p_tree_size)
  from (
    select l.seq, l.entry_id, l.leaf_hash, l.incident_prev
    from app_hidden.audit_leaves l
    where l.tenant_id = p_tenant and l.incident_id = p_incident and l.seq <= p_tree_size
  ) x
  join app_public.audit_log e on e.tenant_id = p_tenant and e.id = x.entry_id
  order by x.seq
$$;
comment on function app_private.incident_leaves(uuid, uuid, bigint) is
  'The leaf bytes, leaf hashes and inclusion proofs (in the tree of the given size) of an incident''s sealed entries, oldest first.';

------------------------------------------------------------------------------
-- 7. Checkpoints: signed by the sealer (Node holds the key), checked against the tree here
------------------------------------------------------------------------------
create function app_private.tg_audit_checkpoints__check() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_tree app_private.audit_trees;
begin
  -- The sealer signs the head it just sealed: compare with the tree's right edge (no lookups);
  -- any other size is recomputed from the stored nodes.
  select * into v_tree from app_private.audit_trees t where t.tenant_id = new.tenant_id;
  if new.root_hash is distinct from (case when v_tree.size = new.tree_size then app_private.audit_frontier_root(v_tree.frontier)
                                          else app_private.audit_subtree_hash(new.tenant_id, 0, new.tree_size) end) then
    raise exception 'checkpoint of tenant % at size % does not match the log''s root', new.tenant_id, new.tree_size
      using errcode = '23514';
  end if;
  if position(E'\n' || new.tree_size || E'\n' || encode(new.root_hash, 'base64') || E'\n' in new.note) = 0 then
    raise exception 'checkpoint note does not state size % and its root', new.tree_size using errcode = '23514';
  end if;
  new.created_at := now();
  return new;
end;
$$;
create trigger _100_check before insert on app_public.audit_checkpoints
  for each row execute function app_private.tg_audit_checkpoints__check();
revoke trigger on app_hidden.audit_leaves, app_public.audit_checkpoints from :DATABASE_OWNER;

-- Heads that have no checkpoint yet (after this migration, or after a sealer that could not sign).
create function app_private.unsigned_audit_heads() returns table (tenant_id uuid, tree_size bigint, root_hash bytea)
language sql stable security definer set search_path = pg_catalog, public as $$
  select t.tenant_id, t.size, app_private.audit_frontier_root(t.frontier)
  from app_private.audit_trees t
  where not exists (select 1 from app_public.audit_checkpoints c where c.tenant_id = t.tenant_id and c.tree_size = t.size)
$$;

-- The current heads of some tenants' logs (the sealer signs heads it deferred).
create function app_private.audit_heads(p_tenants uuid[]) returns table (tenant_id uuid, tree_size bigint, root_hash bytea)
language sql stable security definer set search_path = pg_catalog, public as $$
  select t.tenant_id, t.size, app_private.audit_frontier_root(t.frontier)
  from app_private.audit_trees t
  where t.tenant_id = any (p_tenants)
    and not exists (select 1 from app_public.audit_checkpoints c where c.tenant_id = t.tenant_id and c.tree_size = t.size)
$$;

create function app_private.add_audit_checkpoint(p_tenant uuid, p_size bigint, p_root bytea, p_origin text, p_note text, p_fingerprint text)
returns void
language sql volatile security definer set search_path = pg_catalog, public as $$
  insert into app_public.audit_checkpoints (tenant_id, tree_size, root_hash, origin, note, key_fingerprint)
  values (p_tenant, p_size, p_root, p_origin, p_note, p_fingerprint)
  on conflict (tenant_id, tree_size) do nothing
$$;

------------------------------------------------------------------------------
-- 8. Verification: entries ↔ leaves ↔ tree ↔ checkpoints, naming the first bad position
------------------------------------------------------------------------------
create function app_private.verify_audit_log(p_tenant uuid)
returns table (valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text,
               tree_size bigint, root_hash bytea, checkpoint_size bigint, pending bigint)
language plpgsql stable security definer set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off -- whole-tenant checks: hash joins, not one index probe per entry
  -- recomputing every leaf is CPU work: let PostgreSQL's parallel workers share it
  set parallel_setup_cost = 0 set parallel_tuple_cost = 0
as $$
declare
  v_state app_private.audit_seal_state;
  v_size bigint;
  v_frontier bytea[];
  v_root bytea;
  v_count bigint;
  v_max bigint;
  v_bad bigint;
  v_pending bigint;
  v_entries bigint;
  v_cp record;
begin
  select * into v_state from app_private.audit_seal_state;
  select t.size, t.frontier into v_size, v_frontier from app_private.audit_trees t where t.tenant_id = p_tenant;
  v_size := coalesce(v_size, 0);
  v_root := app_private.audit_frontier_root(v_frontier);
  select count(*) filter (where (e.xid, e.id) > (v_state.last_xid, v_state.last_id)), count(*)
    into v_pending, v_entries
  from app_public.audit_log e where e.tenant_id = p_tenant;
  select c.tree_size, c.root_hash into v_cp from app_public.audit_checkpoints c
  where c.tenant_id = p_tenant order by c.tree_size desc limit 1;

  -- Positions 1 … size, each once.
  select count(*), max(l.seq) into v_count, v_max from app_hidden.audit_leaves l where l.tenant_id = p_tenant;
  if v_count <> v_size or coalesce(v_max, 0) <> v_size then
    select min(g) into v_bad from generate_series(1, greatest(v_size, coalesce(v_max, 0))) g
    where not exists (select 1 from app_hidden.audit_leaves l where l.tenant_id = p_tenant and l.seq = g);
    return query select false, v_entries, v_size, coalesce(v_bad, least(v_size, v_max) + 1),
      format('position %s of the log is missing (the log should hold %s entries, %s are there)', coalesce(v_bad, v_size + 1), v_size, v_count),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Each leaf links to the previous entry of its incident as the log holds it now.
  select min(x.seq) into v_bad
  from (
    select l.seq, l.incident_prev,
           case when l.incident_id is null then null
                when lag(l.seq) over w is null then 'none'
                else lag(l.seq) over w || ' ' || encode(lag(l.leaf_hash) over w, 'hex') end as expected
    from app_hidden.audit_leaves l
    where l.tenant_id = p_tenant
    window w as (partition by l.incident_id order by l.seq)
  ) x
  where x.incident_prev is distinct from x.expected;
  if v_bad is not null then
    return query select false, v_entries, v_size, v_bad,
      format('entry %s no longer links to the previous entry of its incident: an entry of that incident was removed, added or replaced', v_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Each leaf is the hash of its entry as stored now (with its link). No window here, so that
  -- PostgreSQL can spread the hashing over parallel workers.
  select min(l.seq) into v_bad
  from app_hidden.audit_leaves l
  left join app_public.audit_log e on e.tenant_id = p_tenant and e.id = l.entry_id
  where l.tenant_id = p_tenant
    and (e.id is null
         or e.incident_id is distinct from l.incident_id
         or l.leaf_hash <> sha256('\x00'::bytea || app_private.audit_leaf_bytes(l.seq, l.incident_prev, app_private.audit_entry_body(e))));
  if v_bad is not null then
    return query select false, v_entries, v_size, v_bad,
      format('entry %s was altered, removed or replaced: it does not match its leaf in the log', v_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Each interior node is the hash of its two children; each leaf completes the right subtrees.
  select min(x.seq) into v_bad from (
    select l.seq from app_hidden.audit_leaves l
    where l.tenant_id = p_tenant and (1::bigint << (octet_length(l.nodes) / 32)) <> (l.seq & -l.seq)
    union all
    select n.seq
    from (
      select l.seq, h, substring(l.nodes from (h - 1) * 32 + 1 for 32) as node,
             case when h = 1 then l.leaf_hash else substring(l.nodes from (h - 2) * 32 + 1 for 32) end as right_child
      from app_hidden.audit_leaves l cross join lateral generate_series(1, octet_length(l.nodes) / 32) h
      where l.tenant_id = p_tenant
    ) n
    join app_hidden.audit_leaves c on c.tenant_id = p_tenant and c.seq = n.seq - (1::bigint << (n.h - 1))
    where n.node <> sha256('\x01'::bytea
            || case when n.h = 1 then c.leaf_hash else substring(c.nodes from (n.h - 2) * 32 + 1 for 32) end
            || n.right_child)
  ) x;
  if v_bad is not null then
    return query select false, v_entries, v_size, v_bad,
      format('the log''s tree is damaged at entry %s: a stored hash does not match the entries below it', v_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Entries below the sealer's cursor all have their place in the log.
  if v_entries - v_pending <> v_size then
    select min(e.id) into v_bad from app_public.audit_log e
    where e.tenant_id = p_tenant and (e.xid, e.id) <= (v_state.last_xid, v_state.last_id)
      and not exists (select 1 from app_hidden.audit_leaves l where l.tenant_id = p_tenant and l.entry_id = e.id);
    return query select false, v_entries, v_size, null::bigint,
      format('%s sealed entries are missing from the log (e.g. entry id %s has no position)', v_entries - v_pending - v_size, v_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Every checkpoint this log has published is a state of this tree.
  if v_cp.tree_size > v_size then
    return query select false, v_entries, v_size, v_size + 1,
      format('the log holds %s entries but its checkpoint of %s entries was published: entries were removed from the end', v_size, v_cp.tree_size),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;
  select min(c.tree_size) into v_bad from app_public.audit_checkpoints c
  where c.tenant_id = p_tenant and c.root_hash <> app_private.audit_subtree_hash(p_tenant, 0, c.tree_size);
  if v_bad is not null then
    return query select false, v_entries, v_size, v_bad,
      format('the log no longer matches its checkpoint at %s entries: history up to there was rewritten', v_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  return query select true, v_entries, v_size, null::bigint, null::text, v_size, v_root, v_cp.tree_size, v_pending;
end;
$$;
comment on function app_private.verify_audit_log(uuid) is
  'Verifies a tenant''s audit log: every position, every leaf against its entry, every interior node, every entry sealed, every checkpoint. Names the first bad position.';

-- The DBAs' entry point keeps its name and its first columns.
drop view reporting.chain_status;
drop function app_public.verify_audit_chain(uuid);
create function app_public.verify_audit_chain(tenant_id uuid)
returns table (valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text,
               tree_size bigint, root_hash text, checkpoint_size bigint, pending bigint)
language sql stable security definer set search_path = pg_catalog, public as $$
  select v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem, v.tree_size, encode(v.root_hash, 'hex'),
         v.checkpoint_size, v.pending
  from app_private.verify_audit_log(verify_audit_chain.tenant_id) v
$$;
comment on function app_public.verify_audit_chain(uuid) is
  E'@behavior -*\nVerifies a tenant''s audit log (entries, leaves, tree, checkpoints) and names the first bad position. entries counts captured entries, pending those not sealed yet.';
grant execute on function app_public.verify_audit_chain(uuid) to :DATABASE_REPORTING;

alter table app_private.chain_verifications add column tree_size bigint;
alter table app_private.chain_verifications add column pending bigint;

create or replace function app_private.record_chain_verifications() returns int
language sql volatile security definer set search_path = pg_catalog, public as $$
  with verified as (
    insert into app_private.chain_verifications (tenant_id, valid, entries, last_seq, first_invalid_seq, problem, tree_size, pending)
    select t.id, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem, v.tree_size, v.pending
    from app_public.tenants t cross join lateral app_private.verify_audit_log(t.id) v
    returning 1
  )
  select count(*)::int from verified
$$;

create or replace function app_public.verify_current_audit_chain()
returns table (checked_at timestamptz, valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text)
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  if not app_hidden.audit_log_readable() then
    raise exception 'Only owners and admins can verify the audit log' using errcode = '42501';
  end if;
  return query
  insert into app_private.chain_verifications as v (tenant_id, valid, entries, last_seq, first_invalid_seq, problem, tree_size, pending)
  select app_public.current_tenant_id(), c.valid, c.entries, c.last_seq, c.first_invalid_seq, c.problem, c.tree_size, c.pending
  from app_private.verify_audit_log(app_public.current_tenant_id()) c
  returning v.checked_at, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem;
end;
$$;

-- Chain status for DBAs: the latest recorded verification (daily job, "Verify now"), and the
-- log's live size; reading it verifies nothing.
create view reporting.chain_status as
  select t.slug as tenant_slug, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem,
         v.checked_at, coalesce(tr.size, 0) as tree_size,
         (select max(c.tree_size) from app_public.audit_checkpoints c where c.tenant_id = t.id) as checkpoint_size
  from app_public.tenants t
  left join lateral (
    select * from app_private.chain_verifications cv where cv.tenant_id = t.id order by cv.checked_at desc limit 1
  ) v on true
  left join app_private.audit_trees tr on tr.tenant_id = t.id;
comment on view reporting.chain_status is
  'Per tenant: the latest recorded verification of its audit log (when it ran and what it found) and the log''s current size and latest checkpoint.';
grant select on reporting.chain_status to :DATABASE_REPORTING;

------------------------------------------------------------------------------
-- 9. Who may read the log's positions, checkpoints and proofs
------------------------------------------------------------------------------
alter table app_hidden.audit_leaves enable row level security;
create policy select_managers_with_feature on app_hidden.audit_leaves for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_hidden.audit_log_readable()));
grant select on app_hidden.audit_leaves to :DATABASE_VISITOR;

alter table app_public.audit_checkpoints enable row level security;
create policy select_managers_with_feature on app_public.audit_checkpoints for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_hidden.audit_log_readable()));
grant select on app_public.audit_checkpoints to :DATABASE_VISITOR;

create function app_public.audit_log_seq(e app_public.audit_log) returns bigint
language sql stable set search_path = pg_catalog, public as $$
  select l.seq from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id
$$;
comment on function app_public.audit_log_seq(app_public.audit_log) is
  'Position of the entry in its tenant''s log (1, 2, 3, … without gaps), or null while it is pending (not sealed yet, normally under 2 seconds).';
create function app_public.audit_log_sealed_at(e app_public.audit_log) returns timestamptz
language sql stable set search_path = pg_catalog, public as $$
  select l.sealed_at from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id
$$;
comment on function app_public.audit_log_sealed_at(app_public.audit_log) is 'When the entry was sealed into the log, or null while pending.';
create function app_public.audit_log_leaf_hash(e app_public.audit_log) returns text
language sql stable set search_path = pg_catalog, public as $$
  select encode(l.leaf_hash, 'hex') from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id
$$;
comment on function app_public.audit_log_leaf_hash(app_public.audit_log) is
  'The entry''s leaf hash in the log (hex): SHA-256(0x00 || leaf bytes), RFC 9162. Null while pending.';
create function app_public.audit_checkpoints_root_hash_hex(c app_public.audit_checkpoints) returns text
language sql immutable set search_path = pg_catalog as $$
  select encode(c.root_hash, 'hex')
$$;
comment on function app_public.audit_checkpoints_root_hash_hex(app_public.audit_checkpoints) is 'The root hash in hex.';

create type app_public.audit_inclusion_proof as (
  seq bigint,
  leaf_index bigint,
  tree_size bigint,
  leaf_hash text,
  root_hash text,
  proof text[],
  checkpoint text
);
comment on type app_public.audit_inclusion_proof is
  'An RFC 9162 inclusion proof (hashes in hex, leaf side first) of an entry in a signed checkpoint of its tenant''s log.';

create type app_public.audit_consistency_proof as (
  from_size bigint,
  to_size bigint,
  from_root_hash text,
  to_root_hash text,
  proof text[]
);
comment on type app_public.audit_consistency_proof is 'An RFC 9162 consistency proof (hashes in hex) between two checkpoints of a tenant''s log.';

create function app_private.inclusion_proof(p_tenant uuid, p_seq bigint, p_tree_size bigint)
returns app_public.audit_inclusion_proof
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_cp app_public.audit_checkpoints;
  v_leaf bytea;
begin
  select * into v_cp from app_public.audit_checkpoints c
  where c.tenant_id = p_tenant and (p_tree_size is null or c.tree_size = p_tree_size) and c.tree_size >= p_seq
  order by c.tree_size desc limit 1;
  if v_cp.tree_size is null then
    raise exception 'no checkpoint of this log covers entry % (it may still be pending)', p_seq using errcode = 'P0002';
  end if;
  select l.leaf_hash into v_leaf from app_hidden.audit_leaves l where l.tenant_id = p_tenant and l.seq = p_seq;
  if v_leaf is null then
    raise exception 'entry % is not in the log', p_seq using errcode = 'P0002';
  end if;
  return row(p_seq, p_seq - 1, v_cp.tree_size, encode(v_leaf, 'hex'), encode(v_cp.root_hash, 'hex'),
             array(select encode(h, 'hex') from unnest(app_private.audit_inclusion_path(p_tenant, p_seq - 1, v_cp.tree_size)) h),
             v_cp.note)::app_public.audit_inclusion_proof;
end;
$$;

create function app_private.consistency_proof(p_tenant uuid, p_from bigint, p_to bigint)
returns app_public.audit_consistency_proof
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_from bytea := (select c.root_hash from app_public.audit_checkpoints c where c.tenant_id = p_tenant and c.tree_size = p_from);
  v_to bytea := (select c.root_hash from app_public.audit_checkpoints c where c.tenant_id = p_tenant and c.tree_size = p_to);
begin
  if v_from is null or v_to is null then
    raise exception 'both sizes must be checkpoints of this log (%, %)', p_from, p_to using errcode = 'P0002';
  end if;
  return row(p_from, p_to, encode(v_from, 'hex'), encode(v_to, 'hex'),
             array(select encode(h, 'hex') from unnest(app_private.audit_consistency_path(p_tenant, p_from, p_to)) h))::app_public.audit_consistency_proof;
end;
$$;

-- For owners and admins (GraphQL): proofs in the current tenant.
create function app_public.audit_log_inclusion_proof(e app_public.audit_log, tree_size bigint default null)
returns app_public.audit_inclusion_proof
language sql stable security definer set search_path = pg_catalog, public as $$
  select app_private.inclusion_proof(e.tenant_id, l.seq, audit_log_inclusion_proof.tree_size)
  from app_hidden.audit_leaves l
  where l.tenant_id = e.tenant_id and l.entry_id = e.id
    and e.tenant_id = app_public.current_tenant_id() and app_hidden.audit_log_readable()
$$;
comment on function app_public.audit_log_inclusion_proof(app_public.audit_log, bigint) is
  'The entry''s inclusion proof in the latest checkpoint of the log (or the checkpoint of the given tree size). Null while the entry is pending.';

create function app_public.audit_consistency_proof(from_size bigint, to_size bigint)
returns app_public.audit_consistency_proof
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  if not app_hidden.audit_log_readable() then
    raise exception 'Only owners and admins can read the audit log''s proofs' using errcode = '42501';
  end if;
  return app_private.consistency_proof(app_public.current_tenant_id(), from_size, to_size);
end;
$$;
comment on function app_public.audit_consistency_proof(bigint, bigint) is
  'Proves that the log at checkpoint to_size extends the log at checkpoint from_size (owner/admin with auditLog).';

grant execute on function app_public.audit_log_seq(app_public.audit_log), app_public.audit_log_sealed_at(app_public.audit_log),
  app_public.audit_log_leaf_hash(app_public.audit_log), app_public.audit_checkpoints_root_hash_hex(app_public.audit_checkpoints),
  app_public.audit_log_inclusion_proof(app_public.audit_log, bigint), app_public.audit_consistency_proof(bigint, bigint)
  to :DATABASE_VISITOR;

create function app_public.audit_log_entry(seq bigint) returns app_public.audit_log
language sql stable set search_path = pg_catalog, public as $$
  select e.* from app_hidden.audit_leaves l
  join app_public.audit_log e on e.tenant_id = l.tenant_id and e.id = l.entry_id
  where l.tenant_id = app_public.current_tenant_id() and l.seq = audit_log_entry.seq
$$;
comment on function app_public.audit_log_entry(bigint) is 'The entry at this position of the current tenant''s log (owner/admin with auditLog).';
grant execute on function app_public.audit_log_entry(bigint) to :DATABASE_VISITOR;

-- For DBAs: the same proofs for any tenant, and the log's checkpoints.
create function reporting.audit_inclusion_proof(tenant_id uuid, seq bigint, tree_size bigint default null)
returns app_public.audit_inclusion_proof
language sql stable security definer set search_path = pg_catalog, public as $$
  select app_private.inclusion_proof(audit_inclusion_proof.tenant_id, audit_inclusion_proof.seq, audit_inclusion_proof.tree_size)
$$;
comment on function reporting.audit_inclusion_proof(uuid, bigint, bigint) is 'Inclusion proof of a tenant''s entry at seq in a checkpoint (latest by default).';
create function reporting.audit_consistency_proof(tenant_id uuid, from_size bigint, to_size bigint)
returns app_public.audit_consistency_proof
language sql stable security definer set search_path = pg_catalog, public as $$
  select app_private.consistency_proof(audit_consistency_proof.tenant_id, audit_consistency_proof.from_size, audit_consistency_proof.to_size)
$$;
comment on function reporting.audit_consistency_proof(uuid, bigint, bigint) is 'Consistency proof between two checkpoints of a tenant''s log.';
grant usage on type app_public.audit_inclusion_proof, app_public.audit_consistency_proof to :DATABASE_REPORTING;
grant execute on function reporting.audit_inclusion_proof(uuid, bigint, bigint), reporting.audit_consistency_proof(uuid, bigint, bigint)
  to :DATABASE_REPORTING;

create view reporting.audit_checkpoints as
  select t.slug as tenant_slug, c.tenant_id, c.tree_size, encode(c.root_hash, 'hex') as root_hash, c.created_at,
         c.origin, c.note, c.key_fingerprint
  from app_public.audit_checkpoints c join app_public.tenants t on t.id = c.tenant_id;
comment on view reporting.audit_checkpoints is 'Every signed checkpoint of every tenant''s audit log (tree size, root hash in hex, the signed note).';
grant select on reporting.audit_checkpoints to :DATABASE_REPORTING;

-- Entries for DBAs: the log position and leaf hash (hex) once sealed.
drop view reporting.audit_entries;
create view reporting.audit_entries as
  select t.slug as tenant_slug, t.name as tenant_name, e.tenant_id, l.seq, e.id as entry_id, e.occurred_at,
         e.actor_label as actor, e.actor_user_id, e.api_token_id, e.db_role, e.action, e.resource_type, e.resource_id,
         e.resource_label, e.incident_id, e.changes, e.surface, e.request_id, e.ip, e.user_agent,
         encode(l.leaf_hash, 'hex') as leaf_hash, l.sealed_at
  from app_public.audit_log e
  join app_public.tenants t on t.id = e.tenant_id
  left join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id;
comment on view reporting.audit_entries is
  'Every audit entry of every tenant, with the tenant''s slug, its position (seq) and leaf hash once sealed (null while pending).';
grant select on reporting.audit_entries to :DATABASE_REPORTING;

------------------------------------------------------------------------------
-- 10. Everything that named entries by their v1 position now uses the capture number
------------------------------------------------------------------------------
create or replace function app_public.incidents_audit_trail(i app_public.incidents) returns setof app_public.audit_log
language sql stable set search_path = pg_catalog, public as $$
  select e.* from app_public.audit_log e
  where e.tenant_id = i.tenant_id and e.incident_id = i.id
  order by e.id desc
$$;

alter table app_private.webhook_deliveries rename column audit_seq to audit_entry_id;
-- Webhook deliveries are queued once per capturing statement (one indexed lookup of the tenant's
-- webhooks), not once per entry.
drop trigger _900_webhooks on app_public.audit_log;
create or replace function app_private.tg_audit_log__webhooks() returns trigger
language plpgsql security definer set search_path = pg_catalog, public set plan_cache_mode = force_generic_plan as $$
declare
  v_hook record;
begin
  for v_hook in
    with queued as (
      insert into app_private.webhook_deliveries (tenant_id, webhook_id, audit_entry_id, action)
      select e.tenant_id, w.id, e.id, e.action
      from new_entries e
      join app_public.webhooks w on w.tenant_id = e.tenant_id and w.active and app_private.webhook_wants(w.actions, e.action)
      order by e.id
      returning tenant_id, webhook_id
    )
    select distinct q.tenant_id, q.webhook_id from queued q
  loop
    perform app_private.enqueue_webhook_delivery(v_hook.tenant_id, v_hook.webhook_id);
  end loop;
  return null;
end;
$$;
grant trigger on app_public.audit_log to :DATABASE_OWNER;
create trigger _900_webhooks after insert on app_public.audit_log referencing new table as new_entries
  for each statement execute function app_private.tg_audit_log__webhooks();
revoke trigger on app_public.audit_log from :DATABASE_OWNER;

drop function app_public.webhook_deliveries(uuid, int);
create function app_public.webhook_deliveries(webhook_id uuid, max_rows int default 20)
returns table (id uuid, audit_entry_id bigint, audit_seq bigint, action text, is_test boolean, status text, attempts int,
               last_status_code int, last_error text, last_attempt_at timestamptz, next_attempt_at timestamptz,
               delivered_at timestamptz, created_at timestamptz)
language sql stable security definer set search_path = pg_catalog, public as $$
  select d.id, d.audit_entry_id, l.seq, d.action, d.is_test, d.status, d.attempts, d.last_status_code, d.last_error,
         d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.created_at
  from app_private.webhook_deliveries d
  left join app_hidden.audit_leaves l on l.tenant_id = d.tenant_id and l.entry_id = d.audit_entry_id
  where d.tenant_id = app_public.current_tenant_id() and d.webhook_id = webhook_deliveries.webhook_id
    and app_public.current_tenant_role() in ('owner', 'admin')
  order by d.created_at desc, d.audit_entry_id desc nulls first
  limit least(greatest(max_rows, 1), 100)
$$;
comment on function app_public.webhook_deliveries(uuid, int) is
  'The latest deliveries of a webhook of the current tenant, newest first (owner/admin): the audit entry''s capture number and, once sealed, its position.';
grant execute on function app_public.webhook_deliveries(uuid, int) to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- 11. The sealer's role: seal, sign, nothing else
------------------------------------------------------------------------------
create function app_private.sealer_signing_key() returns table (fingerprint text, public_key_pem text, private_key_pem text)
language sql stable security definer set search_path = pg_catalog, public as $$
  select k.fingerprint, k.public_key_pem, k.private_key_pem from app_private.signing_keys k where k.retired_at is null
$$;
comment on function app_private.sealer_signing_key() is 'The active signing key, for the sealer (created at start by the server).';
grant usage on schema app_private to :DATABASE_SEALER;
grant execute on function app_private.seal_audit_entries(int), app_private.unsigned_audit_heads(), app_private.audit_heads(uuid[]),
  app_private.add_audit_checkpoint(uuid, bigint, bytea, text, text, text), app_private.sealer_signing_key()
  to :DATABASE_SEALER;

------------------------------------------------------------------------------
-- 12. Every key of a tenant-owned table leads with tenant_id (ready to distribute by tenant)
------------------------------------------------------------------------------
alter table app_private.chain_verifications drop constraint chain_verifications_pkey;
alter table app_private.chain_verifications add primary key (tenant_id, id);
-- A token is found by its hash alone (the tenant comes from the token); 32 random bytes do not
-- collide, so uniqueness within the tenant is the key, and a plain index serves the lookup.
alter table app_private.api_token_secrets drop constraint api_token_secrets_token_hash_key;
alter table app_private.api_token_secrets add constraint api_token_secrets_token_hash_key unique (tenant_id, token_hash);
create index api_token_secrets_token_hash_idx on app_private.api_token_secrets (token_hash);

-- Seal what exists now (the v1 entries become the first leaves; checkpoints follow on the
-- sealer's first run, which signs every head that has none).
select count(*) from app_private.seal_audit_entries(2147483647);
