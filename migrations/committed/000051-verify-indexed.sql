--! Previous: sha1:e44d1f53dc6c21f6993e9cd636ee67b01100a6ab
--! Hash: sha1:b99641a4c015465ea4210715379350d9da213c8e
--! Message: verify-indexed

-- 000051 Verification of a tenant among others: through the indexes, on both cores.
--
-- The leaves' and the nodes' checks (000040) have two plans: a tenant that holds a quarter of the
-- log or more is read by whole-table scans; any other was left to the planner. On the bench:pages
-- database (10,000,000 entries), PostgreSQL then
--   * checked the 2,000,000 leaves of the big tenant with a hash join that read both tables whole
--     and held the tenant's entries in memory (694 MB; 7.0 s);
--   * checked the 200,000 leaves of a mid-sized tenant without workers: a merge join through the
--     indexes, in one process, since the hashing of each entry (the expression that costs) was
--     priced at next to nothing (1.05 s);
--   * read all 10,000,000 leaves twice for the nodes of the big tenant (3.4 s).
-- For a tenant among others both checks now read through the indexes (no sequential or bitmap
-- scans, no hash join for the leaves), and price expressions higher (cpu_operator_cost 0.25) so
-- that the work per entry is split among the workers: the big tenant's leaves 5.6 s, its nodes
-- 2.5 s; a mid-sized tenant's leaves 0.59 s. Whole verifications: big 13.6 s -> 10.9-11.5 s (174,000-183,000
-- entries/s), mid-sized 1.44 s -> 1.0 s (196,000-200,000 entries/s). What is verified does not change.
-- Runs as the session's login: these functions read the log (see CONVENTIONS.md).

set local role none;

create or replace function app_private.audit_verify_leaves(p_tenant uuid, p_scan boolean)
returns table (pairs bigint, seq_sum numeric, first_bad bigint)
language plpgsql stable set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off set parallel_setup_cost = 0 set parallel_tuple_cost = 0 set jit = off
  set enable_bitmapscan = on set enable_indexscan = on set enable_seqscan = on set enable_hashjoin = on
  set cpu_operator_cost = 0.0025 -- (PostgreSQL's default; raised below for a tenant among others)
  -- (what is changed below stays inside this call)
as $$
begin
  -- v1 entries (captured before the audit core v2): their v1 canonical document; found through
  -- the index of v1 positions.
  return query
  select count(*), sum(l.seq), min(l.seq) filter (
           where e.incident_id is distinct from l.incident_id
              or l.leaf_hash <> sha256('\x00'::bytea || app_private.audit_leaf_bytes(l.seq, l.incident_prev,
                   app_private.audit_entry_body(e))))
  from app_public.audit_log e
  join app_hidden.audit_leaves l on l.tenant_id = p_tenant and l.entry_id = e.id
  where e.tenant_id = p_tenant and e.v1_seq is not null and e.v1_hash is not null;
  if p_scan then
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_indexscan', 'off', true);
  else
    -- A tenant among others: its entries and leaves both in key order, through their indexes,
    -- joined as they come (a merge join; the log's side split among the workers). A hash join
    -- read both tables whole and held the tenant's entries in memory (2,000,000 entries of a
    -- 10,000,000-entry log: 694 MB, 7.0 s; merged, 5.8 s).
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
            set_config('enable_hashjoin', 'off', true), set_config('cpu_operator_cost', '0.25', true);
  end if;
  -- v2 entries: the body from the columns, so that the join does not carry whole rows. Planned
  -- on each call (EXECUTE), with the settings above.
  return query execute $q$
  select count(*), sum(l.seq), min(l.seq) filter (
           where e.incident_id is distinct from l.incident_id
              or l.leaf_hash <> sha256('\x00'::bytea || app_private.audit_leaf_bytes(l.seq, l.incident_prev,
                   app_private.audit_entry_body_v2(e.tenant_id, e.id, e.occurred_at, e.actor_user_id, e.actor_label,
                     e.api_token_id, e.db_role, e.surface, e.request_id, e.ip, e.user_agent, e.action, e.resource_type,
                     e.resource_id, e.resource_label, e.incident_id, e.changes))))
  from app_public.audit_log e
  join app_hidden.audit_leaves l on l.tenant_id = $1 and l.entry_id = e.id
  where e.tenant_id = $1 and e.v1_hash is null
  $q$ using p_tenant;
end;
$$;

create or replace function app_private.audit_verify_nodes(p_tenant uuid, p_scan boolean)
returns table (first_bad bigint)
language plpgsql stable set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off set parallel_setup_cost = 0 set parallel_tuple_cost = 0 set jit = off
  set enable_bitmapscan = on set enable_indexscan = on set enable_seqscan = on
  set cpu_operator_cost = 0.0025 -- (PostgreSQL's default; raised below for a tenant among others)
as $$
begin
  if p_scan then
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_indexscan', 'off', true);
  else
    -- A tenant among others: its leaves through the index, not the whole table (2,000,000 of
    -- 10,000,000 leaves: 3.4 s, 2.5 s through the index).
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
            set_config('cpu_operator_cost', '0.25', true);
  end if;
  return query execute $q$
  select min(x.seq) from (
    -- a leaf at position s completes the subtrees of 2, 4, … leaves that end at s: as many as s has
    -- trailing zero bits
    select l.seq from app_hidden.audit_leaves l
    where l.tenant_id = $1 and (1::bigint << (octet_length(l.nodes) / 32)) <> (l.seq & -l.seq)
    union all
    -- the node of level h ending at s = hash(the subtree of level h-1 ending at s - 2^(h-1), the
    -- one ending at s). The left one is the highest subtree stored at that position (its leaf when it
    -- completes none); the right one is the level below in the same row.
    select n.seq
    from (
      select l.seq, l.seq - (1::bigint << (h - 1)) as left_seq,
             substring(l.nodes from (h - 1) * 32 + 1 for 32) as node,
             case when h = 1 then l.leaf_hash else substring(l.nodes from (h - 2) * 32 + 1 for 32) end as right_child
      from app_hidden.audit_leaves l cross join lateral generate_series(1, octet_length(l.nodes) / 32) h
      where l.tenant_id = $1 and l.nodes <> ''::bytea
    ) n
    join (
      select c.seq, case when c.nodes = ''::bytea then c.leaf_hash
                         else substring(c.nodes from octet_length(c.nodes) - 31) end as top
      from app_hidden.audit_leaves c where c.tenant_id = $1
    ) c on c.seq = n.left_seq
    where n.node <> sha256('\x01'::bytea || c.top || n.right_child)
  ) x
  $q$ using p_tenant;
end;
$$;

set local role :DATABASE_OWNER;
