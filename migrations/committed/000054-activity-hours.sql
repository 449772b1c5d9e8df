--! Previous: sha1:423c7125e77f3592b1a18fb08a4c31edd96baef4
--! Hash: sha1:524ba71f384f1e6cb69ac5609ee2cbd5987e1c20
--! Message: activity-hours

-- 000054 The Audit Log page's chart and window totals: one row per hour, whatever the actions.
--
-- Without an action filter the chart (app_hidden.audit_activity_days) and the window's total
-- (audit_activity_total) summed the kept hourly activity per action: on the bench:pages database
-- 5,034 rows for the 2,000,000-entry tenant's last 30 days (about 2-3 ms of every view of its page,
-- against 0.3-0.6 ms for a 300-entry tenant), and more for a tenant with more kinds of action. The
-- sealer now also keeps the entries per tenant and hour (app_private.audit_activity_hours): 720
-- rows for 30 days at any size and any number of actions. With actions, the per-action hours as before.
-- Runs as the session's login: the table and the functions are on the audit path (see CONVENTIONS.md).

set local role none;

-- The running sealer finishes its round first (the totals are filled up to its cursor).
select pg_advisory_xact_lock(7295061840133851321);

create table app_private.audit_activity_hours (
  tenant_id uuid not null,
  hour timestamptz not null,
  entries bigint not null check (entries > 0),
  constraint audit_activity_hours_pkey primary key (tenant_id, hour) include (entries)
);
comment on table app_private.audit_activity_hours is
  'Sealed audit entries per tenant and UTC hour, all actions together (kept by the sealer).';
insert into app_private.audit_activity_hours (tenant_id, hour, entries)
select h.tenant_id, h.hour, sum(h.entries) from app_private.audit_activity_hourly h group by 1, 2;

create or replace function app_private.seal_audit_entries(max_entries int default 50000)
returns table (tenant_id uuid, tree_size bigint, root_hash bytea, sealed bigint)
language plpgsql volatile security definer set search_path = pg_catalog, public set work_mem = '64MB' as $$
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
      select e.tenant_id, e.id, e.xid, e.incident_id
      from app_public.audit_log e
      where (e.xid, e.id) > (v_state.last_xid, v_state.last_id) and e.xid < v_horizon
      order by e.xid, e.id
      limit max_entries
    ), numbered as (
      select b.*, coalesce(t.size, 0) + row_number() over (partition by b.tenant_id order by b.xid, b.id) as seq
      from batch b left join app_private.audit_trees t on t.tenant_id = b.tenant_id
    ), linked as (
      select nb.*, lag(nb.seq) over (partition by nb.tenant_id, nb.incident_id order by nb.seq) as pseq
      from numbered nb
    )
    -- The bodies are built last, one entry at a time in (tenant, position) order, from the row
    -- found again by its key (a nested loop over the sorted narrow rows): no sort or hash of the
    -- bodies and no scan of the log (migration 000050; a hash join read the whole log and sorted
    -- 50,000 bodies a round).
    select l.tenant_id, l.id, l.xid, l.incident_id, l.seq, l.pseq, e.action, e.occurred_at, e.actor_label, e.body,
           case when l.incident_id is not null and l.pseq is null then
             (select x.seq || ' ' || encode(x.leaf_hash, 'hex') from app_hidden.audit_leaves x
               where x.tenant_id = l.tenant_id and x.incident_id = l.incident_id
               order by x.seq desc limit 1)
           end as stored_prev
    from (select * from linked order by tenant_id, seq) l
    cross join lateral (
      select e.action, e.occurred_at, e.actor_label, app_private.audit_entry_body(e) as body
      from app_public.audit_log e where e.tenant_id = l.tenant_id and e.id = l.id
      offset 0 -- (a join of its own: no hash join reading the whole log)
    ) e
    order by l.tenant_id, l.seq
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
    if r.seq <> v_size + 1 then
      raise exception 'sealer: entry % of tenant % came as position %, expected %', r.id, r.tenant_id, r.seq, v_size + 1;
    end if;
    v_link := case
      when r.incident_id is null then null
      when r.pseq is not null then r.pseq || ' ' || encode(a_leaf[(v_start + (r.pseq - v_base))::int], 'hex')
      else coalesce(r.stored_prev, 'none')
    end;
    v_leaf := sha256('\x00'::bytea || app_private.audit_leaf_bytes(r.seq, v_link, r.body));
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
    a_tenant[n] := r.tenant_id; a_seq[n] := r.seq; a_entry[n] := r.id; a_incident[n] := r.incident_id;
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
  insert into app_private.audit_activity_hourly as a (tenant_id, hour, action, entries)
  select u.tenant_id, date_trunc('hour', u.at, 'UTC'), u.action, count(*)
  from unnest(a_tenant, a_action, a_at) as u(tenant_id, action, at)
  group by 1, 2, 3
  on conflict on constraint audit_activity_hourly_pkey do update set entries = a.entries + excluded.entries;
  insert into app_private.audit_activity_hours as a (tenant_id, hour, entries)
  select u.tenant_id, date_trunc('hour', u.at, 'UTC'), count(*)
  from unnest(a_tenant, a_at) as u(tenant_id, at)
  group by 1, 2
  on conflict on constraint audit_activity_hours_pkey do update set entries = a.entries + excluded.entries;
  insert into app_private.audit_activity_daily as a (tenant_id, day, action, actor_label, entries, last_at)
  select u.tenant_id, (u.at at time zone 'UTC')::date, u.action, u.actor, count(*), max(u.at)
  from unnest(a_tenant, a_action, a_at, a_actor) as u(tenant_id, action, at, actor)
  group by 1, 2, 3, 4
  on conflict on constraint audit_activity_daily_pkey
    do update set entries = a.entries + excluded.entries, last_at = greatest(a.last_at, excluded.last_at);

  return query
    select u.tenant_id, u.size, app_private.audit_frontier_root(u.frontier::bytea[]), u.sealed
    from unnest(t_tenant, t_size, t_frontier, t_sealed) as u(tenant_id, size, frontier, sealed);
end;
$$;

create or replace function app_hidden.audit_activity_total(p_from timestamptz, p_to timestamptz, p_actions text[])
returns bigint
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  v_state app_private.audit_seal_state;
  v_n bigint;
begin
  if not app_hidden.audit_log_readable() then
    return 0;
  end if;
  select * into v_state from app_private.audit_seal_state;
  -- The sealer's cursor as literals, as in audit_activity: the pending entries are one short range.
  execute format($q$
    select coalesce((select sum(h.entries) from app_private.%3$s h
                     where h.tenant_id = $1 and ($2::timestamptz is null or h.hour >= $2)
                       and ($3::timestamptz is null or h.hour < $3) and %4$s), 0)
         + (select count(*) from app_public.audit_log e
            where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1
              and ($2::timestamptz is null or e.occurred_at >= $2) and ($3::timestamptz is null or e.occurred_at < $3)
              and ($4::text[] is null or e.action = any ($4)))$q$,
    v_state.last_xid, v_state.last_id,
    case when p_actions is null then 'audit_activity_hours' else 'audit_activity_hourly' end,
    case when p_actions is null then 'true' else 'h.action = any ($4)' end)
    into v_n using app_public.current_tenant_id(), p_from, p_to, p_actions;
  return v_n;
end;
$$;

create or replace function app_hidden.audit_activity_days(p_from timestamptz, p_to timestamptz, p_actions text[], p_zone text)
returns table (day date, entries bigint)
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  v_state app_private.audit_seal_state;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  select * into v_state from app_private.audit_seal_state;
  return query execute format($q$
    select (a.hour at time zone $5)::date, sum(a.entries)::bigint
    from (
      select h.hour, h.entries from app_private.%3$s h
      where h.tenant_id = $1 and ($2::timestamptz is null or h.hour >= $2) and ($3::timestamptz is null or h.hour < $3)
        and %4$s
      union all
      select date_trunc('hour', e.occurred_at, 'UTC'), 1 from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1
        and ($2::timestamptz is null or e.occurred_at >= $2) and ($3::timestamptz is null or e.occurred_at < $3)
        and ($4::text[] is null or e.action = any ($4))
    ) a
    group by 1$q$, v_state.last_xid, v_state.last_id,
    case when p_actions is null then 'audit_activity_hours' else 'audit_activity_hourly' end,
    case when p_actions is null then 'true' else 'h.action = any ($4)' end)
  using app_public.current_tenant_id(), p_from, p_to, p_actions, p_zone;
end;
$$;

set local role :DATABASE_OWNER;
