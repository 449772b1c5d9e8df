--! Previous: sha1:28ee4a15570c1307c20cf9cb3b922ea7266a28c5
--! Hash: sha1:cd864946bc2d3fcf463205e6f26c2d40423fb927
--! Message: find-surface-actions

-- 000095 The names' walk is handed the actions of a surface's entries.
--
-- The page's search with a surface and a person (or anything else that makes the first stretch
-- find the word's matches sparse) goes on through the names, which know each name's entries by
-- person and by action but not by surface: the names of the word with entries of the person were
-- listed, month after month, and their entries were each read and refused by the surface. "Y W"
-- with ben@ through the API in the 2,000,000-entry bench tenant: his names holding the word are
-- all milestones he completed through the web, and the walk read 41 days of them for nothing
-- (57-66 ms a page). The namer keeps each surface's entries per day and action (000074): the
-- actions of the surface's entries within the window (up to the names' cursor from those counts,
-- and past it from the entries) are all the actions a match can have. audit_find works them out
-- (within the filter's own actions, if any) and hands them to the walk as its actions: it then
-- skips the months and lists only the names with entries of them (000071, 000072), as it does for
-- the page's own actions; with none, nothing matches and the walk is not begun. The surface is
-- still checked on each entry. That page: 57-66 -> 28-31 ms; "capture" with owner@ through the
-- API: 37-39 -> 11-12 ms.
--
-- (Handing them to the walk for listing names only, its other reads unchanged, was slower: the
-- months were not skipped, and each was listed and filtered: 72-110 ms for those two pages.)
--
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

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
  -- (000075) The pattern's trigrams, handed on to the names' walk.
  -- (000087) These four are worked out at the start of the body, after the reads with no condition.
  v_trigrams text[];
  v_indexed boolean;
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
  v_need bigint;
  v_pairs bit(4096); -- (000068) and its pairs of adjacent characters
  -- (000076) The people ("actor", or "actors": GraphQL's actorContains when it matches a few);
  -- null for anyone. With several and no incident, one range of the actor index each, merged.
  v_actors text[];
  v_split text[];
  -- (000079) A pattern with neither trigrams nor a pair, with people: the characters with a bit that
  -- its matches hold, when they are to be found by the days whose names of those people hold them.
  v_person_chars bigint := 0;
  v_triples bit(4096);
  -- (000088) The days are a person's (000073, 000079), not the surface's (000074).
  v_person_days boolean := false;
  -- (000093) An IP address with fewer entries than this within the window is the range's key.
  v_small_ip boolean := false;
  v_ip_entries int;
  -- (000095) The actions of the surface's entries within the window, for the names' walk.
  v_surface_actions text[];
  r record;
begin
  -- (000076) The reader's tenant when they may read its log: one lookup of their membership
  -- (audit_log_readable and current_tenant_id made one each).
  v_tenant := app_hidden.audit_log_tenant();
  if v_tenant is null then
    return;
  end if;
  -- (000087) No condition but a window, if any (the page's newest and oldest entries, its positions
  -- and dates without filters): the tenant's entries in order from the cursor, by one of two
  -- statements planned once per session; every entry read matches. Each has one bound on the side
  -- read towards, where the index starts: the cursor, or else the window's near edge as a position
  -- before ("from", inclusive) or after ("to", exclusive) every entry of its time, or else the
  -- infinite timestamp; whichever of the cursor and the edge is nearer (audit_nearer_bound). (Given
  -- both as parameters, a B-tree started at the row comparison's: with no cursor, at the infinite
  -- timestamp, reading every entry after the window. A week 60 days back in the 2,000,000-entry
  -- bench tenant: 42 ms for that statement, 0.3 ms with one bound.)
  if p_filter - 'from' - 'to' = '{}'::jsonb then
    if p_cursor_at is not null and p_filter ?| array['from', 'to'] then
      select * into p_filter, p_cursor_at, p_cursor_id from app_private.audit_nearer_bound(p_filter, p_cursor_at, p_cursor_id, p_ascending);
    end if;
    if p_cursor_at is null then
      -- (capture numbers start at 1: every entry of that time is after, or before, the lowest bigint)
      p_cursor_at := coalesce((p_filter->>case when p_ascending then 'from' else 'to' end)::timestamptz,
                              case when p_ascending then '-infinity'::timestamptz else 'infinity'::timestamptz end);
      p_cursor_id := -9223372036854775808;
    end if;
    if p_ascending then
      return query
        select e.occurred_at, e.id, false from app_public.audit_log e
        where e.tenant_id = v_tenant
          and (e.occurred_at, e.id) > (p_cursor_at, p_cursor_id)
          and e.occurred_at < coalesce((p_filter->>'to')::timestamptz, 'infinity')
        order by e.occurred_at, e.id
        limit p_limit;
    else
      return query
        select e.occurred_at, e.id, false from app_public.audit_log e
        where e.tenant_id = v_tenant
          and (e.occurred_at, e.id) < (p_cursor_at, p_cursor_id)
          and e.occurred_at >= coalesce((p_filter->>'from')::timestamptz, '-infinity')
        order by e.occurred_at desc, e.id desc
        limit p_limit;
    end if;
    return;
  end if;
  v_trigrams := app_private.audit_pattern_trigrams(p_filter->>'pattern');
  v_indexed := cardinality(v_trigrams) > 0
    or (coalesce(p_filter->>'fields' = 'label', false) and p_filter->>'pattern' is not null)
    -- a pair of ASCII letters or digits, or a character outside ASCII (000062)
    or app_private.audit_short_pattern_trigrams(
         case when pg_catalog.getdatabaseencoding() = 'UTF8' then pg_catalog.lower(p_filter->>'pattern') end) is not null;
  v_need := case when not v_indexed and pg_catalog.getdatabaseencoding() = 'UTF8'
                 then coalesce(app_private.audit_pattern_char_mask(pg_catalog.lower(p_filter->>'pattern')), 0) else 0 end;
  v_actors := app_private.audit_filter_actors(p_filter);
  if cardinality(v_actors) = 0 then
    return;
  end if;
  -- (000076) The cursor or the window's near edge, whichever is nearer the end read towards.
  if p_cursor_at is not null and p_filter ?| array['from', 'to'] then
    select * into p_filter, p_cursor_at, p_cursor_id from app_private.audit_nearer_bound(p_filter, p_cursor_at, p_cursor_id, p_ascending);
  end if;
  -- (000064) Such a pattern goes on through the names too when its characters are in at most a
  -- quarter of the tenant's days' names: the names of those days alone are read; in more of them,
  -- the log is read for it in stretches, as before (a day's names cost more than its entries).
  if v_need <> 0 then
    v_pairs := app_private.audit_pattern_pair_masks(pg_catalog.lower(p_filter->>'pattern'));
    v_indexed := (select 4 * count(*) filter (where c.chars & v_need = v_need and app_private.audit_pairs_hold(c.pairs, v_pairs)) <= count(*)
                  from app_private.audit_label_chars c where c.tenant_id = v_tenant);
  end if;
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;
  -- The people and incidents the page's search also matches by their name (their entries match
  -- whatever their resource's name); a search of the resource name alone has none.
  if v_pattern is not null and (p_filter->>'fields' = 'label') is not true then
    select a.actors, a.incidents into v_alt_actors, v_alt_incidents
    from app_private.audit_search_alternates(v_tenant, v_pattern) a;
  end if;

  -- (000093) An IP address with few entries within the window (an index-only count, stopped at
  -- 2,000 or the budget): its entries are the range, before a person's or their days; an incident
  -- stays the key before it.
  if p_filter->>'ip' is not null and p_filter->>'incident' is null then
    execute format(
      'select count(*) from (select 1 from app_public.audit_log e
                             where e.tenant_id = %L::uuid and e.ip = %L::inet%s%s limit %s) x',
      v_tenant, p_filter->>'ip',
      case when p_filter->>'from' is not null then format(' and e.occurred_at >= %L::timestamptz', p_filter->>'from') else '' end,
      case when p_filter->>'to' is not null then format(' and e.occurred_at < %L::timestamptz', p_filter->>'to') else '' end,
      least(v_scan, 2000))
      into v_ip_entries;
    if v_ip_entries < least(v_scan, 2000) then
      v_small_ip := true;
      -- (read whole within the budget: no walk of the names after them)
      v_indexed := false;
    end if;
  end if;

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
  -- (000079) And with a pattern of characters alone (no trigram, no pair), once a first stretch of
  -- the people's entries found its matches sparse ("by_days", below): the days on which the
  -- people's names (of the actions) hold every character of the pattern that has a bit, and some
  -- name of the day its pairs and runs of three, from the characters the namer keeps of each
  -- person's names per day and action (up to its cursor), and the days of their entries past that
  -- cursor; for the page's search also the days on which they took an action the pattern matches,
  -- or are a person it matches (by label or by name). An incident the pattern names could add
  -- entries of any day: not then. Those days' entries are read, not the days' names: a person
  -- whose names seldom hold the characters had every day's names, or every entry of theirs, read
  -- (69 ms for the 26 oldest entries of a person with "m" in the 2,000,000-entry bench tenant; now
  -- 3.6 ms). Not from the start: working out the days costs more than a first stretch that fills
  -- the page (a person and "e": 0.8 ms, by the days at once 5 ms).
  if v_actors is not null and p_filter->>'incident' is null and cardinality(v_alt_incidents) = 0 and not v_small_ip
     and v_pattern is not null and pg_catalog.getdatabaseencoding() = 'UTF8' and cardinality(v_trigrams) = 0
     and app_private.audit_short_pattern_trigrams(pg_catalog.lower(v_pattern)) is null then
    v_person_chars := coalesce(app_private.audit_pattern_char_mask(pg_catalog.lower(v_pattern)), 0);
  end if;
  if v_person_chars <> 0 and (p_filter->>'by_days')::boolean is true then
    select * into v_names from app_private.audit_label_state;
    -- (000085) Each person's days in reading order, merged, each day once, as in the branch below:
    -- the days come as the reading needs them, a day's names checked only when it is reached.
    v_days := format(
      'select distinct u.day from (%1$s
         union all
         (select (e.occurred_at at time zone ''UTC'')::date as day from app_public.audit_log e
          where e.xid >= %2$s and (e.xid, e.id) > (%2$s, %3$s) and e.tenant_id = %4$L::uuid and e.actor_label = any (%5$L::text[])%6$s
          order by 1 %7$s)) u
       order by u.day %7$s',
      (select string_agg(format(
         '(select c.day from app_private.audit_actor_chars c
           where c.tenant_id = %1$L::uuid and c.actor_label = %2$L and c.day >= %3$L::date and c.day <= %4$L::date%5$s
             and ((c.chars & %6$s = %6$s
                   -- and some name of that day holds its pairs of adjacent characters and runs of three
                   -- (a day''s, as the names'' walk reads them: 000068, 000075)
                   and exists (select from app_private.audit_label_chars l
                               where l.tenant_id = %1$L::uuid and l.day = c.day and l.chars & %6$s = %6$s
                                 and app_private.audit_pairs_hold(l.pairs, $5) and app_private.audit_pairs_hold(l.triples, $6)))%7$s)
           order by c.day %8$s)',
         v_tenant, a, coalesce(v_lo, '-infinity'::date), coalesce(v_hi, 'infinity'::date),
         case when cardinality(v_actions) > 0 then format(' and c.action = any (%L::text[])', v_actions) else '' end,
         v_person_chars,
         case when (p_filter->>'fields' = 'label') is true then ''
              else format(' or c.action ilike %1$L or c.actor_label ilike %1$L or c.actor_label = any (%2$L::text[])', v_pattern, v_alt_actors) end,
         v_dir), ' union all ')
       from unnest(v_actors) a),
      v_names.last_xid, v_names.last_id, v_tenant, v_actors,
      case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end,
      v_dir);
    -- (the pairs and runs of three as parameters: two literals of 4,096 bits took ~2 ms to plan)
    v_pairs := app_private.audit_pattern_pair_masks(pg_catalog.lower(v_pattern));
    v_triples := app_private.audit_pattern_triple_bits(pg_catalog.lower(v_pattern));
    -- (those days' entries are all there is to read: no walk of the names after them)
    v_indexed := false;
    v_person_chars := 0;
    v_person_days := true;
  elsif v_actors is not null and p_filter->>'incident' is null and cardinality(v_actions) > 0 and not v_small_ip then
    select * into v_seal from app_private.audit_seal_state;
    -- (The seal cursor as literals: one short range of the sealing order's index.)
    -- (000080) Each person's days in reading order, merged, each day once: the days come as the
    -- reading needs them, not all worked out before the first (9 people's days of a year, ~6,000
    -- rows of the daily counts: 3.4 ms, where the page was found on the first day).
    v_days := format(
      'select distinct u.day from (%8$s
         union all
         (select (e.occurred_at at time zone ''UTC'')::date as day from app_public.audit_log e
          where e.xid >= %6$s and (e.xid, e.id) > (%6$s, %7$s) and e.tenant_id = %1$L::uuid and e.actor_label = any (%2$L::text[])
            and e.action = any (%3$L::text[])
          order by 1 %9$s)) u
       order by u.day %9$s',
      v_tenant, v_actors, v_actions, coalesce(v_lo, '-infinity'::date), coalesce(v_hi, 'infinity'::date),
      v_seal.last_xid, v_seal.last_id,
      (select string_agg(format(
         '(select d.day from app_private.audit_activity_daily d
           where d.tenant_id = %1$L::uuid and d.actor_label = %2$L and d.action = any (%3$L::text[])
             and d.day >= %4$L::date and d.day <= %5$L::date
           order by d.day %6$s)',
         v_tenant, a, v_actions, coalesce(v_lo, '-infinity'::date), coalesce(v_hi, 'infinity'::date), v_dir), ' union all ')
       from unnest(v_actors) a),
      v_dir);
    v_person_days := true;
  elsif p_filter->>'surface' is not null and p_filter->>'incident' is null and v_actors is null
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
  -- Everything else is checked on the rows read. (The key: the incident, else an IP address with
  -- few entries (000093), else the actor, else the IP.)
  if p_filter->>'incident' is not null then
    v_range := v_range || format(' and e.incident_id = %L::uuid', p_filter->>'incident');
  elsif v_small_ip then
    -- (000093)
    v_range := v_range || format(' and e.ip = %L::inet', p_filter->>'ip');
    v_keyed_ip := true;
  elsif cardinality(v_actors) = 1 then
    v_range := v_range || format(' and e.actor_label = %L', v_actors[1]);
  elsif v_actors is not null then
    -- (000076) each person's range, merged in order (below)
    v_split := array(select format('e.actor_label = %L', a) from unnest(v_actors) a);
  elsif p_filter->>'ip' is not null then
    v_range := v_range || format(' and e.ip = %L::inet', p_filter->>'ip');
    v_keyed_ip := true;
  end if;
  if (p_filter->>'incident' is not null or v_small_ip) and v_actors is not null then
    v_check := v_check || format('e.actor_label = any (%L::text[])', v_actors);
  end if;
  if v_days is not null and not v_person_days then
    -- (000074) the actions and the surface are the surface's days' range (below)
    if cardinality(v_actions) > 0 then
      v_range := v_range || format(' and e.action = any (%L::text[])', v_actions);
    end if;
    v_range := v_range || format(' and e.surface = %L', p_filter->>'surface');
  elsif v_person_days and cardinality(v_actions) > 0 and v_pattern is null
        and not p_filter ?| array['surface', 'ip', 'after_id', 'through_id'] then
    -- (000073) the actions alone: the range of a person's days (each day read holds an entry of them)
    v_range := v_range || format(' and e.action = any (%L::text[])', v_actions);
  elsif (p_filter->>'incident' is not null or v_actors is not null or v_keyed_ip) and cardinality(v_actions) > 0 then
    -- (000088) and with anything else to check, on every entry of a person's days, which all count
    v_check := v_check || format('e.action = any (%L::text[])', v_actions);
  end if;
  if p_filter->>'surface' is not null and (v_days is null or v_person_days) then
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
    -- (its people and incidents looked up above)
    v_check := v_check || '(e.action ilike $2 or e.actor_label ilike $2 or e.resource_label ilike $2 or e.actor_label = any ($3) or e.incident_id = any ($4))'::text;
  end if;

  v_matched := case when cardinality(v_check) > 0 then array_to_string(v_check, ' and ') else 'true' end;

  -- The range in order, at most p_scan rows, each with whether it matches: one index range, or
  -- several merged in order (000076: one per person when there are several; with no incident,
  -- person or IP, one per action, and a single action is the range's key).
  if v_days is null and p_filter->>'incident' is null and v_actors is null and not v_keyed_ip
     and cardinality(v_actions) > 1 then
    v_split := array(select format('e.action = %L', a) from unnest(v_actions) a);
  elsif v_days is null and p_filter->>'incident' is null and v_actors is null and not v_keyed_ip
     and cardinality(v_actions) = 1 then
    v_range := v_range || format(' and e.action = %L', v_actions[1]);
  end if;
  v_base := case
    when v_days is not null then
      -- (000073) The actor's entries of the actions, day by day: one range of the actor's index a
      -- day, the days in reading order (000074: or the surface's, of the actions, by the actions'
      -- index or the time index; 000076: or the people's, a range of each merged). Rows come out in
      -- the order of the days, and in each day's in the order of its range: a lateral subquery is
      -- read once for each of the outer rows, in their order (a nested loop; a cursor has no
      -- parallel workers), and its days cover disjoint stretches of time. (An ORDER BY here would
      -- read every day's entries before the first row.) (000080) Each range is ordered itself, as the
      -- person's or the day's index gives it, and the ranges are merged.
      format('select x.occurred_at, x.id, x.matched
              from (select u.day from (%1$s) u order by u.day %2$s) d
              cross join lateral (select y.* from (%3$s) y order by y.occurred_at %2$s, y.id %2$s) x
              limit $1',
        v_days, v_dir,
        (select string_agg(format(
           '(select e.occurred_at, e.id, %s as matched from app_public.audit_log e
            where %s and %s and e.occurred_at >= d.day::timestamp at time zone ''UTC''
              and e.occurred_at < (d.day + 1)::timestamp at time zone ''UTC''
            order by e.occurred_at %s, e.id %s)',
           v_matched, v_range, k, v_dir, v_dir), ' union all ')
         from unnest(coalesce(v_split, array['true'])) k))
    when v_split is not null then
      format('select * from (%s) u order by u.occurred_at %s, u.id %s limit $1',
        (select string_agg(format(
           '(select e.occurred_at, e.id, %s as matched from app_public.audit_log e where %s and %s order by e.occurred_at %s, e.id %s limit $1)',
           v_matched, v_range, k, v_dir, v_dir), ' union all ')
         from unnest(v_split) k), v_dir, v_dir)
    else
      format('select e.occurred_at, e.id, %s as matched from app_public.audit_log e where %s order by e.occurred_at %s, e.id %s limit $1',
        v_matched, v_range, v_dir, v_dir)
    end;

  -- Read until a page of matches is found or p_scan rows were read (rows come in small batches).
  -- (000086) The statement numbers the rows it reads (n) and hands over only those the loop acts
  -- on: the matches, the stretch's last row (where to go on from), and, when a sparse stretch is
  -- to stop, the rows where it would. Fetched one by one, each row read cost PL/pgSQL ~1.2 µs.
  v_base := format(
    'select z.occurred_at, z.id, z.matched, z.n
     from (select x.occurred_at, x.id, x.matched, row_number() over w as n,
                  count(*) filter (where x.matched) over w as found
           from (%s) x
           window w as (rows between unbounded preceding and current row)) z
     where z.matched or z.n = $1%s',
    v_base,
    case when v_indexed or v_person_chars <> 0
         then format(' or (z.n >= %s and z.found * %s < %s::bigint * z.n)', v_cut, v_scan / 10, p_limit)
         else '' end);
  open v_rows for execute v_base using v_scan, v_pattern, v_alt_actors, v_alt_incidents, v_pairs, v_triples;
  loop
    fetch v_rows into r;
    exit when not found;
    v_scanned := r.n;
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
    elsif (v_indexed or v_person_chars <> 0) and v_scanned >= v_cut and v_found * (v_scan / 10) < p_limit * v_scanned then
      -- A rare word: its matches, if any, are sooner found through the names (or, 000079, a
      -- pattern of characters alone with people: through the days their names hold them).
      v_stopped := true;
      exit;
    end if;
  end loop;
  close v_rows;
  if v_full then
    return;
  end if;
  if v_stopped and v_person_chars <> 0 then
    -- (000079) the rest from the days whose names of theirs hold its characters, beyond the stretch
    return query select * from app_hidden.audit_find(p_filter || '{"by_days": true}', v_last_at, v_last_id, p_ascending,
                                                     p_limit - v_found, p_scan);
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
  -- (000095) With a surface, the actions of its entries within the window (those the namer counted
  -- per surface, day and action, and those of its entries past the names' cursor), within the
  -- filter's own, handed to the names' walk as its actions (it skips the months and lists the names
  -- without entries of them, as for the page's own). None: nothing matches.
  if p_filter->>'surface' is not null then
    select * into v_names from app_private.audit_label_state;
    v_surface_actions := array(
      select s.action from app_private.audit_surface_days s
      where s.tenant_id = v_tenant and s.surface = p_filter->>'surface'
        and s.day >= coalesce(v_lo, '-infinity'::date) and s.day <= coalesce(v_hi, 'infinity'::date)
        and (v_actions is null or s.action = any (v_actions))
      union
      select e.action from app_public.audit_log e
      where e.xid >= v_names.last_xid and (e.xid, e.id) > (v_names.last_xid, v_names.last_id)
        and e.tenant_id = v_tenant and e.surface = p_filter->>'surface'
        and (v_actions is null or e.action = any (v_actions)));
    if cardinality(v_surface_actions) = 0 then
      return;
    end if;
    p_filter := p_filter || jsonb_build_object('actions', to_jsonb(v_surface_actions));
  end if;
  -- A search with too few matches in that stretch: the rest through the names, beyond it.
  return query select * from app_private.audit_search(
    v_tenant, p_filter || jsonb_build_object('alt_actors', v_alt_actors, 'alt_incidents', v_alt_incidents, 'trigrams', to_jsonb(v_trigrams)),
    v_last_at, v_last_id, p_ascending, p_limit - v_found, v_scan);
end;
$$;

set local role :DATABASE_OWNER;
