--! Previous: sha1:28b01e85f615d9f49b28ddf909ddbdc1a4008da1
--! Hash: sha1:fbe97c6848016a7f5d2fc3e33065562aa7a2ed38
--! Message: surface-days

-- 000074 The entries of each surface per day and action: the page's surface filter reads only the
-- days that have entries through that surface (of the actions).
--
-- The Audit Log page's surface filter (web, graphql, api, sql) had no index and no kept counts: the
-- log was read in stretches of 10,000 entries, the surface (and with an action filter, the action's
-- range) checked on each. A surface and an action that never meet (sign-ins through the API,
-- incidents created over GraphQL) read a whole stretch for every page: ~25-35 ms a page in the
-- 2,000,000-entry bench tenant, against ~7 ms in a 300-entry one, and "Search older entries" after
-- each. The namer now keeps each surface's entries per tenant, UTC day and action
-- (app_private.audit_surface_days, up to its cursor), and app_hidden.audit_find reads, for a
-- surface without a person, incident or IP to go by, the days that have entries through it (of
-- the actions), one day at a time, as it reads a person's with actions since 000073.
-- Runs as the session's login: the table and functions are on the audit path (see CONVENTIONS.md).

set local role none;

-- The namer waits here (its lock) until this migration commits: every later round counts its
-- entries' surfaces, and the rows named so far are counted below.
select pg_advisory_xact_lock(7295061840133851322);

create table app_private.audit_surface_days (
  tenant_id uuid not null,
  surface text not null,
  day date not null,
  action text not null,
  entries bigint not null check (entries > 0),
  constraint audit_surface_days_pkey primary key (tenant_id, surface, day, action)
) with (fillfactor = 70);
comment on table app_private.audit_surface_days is
  'Each tenant''s entries per surface, UTC day and action, up to the names'' cursor (app_private.audit_label_state), kept by the namer: the search with a surface filter reads only the days that have entries through it (000074).';

-- Every entry named so far (one pass over the log; ~1 min for the 10,000,000-entry bench database).
insert into app_private.audit_surface_days (tenant_id, surface, day, action, entries)
select e.tenant_id, e.surface, (e.occurred_at at time zone 'UTC')::date, e.action, count(*)
from app_public.audit_log e, app_private.audit_label_state s
where (e.xid, e.id) <= (s.last_xid, s.last_id)
group by 1, 2, 3, 4;

create or replace function app_private.name_audit_entries(max_entries int default 50000) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, public set jit = off as $$
declare
  v_seal app_private.audit_seal_state;
  v_state app_private.audit_label_state;
  v_n bigint;
  v_last_xid bigint;
  v_last_id bigint;
begin
  -- One at a time; a second one waits here and then goes on from the first one's cursor.
  perform pg_advisory_xact_lock(7295061840133851322);
  select * into v_seal from app_private.audit_seal_state;
  select * into v_state from app_private.audit_label_state;
  if (v_state.last_xid, v_state.last_id) >= (v_seal.last_xid, v_seal.last_id) then
    perform app_private.tidy_audit_names(v_state);
    return 0;
  end if;
  -- The cursors as literals: the planner then reads the entries between them by the seal order.
  execute format($q$
    with batch as (
      select e.tenant_id, e.xid, e.id, e.occurred_at, e.resource_label, e.action, e.actor_label, e.surface
      from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and (e.xid, e.id) <= (%3$s, %4$s)
      order by e.xid, e.id
      limit $1
    ), named as (
      insert into app_private.audit_label_days as l (tenant_id, day, label, first_at, last_at, entries, action_entries, actor_entries)
      select x.tenant_id, x.day, x.label, min(x.first_at), max(x.last_at), sum(x.n) filter (where x.action is not null)::bigint,
             -- (000072) and its entries of each action and of each actor (a row of x is one or the other)
             jsonb_object_agg(x.action, x.n) filter (where x.action is not null),
             jsonb_object_agg(x.actor_label, x.n) filter (where x.actor_label is not null)
      from (select b.tenant_id, (b.occurred_at at time zone 'UTC')::date as day, b.resource_label as label, b.action,
                   b.actor_label, min(b.occurred_at) as first_at, max(b.occurred_at) as last_at, count(*) as n
            from batch b where b.resource_label is not null
            group by grouping sets ((1, 2, 3, 4), (1, 2, 3, 5))) x
      group by 1, 2, 3
      on conflict on constraint audit_label_days_pkey
        do update set first_at = least(l.first_at, excluded.first_at), last_at = greatest(l.last_at, excluded.last_at),
                      entries = l.entries + excluded.entries,
                      action_entries = app_private.audit_add_entries(l.action_entries, excluded.action_entries),
                      actor_entries = app_private.audit_add_entries(l.actor_entries, excluded.actor_entries)
    ), surfaced as (
      -- (000074) each surface's entries per day and action
      insert into app_private.audit_surface_days as s (tenant_id, surface, day, action, entries)
      select b.tenant_id, b.surface, (b.occurred_at at time zone 'UTC')::date, b.action, count(*)
      from batch b group by 1, 2, 3, 4
      on conflict on constraint audit_surface_days_pkey do update set entries = s.entries + excluded.entries
    ), acted as (
      -- (000065) a row is written only when a name brings its trigram a new action
      insert into app_private.audit_label_trigram_months as m (tenant_id, month, trigram, actions)
      select u.tenant_id, u.month, u.key, bit_or(u.actions)
      from (
        -- (app_private.audit_label_trigram_keys written out: a call of it per name costs more than
        -- its work, and the grouping below takes out the keys a name holds twice)
        select x.tenant_id, x.month, k.key, x.actions
        from (select b.tenant_id, date_trunc('month', b.occurred_at at time zone 'UTC')::date as month, b.resource_label,
                     bit_or(app_private.audit_action_bits(b.action)) as actions
              from batch b where b.resource_label is not null
              group by 1, 2, 3) x
        cross join lateral (
          select hashtext(t) as key from unnest(show_trgm(x.resource_label)) t
          union all
          select 0 where lower(x.resource_label) ~ '[^\x01-\x7F]') k
        union all
        -- (000069) and each character with a bit, -1 … -64, with the actions of the names that hold
        -- it (one mask for the names of each action of the month, not one per name)
        select y.tenant_id, y.month, -i, y.actions
        from (select b.tenant_id, date_trunc('month', b.occurred_at at time zone 'UTC')::date as month,
                     app_private.audit_action_bits(b.action) as actions,
                     app_private.audit_char_mask(lower(string_agg(b.resource_label, E'\n'))) as chars
              from batch b where b.resource_label is not null
              group by 1, 2, b.action) y
        cross join generate_series(1, 64) i
        where y.chars & (1::bigint << (i - 1)) <> 0) u
      group by 1, 2, 3
      on conflict (tenant_id, month, trigram) do update set actions = m.actions | excluded.actions
        where m.actions | excluded.actions <> m.actions
    )
    select count(*), (array_agg(b.xid order by b.xid desc, b.id desc))[1], (array_agg(b.id order by b.xid desc, b.id desc))[1]
    from batch b$q$,
    v_state.last_xid, v_state.last_id, v_seal.last_xid, v_seal.last_id)
    into v_n, v_last_xid, v_last_id using max_entries;
  if v_n > 0 then
    update app_private.audit_label_state set last_xid = v_last_xid, last_id = v_last_id;
  end if;
  if v_n < max_entries then
    perform app_private.tidy_audit_names(v_state);
  end if;
  return v_n;
end;
$$;

create or replace function app_hidden.audit_find(
  p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int, p_scan int default 10000)
returns table (occurred_at timestamptz, id bigint, scan_end boolean)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_dir text := case when p_ascending then 'asc' else 'desc' end;
  v_pattern text := p_filter->>'pattern';
  -- A pattern with trigrams goes on through the names past the stretch, and so does one without when
  -- it is for the resource name only (GraphQL's resourceLabelContains: every day's names are read,
  -- 000039), has a pair or a character outside ASCII (000062), or characters few days' names hold
  -- (below); the page's other patterns without trigrams are read for.
  -- (Never null: the page's search has no "fields", and its words without trigrams are read for.)
  v_indexed boolean := cardinality(app_private.audit_pattern_trigrams(p_filter->>'pattern')) > 0
    or (coalesce(p_filter->>'fields' = 'label', false) and p_filter->>'pattern' is not null)
    -- a pair of ASCII letters or digits, or a character outside ASCII (000062)
    or app_private.audit_short_pattern_trigrams(
         case when pg_catalog.getdatabaseencoding() = 'UTF8' then pg_catalog.lower(p_filter->>'pattern') end) is not null;
  v_actions text[];
  v_range text;
  v_keyed_ip boolean := false; -- the IP is the range's key (no incident or actor given)
  v_check text[] := '{}';
  v_base text;
  v_found int := 0;
  v_scanned int := 0;
  v_last_at timestamptz;
  v_last_id bigint;
  v_alt_actors text[] := '{}';
  v_alt_incidents uuid[] := '{}';
  v_matched text;
  v_scan int := greatest(p_scan, p_limit);
  -- A search goes on through the names once the stretch has read a hundredth of itself (at least a
  -- page) and its matches so far are too sparse to fill the page within a tenth of it (000037).
  v_cut int := greatest(p_limit, v_scan / 100);
  v_stopped boolean := false;
  v_full boolean := false;
  -- (000066) An explicit cursor: its plan is made for reading the first rows fast (what a stretch
  -- does when its matches are sparse or dense), not for reading the whole range.
  v_rows refcursor;
  -- (000066) An actor with actions: where their entries of those actions can be, at the nearest.
  v_seal app_private.audit_seal_state;
  -- (000073) The days (a query) on which the actor has entries of the actions, and their bounds;
  -- (000074) or the surface has entries (of the actions), with the names' cursor.
  v_names app_private.audit_label_state;
  v_days text;
  v_lo date;
  v_hi date;
  -- (000064) A pattern with neither trigrams nor a pair: the characters with a bit that its matches hold.
  v_need bigint := case when not v_indexed and pg_catalog.getdatabaseencoding() = 'UTF8'
                        then coalesce(app_private.audit_pattern_char_mask(pg_catalog.lower(p_filter->>'pattern')), 0) else 0 end;
  v_pairs bit(4096); -- (000068) and its pairs of adjacent characters
  r record;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  v_tenant := app_public.current_tenant_id();
  -- (000064) Such a pattern goes on through the names too when its characters are in at most a
  -- quarter of the tenant's days' names: the names of those days alone are read; in more of them,
  -- the log is read for it in stretches, as before (a day's names cost more than its entries).
  if v_need <> 0 then
    v_pairs := app_private.audit_pattern_pair_masks(pg_catalog.lower(p_filter->>'pattern'));
    v_indexed := (select 4 * count(*) filter (where c.chars & v_need = v_need and app_private.audit_pairs_hold(c.pairs, v_pairs)) <= count(*)
                  from app_private.audit_label_chars c where c.tenant_id = v_tenant);
  end if;
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;

  -- (000074) The days from the cursor on, within the window, that either reads.
  v_lo := case when p_filter->>'from' is not null then ((p_filter->>'from')::timestamptz at time zone 'UTC')::date end;
  v_hi := case when p_filter->>'to' is not null then ((p_filter->>'to')::timestamptz at time zone 'UTC')::date end;
  if p_cursor_at is not null and p_ascending then
    v_lo := greatest(v_lo, (p_cursor_at at time zone 'UTC')::date);
  elsif p_cursor_at is not null then
    v_hi := least(v_hi, (p_cursor_at at time zone 'UTC')::date);
  end if;

  -- (000066) An actor and actions: the actor's entries are read on the days the sealer's daily
  -- counts give them entries of one of the actions, from the cursor on and within the window, and
  -- on the days of such entries not sealed yet (000073; 000066 started at the nearest such day and
  -- read on through every entry of the actor: an actor who seldom took the actions had most of their
  -- entries read, ~65 ms for three entries of ana@ in the 2,000,000-entry bench tenant). With no
  -- such day nothing matches. (Before 000066, an action they never took: 0.7 s.)
  if p_filter->>'actor' is not null and p_filter->>'incident' is null and cardinality(v_actions) > 0 then
    select * into v_seal from app_private.audit_seal_state;
    -- (The seal cursor as literals: one short range of the sealing order's index.)
    v_days := format(
      'select d.day from app_private.audit_activity_daily d
       where d.tenant_id = %1$L::uuid and d.actor_label = %2$L and d.action = any (%3$L::text[])
         and d.day >= %4$L::date and d.day <= %5$L::date
       union
       select (e.occurred_at at time zone ''UTC'')::date from app_public.audit_log e
       where e.xid >= %6$s and (e.xid, e.id) > (%6$s, %7$s) and e.tenant_id = %1$L::uuid and e.actor_label = %2$L
         and e.action = any (%3$L::text[])',
      v_tenant, p_filter->>'actor', v_actions, coalesce(v_lo, '-infinity'::date), coalesce(v_hi, 'infinity'::date),
      v_seal.last_xid, v_seal.last_id);
  elsif p_filter->>'surface' is not null and p_filter->>'incident' is null and p_filter->>'actor' is null
        and p_filter->>'ip' is null then
    -- (000074) A surface with no incident, person or IP to go by: the days that have entries through
    -- it (of the actions), from the names' per-day counts of each surface (up to their cursor) and
    -- the entries past it, in the same way.
    select * into v_names from app_private.audit_label_state;
    v_days := format(
      'select s.day from app_private.audit_surface_days s
       where s.tenant_id = %1$L::uuid and s.surface = %2$L and s.day >= %4$L::date and s.day <= %5$L::date%3$s
       union
       select (e.occurred_at at time zone ''UTC'')::date from app_public.audit_log e
       where e.xid >= %6$s and (e.xid, e.id) > (%6$s, %7$s) and e.tenant_id = %1$L::uuid and e.surface = %2$L%8$s',
      v_tenant, p_filter->>'surface',
      case when cardinality(v_actions) > 0 then format(' and s.action = any (%L::text[])', v_actions) else '' end,
      coalesce(v_lo, '-infinity'::date), coalesce(v_hi, 'infinity'::date), v_names.last_xid, v_names.last_id,
      case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end);
  end if;

  -- The range: the tenant, the time window, the cursor, and the one key an index serves.
  v_range := format('e.tenant_id = %L::uuid', v_tenant);
  if p_filter->>'from' is not null then
    v_range := v_range || format(' and e.occurred_at >= %L::timestamptz', p_filter->>'from');
  end if;
  if p_filter->>'to' is not null then
    v_range := v_range || format(' and e.occurred_at < %L::timestamptz', p_filter->>'to');
  end if;
  if p_cursor_at is not null then
    -- (000073) Read a day at a time (below), the cursor is checked on each entry, not where the
    -- index is entered (at its row comparison, the scan read every entry from the cursor to the day).
    v_range := v_range || format(case when v_days is null then ' and (e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)'
                                      else ' and ((e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)) is true' end,
      case when p_ascending then '>' else '<' end, p_cursor_at, p_cursor_id);
  end if;
  -- Everything else is checked on the rows read. (The key: the incident, else the actor, else the IP.)
  if p_filter->>'incident' is not null then
    v_range := v_range || format(' and e.incident_id = %L::uuid', p_filter->>'incident');
  elsif p_filter->>'actor' is not null then
    v_range := v_range || format(' and e.actor_label = %L', p_filter->>'actor');
  elsif p_filter->>'ip' is not null then
    v_range := v_range || format(' and e.ip = %L::inet', p_filter->>'ip');
    v_keyed_ip := true;
  end if;
  if p_filter->>'incident' is not null and p_filter->>'actor' is not null then
    v_check := v_check || format('e.actor_label = %L', p_filter->>'actor');
  end if;
  if v_days is not null then
    -- (000073, 000074) the actions and the surface are the days' range (below)
    if cardinality(v_actions) > 0 then
      v_range := v_range || format(' and e.action = any (%L::text[])', v_actions);
    end if;
    if p_filter->>'surface' is not null then
      v_range := v_range || format(' and e.surface = %L', p_filter->>'surface');
    end if;
  elsif (p_filter->>'incident' is not null or p_filter->>'actor' is not null or v_keyed_ip) and cardinality(v_actions) > 0 then
    v_check := v_check || format('e.action = any (%L::text[])', v_actions);
  end if;
  if p_filter->>'surface' is not null and v_days is null then
    v_check := v_check || format('e.surface = %L', p_filter->>'surface');
  end if;
  if p_filter->>'ip' is not null and not v_keyed_ip then
    v_check := v_check || format('e.ip = %L::inet', p_filter->>'ip');
  end if;
  if p_filter->>'after_id' is not null then
    v_check := v_check || format('e.id > %L::bigint', p_filter->>'after_id');
  end if;
  if p_filter->>'through_id' is not null then
    v_check := v_check || format('e.id <= %L::bigint', p_filter->>'through_id');
  end if;
  if v_pattern is not null and p_filter->>'fields' = 'label' then
    -- The resource name only (GraphQL's resourceLabelContains, 000034): no people or incidents to look up.
    v_check := v_check || 'e.resource_label ilike $2'::text;
  elsif v_pattern is not null then
    select a.actors, a.incidents into v_alt_actors, v_alt_incidents
    from app_private.audit_search_alternates(v_tenant, v_pattern) a;
    v_check := v_check || '(e.action ilike $2 or e.actor_label ilike $2 or e.resource_label ilike $2 or e.actor_label = any ($3) or e.incident_id = any ($4))'::text;
  end if;

  v_matched := case when cardinality(v_check) > 0 then array_to_string(v_check, ' and ') else 'true' end;

  -- The range in order, at most p_scan rows, each with whether it matches: one index range, or
  -- one per action merged (when the actions are the key).
  v_base := case
    when v_days is not null then
      -- (000073) The actor's entries of the actions, day by day: one range of the actor's index a
      -- day, the days in reading order (000074: or the surface's, of the actions, by the actions'
      -- index or the time index). Rows come out in the order of the days, and in each day's
      -- in the order of its range: a lateral subquery is read once for each of the outer rows, in
      -- their order (a nested loop; a cursor has no parallel workers), and its days cover disjoint
      -- stretches of time. (An ORDER BY here would read every day's entries before the first row.)
      format('select x.occurred_at, x.id, x.matched
              from (select u.day from (%1$s) u order by u.day %2$s) d
              cross join lateral (
                select e.occurred_at, e.id, %3$s as matched from app_public.audit_log e
                where %4$s and e.occurred_at >= d.day::timestamp at time zone ''UTC''
                  and e.occurred_at < (d.day + 1)::timestamp at time zone ''UTC''
                order by e.occurred_at %2$s, e.id %2$s) x
              limit $1',
        v_days, v_dir, v_matched, v_range)
    when p_filter->>'incident' is null and p_filter->>'actor' is null and not v_keyed_ip and cardinality(v_actions) > 1 then
      format('select * from (%s) u order by u.occurred_at %s, u.id %s limit $1',
        (select string_agg(format(
           '(select e.occurred_at, e.id, %s as matched from app_public.audit_log e where %s and e.action = %L order by e.occurred_at %s, e.id %s limit $1)',
           v_matched, v_range, a, v_dir, v_dir), ' union all ')
         from unnest(v_actions) a), v_dir, v_dir)
    else
      format('select e.occurred_at, e.id, %s as matched from app_public.audit_log e where %s%s order by e.occurred_at %s, e.id %s limit $1',
        v_matched, v_range,
        case when p_filter->>'incident' is null and p_filter->>'actor' is null and not v_keyed_ip and cardinality(v_actions) = 1
          then format(' and e.action = %L', v_actions[1]) else '' end,
        v_dir, v_dir)
    end;

  -- Read until a page of matches is found or p_scan rows were read (rows come in small batches).
  open v_rows for execute v_base using v_scan, v_pattern, v_alt_actors, v_alt_incidents;
  loop
    fetch v_rows into r;
    exit when not found;
    v_scanned := v_scanned + 1;
    v_last_at := r.occurred_at;
    v_last_id := r.id;
    if r.matched then
      occurred_at := r.occurred_at;
      id := r.id;
      scan_end := false;
      return next;
      v_found := v_found + 1;
      if v_found >= p_limit then
        v_full := true;
        exit;
      end if;
    elsif v_indexed and v_scanned >= v_cut and v_found * (v_scan / 10) < p_limit * v_scanned then
      -- A rare word: its matches, if any, are sooner found through the names.
      v_stopped := true;
      exit;
    end if;
  end loop;
  close v_rows;
  if v_full then
    return;
  end if;
  if v_scanned < v_scan and not v_stopped then
    return; -- the range ended: there is nothing more to find
  end if;
  if not v_indexed then
    -- Stopped after p_scan rows: where to go on from.
    occurred_at := v_last_at;
    id := v_last_id;
    scan_end := true;
    return next;
    return;
  end if;
  -- A search with too few matches in that stretch: the rest through the names, beyond it.
  return query select * from app_private.audit_search(
    v_tenant, p_filter || jsonb_build_object('alt_actors', v_alt_actors, 'alt_incidents', v_alt_incidents),
    v_last_at, v_last_id, p_ascending, p_limit - v_found, v_scan);
end;
$$;
