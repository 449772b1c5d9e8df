--! Previous: sha1:e07c60ff38c3c1d3c90d81634f6512b1db77296b
--! Hash: sha1:83c613dbeef9c58ce4582f4097c512cdc0520f0e
--! Message: search-people-bounds

-- 000076 The search: a few people in one walk, less fixed work, and one bound on each side.
--
-- 1. A word with GraphQL's actorContains matching 2-16 people.
--
-- app_hidden.audit_connection_ids asked app_hidden.audit_find for the page once per person the
-- actorContains pattern matches (up to 16), and merged the streams. With a word
-- (resourceLabelContains) each stream that found its person's entries too sparse walked the names
-- (app_private.audit_search) on its own: the same days' names read again for every person. In the
-- 2,000,000-entry bench tenant "IF" with actorContains "t" (9 people), oldest first after a cursor,
-- took 77-92 ms; " #2" with actorContains "ig.tes" and milestone.completed 87-126 ms.
--
-- Now the filter names them all ("actors": a JSON array; with "actor" too, those of them who are
-- that person), and one stream reads them:
-- - audit_find reads one range of the actor index per person, merged in order (as it reads one
--   range per action), and with actions, on the days the daily counts give any of them entries
--   of the actions, each day's ranges merged;
-- - audit_search's walk keeps a name of a day when it has entries of any of them (actor_entries
--   ?| people), reads a name's entries that day no further than the sum of their counts, and checks
--   the person on each entry (actor_label = any (people));
-- - app_private.audit_filter_sql checks "actors" as it checks "actor".
-- The page's user filter ("actor") reads as before.
-- Measured in SQL, big bench tenant, medians: "IF" with "t" oldest first after a cursor 200 days
-- back 65 -> 12 ms; "ransomware" with "@" (every person) 35 -> 8.5 ms.
--
-- 2. Less fixed work per search: one sort of a day's names, one membership lookup per function.
--
-- The names' walk (app_private.audit_search) lists a day's names that may hold the word with their
-- edge (their entry nearest the cursor) and cap, in reading order, as three arrays. Each array was
-- its own ordered aggregate, so the day's names were sorted three times (a day of "ransomware" in
-- the 2,000,000-entry bench tenant has a few hundred); and with an actor but no actions each name's
-- cap ran a subquery over its entries by action for nothing (cardinality(null) is not 1). Now the
-- names are sorted once, in a subquery whose order the aggregates read (PostgreSQL keeps a sorted
-- subquery's order for an aggregate with nothing above it that reorders: no join, no grouping), and
-- the cap reads the actions only when there are some. GraphQL resourceLabelContains "ransomware",
-- big tenant, in SQL: median 5.9 -> 4.3 ms (three alternating runs of 25 calls each).
--
-- app_hidden.audit_find and app_hidden.audit_connection_ids asked app_hidden.audit_log_readable()
-- and then app_public.current_tenant_id(): two lookups of the reader's membership (~0.05-0.1 ms
-- each). app_hidden.audit_log_tenant() answers both in one (the tenant, or null for a reader who
-- may not read its log; ATPLN without the plan's auditLog, as before). And
-- app_hidden.audit_actors_matching (GraphQL actorContains) looked the reader up four times, in each
-- half of its recursive query: it is a PL/pgSQL function now, with one lookup.
--
-- 3. A cursor and a window's edge on the same side: one bound, the nearer.
--
-- Reading newest first after a cursor within a window whose "to" is older than the cursor (or oldest
-- first from a cursor older than "from"), app_hidden.audit_find gave the index both bounds on
-- occurred_at: "occurred_at < to" and the cursor's row comparison "(occurred_at, id) < (at, id)". A
-- B-tree scan (PostgreSQL 15) enters at one of them, and it took the cursor's: it read every entry
-- from the cursor to the window before the first it could return (GraphQL actorContains "g.TE" and
-- resourceLabelContains " w" in a 16-hour window ten months before the cursor, big bench tenant:
-- 82 ms, ~1,600 index pages per person; 000073 met this for a day's reads and checked the cursor on
-- each entry there). Now audit_find and the names' walk (app_private.audit_search) keep only the
-- nearer of the two (app_private.audit_nearer_bound): the cursor when the window's edge is beyond
-- it, else the edge. The entries are the same; the index is entered where the first can be.
--
-- Runs as the session's login: the functions are on the audit path (see CONVENTIONS.md).

set local role none;

create function app_private.audit_filter_actors(p_filter jsonb) returns text[]
language plpgsql immutable set search_path = pg_catalog as $$
begin
  if jsonb_typeof(p_filter->'actors') = 'array' then
    return array(select distinct x from jsonb_array_elements_text(p_filter->'actors') x
                 where p_filter->>'actor' is null or x = p_filter->>'actor' order by x);
  end if;
  return case when p_filter->>'actor' is not null then array[p_filter->>'actor'] end;
end;
$$;

comment on function app_private.audit_filter_actors(jsonb) is
  'The people a search filter keeps (its "actor", or those of its "actors" array who are that actor), without repeats; null for anyone (migration 000076).';
revoke all on function app_private.audit_filter_actors(jsonb) from public;

create function app_private.audit_nearer_bound(
  inout p_filter jsonb, inout p_cursor_at timestamptz, inout p_cursor_id bigint, p_ascending boolean)
language plpgsql immutable set search_path = pg_catalog as $$
declare
  v_from timestamptz := (p_filter->>'from')::timestamptz;
  v_to timestamptz := (p_filter->>'to')::timestamptz;
begin
  if p_cursor_at is null then
    return;
  elsif p_ascending and v_from is not null then
    -- after the cursor and from "from" (inclusive): a "from" past the cursor's time leaves it no
    -- entry to rule out; otherwise every entry after the cursor is from "from" on
    if v_from > p_cursor_at then
      p_cursor_at := null;
      p_cursor_id := null;
    else
      p_filter := p_filter - 'from';
    end if;
  elsif not p_ascending and v_to is not null then
    -- before the cursor and before "to" (exclusive), likewise
    if v_to <= p_cursor_at then
      p_cursor_at := null;
      p_cursor_id := null;
    else
      p_filter := p_filter - 'to';
    end if;
  end if;
end;
$$;

comment on function app_private.audit_nearer_bound(jsonb, timestamptz, bigint, boolean) is
  'A search''s filter and cursor with only the nearer of the cursor and the window''s edge on the side read towards ("from" oldest first, "to" newest first): the same entries, one bound on the time for the index (migration 000076).';
revoke all on function app_private.audit_nearer_bound(jsonb, timestamptz, bigint, boolean) from public;

create or replace function app_private.audit_filter_sql(p_filter jsonb) returns text
language plpgsql immutable set search_path = pg_catalog as $$
declare
  v text[] := '{}';
  -- (000076) "actor", or those of "actors" who are that actor (app_private.audit_filter_actors)
  v_actors text[] := app_private.audit_filter_actors(p_filter);
begin
  if cardinality(v_actors) = 1 then
    v := v || format('e.actor_label = %L', v_actors[1]);
  elsif v_actors is not null then
    v := v || format('e.actor_label = any (%L::text[])', v_actors);
  end if;
  if p_filter->>'incident' is not null then
    v := v || format('e.incident_id = %L::uuid', p_filter->>'incident');
  end if;
  if p_filter->>'surface' is not null then
    v := v || format('e.surface = %L', p_filter->>'surface');
  end if;
  if p_filter->>'ip' is not null then
    v := v || format('e.ip = %L::inet', p_filter->>'ip');
  end if;
  if p_filter->>'from' is not null then
    v := v || format('e.occurred_at >= %L::timestamptz', p_filter->>'from');
  end if;
  if p_filter->>'to' is not null then
    v := v || format('e.occurred_at < %L::timestamptz', p_filter->>'to');
  end if;
  if p_filter->>'after_id' is not null then
    v := v || format('e.id > %L::bigint', p_filter->>'after_id');
  end if;
  if p_filter->>'through_id' is not null then
    v := v || format('e.id <= %L::bigint', p_filter->>'through_id');
  end if;
  return case when cardinality(v) = 0 then 'true' else array_to_string(v, ' and ') end;
end;
$$;

create or replace function app_private.audit_search(
  p_tenant uuid, p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int, p_scan int)
returns table (occurred_at timestamptz, id bigint, scan_end boolean)
-- (Its probes of the names run up to a few dozen times a call: planned once, not each time.)
language plpgsql stable set search_path = pg_catalog, public set plan_cache_mode = force_generic_plan as $$
declare
  v_pattern text := p_filter->>'pattern';
  -- In a UTF-8 database ILIKE lowers the name and the pattern and compares them with LIKE (like.c,
  -- Generic_Text_IC_like); the names keep their lowered form (label_lower, 000042), so only the
  -- pattern is lowered, once (000061; the count does the same). Another encoding: ILIKE.
  v_pattern_lower text := case when pg_catalog.getdatabaseencoding() = 'UTF8' then pg_catalog.lower(p_filter->>'pattern') end;
  -- (000075) as audit_find worked them out, when it did
  v_trigrams text[] := case when jsonb_typeof(p_filter->'trigrams') = 'array'
                            then array(select jsonb_array_elements_text(p_filter->'trigrams'))
                            else app_private.audit_pattern_trigrams(p_filter->>'pattern') end;
  -- "fields": "label": the pattern matches the resource name only (GraphQL's resourceLabelContains)
  v_label_only boolean := coalesce(p_filter->>'fields' = 'label', false);
  -- A pattern without trigrams (000062): the trigrams a matching name must have one of
  -- (a pair of ASCII letters or digits: that pair after any one character), and the names
  -- with a character outside ASCII, which must be read whatever the pattern; '{}' when the pattern
  -- holds such a character itself (then those names alone); null otherwise (every day's names).
  v_short text[] := case when cardinality(v_trigrams) = 0 then app_private.audit_short_pattern_trigrams(v_pattern_lower) end;
  -- Neither (000064): the characters with a bit (app_private.audit_char_mask) that a matching name
  -- holds; the days whose names hold them all are kept (app_private.audit_label_chars). 0: none.
  v_need bigint := case when cardinality(v_trigrams) = 0 and v_short is null
                        then coalesce(app_private.audit_pattern_char_mask(v_pattern_lower), 0) else 0 end;
  -- (000068) And its pairs of adjacent characters: the days whose names hold them all are kept.
  v_pairs bit(4096) := case when v_need <> 0 then app_private.audit_pattern_pair_masks(v_pattern_lower) end;
  -- (000075) Its runs of three literal characters with one other than a-z and 0-9 (null: none).
  v_triples bit(4096) := case when v_pattern_lower is not null then app_private.audit_pattern_triple_bits(v_pattern_lower) end;
  -- (000065) Its keys among the months' trigrams and actions (null: a pattern without trigrams or a pair).
  v_month_keys int[] := app_private.audit_pattern_month_keys(v_trigrams, v_short);
  -- (000069) And its characters' keys (all of them): null for none.
  -- (Worked out below, with actions only: the helpers cost ~0.1 ms a call, 000071.)
  v_char_keys int[];
  -- (000071) The characters with a bit and the pairs that every match holds, whatever the pattern
  -- (0: none, or a database that is not UTF-8), worked out when first needed: a month with too many
  -- matching names to list their days reads the days whose names hold them.
  v_word_chars bigint;
  v_word_pairs bit(4096);
  -- (000071) With actions, from the walk's second month on: the months left that may hold a match.
  v_months_probed int := 0;
  v_may date[];
  v_lo date;
  v_hi date;
  v_matches text := case when v_label_only then 'e.resource_label ilike $2'
                         else '(e.action ilike $2 or e.actor_label ilike $2 or e.resource_label ilike $2)' end;
  v_dir text := case when p_ascending then 'asc' else 'desc' end;
  v_from timestamptz := (p_filter->>'from')::timestamptz;
  v_to timestamptz := (p_filter->>'to')::timestamptz;
  v_state app_private.audit_label_state;
  v_actions text[];
  v_range text;
  v_cond text;
  v_cond_day text;
  v_alt_actors text[];
  v_alt_incidents uuid[];
  v_keys text[] := '{}';
  -- (000073) The people the pattern names (or the filter's person), and with actions their entries
  -- read day by day.
  v_people text[];
  v_person text;
  v_got int;
  v_day_read text;
  v_day_at timestamptz[];
  v_day_id bigint[];
  v_people_at timestamptz[] := '{}';
  v_people_id bigint[] := '{}';
  v_probe_keys int[];
  v_at timestamptz[];
  v_id bigint[];
  v_labels text[];
  v_edges timestamptz[];
  -- (000075) With actions or an actor: how many entries of them each name has that day (its named
  -- entries: those past the names' cursor are step 1's), so that no more of its entries are read.
  v_caps int[];
  v_probe text;
  v_month date;
  v_day date;
  v_first date;
  v_last date;
  v_start timestamptz;
  v_end timestamptz;
  v_days date[];
  v_rows int;
  v_i int;
  v_chunk int;
  v_work int := 0;
  v_budget int := greatest(p_limit, p_scan / 10);
  v_edge timestamptz;
  v_mark record;
  -- No condition but the tenant, the cursor and the window (GraphQL's resourceLabelContains, the
  -- page's search without other filters): a name's entries are read by a statement of this
  -- function, planned once per session, not planned again for every chunk of names (000059).
  -- (000071) An actor and actions too (GraphQL's actorContains, action and actionPrefix with
  -- resourceLabelContains, the page's user and action filters): checked on each entry.
  v_static boolean := app_private.audit_filter_sql(p_filter - 'from' - 'to' - 'actor' - 'actors') = 'true';
  -- (000076) The people (the page's user filter, or GraphQL's actorContains when it matches a few):
  -- null for anyone. Both "actor" and "actors": those of "actors" who are "actor".
  v_actors text[] := app_private.audit_filter_actors(p_filter);
begin
  -- (000076) The cursor or the window's near edge, whichever is nearer the end read towards.
  if p_cursor_at is not null and p_filter ?| array['from', 'to'] then
    select * into p_filter, p_cursor_at, p_cursor_id from app_private.audit_nearer_bound(p_filter, p_cursor_at, p_cursor_id, p_ascending);
    v_from := (p_filter->>'from')::timestamptz;
    v_to := (p_filter->>'to')::timestamptz;
  end if;
  -- The names' cursor first: entries named after this are among the names read below, or past it.
  select * into v_state from app_private.audit_label_state;
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;
  -- (000073) Not for a word of letters and digits with trigrams: a month where each of its trigrams
  -- is in a name with entries of the actions has each of its characters in one too, so the
  -- characters' keys could skip no month the trigrams' keys do not (~0.5-1 ms a search for them).
  if cardinality(v_actions) > 0 and not (cardinality(v_trigrams) > 0 and v_pattern_lower ~ '^%?[a-z0-9]+%?$') then
    v_char_keys := app_private.audit_char_month_keys(app_private.audit_pattern_char_mask(v_pattern_lower));
  end if;

  -- The range (tenant, window, cursor), and with it every condition of the filter but the
  -- pattern (app_private.audit_filter_sql: the window, actor, incident, surface, IP, capture numbers).
  v_range := format('e.tenant_id = %L::uuid', p_tenant);
  if p_cursor_at is not null then
    v_range := v_range || format(' and (e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)',
      case when p_ascending then '>' else '<' end, p_cursor_at, p_cursor_id);
  end if;
  v_cond := ' and ' || app_private.audit_filter_sql(p_filter)
    || case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end;
  -- (000073) The same for reading one day of an index: the cursor is checked on each entry, not
  -- where the index is entered (a B-tree enters at the cursor's row comparison rather than at the
  -- day's end, and read every entry from the cursor back to the day: 50 ms for a day 8 months back).
  v_cond_day := format('e.tenant_id = %L::uuid', p_tenant)
    || case when p_cursor_at is not null then format(' and ((e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)) is true',
                                                     case when p_ascending then '>' else '<' end, p_cursor_at, p_cursor_id) else '' end
    || v_cond;
  v_cond := v_range || v_cond;
  if v_from is not null then
    v_range := v_range || format(' and e.occurred_at >= %L::timestamptz', v_from);
  end if;
  if v_to is not null then
    v_range := v_range || format(' and e.occurred_at < %L::timestamptz', v_to);
  end if;

  -- 1. The actions and actors (skip scans of their indexes), people by name and incidents by
  --    current title that the pattern matches: their entries, a page at most each; and the
  --    entries past the names' cursor (not among the names yet).
  -- (audit_find has looked the people and incidents up already.) A name-only search has none of these.
  v_alt_actors := array(select jsonb_array_elements_text(p_filter->'alt_actors'));
  v_alt_incidents := array(select jsonb_array_elements_text(p_filter->'alt_incidents'))::uuid[];
  if not v_label_only then
    select v_keys || coalesce(array_agg(format('e.action = %L', x.action)), '{}') into v_keys from (
      with recursive a(action) as (
        (select e.action from app_public.audit_log e where e.tenant_id = p_tenant order by e.action using ~<~ limit 1)
        union all
        select (select e.action from app_public.audit_log e
                where e.tenant_id = p_tenant and e.action ~>~ a.action order by e.action using ~<~ limit 1)
        from a where a.action is not null)
      select a.action from a where a.action ilike v_pattern
        -- (000065) an action, actor or incident other than the filter's own has no entry to give
        and (v_actions is null or a.action = any (v_actions))) x;
    select coalesce(array_agg(x.actor), '{}') into v_people from (
      (with recursive a(actor) as (
        (select e.actor_label from app_public.audit_log e where e.tenant_id = p_tenant order by e.actor_label limit 1)
        union all
        select (select e.actor_label from app_public.audit_log e
                where e.tenant_id = p_tenant and e.actor_label > a.actor order by e.actor_label limit 1)
        from a where a.actor is not null)
      select a.actor from a where a.actor ilike v_pattern)
      union select unnest(v_alt_actors)) x
    where v_actors is null or x.actor = any (v_actors);
    if cardinality(v_actions) > 0 then
      -- (000073) With actions, a person's entries are read on the days the sealer's daily counts give
      -- them entries of the actions, nearest the cursor first, until a page of them is found (their
      -- entries not sealed yet are past the names' cursor: the last key below). Read in order, with
      -- the action checked on each, a person who never or seldom took the actions had every entry of
      -- theirs read (0.3 s for one person, 2.3 s for "@big.test" in the 2,000,000-entry bench tenant).
      v_lo := case when v_from is not null then (v_from at time zone 'UTC')::date end;
      v_hi := case when v_to is not null then (v_to at time zone 'UTC')::date end;
      if p_cursor_at is not null and p_ascending then
        v_lo := greatest(v_lo, (p_cursor_at at time zone 'UTC')::date);
      elsif p_cursor_at is not null then
        v_hi := least(v_hi, (p_cursor_at at time zone 'UTC')::date);
      end if;
      v_day_read := format(
        'select array_agg(x.occurred_at), array_agg(x.id) from (
           select e.occurred_at, e.id from app_public.audit_log e
           where %1$s and e.actor_label = $2 and e.occurred_at >= $3 and e.occurred_at < $4
           order by e.occurred_at %2$s, e.id %2$s limit $1) x',
        v_cond_day, v_dir);
      foreach v_person in array v_people loop
        v_got := 0;
        for v_day in
          select d.day from app_private.audit_activity_daily d
          where d.tenant_id = p_tenant and d.actor_label = v_person and d.action = any (v_actions)
            and (v_lo is null or d.day >= v_lo) and (v_hi is null or d.day <= v_hi)
          group by d.day
          order by case when p_ascending then d.day end, d.day desc
        loop
          execute v_day_read into v_day_at, v_day_id
            using p_limit - v_got, v_person, v_day::timestamp at time zone 'UTC', (v_day + 1)::timestamp at time zone 'UTC';
          v_people_at := v_people_at || coalesce(v_day_at, '{}');
          v_people_id := v_people_id || coalesce(v_day_id, '{}');
          v_got := v_got + coalesce(cardinality(v_day_id), 0);
          exit when v_got >= p_limit;
        end loop;
      end loop;
      v_lo := null;
      v_hi := null;
    else
      v_keys := v_keys || array(select format('e.actor_label = %L', x) from unnest(v_people) x);
    end if;
    select v_keys || coalesce(array_agg(format('e.incident_id = %L::uuid', i)), '{}') into v_keys from unnest(v_alt_incidents) i
    where p_filter->>'incident' is null or i = (p_filter->>'incident')::uuid;
  end if;
  execute format(
    'select array_agg(u.occurred_at order by u.occurred_at %1$s, u.id %1$s), array_agg(u.id order by u.occurred_at %1$s, u.id %1$s)
     from (select distinct k.occurred_at, k.id from (%2$s) k order by k.occurred_at %1$s, k.id %1$s limit $1) u',
    v_dir,
    (select string_agg(format(
       '(select e.occurred_at, e.id from app_public.audit_log e where %s and %s order by e.occurred_at %s, e.id %s limit $1)',
       v_cond, k, v_dir, v_dir), ' union all ')
     from unnest(v_keys || format(
       'e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and %3$s',
       v_state.last_xid, v_state.last_id, v_matches)) k)
    -- (000073) and the people's entries read day by day above
    || ' union all select * from unnest($3::timestamptz[], $4::bigint[])')
    into v_at, v_id using p_limit, v_pattern, v_people_at, v_people_id;
  v_at := coalesce(v_at, '{}');
  v_id := coalesce(v_id, '{}');

  -- 2. The names that match, day by day from the cursor on (a month without any in one probe),
  --    each day's in the order of their entries nearest the cursor, each name's entries that day
  --    a page at most; until no day or name left can come before the page's last entry.
  v_probe := format(
    'select array_agg(u.occurred_at order by u.occurred_at %1$s, u.id %1$s), array_agg(u.id order by u.occurred_at %1$s, u.id %1$s)
     from (select distinct k.occurred_at, k.id from (
             select x.occurred_at, x.id from unnest($2::text[], $7::int[]) l(label, cap)
             cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                 where %2$s and e.resource_label = l.label and e.occurred_at >= $5 and e.occurred_at < $6
                                   and (l.cap is null or (e.xid, e.id) <= (%3$s, %4$s))
                                   and e.occurred_at %5$s case when cardinality($3::timestamptz[]) >= $1 then ($3::timestamptz[])[$1] else %6$s end
                                 order by e.occurred_at %1$s, e.id %1$s limit least($1, l.cap)) x
             union all select * from unnest($3::timestamptz[], $4::bigint[])) k
           order by k.occurred_at %1$s, k.id %1$s limit $1) u',
    v_dir, v_cond, v_state.last_xid, v_state.last_id, case when p_ascending then '<=' else '>=' end,
    case when p_ascending then '$6' else '$5' end);
  -- (A pattern without trigrams or a pair reads every day's names, 000039, but for the days whose
  -- names lack its characters: one probe of app_private.audit_label_chars a month, 000064; the
  -- page's search comes here with such a pattern when few days have them, 000064.)
  if cardinality(v_trigrams) > 0 or v_short is not null or v_need <> 0 or (v_label_only and v_pattern is not null) then
    v_first := (select min(l.day) from app_private.audit_label_days l where l.tenant_id = p_tenant);
    v_last := (select max(l.day) from app_private.audit_label_days l where l.tenant_id = p_tenant);
    if v_from is not null then
      v_first := greatest(v_first, (v_from at time zone 'UTC')::date);
    end if;
    if v_to is not null then
      v_last := least(v_last, (v_to at time zone 'UTC')::date);
    end if;
    if p_cursor_at is not null and p_ascending then
      v_first := greatest(v_first, (p_cursor_at at time zone 'UTC')::date);
    elsif p_cursor_at is not null then
      v_last := least(v_last, (p_cursor_at at time zone 'UTC')::date);
    end if;
    v_day := case when p_ascending then v_first else v_last end;
    <<days>>
    while v_day >= v_first and v_day <= v_last loop
      v_start := v_day::timestamp at time zone 'UTC';
      v_end := (v_day + 1)::timestamp at time zone 'UTC';
      -- A full page that no entry of this day, or of the days after it, can join: done.
      exit when cardinality(v_at) >= p_limit
        and case when p_ascending then v_start > v_at[p_limit] else v_end <= v_at[p_limit] end;
      if v_work >= v_budget then
        v_edge := case when p_ascending then v_start else v_end end;
        exit;
      end if;
      if (cardinality(v_trigrams) > 0 or v_short is not null or v_need <> 0) and v_month is distinct from date_trunc('month', v_day)::date then
        -- A new month: one probe tells whether any of its names matches, and on which days when
        -- they are few (else every day of it is read).
        v_month := date_trunc('month', v_day)::date;
        if coalesce(cardinality(v_actions), 0) > 0 and (v_month_keys is not null or v_char_keys is not null) then
          v_months_probed := v_months_probed + 1;
          if v_months_probed = 2 then
            -- (000071) The walk goes on past its first month: the months left that may hold a match,
            -- in one statement each for the trigrams' and the characters' keys.
            v_lo := case when p_ascending then v_month else date_trunc('month', v_first)::date end;
            v_hi := case when p_ascending then date_trunc('month', v_last)::date else v_month end;
            if v_month_keys is not null then
              v_may := app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_month_keys, cardinality(v_trigrams) > 0, v_actions);
            end if;
            if v_char_keys is not null then
              v_may := array(select x from unnest(app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_char_keys, true, v_actions)) x
                             where v_may is null or x = any (v_may));
            end if;
          end if;
        end if;
        if coalesce(cardinality(v_actions), 0) > 0
           and (case when v_may is not null then v_month <> all (v_may)
                    else (v_month_keys is not null
                          and v_month <> all (app_private.audit_months_may_match(p_tenant, v_month, v_month, v_month_keys,
                                                                                  cardinality(v_trigrams) > 0, v_actions)))
                         or (v_char_keys is not null
                             and v_month <> all (app_private.audit_months_may_match(p_tenant, v_month, v_month, v_char_keys,
                                                                                     true, v_actions))) end) then
          -- (000065) No name of the month that holds the pattern's trigrams has entries of the actions,
          -- or (000069) none that holds one of its characters: skipped after a probe of a few rows
          -- (work as one name).
          v_work := v_work + 1;
          v_rows := 0;
        elsif v_triples is not null
              and not exists (select 1 from app_private.audit_label_chars c
                              where c.tenant_id = p_tenant and c.day >= v_month and c.day < (v_month + interval '1 month')::date
                                and app_private.audit_pairs_hold(c.triples, v_triples)) then
          -- (000075) No day of the month has a name that holds each run of three of the pattern
          -- ("s #" of "ss #"): skipped without reading the names its trigrams' keys give.
          v_work := v_work + 1;
          v_rows := 0;
        elsif v_need = 0 and v_short is null and v_pattern_lower is not null
              and (select bool_and(k like '  _') from unnest(v_trigrams) k) then
          -- (000073) The word's only trigrams are the start of a one-character word ("  1" for "#1"):
          -- most names of a month hold them, and the probe read them all (~1.4 ms for a month of
          -- the 2,000,000-entry bench tenant) to learn what the days' characters and pairs tell.
          v_work := v_work + 1;
          v_rows := 64;
        else
          v_work := v_work + 5;
          -- (The keys alone pick the rows: they are the tenant's month; its other conditions check.)
          if v_need <> 0 then
            -- (000064) The month's days whose names hold every character of the pattern that has a bit.
            select array_agg(c.day), count(*) into v_days, v_rows from app_private.audit_label_chars c
            where c.tenant_id = p_tenant and c.day >= v_month and c.day < (v_month + interval '1 month')::date
              and c.chars & v_need = v_need and app_private.audit_pairs_hold(c.pairs, v_pairs)
              and app_private.audit_pairs_hold(c.triples, v_triples);
          elsif v_short is null then
            v_probe_keys := app_private.audit_search_keys(p_tenant, v_month, v_trigrams, false, true);
            select array_agg(distinct l.day), count(*) into v_days, v_rows from (
              select l.day from (select l.* from app_private.audit_label_days l
                                 where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
              where l.tenant_id = p_tenant and l.day >= v_month and l.day < (v_month + interval '1 month')::date
                and case when v_pattern_lower is null then l.label ilike v_pattern else l.label_lower like v_pattern_lower end
                -- (000075) with entries of the actions, or of the actor, as the day's names below
                and (v_actions is null or l.action_entries ?| v_actions) and (v_actors is null or l.actor_entries ?| v_actors)
              limit 64) l;
          else
            -- (000062) The names with any of the candidate trigrams, and those outside ASCII.
            v_probe_keys := app_private.audit_search_keys(p_tenant, v_month, v_short, false, true);
            select array_agg(distinct l.day), count(*) into v_days, v_rows from (
              select l.day from (
                select l.day from (select l.* from app_private.audit_label_days l
                                   where cardinality(v_short) > 0 and app_private.audit_label_keys(l.tenant_id, l.day, l.label) && v_probe_keys offset 0) l
                where l.tenant_id = p_tenant and l.day >= v_month and l.day < (v_month + interval '1 month')::date
                  and l.label_lower like v_pattern_lower
                  and (v_actions is null or l.action_entries ?| v_actions) and (v_actors is null or l.actor_entries ?| v_actors)
                union all
                select l.day from app_private.audit_label_days l
                where l.label_lower ~ '[^\x01-\x7F]' and l.tenant_id = p_tenant
                  and l.day >= v_month and l.day < (v_month + interval '1 month')::date and l.label_lower like v_pattern_lower
                  and (v_actions is null or l.action_entries ?| v_actions) and (v_actors is null or l.actor_entries ?| v_actors)) l
              limit 64) l;
          end if;
        end if;
        if v_rows = 0 then
          v_day := case when p_ascending then (v_month + interval '1 month')::date else v_month - 1 end;
          continue;
        elsif v_rows >= 64 then
          -- (000071) Too many names to list their days: the month's days whose names hold the
          -- pattern's characters and pairs (a day without them holds no match), else every day.
          if v_word_chars is null then
            v_word_chars := case when v_pattern_lower is not null
                                 then coalesce(app_private.audit_pattern_char_mask(v_pattern_lower), 0) else 0 end;
            v_word_pairs := case when v_word_chars <> 0 then app_private.audit_pattern_pair_masks(v_pattern_lower) end;
          end if;
          v_days := null;
          if v_word_chars <> 0 or v_triples is not null then
            -- (000075) and its runs of three
            select coalesce(array_agg(c.day), '{}') into v_days from app_private.audit_label_chars c
            where c.tenant_id = p_tenant and c.day >= v_month and c.day < (v_month + interval '1 month')::date
              and c.chars & v_word_chars = v_word_chars and app_private.audit_pairs_hold(c.pairs, v_word_pairs)
              and app_private.audit_pairs_hold(c.triples, v_triples);
          end if;
        end if;
      end if;
      if v_days is not null and v_day <> all (v_days) then
        v_day := v_day + case when p_ascending then 1 else -1 end;
        continue;
      end if;
      v_work := v_work + 5;
      if cardinality(v_trigrams) > 0 then
        v_probe_keys := app_private.audit_search_keys(p_tenant, v_day, v_trigrams, true, false);
        -- (000076) sorted once, in a subquery the aggregates read in its order (nothing above it reorders)
        select array_agg(l.label), array_agg(l.edge), array_agg(l.cap)
          into v_labels, v_edges, v_caps
        from (select l.* from (
          select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge,
                 case when v_actions is not null or v_actors is not null then
                   least(case when v_actions is null then null when cardinality(v_actions) = 1 then (l.action_entries->>v_actions[1])::int
                              else (select sum(x.value::int) from jsonb_each_text(l.action_entries) x where x.key = any (v_actions))::int end,
                         case when v_actors is null then null when cardinality(v_actors) = 1 then (l.actor_entries->>v_actors[1])::int
                              else (select sum(x.value::int) from jsonb_each_text(l.actor_entries) x where x.key = any (v_actors))::int end) end as cap
          from (select l.* from app_private.audit_label_days l
                where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
          where l.tenant_id = p_tenant and l.day = v_day and case when v_pattern_lower is null then l.label ilike v_pattern else l.label_lower like v_pattern_lower end
            and (v_from is null or l.last_at >= v_from) and (v_to is null or l.first_at < v_to)
            and (p_cursor_at is null or case when p_ascending then l.last_at >= p_cursor_at else l.first_at <= p_cursor_at end)
            -- (000072) a name without an entry of the actions that day holds no match
            and (v_actions is null or l.action_entries ?| v_actions)
            -- or of the actor (the page's user filter)
            and (v_actors is null or l.actor_entries ?| v_actors)
        ) l order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label) l;
      elsif v_short is not null then
        -- (000062) The day's names with any of the candidate trigrams, and those outside ASCII.
        v_probe_keys := app_private.audit_search_keys(p_tenant, v_day, v_short, true, false);
        -- (000076) sorted once, in a subquery the aggregates read in its order (nothing above it reorders)
        select array_agg(l.label), array_agg(l.edge), array_agg(l.cap)
          into v_labels, v_edges, v_caps
        from (select l.* from (
          select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge,
                 case when v_actions is not null or v_actors is not null then
                   least(case when v_actions is null then null when cardinality(v_actions) = 1 then (l.action_entries->>v_actions[1])::int
                              else (select sum(x.value::int) from jsonb_each_text(l.action_entries) x where x.key = any (v_actions))::int end,
                         case when v_actors is null then null when cardinality(v_actors) = 1 then (l.actor_entries->>v_actors[1])::int
                              else (select sum(x.value::int) from jsonb_each_text(l.actor_entries) x where x.key = any (v_actors))::int end) end as cap
          from (
            select l.* from (select l.* from app_private.audit_label_days l
                             where cardinality(v_short) > 0 and app_private.audit_label_keys(l.tenant_id, l.day, l.label) && v_probe_keys offset 0) l
            where l.tenant_id = p_tenant and l.day = v_day
            union
            select l.* from app_private.audit_label_days l
            where l.label_lower ~ '[^\x01-\x7F]' and l.tenant_id = p_tenant and l.day = v_day) l
          where l.label_lower like v_pattern_lower
            and (v_from is null or l.last_at >= v_from) and (v_to is null or l.first_at < v_to)
            and (p_cursor_at is null or case when p_ascending then l.last_at >= p_cursor_at else l.first_at <= p_cursor_at end)
            -- (000072) a name without an entry of the actions that day holds no match
            and (v_actions is null or l.action_entries ?| v_actions)
            -- or of the actor (the page's user filter)
            and (v_actors is null or l.actor_entries ?| v_actors)
        ) l order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label) l;
      else
        -- No trigram: the day's names, each checked (the names' primary key, tenant and day).
        -- (000076) sorted once, in a subquery the aggregates read in its order (nothing above it reorders)
        select array_agg(l.label), array_agg(l.edge), array_agg(l.cap)
          into v_labels, v_edges, v_caps
        from (select l.* from (
          select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge,
                 case when v_actions is not null or v_actors is not null then
                   least(case when v_actions is null then null when cardinality(v_actions) = 1 then (l.action_entries->>v_actions[1])::int
                              else (select sum(x.value::int) from jsonb_each_text(l.action_entries) x where x.key = any (v_actions))::int end,
                         case when v_actors is null then null when cardinality(v_actors) = 1 then (l.actor_entries->>v_actors[1])::int
                              else (select sum(x.value::int) from jsonb_each_text(l.actor_entries) x where x.key = any (v_actors))::int end) end as cap
          from app_private.audit_label_days l
          where l.tenant_id = p_tenant and l.day = v_day and case when v_pattern_lower is null then l.label ilike v_pattern else l.label_lower like v_pattern_lower end
            and (v_from is null or l.last_at >= v_from) and (v_to is null or l.first_at < v_to)
            and (p_cursor_at is null or case when p_ascending then l.last_at >= p_cursor_at else l.first_at <= p_cursor_at end)
            -- (000072) a name without an entry of the actions that day holds no match
            and (v_actions is null or l.action_entries ?| v_actions)
            -- or of the actor (the page's user filter)
            and (v_actors is null or l.actor_entries ?| v_actors)
        ) l order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label) l;
      end if;
      v_i := 1;
      v_chunk := 8;
      while v_i <= coalesce(cardinality(v_labels), 0) loop
        -- A full page, and every name left has its entries after the page's last: this day is done.
        exit when cardinality(v_at) >= p_limit
          and case when p_ascending then v_edges[v_i] > v_at[p_limit] else v_edges[v_i] < v_at[p_limit] end;
        if v_work >= v_budget then
          v_edge := v_edges[v_i];
          exit days;
        end if;
        if v_static and p_ascending then
          select array_agg(u.occurred_at order by u.occurred_at, u.id), array_agg(u.id order by u.occurred_at, u.id)
            into v_at, v_id
          from (select distinct k.occurred_at, k.id from (
                  select x.occurred_at, x.id from unnest(v_labels[v_i:v_i + v_chunk - 1], v_caps[v_i:v_i + v_chunk - 1]) l(label, cap)
                  cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                      where e.tenant_id = p_tenant and e.resource_label = l.label
                                        and e.occurred_at >= v_start and e.occurred_at < v_end
                                        and (v_from is null or e.occurred_at >= v_from) and (v_to is null or e.occurred_at < v_to)
                                        and (p_cursor_at is null or (e.occurred_at, e.id) > (p_cursor_at, p_cursor_id))
                                        and (v_actors is null or e.actor_label = any (v_actors))
                                        and (v_actions is null or e.action = any (v_actions))
                                        and (l.cap is null or (e.xid, e.id) <= (v_state.last_xid, v_state.last_id))
                                        -- a full page: nothing after its last entry can join it (one bound, which the index serves)
                                        and e.occurred_at <= case when cardinality(v_at) >= p_limit then v_at[p_limit] else v_end end
                                      order by e.occurred_at, e.id limit least(p_limit, l.cap)) x
                  union all select * from unnest(v_at, v_id)) k
                order by k.occurred_at, k.id limit p_limit) u;
        elsif v_static then
          select array_agg(u.occurred_at order by u.occurred_at desc, u.id desc), array_agg(u.id order by u.occurred_at desc, u.id desc)
            into v_at, v_id
          from (select distinct k.occurred_at, k.id from (
                  select x.occurred_at, x.id from unnest(v_labels[v_i:v_i + v_chunk - 1], v_caps[v_i:v_i + v_chunk - 1]) l(label, cap)
                  cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                      where e.tenant_id = p_tenant and e.resource_label = l.label
                                        and e.occurred_at >= v_start and e.occurred_at < v_end
                                        and (v_from is null or e.occurred_at >= v_from) and (v_to is null or e.occurred_at < v_to)
                                        and (p_cursor_at is null or (e.occurred_at, e.id) < (p_cursor_at, p_cursor_id))
                                        and (v_actors is null or e.actor_label = any (v_actors))
                                        and (v_actions is null or e.action = any (v_actions))
                                        and (l.cap is null or (e.xid, e.id) <= (v_state.last_xid, v_state.last_id))
                                        -- a full page: nothing after its last entry can join it (one bound, which the index serves)
                                        and e.occurred_at >= case when cardinality(v_at) >= p_limit then v_at[p_limit] else v_start end
                                      order by e.occurred_at desc, e.id desc limit least(p_limit, l.cap)) x
                  union all select * from unnest(v_at, v_id)) k
                order by k.occurred_at desc, k.id desc limit p_limit) u;
        else
          execute v_probe into v_at, v_id
            using p_limit, v_labels[v_i:v_i + v_chunk - 1], v_at, v_id, v_start, v_end, v_caps[v_i:v_i + v_chunk - 1];
        end if;
        v_at := coalesce(v_at, '{}');
        v_id := coalesce(v_id, '{}');
        v_work := v_work + least(v_chunk, cardinality(v_labels) - v_i + 1);
        v_i := v_i + v_chunk;
        v_chunk := least(v_chunk * 2, 128);
      end loop;
      v_day := v_day + case when p_ascending then 1 else -1 end;
    end loop;
  end if;

  if v_edge is null then
    return query select u.at, u.id, false from unnest(v_at, v_id) u(at, id);
    return;
  end if;
  -- 3. Stopped early: the matches before the edge, then the first entry of the range at or beyond
  --    it (itself too when it matches), where the next call goes on from.
  return query select u.at, u.id, false from unnest(v_at, v_id) u(at, id)
    where case when p_ascending then u.at < v_edge else u.at > v_edge end;
  execute format(
    'select e.occurred_at, e.id from app_public.audit_log e where %s and e.occurred_at %s %L::timestamptz
     order by e.occurred_at %s, e.id %s limit 1',
    v_range, case when p_ascending then '>=' else '<=' end, v_edge, v_dir, v_dir)
    into v_mark;
  if v_mark.id is null then
    return;
  end if;
  return query execute format(
    'select e.occurred_at, e.id, false from app_public.audit_log e
     where e.tenant_id = %L::uuid and e.id = %L::bigint and %s
       and %s',
    p_tenant, v_mark.id, v_cond,
    case when v_label_only then 'e.resource_label ilike $1'
         else '(e.action ilike $1 or e.actor_label ilike $1 or e.resource_label ilike $1
                or e.actor_label = any ($2) or e.incident_id = any ($3))' end)
    using v_pattern, v_alt_actors, v_alt_incidents;
  occurred_at := v_mark.occurred_at;
  id := v_mark.id;
  scan_end := true;
  return next;
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
  -- (000075) The pattern's trigrams, handed on to the names' walk.
  v_trigrams text[] := app_private.audit_pattern_trigrams(p_filter->>'pattern');
  v_indexed boolean := cardinality(v_trigrams) > 0
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
  -- (000076) The people ("actor", or "actors": GraphQL's actorContains when it matches a few);
  -- null for anyone. With several and no incident, one range of the actor index each, merged.
  v_actors text[] := app_private.audit_filter_actors(p_filter);
  v_split text[];
  r record;
begin
  -- (000076) The reader's tenant when they may read its log: one lookup of their membership
  -- (audit_log_readable and current_tenant_id made one each).
  v_tenant := app_hidden.audit_log_tenant();
  if v_tenant is null or cardinality(v_actors) = 0 then
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
  if v_actors is not null and p_filter->>'incident' is null and cardinality(v_actions) > 0 then
    select * into v_seal from app_private.audit_seal_state;
    -- (The seal cursor as literals: one short range of the sealing order's index.)
    v_days := format(
      'select d.day from app_private.audit_activity_daily d
       where d.tenant_id = %1$L::uuid and d.actor_label = any (%2$L::text[]) and d.action = any (%3$L::text[])
         and d.day >= %4$L::date and d.day <= %5$L::date
       union
       select (e.occurred_at at time zone ''UTC'')::date from app_public.audit_log e
       where e.xid >= %6$s and (e.xid, e.id) > (%6$s, %7$s) and e.tenant_id = %1$L::uuid and e.actor_label = any (%2$L::text[])
         and e.action = any (%3$L::text[])',
      v_tenant, v_actors, v_actions, coalesce(v_lo, '-infinity'::date), coalesce(v_hi, 'infinity'::date),
      v_seal.last_xid, v_seal.last_id);
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
  -- Everything else is checked on the rows read. (The key: the incident, else the actor, else the IP.)
  if p_filter->>'incident' is not null then
    v_range := v_range || format(' and e.incident_id = %L::uuid', p_filter->>'incident');
  elsif cardinality(v_actors) = 1 then
    v_range := v_range || format(' and e.actor_label = %L', v_actors[1]);
  elsif v_actors is not null then
    -- (000076) each person's range, merged in order (below)
    v_split := array(select format('e.actor_label = %L', a) from unnest(v_actors) a);
  elsif p_filter->>'ip' is not null then
    v_range := v_range || format(' and e.ip = %L::inet', p_filter->>'ip');
    v_keyed_ip := true;
  end if;
  if p_filter->>'incident' is not null and v_actors is not null then
    v_check := v_check || format('e.actor_label = any (%L::text[])', v_actors);
  end if;
  if v_days is not null then
    -- (000073, 000074) the actions and the surface are the days' range (below)
    if cardinality(v_actions) > 0 then
      v_range := v_range || format(' and e.action = any (%L::text[])', v_actions);
    end if;
    if p_filter->>'surface' is not null then
      v_range := v_range || format(' and e.surface = %L', p_filter->>'surface');
    end if;
  elsif (p_filter->>'incident' is not null or v_actors is not null or v_keyed_ip) and cardinality(v_actions) > 0 then
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
      -- read every day's entries before the first row.)
      format('select x.occurred_at, x.id, x.matched
              from (select u.day from (%1$s) u order by u.day %2$s) d
              cross join lateral (select y.* from (%3$s) y order by y.occurred_at %2$s, y.id %2$s) x
              limit $1',
        v_days, v_dir,
        (select string_agg(format(
           'select e.occurred_at, e.id, %s as matched from app_public.audit_log e
            where %s and %s and e.occurred_at >= d.day::timestamp at time zone ''UTC''
              and e.occurred_at < (d.day + 1)::timestamp at time zone ''UTC''',
           v_matched, v_range, k), ' union all ')
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
    v_tenant, p_filter || jsonb_build_object('alt_actors', v_alt_actors, 'alt_incidents', v_alt_incidents, 'trigrams', to_jsonb(v_trigrams)),
    v_last_at, v_last_id, p_ascending, p_limit - v_found, v_scan);
end;
$$;

create or replace function app_hidden.audit_connection_ids(
  p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int)
returns bigint[]
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_find jsonb := p_filter - 'actorPattern' - 'labelPattern' - 'actionPrefix' - 'actions';
  v_exact text[] := array[app_private.audit_filter_sql(p_filter)];
  v_actions text[];
  v_actors text[];
  v_ats timestamptz[] := '{}';
  v_ids bigint[] := '{}';
  v_batch bigint[];
  v_batch_ats timestamptz[];
  v_asked int;
  v_got int;
  v_rows int;
  v_marker boolean;
  v_at timestamptz;
  v_id bigint;
  r record;
begin
  -- (000076) one lookup of the reader's membership, as audit_find
  v_tenant := app_hidden.audit_log_tenant();
  if v_tenant is null or p_limit < 1 then
    return '{}';
  end if;

  if p_filter ? 'actions' then
    select array_agg(distinct x) into v_actions from jsonb_array_elements_text(p_filter->'actions') x;
  end if;
  if p_filter->>'actionPrefix' is not null then
    v_actions := case when v_actions is null then app_private.audit_actions_like(v_tenant, p_filter->>'actionPrefix')
                      else array(select x from unnest(v_actions) x where x like p_filter->>'actionPrefix') end;
    v_exact := v_exact || format('e.action like %L', p_filter->>'actionPrefix');
  end if;
  if v_actions is not null then
    if cardinality(v_actions) = 0 then
      return '{}';
    end if;
    v_find := v_find || jsonb_build_object('actions', to_jsonb(v_actions));
    v_exact := v_exact || format('e.action = any (%L::text[])', v_actions);
  end if;
  if p_filter->>'actorPattern' is not null then
    v_exact := v_exact || format('e.actor_label ilike %L', p_filter->>'actorPattern');
    if p_filter->>'actor' is null then
      v_actors := app_hidden.audit_actors_matching(p_filter->>'actorPattern');
      if cardinality(v_actors) = 0 then
        return '{}';
      elsif cardinality(v_actors) > 16 then
        -- Many actors: without a word it is the page's search for the pattern (its candidates are
        -- the entries of those actors, and of actions and names that match too).
        if p_filter->>'labelPattern' is null then
          v_find := v_find || jsonb_build_object('pattern', p_filter->>'actorPattern');
        end if;
      else
        -- (000076) A few: their entries alone, in one walk (audit_find's "actors"; before, a
        -- stream of its own for each person, and each walked the names again: 58-126 ms for a word
        -- with a pattern matching 2-16 people in the 2,000,000-entry bench tenant).
        v_find := v_find || jsonb_build_object('actors', to_jsonb(v_actors));
      end if;
    end if;
  end if;
  if p_filter->>'labelPattern' is not null then
    v_exact := v_exact || format('e.resource_label ilike %L', p_filter->>'labelPattern');
    -- the resource name only: no people, incidents, actions or actors to look up (000034)
    v_find := v_find || jsonb_build_object('pattern', p_filter->>'labelPattern', 'fields', 'label');
  end if;

  -- audit_find's matches in order, checked exactly, until p_limit or their end.
  v_at := p_cursor_at;
  v_id := p_cursor_id;
  v_got := 0;
  loop
    v_asked := p_limit - v_got;
    v_batch := '{}';
    v_rows := 0;
    v_marker := false;
    for r in select * from app_hidden.audit_find(v_find, v_at, v_id, p_ascending, v_asked) loop
      v_at := r.occurred_at;
      v_id := r.id;
      if r.scan_end then
        v_marker := true;
      else
        v_rows := v_rows + 1;
        v_batch := v_batch || r.id;
      end if;
    end loop;
    if v_rows > 0 then
      execute format(
        'select coalesce(array_agg(e.occurred_at), ''{}''), coalesce(array_agg(e.id), ''{}'')
         from app_public.audit_log e where e.tenant_id = %L::uuid and e.id = any ($1) and %s',
        v_tenant, array_to_string(v_exact, ' and '))
        into v_batch_ats, v_batch using v_batch;
      v_ats := v_ats || v_batch_ats;
      v_ids := v_ids || v_batch;
      v_got := v_got + cardinality(v_batch);
    end if;
    -- Enough, or the stream ended (fewer matches than asked and no place to go on from).
    exit when v_got >= p_limit or (not v_marker and v_rows < v_asked);
  end loop;

  return array(
    select u.id from unnest(v_ats, v_ids) u(at, id)
    order by case when p_ascending then u.at end, case when p_ascending then u.id end,
             u.at desc, u.id desc
    limit p_limit);
end;
$$;

comment on function app_hidden.audit_connection_ids(jsonb, timestamptz, bigint, boolean, int) is
  'Capture numbers of the next entries of the current tenant matching a GraphQL auditLogs condition, after the cursor, in (occurred_at, id) order: what the API''s search conditions read. An actor pattern matching a few people reads them in one stream (migration 000076).';

create or replace function app_hidden.audit_actors_matching(p_pattern text) returns text[]
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  -- (000076) The reader's tenant, found once (the SQL function looked it up four times: the tenant
  -- and whether its log may be read, in each half of the recursive query; ~0.15 ms).
  v_tenant uuid := app_hidden.audit_log_tenant();
begin
  if v_tenant is null then
    return '{}';
  end if;
  return (
    with recursive actors(actor) as (
      (select e.actor_label from app_public.audit_log e
       where e.tenant_id = v_tenant
       order by e.actor_label limit 1)
      union all
      select (select e.actor_label from app_public.audit_log e
              where e.tenant_id = v_tenant and e.actor_label > a.actor
              order by e.actor_label limit 1)
      from actors a where a.actor is not null
    )
    select coalesce(array_agg(actor), '{}') from actors where actor ilike p_pattern);
end;
$$;

set local role :DATABASE_OWNER;
