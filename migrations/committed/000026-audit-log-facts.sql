--! Previous: sha1:f05ecb32fe1dc907373c3e640a1333943d5e051a
--! Hash: sha1:7a5ee6151651b614eda18abc4cf3d0c0380d313c
--! Message: audit-log-facts

-- 000026 Audit Log facts: the page's counts, latest entry, actions and verification in one call.
--
-- Each view of the Audit Log page asked, besides its entries and chart, for the log's size, its
-- latest capture number, the actions it holds (for the filter) and the latest recorded
-- verification: four subqueries of one statement, three of which read the log through its
-- row-level policy, whose two checks (the caller's tenant, and that they may read the log) ran
-- again for every reference to the log (~6 times; ~4.5 ms for the statement on PostgreSQL 15).
-- app_hidden.audit_log_facts() checks once and reads the log by the tenant's keys. It answers
-- what the policy let the caller see, and one row of nothing (0, null, {}, null) to a caller who
-- may not read the log.
-- Runs as the session's login: the function reads the log as a SECURITY DEFINER function, so it
-- is on the audit path (see CONVENTIONS.md).

set local role none;

create function app_hidden.audit_log_facts(out entries bigint, out latest_id bigint, out actions text[], out chain json)
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
  entries := app_hidden.audit_entry_count();
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
comment on function app_hidden.audit_log_facts() is
  'For the Audit Log page: the current tenant''s log size (sealed and pending), latest capture number, distinct actions and latest recorded verification (owner/admin with auditLog; otherwise 0, null, {}, null).';
revoke all on function app_hidden.audit_log_facts() from public;
grant execute on function app_hidden.audit_log_facts() to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
