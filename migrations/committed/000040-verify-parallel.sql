--! Previous: sha1:36639bf7ad8391add0afc7f26b8bc2811e6f68d4
--! Hash: sha1:807cf5d7e1878e1feeb036a1a68ef5179f0011ae
--! Message: verify-parallel

-- 000040 Verification on both cores, without carrying whole entries through its joins.
--
-- app_private.verify_audit_log checked 200,000 entries in 6.2 s (bench:audit, part 5). Measured
-- step by step on that tenant:
--   * every leaf against its entry: 4.5 s. The query joined the leaves to the log and built each
--     entry's body with app_private.audit_entry_body(e), a function of the whole row: the join
--     therefore carried every entry as a whole-row value (the hash table of its parallel plan held
--     253 MB for 200,000 entries), and PL/pgSQL's SELECT … INTO runs a query without parallel
--     workers (it asks the executor for one row; measured: the same count 1.09 s INTO a variable,
--     0.43 s as a plain statement, 0.65 s through RETURN QUERY).
--   * every interior node against its children: 1.5 s (a join of every node to every leaf row,
--     expressions on both sides).
-- Now:
--   * app_private.audit_entry_body_v2 builds a v2 body from the columns. audit_entry_body calls it
--     (one definition of the bytes); the verifier calls it on the columns, so its join carries
--     only the columns. The leaves are the join's build side (about 100 bytes each), the log is
--     read once by the workers, and each worker hashes what it reads. v1 entries (migrated, a
--     bounded number) are checked in a second query through the partial index of v1 positions.
--   * Both checks run in helper functions through RETURN QUERY, so that PostgreSQL may run them
--     with parallel workers, and without JIT: enable_nestloop = off prices the nodes' lateral join
--     at 10^10, which made PostgreSQL compile it (1.9 s of JIT in a 1.2 s query; 0.65 s without).
--   * app_private.audit_leaf_bytes was declared immutable, but `seq || text` is only stable, so
--     PostgreSQL never inlined it: every leaf, verified or sealed, ran it as a separate SQL function
--     call (auto_explain logged one plan per leaf). It is declared stable now and is inlined
--     (the leaves' check alone: 2.2 s -> 1.3 s).
--   * A tenant that holds a quarter of the log or more is read by whole-table scans: right after a
--     large import the planner's statistics still estimate a thousand rows for the tenant, and it
--     then plans 200,000 without parallel workers (measured: 5.1 s instead of 2.6 s).
--   * The fast check counts the pairs (leaf, entry) it found and adds up their positions; unless
--     every position 1 … size was paired exactly once, the first bad position is named by the
--     previous, exact query (it runs only when something is wrong).
-- What is verified, and the messages, do not change (tests/db/seal.test.ts: the superuser tamper
-- matrix).
-- Runs as the session's login: these functions read the log (see CONVENTIONS.md).

set local role none;

-- The body of a v2 entry from its columns. Stable (to_char), no SET: inlined where it is called.
create function app_private.audit_entry_body_v2(
  p_tenant_id uuid, p_id bigint, p_occurred_at timestamptz, p_actor_user_id uuid, p_actor_label text,
  p_api_token_id uuid, p_db_role text, p_surface text, p_request_id text, p_ip inet, p_user_agent text,
  p_action text, p_resource_type text, p_resource_id uuid, p_resource_label text, p_incident_id uuid,
  p_changes jsonb) returns text
language sql stable parallel safe as $$
  select '{"v":2,"tenant_id":"' || p_tenant_id || '","id":' || p_id
    || ',"occurred_at":"' || to_char(p_occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    || '","actor_user_id":' || coalesce('"' || p_actor_user_id || '"', 'null')
    || ',"actor_label":' || to_json(p_actor_label)
    || ',"api_token_id":' || coalesce('"' || p_api_token_id || '"', 'null')
    || ',"db_role":' || to_json(p_db_role)
    || ',"surface":' || to_json(p_surface)
    || ',"request_id":' || coalesce(to_json(p_request_id)::text, 'null')
    || ',"ip":' || coalesce('"' || host(p_ip) || '"', 'null')
    || ',"user_agent":' || coalesce(to_json(p_user_agent)::text, 'null')
    || ',"action":' || to_json(p_action)
    || ',"resource_type":' || to_json(p_resource_type)
    || ',"resource_id":' || coalesce('"' || p_resource_id || '"', 'null')
    || ',"resource_label":' || coalesce(to_json(p_resource_label)::text, 'null')
    || ',"incident_id":' || coalesce('"' || p_incident_id || '"', 'null')
    || ',"changes":' || p_changes::text
    || '}'
$$;
comment on function app_private.audit_entry_body_v2(uuid, bigint, timestamptz, uuid, text, uuid, text, text, text, inet, text, text, text, uuid, text, uuid, jsonb) is
  'The JSON body of a v2 audit entry from its columns (fixed key order, strings escaped by PostgreSQL''s JSON encoder): what its leaf covers.';

create or replace function app_private.audit_entry_body(e app_public.audit_log) returns text
language sql stable parallel safe as $$ -- no SET: the planner inlines it into the sealer's and the verifier's set-based queries
  select case when e.v1_hash is not null then app_private.canonical_json(app_private.audit_document(e)) else
    app_private.audit_entry_body_v2(e.tenant_id, e.id, e.occurred_at, e.actor_user_id, e.actor_label, e.api_token_id,
      e.db_role, e.surface, e.request_id, e.ip, e.user_agent, e.action, e.resource_type, e.resource_id,
      e.resource_label, e.incident_id, e.changes)
  end
$$;

create or replace function app_private.audit_leaf_bytes(seq bigint, incident_prev text, body text) returns bytea
language sql stable parallel safe as $$ -- no SET, so that it is inlined (it names only built-ins, found in pg_catalog first); stable, as `bigint || text` is
  select convert_to('attest-audit-entry/2' || E'\nseq ' || seq || E'\n'
                    || coalesce('incident-prev ' || incident_prev || E'\n', '') || E'\n' || body, 'UTF8')
$$;

-- Every leaf against its entry: the pairs found, the sum of their positions, the first bad one.
-- p_scan: the tenant holds a large part of the log, so read the tables whole (in parallel) rather
-- than through an index. The planner can see that only with statistics taken after the tenant's
-- entries arrived: right after a large import (the bench's backlog) its estimate for one tenant is
-- still a thousand rows and it plans the 200,000 without workers (5.1 s instead of 2.6 s).
create function app_private.audit_verify_leaves(p_tenant uuid, p_scan boolean)
returns table (pairs bigint, seq_sum numeric, first_bad bigint)
language plpgsql stable set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off set parallel_setup_cost = 0 set parallel_tuple_cost = 0 set jit = off
  set enable_bitmapscan = on set enable_indexscan = on -- (what p_scan changes stays inside this call)
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
comment on function app_private.audit_verify_leaves(uuid, boolean) is
  'For verify_audit_log: every leaf of a tenant checked against its entry, v1 and v2 entries in turn (pairs found, sum of their positions, first bad position). p_scan: read the tables whole.';

-- Every interior node against its children, and every leaf holding the nodes it completes.
create function app_private.audit_verify_nodes(p_tenant uuid, p_scan boolean)
returns table (first_bad bigint)
language plpgsql stable set search_path = pg_catalog, public set work_mem = '256MB'
  set enable_nestloop = off set parallel_setup_cost = 0 set parallel_tuple_cost = 0 set jit = off
  set enable_bitmapscan = on set enable_indexscan = on
as $$
begin
  if p_scan then
    perform set_config('enable_bitmapscan', 'off', true), set_config('enable_indexscan', 'off', true);
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
comment on function app_private.audit_verify_nodes(uuid, boolean) is
  'For verify_audit_log: the first position whose stored interior nodes do not match their children (or whose number of nodes is wrong). p_scan: read the table whole.';

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

revoke all on function app_private.audit_entry_body_v2(uuid, bigint, timestamptz, uuid, text, uuid, text, text, text, inet, text, text, text, uuid, text, uuid, jsonb) from public;
revoke all on function app_private.audit_verify_leaves(uuid, boolean), app_private.audit_verify_nodes(uuid, boolean) from public;

set local role :DATABASE_OWNER;
