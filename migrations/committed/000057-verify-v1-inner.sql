--! Previous: sha1:b2ce99a77fe814ed7f33b210e33d27831cfe73bd
--! Hash: sha1:24da3858d84003d215f71d03feceab310a16a22a
--! Message: verify-v1-inner

-- 000057 Verification of v1 entries: an inner join again, their count on its own.
--
-- 000055 made the v1 entries' check (entries captured before the audit core v2, in installs
-- upgraded from v1) a left join from the log, to count the entries in the same scan. PostgreSQL 15
-- then hashes those few entries and reads the tenant's leaves through one process (no parallel
-- hash right join before PostgreSQL 16): with 1,000 v1 entries in the 2,000,000-entry tenant of
-- bench:pages, 3.5 s instead of 0.7 s. The check is the inner join of 000051 again, and the v1
-- entries are counted on their own, through the index of v1 positions. What is checked and
-- reported does not change.
-- Runs as the session's login: the function reads the log (see CONVENTIONS.md).

set local role none;

create or replace function app_private.audit_verify_leaves(p_tenant uuid, p_scan boolean)
returns table (pairs bigint, seq_sum numeric, first_bad bigint, entries bigint)
language plpgsql stable set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off set parallel_setup_cost = 0 set parallel_tuple_cost = 0 set jit = off
  set enable_bitmapscan = on set enable_indexscan = on set enable_seqscan = on set enable_hashjoin = on
  set cpu_operator_cost = 0.0025 -- (PostgreSQL's default; raised below for a tenant among others)
  -- (what is changed below stays inside this call)
as $$
begin
  -- v1 entries: their v1 canonical document; found through the index of v1 positions, and
  -- counted there.
  return query
  select count(*), sum(l.seq), min(l.seq) filter (
           where e.incident_id is distinct from l.incident_id
              or l.leaf_hash <> sha256('\x00'::bytea || app_private.audit_leaf_bytes(l.seq, l.incident_prev,
                   app_private.audit_entry_body(e)))),
         (select count(*) from app_public.audit_log v
          where v.tenant_id = p_tenant and v.v1_seq is not null and v.v1_hash is not null)
  from app_public.audit_log e
  join app_hidden.audit_leaves l on l.tenant_id = p_tenant and l.entry_id = e.id
  where e.tenant_id = p_tenant and e.v1_seq is not null and e.v1_hash is not null;
  if p_scan then
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_indexscan', 'off', true);
  else
    -- A tenant among others: its entries and leaves both in key order, through their indexes,
    -- joined as they come (a merge join; the log's side split among the workers), see 000051.
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
            set_config('enable_hashjoin', 'off', true), set_config('cpu_operator_cost', '0.25', true);
  end if;
  -- Every other entry: the v2 body from the columns, so that the join does not carry whole rows.
  -- An entry here with a v1 hash has no v1 position: no capture writes that (a v2 entry given a
  -- v1 hash, or a v1 entry that lost its position), and it is bad whatever its body.
  -- Planned on each call (EXECUTE), with the settings above.
  -- Read whole, the log's side is a left join: every entry of the tenant, with its leaf or none, so
  -- the scan also counts the entries. Through the indexes, a left join would sort the tenant's
  -- leaves in every worker (PostgreSQL does not see them come in entry order on the nullable side):
  -- an inner join, and the entries counted on their own, through the log's primary key.
  return query execute format($q$
  select count(l.seq), sum(l.seq), min(l.seq) filter (
           where l.seq is not null
             and (e.v1_hash is not null
                  or e.incident_id is distinct from l.incident_id
                  or l.leaf_hash <> sha256('\x00'::bytea || app_private.audit_leaf_bytes(l.seq, l.incident_prev,
                       app_private.audit_entry_body_v2(e.tenant_id, e.id, e.occurred_at, e.actor_user_id, e.actor_label,
                         e.api_token_id, e.db_role, e.surface, e.request_id, e.ip, e.user_agent, e.action, e.resource_type,
                         e.resource_id, e.resource_label, e.incident_id, e.changes))))),
         %1$s
  from app_public.audit_log e
  %2$s join app_hidden.audit_leaves l on l.tenant_id = $1 and l.entry_id = e.id
  where e.tenant_id = $1 and (e.v1_hash is null or e.v1_seq is null)
  $q$, case when p_scan then 'count(*)' else '0::bigint' end, case when p_scan then 'left' else '' end) using p_tenant;
  if not p_scan then
    return query select 0::bigint, 0::numeric, null::bigint, count(*) from app_public.audit_log e
    where e.tenant_id = p_tenant and (e.v1_hash is null or e.v1_seq is null);
  end if;
end;
$$;

set local role :DATABASE_OWNER;
