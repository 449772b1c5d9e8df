--! Previous: sha1:82267dde5b0985d870b9a2b5c7cdee1cfe394410
--! Hash: sha1:c04c0d5496fea7aa9f9d10b611f69cc11f13603b
--! Message: audit-scale

-- 000009 The Audit Log at scale: what the pages and reports read instead of scanning the log.
--
-- 1. Activity kept per tenant: entries per UTC hour and action (the page's chart and counts, in
--    any whole-hour time zone) and per UTC day, action and actor (the reporting views). The sealer
--    adds each batch it seals in the same transaction, so the numbers are those of the sealed log;
--    the page adds the few pending entries live (app_hidden.audit_activity). Nothing on the write
--    path changes: the single sealer is the only writer of these rows.
-- 2. The log's secondary indexes order entries as the page does, newest first by (occurred_at, id),
--    within an action, an actor or an incident, so that any page of any of those is one index range.
-- 3. reporting.activity_daily reads the daily activity; reporting.actor_activity_daily is new.

-- The running sealer finishes its round first; the next round runs the new function.
select pg_advisory_xact_lock(7295061840133851321);

create table app_private.audit_activity_hourly (
  tenant_id uuid not null,
  hour timestamptz not null,
  action text not null,
  entries bigint not null check (entries > 0),
  primary key (tenant_id, hour, action)
);
comment on table app_private.audit_activity_hourly is
  'Sealed audit entries per tenant, per UTC hour and per action (kept by the sealer).';

create table app_private.audit_activity_daily (
  tenant_id uuid not null,
  day date not null,
  action text not null,
  actor_label text not null,
  entries bigint not null check (entries > 0),
  last_at timestamptz not null,
  primary key (tenant_id, day, action, actor_label)
);
comment on table app_private.audit_activity_daily is
  'Sealed audit entries per tenant, per UTC day, action and actor, with the latest entry''s time (kept by the sealer).';

insert into app_private.audit_activity_hourly (tenant_id, hour, action, entries)
select e.tenant_id, date_trunc('hour', e.occurred_at, 'UTC'), e.action, count(*)
from app_public.audit_log e join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
group by 1, 2, 3;
insert into app_private.audit_activity_daily (tenant_id, day, action, actor_label, entries, last_at)
select e.tenant_id, (e.occurred_at at time zone 'UTC')::date, e.action, e.actor_label, count(*), max(e.occurred_at)
from app_public.audit_log e join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
group by 1, 2, 3, 4;

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
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'the sealer runs in READ COMMITTED (each statement must see what committed before it)'
      using errcode = '25001';
  end if;
  -- One sealer at a time; a second one waits here and then continues from the first one's cursor.
  perform pg_advisory_xact_lock(7295061840133851321);
  select * into v_state from app_private.audit_seal_state;
  -- Every transaction below the horizon has ended: its entries are all visible now, or never.
  v_horizon := app_private.audit_seal_horizon();
  v_last_xid := v_state.last_xid;
  v_last_id := v_state.last_id;

  for r in
    with batch as (
      select e.tenant_id, e.id, e.xid, e.incident_id, e.action, e.occurred_at, e.actor_label,
             app_private.audit_entry_body(e) as body
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
    select l.*,
           case when l.incident_id is not null and l.pseq is null then
             (select x.seq || ' ' || encode(x.leaf_hash, 'hex') from app_hidden.audit_leaves x
               where x.tenant_id = l.tenant_id and x.incident_id = l.incident_id
               order by x.seq desc limit 1)
           end as stored_prev
    from linked l
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
comment on function app_private.seal_audit_entries(int) is
  'Seals up to max_entries committed audit entries (in (xid, id) order, below the snapshot horizon): positions, leaves, interior nodes, and the activity per hour and per day. Returns each changed tenant''s new tree size and root and how many entries it sealed there; the caller signs a checkpoint for each in the same transaction.';

-- 2. Indexes in the page's order.
drop index app_public.audit_log_tenant_action_idx;
create index audit_log_tenant_action_idx on app_public.audit_log (tenant_id, action text_pattern_ops, occurred_at desc, id desc);
drop index app_public.audit_log_tenant_actor_idx;
create index audit_log_tenant_actor_idx on app_public.audit_log (tenant_id, actor_label, occurred_at desc, id desc);
drop index app_public.audit_log_tenant_incident_idx;
create index audit_log_tenant_incident_idx on app_public.audit_log (tenant_id, incident_id, occurred_at desc, id desc)
  where incident_id is not null;

/**
 * Entries per UTC hour and action of the current tenant (owner/admin with auditLog, as the log's
 * read policy): the sealed ones from the hourly activity, the pending ones counted live (they are
 * the few captured since the sealer's last round). Hours in [p_from, p_to); null means unbounded;
 * p_actions null means every action.
 */
create function app_hidden.audit_activity(p_from timestamptz, p_to timestamptz, p_actions text[])
returns table (hour timestamptz, action text, entries bigint)
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  v_state app_private.audit_seal_state;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  select * into v_state from app_private.audit_seal_state;
  -- The sealer's cursor goes into the statement as literals: planned with them, the pending
  -- entries are one short range of the (xid, id) index (as a parameter, a third of the log).
  return query execute format($q$
    select a.hour, a.action, sum(a.entries)::bigint
    from (
      select h.hour, h.action, h.entries from app_private.audit_activity_hourly h
      where h.tenant_id = $1 and ($2::timestamptz is null or h.hour >= $2) and ($3::timestamptz is null or h.hour < $3)
        and ($4::text[] is null or h.action = any ($4))
      union all
      select date_trunc('hour', e.occurred_at, 'UTC'), e.action, 1 from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1
        and ($2::timestamptz is null or e.occurred_at >= $2) and ($3::timestamptz is null or e.occurred_at < $3)
        and ($4::text[] is null or e.action = any ($4))
    ) a
    group by a.hour, a.action$q$, v_state.last_xid, v_state.last_id)
  using app_public.current_tenant_id(), p_from, p_to, p_actions;
end;
$$;
comment on function app_hidden.audit_activity(timestamptz, timestamptz, text[]) is
  'Entries of the current tenant per UTC hour and action in [p_from, p_to) (null: unbounded), for the given actions (null: all): sealed ones from the activity the sealer keeps, pending ones counted live. Owner/admin with auditLog only.';
revoke all on function app_hidden.audit_activity(timestamptz, timestamptz, text[]) from public;
grant execute on function app_hidden.audit_activity(timestamptz, timestamptz, text[]) to :DATABASE_VISITOR;

/** How many entries the current tenant's log holds: sealed (the tree's size) plus pending. */
create function app_hidden.audit_entry_count() returns bigint
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  v_state app_private.audit_seal_state;
  v_tenant uuid;
  v_n bigint;
begin
  if not app_hidden.audit_log_readable() then
    return 0;
  end if;
  v_tenant := app_public.current_tenant_id();
  select * into v_state from app_private.audit_seal_state;
  -- The cursor as literals, as in audit_activity.
  execute format($q$
    select coalesce((select t.size from app_private.audit_trees t where t.tenant_id = $1), 0)
         + (select count(*) from app_public.audit_log e
            where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1)$q$,
    v_state.last_xid, v_state.last_id)
    into v_n using v_tenant;
  return v_n;
end;
$$;
comment on function app_hidden.audit_entry_count() is
  'The number of entries in the current tenant''s log (sealed + pending). Owner/admin with auditLog only.';
revoke all on function app_hidden.audit_entry_count() from public;
grant execute on function app_hidden.audit_entry_count() to :DATABASE_VISITOR;

-- 3. Reporting from the kept activity.
create or replace view reporting.activity_daily as
  select t.slug as tenant_slug, a.day, a.action, sum(a.entries)::bigint as entries, count(*)::bigint as actors
  from app_private.audit_activity_daily a
  join app_public.tenants t on t.id = a.tenant_id
  group by t.slug, a.day, a.action;
comment on view reporting.activity_daily is
  'Sealed audit entries per tenant, per UTC day and per action, and how many distinct actors made them (entries are sealed within seconds of their commit).';

create view reporting.actor_activity_daily as
  select t.slug as tenant_slug, a.day, a.actor_label as actor, a.action, a.entries, a.last_at as last_seen
  from app_private.audit_activity_daily a
  join app_public.tenants t on t.id = a.tenant_id;
comment on view reporting.actor_activity_daily is
  'Sealed audit entries per tenant, per UTC day, per actor (email or "system") and per action, with the latest one''s time.';
grant select on reporting.actor_activity_daily to :DATABASE_REPORTING;

------------------------------------------------------------------------------
-- 4. Finding entries: the page's filters, in the page's order, at any depth
------------------------------------------------------------------------------
-- The search box matches this expression (the trigram index audit_log_tenant_search_trgm_idx).
-- ILIKE is not leakproof, so under the log's row-level security PostgreSQL may not use that index
-- for a visitor's query; these functions run as the log's owner and apply the same scope
-- themselves: the current tenant, for its owners/admins with auditLog (as the read policy).

/**
 * The SQL condition of a filter (jsonb from the page: pattern, actions, actor, incident, surface,
 * ip, from, to, after_id, through_id), over `e` = app_public.audit_log, without the tenant and the pattern.
 * Values are quoted literals; the keys are fixed.
 */
create function app_private.audit_filter_sql(p_filter jsonb) returns text
language sql immutable set search_path = pg_catalog as $$
  select coalesce(string_agg(c, ' and '), 'true') from (
    select format('e.actor_label = %L', p_filter->>'actor') as c where p_filter->>'actor' is not null
    union all select format('e.incident_id = %L::uuid', p_filter->>'incident') where p_filter->>'incident' is not null
    union all select format('e.surface = %L', p_filter->>'surface') where p_filter->>'surface' is not null
    union all select format('e.ip = %L::inet', p_filter->>'ip') where p_filter->>'ip' is not null
    union all select format('e.occurred_at >= %L::timestamptz', p_filter->>'from') where p_filter->>'from' is not null
    union all select format('e.occurred_at < %L::timestamptz', p_filter->>'to') where p_filter->>'to' is not null
    union all select format('e.id > %L::bigint', p_filter->>'after_id') where p_filter->>'after_id' is not null
    union all select format('e.id <= %L::bigint', p_filter->>'through_id') where p_filter->>'through_id' is not null
  ) conditions
$$;

-- A search also finds entries by a person's name (their email is what entries record) and the
-- entries of an incident renamed since (its current title): the title index serves the latter.
create index incidents_tenant_title_trgm_idx on app_public.incidents using gin (tenant_id, title gin_trgm_ops);

/** What a search pattern also stands for in a tenant: members named so, and incidents titled so (at most 50). */
create function app_private.audit_search_alternates(p_tenant uuid, p_pattern text, out actors text[], out incidents uuid[])
language sql stable set search_path = pg_catalog as $$
  select array(select u.email from app_public.memberships m join app_public.users u on u.id = m.user_id
               where m.tenant_id = p_tenant and u.name ilike p_pattern and u.email not ilike p_pattern limit 20),
         (select case when count(*) <= 50 then coalesce(array_agg(i.id), '{}') else '{}' end
          from (select i.id from app_public.incidents i
                where i.tenant_id = p_tenant and i.title ilike p_pattern limit 51) i)
$$;

/**
 * Keys (occurred_at, id) of up to p_limit entries of the current tenant matching the filter,
 * newest first (or oldest first when p_ascending), strictly after the cursor in that order when
 * it is given. Every case reads a bounded part of the log whatever its size:
 *  - actions: one ordered index range per action (merged), so several actions cost as one;
 *  - a search pattern: first the next p_scan entries in order are checked (a common word is found
 *    there); if too few match, the trigram index gives the rest (a rare word has few matches).
 */
create function app_hidden.audit_find(
  p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int, p_scan int default 10000)
returns table (occurred_at timestamptz, id bigint)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_dir text := case when p_ascending then 'asc' else 'desc' end;
  v_cond text;
  v_pattern text := p_filter->>'pattern';
  v_search text := $s$(e.action || ' ' || e.actor_label || ' ' || coalesce(e.resource_label, ''))$s$;
  v_actions text[];
  v_base text;
  v_found int;
  v_scanned int;
  v_last_at timestamptz;
  v_last_id bigint;
  v_rev text := case when p_ascending then 'desc' else 'asc' end;
  v_alt_actors text[] := '{}';
  v_alt_incidents uuid[] := '{}';
  v_match text := 'w.s ilike $2';
  v_extra text := '';
  r record;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  v_tenant := app_public.current_tenant_id();
  v_cond := format('e.tenant_id = %L::uuid and ', v_tenant) || app_private.audit_filter_sql(p_filter);
  if p_cursor_at is not null then
    v_cond := v_cond || format(' and (e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)',
      case when p_ascending then '>' else '<' end, p_cursor_at, p_cursor_id);
  end if;
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;

  -- The entries in order (keys and the searched text), limit n: one index range, or one per action.
  v_base := case when coalesce(cardinality(v_actions), 0) <= 1 then
      format('select e.occurred_at, e.id, %s as s, e.actor_label as actor, e.incident_id as incident from app_public.audit_log e where %s%s order by e.occurred_at %s, e.id %s limit $1',
             v_search, v_cond, case when v_actions is null then '' else format(' and e.action = %L', v_actions[1]) end, v_dir, v_dir)
    else
      format('select * from (%s) u order by u.occurred_at %s, u.id %s limit $1',
        (select string_agg(format('(select e.occurred_at, e.id, %s as s, e.actor_label as actor, e.incident_id as incident from app_public.audit_log e where %s and e.action = %L order by e.occurred_at %s, e.id %s limit $1)',
                                  v_search, v_cond, a, v_dir, v_dir), ' union all ')
         from unnest(v_actions) a), v_dir, v_dir)
    end;

  if v_pattern is null then
    return query execute format('select b.occurred_at, b.id from (%s) b', v_base) using p_limit;
    return;
  end if;

  -- A search: the next p_scan entries first.
  select a.actors, a.incidents into v_alt_actors, v_alt_incidents from app_private.audit_search_alternates(v_tenant, v_pattern) a;
  if cardinality(v_alt_actors) > 0 or cardinality(v_alt_incidents) > 0 then
    v_match := '(w.s ilike $2 or w.actor = any ($4) or w.incident = any ($5))';
  end if;
  v_found := 0;
  for r in execute format(
      'with w as materialized (%s), '
      || 'meta as (select count(*)::int as scanned, count(*) filter (where %s)::int as found from w), '
      || 'tail as (select w.occurred_at, w.id from w order by w.occurred_at %s, w.id %s limit 1) '
      || 'select h.occurred_at, h.id, meta.scanned, meta.found, tail.occurred_at as last_at, tail.id as last_id '
      || 'from meta left join tail on true left join lateral '
      || '(select w.occurred_at, w.id from w where %s order by w.occurred_at %s, w.id %s limit $3) h on true',
      v_base, v_match, v_rev, v_rev, v_match, v_dir, v_dir)
    using p_scan, v_pattern, p_limit, v_alt_actors, v_alt_incidents
  loop
    v_scanned := r.scanned;
    v_found := r.found;
    v_last_at := r.last_at;
    v_last_id := r.last_id;
    if r.id is not null then
      occurred_at := r.occurred_at;
      id := r.id;
      return next;
    end if;
  end loop;
  if v_found >= p_limit or v_scanned < p_scan then
    return;
  end if;
  -- Too few in that stretch: the rest of the matches from the trigram index, beyond it (and
  -- from the index range of each person or incident the pattern also stands for).
  select coalesce(string_agg(format(
           ' union (select e.occurred_at, e.id from app_public.audit_log e where %s and e.actor_label = %L%s and (e.occurred_at, e.id) %s ($3, $4) order by e.occurred_at %s, e.id %s limit $1)',
           v_cond, a, case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end,
           case when p_ascending then '>' else '<' end, v_dir, v_dir), ''), '')
    into v_extra from unnest(v_alt_actors) a;
  select v_extra || coalesce(string_agg(format(
           ' union (select e.occurred_at, e.id from app_public.audit_log e where %s and e.incident_id = %L::uuid%s and (e.occurred_at, e.id) %s ($3, $4) order by e.occurred_at %s, e.id %s limit $1)',
           v_cond, i, case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end,
           case when p_ascending then '>' else '<' end, v_dir, v_dir), ''), '')
    into v_extra from unnest(v_alt_incidents) i;
  return query execute format(
    'with m as materialized (select e.occurred_at, e.id from app_public.audit_log e where %s and %s ilike $2%s) '
    || 'select x.occurred_at, x.id from ((select m.occurred_at, m.id from m where (m.occurred_at, m.id) %s ($3, $4))%s) x '
    || 'order by x.occurred_at %s, x.id %s limit $1',
    v_cond, v_search,
    case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end,
    case when p_ascending then '>' else '<' end, v_extra, v_dir, v_dir)
    using p_limit - v_found, v_pattern, v_last_at, v_last_id;
end;
$$;
comment on function app_hidden.audit_find(jsonb, timestamptz, bigint, boolean, int, int) is
  'Keys of the current tenant''s audit entries matching a filter, in page order after a cursor (owner/admin with auditLog; see the migration for the strategy).';
revoke all on function app_hidden.audit_find(jsonb, timestamptz, bigint, boolean, int, int) from public;
grant execute on function app_hidden.audit_find(jsonb, timestamptz, bigint, boolean, int, int) to :DATABASE_VISITOR;

/** How many entries of the current tenant match the filter, counting at most p_cap. */
create function app_hidden.audit_count(p_filter jsonb, p_cap int) returns bigint
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_n bigint;
  v_tenant uuid;
  v_alt_actors text[] := '{}';
  v_alt_incidents uuid[] := '{}';
begin
  if not app_hidden.audit_log_readable() then
    return 0;
  end if;
  v_tenant := app_public.current_tenant_id();
  if p_filter->>'pattern' is not null then
    select a.actors, a.incidents into v_alt_actors, v_alt_incidents
    from app_private.audit_search_alternates(v_tenant, p_filter->>'pattern') a;
  end if;
  execute format(
    'select count(*) from (select 1 from app_public.audit_log e where e.tenant_id = %L::uuid and %s%s%s limit $1) c',
    v_tenant, app_private.audit_filter_sql(p_filter),
    case when p_filter->>'pattern' is not null
      then ' and ((e.action || '' '' || e.actor_label || '' '' || coalesce(e.resource_label, '''')) ilike $2'
           || ' or e.actor_label = any ($3) or e.incident_id = any ($4))' else '' end,
    case when jsonb_array_length(coalesce(p_filter->'actions', '[]')) > 0
      then format(' and e.action = any (%L::text[])', array(select jsonb_array_elements_text(p_filter->'actions'))) else '' end)
    into v_n using p_cap, p_filter->>'pattern', v_alt_actors, v_alt_incidents;
  return v_n;
end;
$$;
comment on function app_hidden.audit_count(jsonb, int) is
  'How many of the current tenant''s audit entries match a filter, up to p_cap (owner/admin with auditLog).';
revoke all on function app_hidden.audit_count(jsonb, int) from public;
grant execute on function app_hidden.audit_count(jsonb, int) to :DATABASE_VISITOR;

-- The GraphQL API's substring conditions (actorContains, resourceLabelContains), for the same
-- reason: resolved here, where the indexes may be used, into conditions that RLS lets through.

/** The current tenant's distinct actors (emails, "system") matching an ILIKE pattern: a skip scan. */
create function app_hidden.audit_actors_matching(p_pattern text) returns text[]
language sql stable security definer set search_path = pg_catalog as $$
  with recursive scope as (
    select app_public.current_tenant_id() as tenant_id where app_hidden.audit_log_readable()
  ), actors(actor) as (
    (select e.actor_label from scope s join app_public.audit_log e on e.tenant_id = s.tenant_id order by e.actor_label limit 1)
    union all
    select (select e.actor_label from scope s join app_public.audit_log e on e.tenant_id = s.tenant_id
            where e.actor_label > a.actor order by e.actor_label limit 1)
    from actors a where a.actor is not null
  )
  select coalesce(array_agg(actor), '{}') from actors where actor ilike p_pattern
$$;
comment on function app_hidden.audit_actors_matching(text) is
  'The distinct actors of the current tenant''s audit log matching an ILIKE pattern (owner/admin with auditLog).';
revoke all on function app_hidden.audit_actors_matching(text) from public;
grant execute on function app_hidden.audit_actors_matching(text) to :DATABASE_VISITOR;

/** Capture numbers of the current tenant's entries whose resource label matches an ILIKE pattern (trigram index). */
create function app_hidden.audit_label_matches(p_pattern text) returns setof bigint
language sql stable security definer set search_path = pg_catalog, public as $$
  select e.id from app_public.audit_log e
  where e.tenant_id = (select app_public.current_tenant_id() where app_hidden.audit_log_readable())
    and (e.action || ' ' || e.actor_label || ' ' || coalesce(e.resource_label, '')) ilike p_pattern
    and e.resource_label ilike p_pattern
$$;
comment on function app_hidden.audit_label_matches(text) is
  'Capture numbers of the current tenant''s audit entries whose resource label matches an ILIKE pattern (owner/admin with auditLog).';
revoke all on function app_hidden.audit_label_matches(text) from public;
grant execute on function app_hidden.audit_label_matches(text) to :DATABASE_VISITOR;
