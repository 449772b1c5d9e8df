--! Previous: sha1:d4a22240996b7a845f410f77b2a5644dd66a0f87
--! Hash: sha1:0b822b579779cf56ae2fc21882517c099983b3ae
--! Message: log-size-once

-- 000028 Log size once: the size of a tenant's log is worked out by one private function.
--
-- app_hidden.audit_log_facts (000026) called app_hidden.audit_entry_count(), which checked the
-- caller (their tenant, that they may read the log) a second time. Both now call
-- app_private.audit_log_size(tenant) after their own check. What they answer does not change.
-- Runs as the session's login: these functions read the log as SECURITY DEFINER functions, so
-- they are on the audit path (see CONVENTIONS.md).

set local role none;

create function app_private.audit_log_size(p_tenant uuid) returns bigint
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  v_state app_private.audit_seal_state;
  v_n bigint;
begin
  select * into v_state from app_private.audit_seal_state;
  -- The cursor as literals: the planner then reads the few pending entries by the seal order.
  execute format($q$
    select coalesce((select t.size from app_private.audit_trees t where t.tenant_id = $1), 0)
         + (select count(*) from app_public.audit_log e
            where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1)$q$,
    v_state.last_xid, v_state.last_id)
    into v_n using p_tenant;
  return v_n;
end;
$$;
comment on function app_private.audit_log_size(uuid) is
  'How many entries a tenant''s log holds: its tree''s size plus the entries not sealed yet. No check of the caller: callers check first.';
revoke all on function app_private.audit_log_size(uuid) from public;

create or replace function app_hidden.audit_entry_count() returns bigint
language plpgsql stable security definer set search_path = pg_catalog as $$
begin
  if not app_hidden.audit_log_readable() then
    return 0;
  end if;
  return app_private.audit_log_size(app_public.current_tenant_id());
end;
$$;

create or replace function app_hidden.audit_log_facts(out entries bigint, out latest_id bigint, out actions text[], out chain json)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
begin
  entries := 0;
  actions := '{}';
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  v_tenant := app_public.current_tenant_id();
  entries := app_private.audit_log_size(v_tenant);
  latest_id := (select max(e.id) from app_public.audit_log e where e.tenant_id = v_tenant);
  -- A skip scan over the (tenant_id, action) index: one index probe per distinct action.
  actions := array(
    with recursive a(action) as (
      (select e.action from app_public.audit_log e where e.tenant_id = v_tenant order by e.action using ~<~ limit 1)
      union all
      select (select e.action from app_public.audit_log e
              where e.tenant_id = v_tenant and e.action ~>~ a.action order by e.action using ~<~ limit 1)
      from a where a.action is not null
    )
    select a.action from a where a.action is not null);
  chain := (
    select row_to_json(v) from (
      select to_char(c.checked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as checked_at, c.valid,
             c.entries::text as entries, c.last_seq::text as last_seq, c.first_invalid_seq::text as first_invalid_seq, c.problem
      from app_private.chain_verifications c
      where c.tenant_id = v_tenant
      order by c.checked_at desc limit 1) v);
end;
$$;

set local role :DATABASE_OWNER;
