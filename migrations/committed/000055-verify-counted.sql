--! Previous: sha1:524ba71f384f1e6cb69ac5609ee2cbd5987e1c20
--! Hash: sha1:e984b57c7d20213356f096fe180d8c989fa07a2f
--! Message: verify-counted

-- 000055 Verification: the counts it needs come from the scans it already makes.
--
-- verify_audit_log counted the tenant's entries and its leaves (and their highest position) in
-- statements of their own, each run by PL/pgSQL's SELECT … INTO in one process: right after
-- bench:audit sealed its 200,000-entry backlog (before any vacuum), about 0.18 s of a 1.2-1.4 s
-- verification, reading the log's and the leaves' indexes once more after the checks had read
-- both. The nodes' check reads every leaf of the tenant anyway, so it now also returns how many
-- leaves there are and the highest position. The leaves' check, when it reads the tables whole
-- (a tenant holding a quarter of the log or more), reads the log's side as a left join (every
-- entry of the tenant, with its leaf or none), so it also counts the entries; through the indexes
-- it keeps its inner join and counts them on its own. Both run, as before, with workers.
-- What is verified, the order of the checks and their messages do not change: the helpers now run
-- first, and their results are reported in the same order as before (positions, links, leaves,
-- nodes, sealed entries without a position, checkpoints).
-- Runs as the session's login: these functions read the log (see CONVENTIONS.md).

set local role none;

drop function app_private.audit_verify_leaves(uuid, boolean);
drop function app_private.audit_verify_nodes(uuid, boolean);

-- Every entry of the tenant with its leaf (or none): the entries, the pairs found, the sum of
-- their positions, the first bad position. v1 entries (captured before the audit core v2) and the
-- rest in turn; together, every entry of the tenant once.
create function app_private.audit_verify_leaves(p_tenant uuid, p_scan boolean)
returns table (pairs bigint, seq_sum numeric, first_bad bigint, entries bigint)
language plpgsql stable set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off set parallel_setup_cost = 0 set parallel_tuple_cost = 0 set jit = off
  set enable_bitmapscan = on set enable_indexscan = on set enable_seqscan = on set enable_hashjoin = on
  set cpu_operator_cost = 0.0025 -- (PostgreSQL's default; raised below for a tenant among others)
  -- (what is changed below stays inside this call)
as $$
begin
  -- v1 entries: their v1 canonical document; found through the index of v1 positions.
  return query
  select count(l.seq), sum(l.seq), min(l.seq) filter (
           where l.seq is not null
             and (e.incident_id is distinct from l.incident_id
                  or l.leaf_hash <> sha256('\x00'::bytea || app_private.audit_leaf_bytes(l.seq, l.incident_prev,
                       app_private.audit_entry_body(e))))),
         count(*)
  from app_public.audit_log e
  left join app_hidden.audit_leaves l on l.tenant_id = p_tenant and l.entry_id = e.id
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
comment on function app_private.audit_verify_leaves(uuid, boolean) is
  'For verify_audit_log: every entry of a tenant with its leaf, v1 and other entries in turn (pairs found, sum of their positions, first bad position, entries). p_scan: read the tables whole.';

-- Every interior node against its children, every leaf holding the nodes it completes; and how
-- many leaves the tenant has, and the highest position.
create function app_private.audit_verify_nodes(p_tenant uuid, p_scan boolean)
returns table (first_bad bigint, leaves bigint, max_seq bigint)
language plpgsql stable set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off set parallel_setup_cost = 0 set parallel_tuple_cost = 0 set jit = off
  set enable_bitmapscan = on set enable_indexscan = on set enable_seqscan = on
  set cpu_operator_cost = 0.0025 -- (PostgreSQL's default; raised below for a tenant among others)
as $$
begin
  if p_scan then
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_indexscan', 'off', true);
  else
    -- A tenant among others: its leaves through the index, not the whole table (see 000051).
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
            set_config('cpu_operator_cost', '0.25', true);
  end if;
  return query execute $q$
  select min(x.seq) filter (where x.bad), count(*) filter (where x.leaf), max(x.seq) filter (where x.leaf)
  from (
    -- every leaf; a leaf at position s completes the subtrees of 2, 4, … leaves that end at s: as
    -- many as s has trailing zero bits
    select l.seq, true as leaf, (1::bigint << (octet_length(l.nodes) / 32)) <> (l.seq & -l.seq) as bad
    from app_hidden.audit_leaves l
    where l.tenant_id = $1
    union all
    -- the node of level h ending at s = hash(the subtree of level h-1 ending at s - 2^(h-1), the
    -- one ending at s). The left one is the highest subtree stored at that position (its leaf when it
    -- completes none); the right one is the level below in the same row.
    select n.seq, false, true
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
comment on function app_private.audit_verify_nodes(uuid, boolean) is
  'For verify_audit_log: the first position whose stored interior nodes do not match their children (or whose number of nodes is wrong), the number of leaves and the highest position. p_scan: read the table whole.';
revoke all on function app_private.audit_verify_leaves(uuid, boolean), app_private.audit_verify_nodes(uuid, boolean) from public;
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
  v_nodes_bad bigint;
  v_link_bad bigint;
  v_missing bigint;
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
  select c.tree_size, c.root_hash into v_cp from app_public.audit_checkpoints c
  where c.tenant_id = p_tenant order by c.tree_size desc limit 1;

  -- The two whole-tenant checks first: they also count the entries and the leaves (000055).
  -- Their findings are reported below in the order of the checks.
  select sum(v.pairs), sum(v.seq_sum), min(v.first_bad), sum(v.entries) into v_pairs, v_seq_sum, v_bad, v_entries
  from app_private.audit_verify_leaves(p_tenant, v_scan) v;
  select v.first_bad, v.leaves, v.max_seq into v_nodes_bad, v_count, v_max
  from app_private.audit_verify_nodes(p_tenant, v_scan) v;

  -- Positions 1 … size, each once.
  if v_count <> v_size or coalesce(v_max, 0) <> v_size then
    select min(g) into v_missing from generate_series(1, greatest(v_size, coalesce(v_max, 0))) g
    where not exists (select 1 from app_hidden.audit_leaves l where l.tenant_id = p_tenant and l.seq = g);
    return query select false, v_entries, v_size, coalesce(v_missing, least(v_size, v_max) + 1),
      format('position %s of the log is missing (the log should hold %s entries, %s are there)', coalesce(v_missing, v_size + 1), v_size, v_count),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Each leaf links to the previous entry of its incident as the log holds it now.
  select min(v.first_bad) into v_link_bad from app_private.audit_verify_links(p_tenant, v_scan) v;
  if v_link_bad is not null then
    return query select false, v_entries, v_size, v_link_bad,
      format('entry %s no longer links to the previous entry of its incident: an entry of that incident was removed, added or replaced', v_link_bad),
      v_size, v_root, v_cp.tree_size, v_pending;
    return;
  end if;

  -- Each leaf is the hash of its entry as stored now (with its link).
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
  if v_nodes_bad is not null then
    return query select false, v_entries, v_size, v_nodes_bad,
      format('the log''s tree is damaged at entry %s: a stored hash does not match the entries below it', v_nodes_bad),
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
