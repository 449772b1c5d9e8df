--! Previous: sha1:d0f9f42bfa4eec2cf195fe7ea1e966472b6939f8
--! Hash: sha1:20a18ebd3db8b2ae04a9d98ec84e9ab7d46fc1f9
--! Message: entry-count-once

-- 000082 A tenant's log size without planning at every call, and with one membership lookup.
--
-- GraphQL's totalCount on auditLogs without a condition (and the Audit Log page's facts) asks
-- app_hidden.audit_entry_count(): the tree's size plus the entries not sealed yet. That cost
-- ~160 µs a request in the 10M-entry bench database, most of a request's PostgreSQL time:
-- - audit_entry_count found the reader's membership twice (audit_log_readable, then
--   current_tenant_id); app_hidden.audit_log_tenant() answers both with one lookup (000035);
-- - app_private.audit_log_size planned its count of the pending entries at every call (~85 µs):
--   the sealer's cursor was written into the statement as literals so that the planner would
--   read the few pending entries through the seal order's index. Now the statement is static and
--   its plan is kept for the session (plan_cache_mode = force_generic_plan): the entries after the
--   cursor in seal order, at most 10,000 of them, which a generic plan reads through that index
--   whatever it estimates (the order and the limit). With 10,000 or more pending (a bulk load the
--   sealer has not caught up with) it counts them as before.
-- In SQL, 2,000 calls in a loop: audit_log_size 194 → 35 µs a call. What either answers does
-- not change.
-- Runs as the session's login: these functions read the log as SECURITY DEFINER functions, so
-- they are on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_private.audit_log_size(p_tenant uuid) returns bigint
language plpgsql stable security definer set search_path = pg_catalog set plan_cache_mode = force_generic_plan as $$
declare
  v_state app_private.audit_seal_state;
  v_mine bigint;
  v_seen bigint;
  v_n bigint;
begin
  select * into v_state from app_private.audit_seal_state;
  select count(*) filter (where x.tenant_id = p_tenant), count(*) into v_mine, v_seen
  from (select e.tenant_id from app_public.audit_log e
        where (e.xid, e.id) > (v_state.last_xid, v_state.last_id)
        order by e.xid, e.id
        limit 10000) x;
  if v_seen < 10000 then
    return coalesce((select t.size from app_private.audit_trees t where t.tenant_id = p_tenant), 0) + v_mine;
  end if;
  -- Many entries not sealed yet: the cursor as literals, so that the planner sees how far it is.
  execute format($q$
    select coalesce((select t.size from app_private.audit_trees t where t.tenant_id = $1), 0)
         + (select count(*) from app_public.audit_log e
            where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1)$q$,
    v_state.last_xid, v_state.last_id)
    into v_n using p_tenant;
  return v_n;
end;
$$;

create or replace function app_hidden.audit_entry_count() returns bigint
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  -- The reader's tenant when they may read its log (ATPLN without the plan's auditLog): one
  -- lookup of their membership.
  v_tenant uuid := app_hidden.audit_log_tenant();
begin
  if v_tenant is null then
    return 0;
  end if;
  return app_private.audit_log_size(v_tenant);
end;
$$;

set local role :DATABASE_OWNER;
