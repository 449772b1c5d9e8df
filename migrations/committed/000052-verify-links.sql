--! Previous: sha1:b99641a4c015465ea4210715379350d9da213c8e
--! Hash: sha1:1621cf9560f57f6d16275f5dea93720db4cf5597
--! Message: verify-links

-- 000052 Verification: the incidents' links checked with workers too.
--
-- verify_audit_log checked every leaf's link to the previous entry of its incident with a
-- window query run by PL/pgSQL's SELECT … INTO, which PostgreSQL runs without parallel workers:
-- for the 2,000,000-entry tenant of bench:pages, one process read all 10,000,000 leaves and
-- sorted the tenant's 2,000,000 (2.6 s without workers). The same query now runs in a helper
-- through RETURN QUERY, read the way the other checks read (whole-table scans for a tenant
-- holding a quarter of the log or more, else through the index), so the scan and the sort are
-- split among workers: 1.6-1.7 s; that tenant's whole verification 10.9-11.5 s -> 9.7 s
-- (206,000 entries/s). What is checked, and the messages, do not change.
-- Runs as the session's login: these functions read the log (see CONVENTIONS.md).

set local role none;

-- Each leaf's link to the previous entry of its incident, as the leaves hold them now: the first
-- position whose link is not that. Through RETURN QUERY, so that its scan and sort may run with
-- workers; a tenant among others is read through the index, as in audit_verify_leaves.
create function app_private.audit_verify_links(p_tenant uuid, p_scan boolean)
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
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
            set_config('cpu_operator_cost', '0.25', true);
  end if;
  return query execute $q$
  select min(x.seq)
  from (
    select l.seq, l.incident_prev,
           case when l.incident_id is null then null
                when lag(l.seq) over w is null then 'none'
                else lag(l.seq) over w || ' ' || encode(lag(l.leaf_hash) over w, 'hex') end as expected
    from app_hidden.audit_leaves l
    where l.tenant_id = $1
    window w as (partition by l.incident_id order by l.seq)
  ) x
  where x.incident_prev is distinct from x.expected
  $q$ using p_tenant;
end;
$$;
comment on function app_private.audit_verify_links(uuid, boolean) is
  'For verify_audit_log: the first position whose link to the previous entry of its incident (incident_prev) is not that entry''s position and leaf hash. p_scan: read the table whole.';
revoke all on function app_private.audit_verify_links(uuid, boolean) from public;

create or replace function app_private.verify_audit_log(p_tenant uuid)
returns table (valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text,
               tree_size bigint, root_hash bytea, checkpoint_size bigint, pending bigint)
language plpgsql stable security definer set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off -- whole-tenant checks: hash joins, not one index probe per entry
  set jit = off
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
  v_pairs bigint;
  v_seq_sum numeric;
  v_scan boolean;
  v_cp record;
begin
  select * into v_state from app_private.audit_seal_state;
  select t.size, t.frontier into v_size, v_frontier from app_private.audit_trees t where t.tenant_id = p_tenant;
  v_size := coalesce(v_size, 0);
  v_root := app_private.audit_frontier_root(v_frontier);
  -- A tenant with a quarter of the log or more is read by whole-table scans (see audit_verify_leaves).
  v_scan := v_size * 4 >= (select sum(t.size) from app_private.audit_trees t);
  -- (the entries past the cursor through the sealing order's index, the rest from the primary key)
  select count(*) into v_pending from app_public.audit_log e
  where (e.xid, e.id) > (v_state.last_xid, v_state.last_id) and e.tenant_id = p_tenant;
  select count(*) into v_entries from app_public.audit_log e where e.tenant_id = p_tenant;
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
  select min(v.first_bad) into v_bad from app_private.audit_verify_links(p_tenant, v_scan) v;
  if v_bad is not null then
    return query select false, v_entries, v_size, v_bad,
      format('entry %s no longer links to the previous entry of its incident: an entry of that incident was removed, added or replaced', v_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Each leaf is the hash of its entry as stored now (with its link).
  select sum(v.pairs), sum(v.seq_sum), min(v.first_bad) into v_pairs, v_seq_sum, v_bad
  from app_private.audit_verify_leaves(p_tenant, v_scan) v;
  if v_bad is null and (v_pairs <> v_size or coalesce(v_seq_sum, 0) <> v_size::numeric * (v_size + 1) / 2) then
    -- Some leaf has no entry (or not one alone): name it the slow, exact way.
    select min(l.seq) into v_bad
    from app_hidden.audit_leaves l
    left join app_public.audit_log e on e.tenant_id = p_tenant and e.id = l.entry_id
    where l.tenant_id = p_tenant
      and (e.id is null
           or e.incident_id is distinct from l.incident_id
           or l.leaf_hash <> sha256('\x00'::bytea || app_private.audit_leaf_bytes(l.seq, l.incident_prev, app_private.audit_entry_body(e))));
    if v_bad is null then
      return query select false, v_entries, v_size, null::bigint,
        format('the log''s %s positions and its entries do not pair up one to one (%s pairs)', v_size, v_pairs),
        v_size, v_root, v_cp.tree_size, v_pending;
      return;
    end if;
  end if;
  if v_bad is not null then
    return query select false, v_entries, v_size, v_bad,
      format('entry %s was altered, removed or replaced: it does not match its leaf in the log', v_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Each interior node is the hash of its two children; each leaf completes the right subtrees.
  select min(v.first_bad) into v_bad from app_private.audit_verify_nodes(p_tenant, v_scan) v;
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

set local role :DATABASE_OWNER;
