--! Previous: sha1:0c62ae9791062e578e0204b6c5aaa4aef54ee6fd
--! Hash: sha1:a7287654c3de2207cc9ab5b7fbfd9eae693ddcf8
--! Message: capture-speed

-- 000013 Capture speed: what an audited write costs, measured with callgrind on PostgreSQL 15
-- (instructions per single-row UPDATE of an incident: plain 0.59 M; audited before 3.26 M, after
-- this migration ~1.5 M; see bench:audit and src/audit/DESIGN.md "What capture costs").
--
-- * tg__audit writes the resource and the operation into each of its statements (one INSERT per
--   audited resource and operation, generated from the catalog by app_private.audit_capture_source()):
--   the planner folds audit_entry_of's cases for that resource, so a statement's plan holds only
--   its own label lookups, and the executor no longer starts subplans for every other resource.
-- * Each changed row is turned into JSON once (it was converted again for every reference after
--   the subquery was flattened: 18 conversions per updated row), and the diff is one pass over the
--   row's fields, computed once (it ran twice: in the condition and for the column).
-- * Webhook deliveries are queued by the capture statement itself, and only when the statement's
--   tenants have an active webhook: the log's _900_webhooks statement trigger (a second trigger
--   call and transition table per audited statement) is gone.
-- * The log's three v1 checks go: PostgreSQL re-reads and plans every CHECK constraint of a table
--   on each INSERT statement (~40,000 instructions each). v1 entries were checked when they were
--   written and can never change; capture never writes the v1 columns.
-- Nothing changes in what an entry records (one per changed row, same fields, same diff).
-- Runs in a superuser session once the DDL guard is installed (the log and the capture function
-- then belong to <prefix>_audit): `set local role none` acts as that session's login.
-- The capture function's source, from the catalog's audited tables (audit_resource_of).
create function app_private.audit_capture_source() returns text
language plpgsql stable set search_path = pg_catalog as $gen$
declare
  v_branches text := '';
  v_ops text;
  r record;
  v_insert constant text := $t$
          insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_user_id, actor_label, api_token_id, db_role,
                                            action, resource_type, resource_id, resource_label, incident_id, changes,
                                            request_id, ip, user_agent, surface)
          select e.tenant_id, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint,
                 date_trunc('milliseconds', clock_timestamp()), v_user, coalesce(v_email, 'system'), v_token, v_role,
                 e.action, %1$L, e.resource_id, e.resource_label, e.incident_id, e.changes, v_request, v_ip, v_agent, v_surface
          from %3$s
          cross join lateral app_private.audit_entry_of(%1$L, %2$L, %4$s, %5$s) e$t$;
  v_stmt constant text := $t$
      if exists (select 1 from %6$s join app_public.webhooks w on w.tenant_id = t.%7$I and w.active) then
        for v_hook in
          with e as (%8$s
            returning tenant_id, id, action
          ), queued as (
            insert into app_private.webhook_deliveries (tenant_id, webhook_id, audit_entry_id, action)
            select e.tenant_id, w.id, e.id, e.action
            from e join app_public.webhooks w on w.tenant_id = e.tenant_id and w.active and app_private.webhook_wants(w.actions, e.action)
            order by e.id
            returning tenant_id, webhook_id
          )
          select distinct q.tenant_id, q.webhook_id from queued q
        loop
          perform app_private.enqueue_webhook_delivery(v_hook.tenant_id, v_hook.webhook_id);
        end loop;
      else%8$s;
      end if;$t$;
begin
  for r in
    select distinct app_private.audit_resource_of(n.nspname, c.relname) as resource,
           case when exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
                then 'tenant_id' else 'id' end as tenant_col
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and app_private.audit_resource_of(n.nspname, c.relname) is not null
    order by 1, 2
  loop
    v_ops := format(E'\n    if tg_op = ''INSERT'' then', r.resource)
      || format(v_stmt, r.resource, 'INSERT', null, null, null, 'new_rows t', r.tenant_col, format(v_insert, r.resource, 'INSERT', '(select to_jsonb(nr) as n from new_rows nr offset 0) b', 'null', 'b.n'))
      || E'\n    elsif tg_op = ''DELETE'' then'
      || format(v_stmt, r.resource, 'DELETE', null, null, null, 'old_rows t', r.tenant_col, format(v_insert, r.resource, 'DELETE', '(select to_jsonb(orow) as o from old_rows orow offset 0) a', 'a.o', 'null'))
      || E'\n    else'
      || format(v_stmt, r.resource, 'UPDATE', null, null, null, 'new_rows t', r.tenant_col, format(v_insert, r.resource, 'UPDATE',
           format('(select to_jsonb(orow) as o from old_rows orow offset 0) a join (select to_jsonb(nr) as n from new_rows nr offset 0) b
            on a.o->>%1$L = b.n->>%1$L and coalesce(a.o->>''tenant_id'', '''') = coalesce(b.n->>''tenant_id'', '''')',
             case r.resource when 'membership' then 'user_id' else 'id' end),
           'a.o', 'b.n'))
      || E'\n    end if;';
    v_branches := v_branches || format(E'\n  when %L then', r.resource) || v_ops;
  end loop;

  return format($f$
create or replace function app_private.tg__audit() returns trigger
language plpgsql security definer set search_path = pg_catalog, public
  set plan_cache_mode = force_generic_plan as $body$
-- Generated by app_private.audit_capture_source() for the audited tables of the catalog: one
-- INSERT per resource and operation, with both written into it (constant-folded when planned).
declare
  v_resource text := tg_argv[0];
  v_token uuid;
  v_user uuid;
  v_email text;
  v_ip inet;
  v_role text := coalesce(nullif(current_setting('role'), 'none'), session_user);
  v_request text := left(nullif(current_setting('attest.request_id', true), ''), 200);
  v_agent text := left(nullif(current_setting('attest.user_agent', true), ''), 500);
  v_surface text := coalesce(nullif(current_setting('attest.surface', true), ''), 'sql');
  v_hook record;
begin
  if app_private.audit_resource_of(tg_table_schema, tg_table_name) is distinct from v_resource
     or tg_level <> 'STATEMENT' then
    raise exception 'app_private.tg__audit(%%) is not the capture trigger of %%.%%', v_resource, tg_table_schema, tg_table_name
      using errcode = '42501';
  end if;
  if current_setting('role') = %1$L
     or (current_setting('role') = 'none' and session_user = %2$L) then
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
  case v_resource%3$s
  end case;
  return null;
end;
$body$
$f$, ':DATABASE_VISITOR', ':DATABASE_AUTHENTICATOR', v_branches);
end;
$gen$;

comment on function app_private.audit_capture_source() is
  'The CREATE OR REPLACE statement of app_private.tg__audit() for the audited tables of the catalog (one INSERT per resource and operation). Run it again after adding an audited table.';


-- What follows replaces objects of the audit path: as the session's login.
set local role none;

alter table app_public.audit_log drop constraint audit_log_prev_hash_check;
alter table app_public.audit_log drop constraint audit_log_hash_check;
alter table app_public.audit_log drop constraint audit_log_v1_check;

-- What a row change records (as in 000008, with the access tables of 000011 and the invitations of
-- 000012), with the diff in one pass over the fields.
create or replace function app_private.audit_entry_of(resource text, op text, old_row jsonb, new_row jsonb)
returns table (tenant_id uuid, action text, resource_id uuid, resource_label text, incident_id uuid, changes jsonb)
language sql stable as $$
  select coalesce((x.r->>'tenant_id')::uuid, (x.r->>'id')::uuid),
         x.action,
         case resource when 'membership' then (x.r->>'user_id')::uuid when 'session' then (x.r->>'user_id')::uuid
                       when 'evidence' then coalesce(x.r->>'evidence_id', x.r->>'id')::uuid
                       when 'audit_log' then null
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
           when 'audit_log' then x.r->>'label'
           when 'invitation' then x.r->>'email'
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
           -- "old" on delete, listing set fields only. One pass over the row's fields (old and new
           -- rows of an update have the same fields), no join.
           (select coalesce(jsonb_object_agg(f.key,
                     case op when 'INSERT' then jsonb_build_object('new', f.value)
                             when 'DELETE' then jsonb_build_object('old', f.value)
                             else jsonb_build_object('old', old_row -> f.key, 'new', f.value) end), '{}')
            from jsonb_each(coalesce(new_row, old_row)) f
            where f.key <> all (app_private.audit_ignored_columns(resource))
              and case op when 'UPDATE' then (old_row -> f.key) is distinct from f.value
                          else f.value <> 'null'::jsonb end) as changes
    offset 0 -- (computed once, not once in the condition below and again for the column)
  ) x
  where x.action is not null
    and not (op = 'UPDATE' and x.changes = '{}') -- an update that changes nothing records nothing
$$;

do $$
begin
  execute app_private.audit_capture_source();
end;
$$;
comment on function app_private.tg__audit() is
  'Capture trigger (AFTER … FOR EACH STATEMENT with transition tables old_rows/new_rows): one audit entry per changed row, in the same transaction, and the webhook deliveries they trigger. Argument: the resource name. Generated by app_private.audit_capture_source().';

-- The capture statement queues webhook deliveries now.
drop trigger _900_webhooks on app_public.audit_log;
drop function app_private.tg_audit_log__webhooks();

set local role :DATABASE_OWNER;
