--! Previous: sha1:400cadc56272c2c3551cc0c301ccffa2bef169ac
--! Hash: sha1:8fd43ccfbcfae8ffd9f662477a44e638cff126ba
--! Message: seal-fewer-lookups

-- 000060 Sealing: a round does less per entry.
--
-- Three changes to app_private.seal_audit_entries, none to what it stores or in what order:
-- - the batch keeps each entry's ctid, and its body is built from the row found again there
--   (a TID scan) instead of through the log's primary key (one index descent an entry);
-- - positions are numbered from 1 within each tenant's part of the batch and the loop adds the
--   tree's size, which it reads once per tenant anyway: no lookup of audit_trees per entry;
-- - the activity tables are filled from one grouping of the batch, not three.
-- Measured on bench:audit's 50,000-entry backlog round (PostgreSQL 15, five alternated rounds
-- each, rolled back): 1.17-1.29 s instead of 1.25-1.36 s. The sealed leaves, nodes and
-- checkpoints are byte for byte the same (tests/db/seal.test.ts and the verifier check them).
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_private.seal_audit_entries(max_entries int default 50000)
returns table (tenant_id uuid, tree_size bigint, root_hash bytea, sealed bigint)
language plpgsql volatile security definer set search_path = pg_catalog, public set work_mem = '64MB' set jit = off as $$
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
  a_action text[] := '{}';
  a_at timestamptz[] := '{}';
  a_actor text[] := '{}';
  t_tenant uuid[] := '{}';
  t_size bigint[] := '{}';
  t_frontier text[] := '{}';
  t_sealed bigint[] := '{}';
  v_last_xid bigint;
  v_last_id bigint;
  v_pending boolean;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'the sealer runs in READ COMMITTED (each statement must see what committed before it)'
      using errcode = '25001';
  end if;
  -- One sealer at a time; a second one waits here and then continues from the first one's cursor.
  perform pg_advisory_xact_lock(7295061840133851321);
  select * into v_state from app_private.audit_seal_state;
  -- Nothing past the cursor: nothing to seal (and no need for the horizon, which costs more).
  -- (The cursor goes in as literals: as parameters, PostgreSQL's generic plan for this probe reads
  -- the whole log, since a third of it is what it expects past any cursor.)
  execute format('select exists (select 1 from app_public.audit_log e where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s))',
                 v_state.last_xid, v_state.last_id)
    into v_pending;
  if not v_pending then
    return;
  end if;
  -- Every transaction below the horizon has ended: its entries are all visible now, or never.
  v_horizon := app_private.audit_seal_horizon();
  v_last_xid := v_state.last_xid;
  v_last_id := v_state.last_id;

  for r in
    with batch as (
      select e.tenant_id, e.id, e.xid, e.incident_id, e.ctid as tid
      from app_public.audit_log e
      where (e.xid, e.id) > (v_state.last_xid, v_state.last_id) and e.xid < v_horizon
      order by e.xid, e.id
      limit max_entries
    ), numbered as (
      select b.*, row_number() over (partition by b.tenant_id order by b.xid, b.id) as rn
      from batch b
    ), linked as (
      select nb.*, lag(nb.rn) over (partition by nb.tenant_id, nb.incident_id order by nb.rn) as prn
      from numbered nb
    )
    -- The bodies are built last, one entry at a time in (tenant, position) order, from the row
    -- found again where the batch read it (its ctid: no index descent; a nested loop over the
    -- sorted narrow rows): no sort or hash of the bodies and no scan of the log (migration 000050;
    -- a hash join read the whole log and sorted 50,000 bodies a round). Positions are numbered
    -- from 1 in each tenant's part of the batch (rn) and the loop adds the tree's size: no lookup
    -- of the tree for every entry (000060). The log is append-only and the batch and the lookup
    -- are one statement (one snapshot): the row is where the batch found it, and an entry not
    -- found again stops the round rather than being left out.
    select l.tenant_id, l.id, l.xid, l.incident_id, l.rn, l.prn, e.action, e.occurred_at, e.actor_label, e.body,
           case when l.incident_id is not null and l.prn is null then
             (select x.seq || ' ' || encode(x.leaf_hash, 'hex') from app_hidden.audit_leaves x
               where x.tenant_id = l.tenant_id and x.incident_id = l.incident_id
               order by x.seq desc limit 1)
           end as stored_prev
    from (select * from linked order by tenant_id, rn) l
    left join lateral (
      select e.action, e.occurred_at, e.actor_label, app_private.audit_entry_body(e) as body
      from app_public.audit_log e where e.ctid = l.tid and e.id = l.id and e.tenant_id = l.tenant_id
      offset 0 -- (a join of its own: no hash join reading the whole log)
    ) e on true
    order by l.tenant_id, l.rn
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
    -- Each tenant's entries come in position order, 1 after its tree's size (the arrays and the
    -- frontier depend on it): anything else is a bug, and sealing stops instead of storing it.
    if v_base + r.rn <> v_size + 1 then
      raise exception 'sealer: entry % of tenant % came as position %, expected %', r.id, r.tenant_id, v_base + r.rn, v_size + 1;
    end if;
    if r.body is null then
      raise exception 'sealer: entry % of tenant % was not found again', r.id, r.tenant_id;
    end if;
    v_link := case
      when r.incident_id is null then null
      when r.prn is not null then (v_base + r.prn) || ' ' || encode(a_leaf[(v_start + r.prn)::int], 'hex')
      else coalesce(r.stored_prev, 'none')
    end;
    v_leaf := sha256('\x00'::bytea || app_private.audit_leaf_bytes(v_size + 1, v_link, r.body));
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
    a_tenant[n] := r.tenant_id; a_seq[n] := v_size; a_entry[n] := r.id; a_incident[n] := r.incident_id;
    a_leaf[n] := v_leaf; a_nodes[n] := v_nodes; a_prev[n] := v_link;
    a_action[n] := r.action; a_at[n] := r.occurred_at; a_actor[n] := r.actor_label;
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
  -- What the pages' chart and counts and the reporting views read instead of scanning the log.
  -- One pass over the batch, grouped as finely as the three tables need (000060: three passes
  -- over the arrays before).
  with g as materialized (
    select u.tenant_id, date_trunc('hour', u.at, 'UTC') as hour, u.action, u.actor, count(*) as entries, max(u.at) as last_at
    from unnest(a_tenant, a_action, a_at, a_actor) as u(tenant_id, action, at, actor)
    group by 1, 2, 3, 4
  ), hourly as (
    insert into app_private.audit_activity_hourly as a (tenant_id, hour, action, entries)
    select g.tenant_id, g.hour, g.action, sum(g.entries) from g group by 1, 2, 3
    on conflict on constraint audit_activity_hourly_pkey do update set entries = a.entries + excluded.entries
  ), hours as (
    insert into app_private.audit_activity_hours as a (tenant_id, hour, entries)
    select g.tenant_id, g.hour, sum(g.entries) from g group by 1, 2
    on conflict on constraint audit_activity_hours_pkey do update set entries = a.entries + excluded.entries
  )
  insert into app_private.audit_activity_daily as a (tenant_id, day, action, actor_label, entries, last_at)
  select g.tenant_id, (g.hour at time zone 'UTC')::date, g.action, g.actor, sum(g.entries), max(g.last_at) from g group by 1, 2, 3, 4
  on conflict on constraint audit_activity_daily_pkey
    do update set entries = a.entries + excluded.entries, last_at = greatest(a.last_at, excluded.last_at);

  return query
    select u.tenant_id, u.size, app_private.audit_frontier_root(u.frontier::bytea[]), u.sealed
    from unnest(t_tenant, t_size, t_frontier, t_sealed) as u(tenant_id, size, frontier, sealed);
end;
$$;

set local role :DATABASE_OWNER;
