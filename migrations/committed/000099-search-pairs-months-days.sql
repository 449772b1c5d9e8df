--! Previous: sha1:5eda7c309110e7765de6373735109dfb51c8a409
--! Hash: sha1:ebdaad474c7c96f4099c9b62a07481d99fbbcfba
--! Message: search-pairs-months-days

-- 000099 Two letters or digits with actions or people: three costs of the walk in a large tenant.
--
-- The walk of audit_search for a pattern without trigrams ("ir", "ca", "pt") with actions or
-- people, in the 2,000,000-entry bench tenant (the 300-entry tenant's search ends in its first
-- stretch):
-- 1. A month's days from the people's pairs of the actions alone. The month's days come from each
--    person's pairs per day and action (app_private.audit_actor_pair_days, 000098), and the
--    statement asked for "v_actions is null or d.action = any (v_actions)": in the plan made once a
--    session (the function plans its statements generically) that cannot be part of the index's
--    range, so each person's rows of every action that month were read and their pairs unpacked
--    ("ir" with milestone.completed: 1,440 rows for the 240 of the action, ~2.3 ms of ~4 ms). The
--    statement now has a part with actions and one without, and the plan runs only the one that
--    applies (a condition on the variables alone is checked once, before the part is read).
-- 2. The months that may hold a match, a stretch of months at a time. From a walk's second month
--    on, the months left that may hold a match (000071: the namer's trigrams and characters of each
--    month, with their actions and people) were found for every month left at once: ~0.1 ms a
--    month, ~1.2 ms for the year, when most walks end a month or two after their first ("ca" with
--    export.requested, whose matches are a month back: ~1.2 ms of ~4 ms). They are now found a
--    stretch at a time, each three times as long as the last (1, 3, 9, … months): a walk that ends
--    in its second month reads that month's keys alone, and one through the whole year makes three
--    such statements instead of one (~0.1 ms each; twice as long each time made five, and a walk
--    without a match ~0.35 ms slower).
-- 3. A day's entries of the actions or people read in the walk's order, up to a page of matches.
--    On a day where the people's or the actions' entries are fewer than those whose names hold the
--    pattern's rarest pair, those entries are read from the log with the pattern checked on each
--    (000098). All of the day's entries of each action or person were read, then the matches
--    sorted: "pt" with incident.updated read the 3,561 entries of the action on its first day with
--    a match (6.6 ms, 3,876 buffers) for a page that the first few hundred hold. Each action's or
--    person's entries are now read in the walk's order through its index, with the cursor and the
--    pattern checked as they are read, and stop at a page of matches; a statement for each
--    direction, as the walk's other reads.
-- (Written as three migrations before they landed; one now.)
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

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
  v_both int[]; -- (000078) both, when every key must be there
  -- (000071) The characters with a bit and the pairs that every match holds, whatever the pattern
  -- (0: none, or a database that is not UTF-8), worked out when first needed: a month with too many
  -- matching names to list their days reads the days whose names hold them.
  v_word_chars bigint;
  v_word_pairs bit(4096);
  -- (000071) With actions, from the walk's second month on: the months left that may hold a match.
  v_months_probed int := 0;
  -- (000099) the last month v_may tells of, in the walk's direction, and how many months it tells of
  v_may_edge date;
  v_may_span int;
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
  v_edge_range text; -- (000094) the range with the cursor checked on each entry
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
  -- (000079) With people: the characters with a bit that every match of the word holds (0: none, or
  -- a database that is not UTF-8), and the days of the month read whose names of theirs hold them.
  v_person_need bigint := case when v_actors is not null and v_pattern_lower is not null
                               then coalesce(app_private.audit_pattern_char_mask(v_pattern_lower), 0) else 0 end;
  v_person_days date[];
  -- (000089) The actions the word names, and with people or a surface, the days those have them.
  v_word_actions text[];
  v_key_days text;
  v_surface_days date[]; -- (000089) with a surface: the days it has entries (of the actions)
  v_person_months int := 0;
  -- (000098) A day's entries of the actions, and of the people, as the sealer counted them, the
  -- fewer of the two, and which is read (v_ways: true for the actions).
  v_by_action bigint;
  v_by_actor bigint;
  v_fewest bigint;
  v_ways boolean;
  -- (000098) Of a pattern without trigrams, its pairs of adjacent ASCII letters or digits (null: none,
  -- or a database that is not UTF-8): with actions or people, its days are those the people's
  -- names of the actions hold them.
  v_short_pairs text[] := case when v_short is not null and v_pattern_lower is not null then
    nullif(array(select distinct substr(r[1], i, 2)
                 from regexp_matches(v_pattern_lower, '[a-z0-9]{2,}', 'g') r
                 cross join generate_series(1, length(r[1]) - 1) i), '{}') end;
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
  -- (000097) Or with people: the months' characters keep the people of their names too.
  if (cardinality(v_actions) > 0 or v_actors is not null)
     and not (cardinality(v_trigrams) > 0 and v_pattern_lower ~ '^%?[a-z0-9]+%?$') then
    v_char_keys := app_private.audit_char_month_keys(app_private.audit_pattern_char_mask(v_pattern_lower));
  end if;
  -- (000078) The trigrams' and the characters' keys when every one of them must be there: the
  -- months are probed for both at once, not once for each (a probe is ~0.05-0.1 ms).
  if v_month_keys is not null and v_char_keys is not null and cardinality(v_trigrams) > 0 then
    v_both := v_month_keys || v_char_keys;
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
  -- (000094) With the window, this is also the range read from an edge beyond the cursor (step 3):
  -- an index is then entered at the edge, not at the cursor's row comparison.
  v_edge_range := format('e.tenant_id = %L::uuid', p_tenant)
    || case when p_cursor_at is not null then format(' and ((e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)) is true',
                                                     case when p_ascending then '>' else '<' end, p_cursor_at, p_cursor_id) else '' end;
  v_cond_day := v_edge_range || v_cond;
  v_cond := v_range || v_cond;
  if v_from is not null then
    v_range := v_range || format(' and e.occurred_at >= %L::timestamptz', v_from);
    v_edge_range := v_edge_range || format(' and e.occurred_at >= %L::timestamptz', v_from);
  end if;
  if v_to is not null then
    v_range := v_range || format(' and e.occurred_at < %L::timestamptz', v_to);
    v_edge_range := v_edge_range || format(' and e.occurred_at < %L::timestamptz', v_to);
  end if;

  -- 1. The actions and actors (skip scans of their indexes), people by name and incidents by
  --    current title that the pattern matches: their entries, a page at most each; and the
  --    entries past the names' cursor (not among the names yet).
  -- (audit_find has looked the people and incidents up already.) A name-only search has none of these.
  v_alt_actors := array(select jsonb_array_elements_text(p_filter->'alt_actors'));
  v_alt_incidents := array(select jsonb_array_elements_text(p_filter->'alt_incidents'))::uuid[];
  if not v_label_only then
    select coalesce(array_agg(x.action), '{}') into v_word_actions from (
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
    -- (000089) The actions the word names: each is read whole (a key below), or, with people or a
    -- surface and no incident or IP address to read by, day by day on the days the kept counts give
    -- those people (the sealer's daily counts) and that surface (the namer's) entries of them, up to
    -- a page: read whole with the person or surface checked on each entry, an action they never or
    -- seldom meet had every entry of it read ("io" with the system, which never signs in: every
    -- sign-in, 0.4 s in the 2,000,000-entry bench tenant; "signed" through the web, 0.34 s). Their
    -- entries past the names' cursor are the last key's, below.
    if cardinality(v_word_actions) > 0 and (v_actors is not null or p_filter->>'surface' is not null)
       and p_filter->>'incident' is null and p_filter->>'ip' is null then
      v_lo := case when v_from is not null then (v_from at time zone 'UTC')::date end;
      v_hi := case when v_to is not null then (v_to at time zone 'UTC')::date end;
      if p_cursor_at is not null and p_ascending then
        v_lo := greatest(v_lo, (p_cursor_at at time zone 'UTC')::date);
      elsif p_cursor_at is not null then
        v_hi := least(v_hi, (p_cursor_at at time zone 'UTC')::date);
      end if;
      -- (with both, a day and action that both have: the people take it through the surface)
      v_key_days := case
        when v_actors is not null and p_filter->>'surface' is not null then
          'select distinct d.day from app_private.audit_activity_daily d
           join app_private.audit_surface_days s
             on s.tenant_id = d.tenant_id and s.surface = $6 and s.day = d.day and s.action = d.action
           where d.tenant_id = $1 and d.actor_label = any ($2) and d.action = any ($3)
             and ($4::date is null or d.day >= $4) and ($5::date is null or d.day <= $5)'
        when v_actors is not null then
          'select distinct d.day from app_private.audit_activity_daily d
           where d.tenant_id = $1 and d.actor_label = any ($2) and d.action = any ($3)
             and ($4::date is null or d.day >= $4) and ($5::date is null or d.day <= $5)'
        else
          'select distinct s.day from app_private.audit_surface_days s
           where s.tenant_id = $1 and s.surface = $6 and s.action = any ($3)
             and ($4::date is null or s.day >= $4) and ($5::date is null or s.day <= $5)' end;
      v_day_read := format(
        'select array_agg(x.occurred_at), array_agg(x.id) from (
           select e.occurred_at, e.id from app_public.audit_log e
           where %1$s and e.action = any ($2) and e.occurred_at >= $3 and e.occurred_at < $4
           order by e.occurred_at %2$s, e.id %2$s limit $1) x',
        v_cond_day, v_dir);
      v_got := 0;
      for v_day in execute format('select k.day from (%s) k order by k.day %s', v_key_days, v_dir)
        using p_tenant, v_actors, v_word_actions, v_lo, v_hi, p_filter->>'surface'
      loop
        execute v_day_read into v_day_at, v_day_id
          using p_limit - v_got, v_word_actions, v_day::timestamp at time zone 'UTC', (v_day + 1)::timestamp at time zone 'UTC';
        v_people_at := v_people_at || coalesce(v_day_at, '{}');
        v_people_id := v_people_id || coalesce(v_day_id, '{}');
        v_got := v_got + coalesce(cardinality(v_day_id), 0);
        exit when v_got >= p_limit;
      end loop;
      v_lo := null;
      v_hi := null;
    else
      v_keys := v_keys || array(select format('e.action = %L', a) from unnest(v_word_actions) a);
    end if;
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
            -- (000089) with a surface, that has entries of the action that day
            and (p_filter->>'surface' is null
                 or exists (select from app_private.audit_surface_days s
                            where s.tenant_id = d.tenant_id and s.surface = p_filter->>'surface' and s.day = d.day and s.action = d.action))
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
    elsif p_filter->>'surface' is not null and p_filter->>'incident' is null and p_filter->>'ip' is null then
      -- (000089) The people the word names, with a surface: their entries on the days on which they
      -- took an action that the surface has entries of that day, day by day up to a page (read whole,
      -- with the surface checked on each: "system" through the API, which the system never uses,
      -- read all of the system's entries, 0.31 s in the 2,000,000-entry bench tenant).
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
          join app_private.audit_surface_days s
            on s.tenant_id = d.tenant_id and s.surface = p_filter->>'surface' and s.day = d.day and s.action = d.action
          where d.tenant_id = p_tenant and d.actor_label = v_person
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
  -- (000078) The entries past the names' cursor: none when the log's last entry in sealing order
  -- (any tenant's: one step back along its index) is not past it. Then, with no other key and no
  -- person's entries, nothing is planned (the statement below is planned at every call: ~0.3 ms).
  if coalesce((select (e.xid, e.id) > (v_state.last_xid, v_state.last_id) from app_public.audit_log e
               order by e.xid desc, e.id desc limit 1), false) then
    v_keys := v_keys || format('e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and %3$s',
                               v_state.last_xid, v_state.last_id, v_matches);
  end if;
  if cardinality(v_keys) > 0 or cardinality(v_people_id) > 0 then
    execute format(
      'select array_agg(u.occurred_at order by u.occurred_at %1$s, u.id %1$s), array_agg(u.id order by u.occurred_at %1$s, u.id %1$s)
       from (select distinct k.occurred_at, k.id from (%2$s) k order by k.occurred_at %1$s, k.id %1$s limit $1) u',
      v_dir,
      concat_ws(' union all ',
        (select string_agg(format(
           '(select e.occurred_at, e.id from app_public.audit_log e where %s and %s order by e.occurred_at %s, e.id %s limit $1)',
           v_cond, k, v_dir, v_dir), ' union all ')
         from unnest(v_keys) k),
        -- (000073) and the people's entries read day by day above
        'select * from unnest($3::timestamptz[], $4::bigint[]) p(occurred_at, id)'))
      into v_at, v_id using p_limit, v_pattern, v_people_at, v_people_id;
  end if;
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
    -- (000089) With a surface: the days on which it has entries (of the actions), as the namer keeps
    -- them with the names (a name of another day has no entry through it); the walk goes from one
    -- to the next. A surface that the people's names never meet had every day's names read, up to
    -- the walk's budget ("ng: D" with emil@ through SQL in the 2,000,000-entry bench tenant: 0.12 s).
    if p_filter->>'surface' is not null then
      select coalesce(array_agg(x.day order by x.day), '{}') into v_surface_days from (
        select distinct s.day from app_private.audit_surface_days s
        where s.tenant_id = p_tenant and s.surface = p_filter->>'surface'
          and (v_actions is null or s.action = any (v_actions)) and s.day >= v_first and s.day <= v_last) x;
    end if;
    v_day := case when p_ascending then v_first else v_last end;
    <<days>>
    while v_day >= v_first and v_day <= v_last loop
      if v_surface_days is not null then
        v_day := case when p_ascending then (select min(d) from unnest(v_surface_days) d where d >= v_day)
                      else (select max(d) from unnest(v_surface_days) d where d <= v_day) end;
        exit when v_day is null;
      end if;
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
        -- (000079) With people, from the walk's second month on: the month's days on which their
        -- names (of the actions) hold every character of the word that has a bit
        -- (app_private.audit_actor_chars, kept by the namer with the names, up to the same cursor:
        -- the entries past it are step 1's). A month without one is skipped before its names are
        -- probed: a word whose names the people never meet in the actions had every month probed and
        -- most days' names read (" via b" with every person of the 2,000,000-entry bench tenant and
        -- session.signed_in or export.requested: 0.58 s, no match). (Not in the first month, where
        -- most such walks end: ~0.3-1 ms for the people's days of a month.)
        v_person_months := v_person_months + 1;
        if v_person_need <> 0 and v_person_months = 2 then
          -- (the days of every month left, in one statement)
          select coalesce(array_agg(distinct c.day), '{}') into v_person_days from app_private.audit_actor_chars c
          where c.tenant_id = p_tenant and c.actor_label = any (v_actors)
            and c.day >= case when p_ascending then v_month else v_first end
            and c.day <= case when p_ascending then v_last else (v_month + interval '1 month')::date - 1 end
            and (v_actions is null or c.action = any (v_actions)) and c.chars & v_person_need = v_person_need;
        end if;
        if v_person_need <> 0 and v_person_months >= 2
           and (select bool_or(d >= v_month and d < (v_month + interval '1 month')::date) from unnest(v_person_days) d) is not true then
          v_work := v_work + 1;
          v_day := case when p_ascending then (v_month + interval '1 month')::date else v_month - 1 end;
          continue;
        end if;
        -- (000097) with people too, whose names of each month the namer keeps with the trigrams
        if (coalesce(cardinality(v_actions), 0) > 0 or v_actors is not null) and (v_month_keys is not null or v_char_keys is not null) then
          v_months_probed := v_months_probed + 1;
          if v_months_probed >= 2 and (v_may_edge is null or case when p_ascending then v_month > v_may_edge else v_month < v_may_edge end) then
            -- (000071) The walk goes on past its first month: the months left that may hold a match,
            -- in one statement each for the trigrams' and the characters' keys. (000099) Those of a
            -- stretch of months at a time, each stretch three times as long as the last (1, 3, 9, …
            -- months): each month costs ~0.1 ms in the 2,000,000-entry bench tenant, and most walks
            -- end a month or two after their first ("ca" with export.requested, a month back: 1.2 ms
            -- for the year's months at once, of ~4 ms); a walk through a year makes three such
            -- statements instead of one (~0.1 ms each).
            v_may_span := coalesce(v_may_span * 3, 1);
            v_lo := case when p_ascending then v_month
                         else greatest(date_trunc('month', v_first)::date, (v_month - make_interval(months => v_may_span - 1))::date) end;
            v_hi := case when p_ascending then least(date_trunc('month', v_last)::date, (v_month + make_interval(months => v_may_span - 1))::date)
                         else v_month end;
            v_may_edge := case when p_ascending then v_hi else v_lo end;
            v_may := null;
            if v_both is not null then
              v_may := app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_both, true, v_actions, v_actors);
            else
              if v_month_keys is not null then
                v_may := app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_month_keys, cardinality(v_trigrams) > 0, v_actions, v_actors);
              end if;
              if v_char_keys is not null then
                v_may := array(select x from unnest(app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_char_keys, true, v_actions, v_actors)) x
                               where v_may is null or x = any (v_may));
              end if;
            end if;
          end if;
        end if;
        if (coalesce(cardinality(v_actions), 0) > 0 or v_actors is not null)
           and (case when v_may is not null then v_month <> all (v_may)
                    when v_both is not null then v_month <> all (app_private.audit_months_may_match(p_tenant, v_month, v_month, v_both, true, v_actions, v_actors))
                    else (v_month_keys is not null
                          and v_month <> all (app_private.audit_months_may_match(p_tenant, v_month, v_month, v_month_keys,
                                                                                  cardinality(v_trigrams) > 0, v_actions, v_actors)))
                         or (v_char_keys is not null
                             and v_month <> all (app_private.audit_months_may_match(p_tenant, v_month, v_month, v_char_keys,
                                                                                     true, v_actions, v_actors))) end) then
          -- (000065) No name of the month that holds the pattern's trigrams has entries of the actions,
          -- or (000069) none that holds one of its characters, (000097) or of the people: skipped
          -- after a probe of a few rows
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
            -- (000078) app_private.audit_probe_keys: as audit_search_keys, planned once a session (below too)
            v_probe_keys := app_private.audit_probe_keys(p_tenant, v_month, v_trigrams, false);
            select array_agg(distinct l.day), count(*) into v_days, v_rows from (
              select l.day from (select l.* from app_private.audit_label_days l
                                 where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
              where l.tenant_id = p_tenant and l.day >= v_month and l.day < (v_month + interval '1 month')::date
                and case when v_pattern_lower is null then l.label ilike v_pattern else l.label_lower like v_pattern_lower end
                -- (000075) with entries of the actions, or of the actor, as the day's names below
                and (v_actions is null or l.action_entries ?| v_actions) and (v_actors is null or l.actor_entries ?| v_actors)
              limit 64) l;
          elsif (v_actions is not null or v_actors is not null) and v_short_pairs is not null then
            -- (000098) Two ASCII letters or digits (a pattern without trigrams) with actions or
            -- people: the month's days on which the people's entries of the actions have a name
            -- that holds its pairs (app_private.audit_actor_pair_days, kept per person, day and
            -- action with the names), and those on which a name outside ASCII (left out of the
            -- pairs) matches. The names that hold the pair were probed for some with entries of the
            -- actions, up to 64: "ca" with export.requested in the 2,000,000-entry bench tenant read
            -- all of a month's ~16,000 names that hold "ca" to find none, and in the month with
            -- exports listed no days (64 found), so that each day's ~550 names were read.
            -- (000099) With actions and without, in two parts of which the plan runs one: with
            -- "v_actions is null or" the actions were no part of the index's range in the plan made
            -- once a session, so every row of the people's month was read and its pairs unpacked
            -- (1,440 rows for 40 days of "ir" with milestone.completed in the bench tenant, ~2.3 ms;
            -- with the actions in the range, 240 rows and ~0.5 ms).
            select coalesce(array_agg(x.day), '{}'), count(*) into v_days, v_rows from (
              select d.day from app_private.audit_actor_pair_days d
              where v_actions is not null and d.tenant_id = p_tenant
                -- (the people with entries of the actions that month: the key's first column)
                and d.actor_label = any (coalesce(v_actors, array(
                      select distinct a.actor_label from app_private.audit_activity_daily a
                      where a.tenant_id = p_tenant and a.day >= v_month and a.day < (v_month + interval '1 month')::date
                        and a.action = any (v_actions))))
                and d.day >= v_month and d.day < (v_month + interval '1 month')::date
                and d.action = any (v_actions) and d.entries ?& v_short_pairs
              union
              select d.day from app_private.audit_actor_pair_days d
              where v_actions is null and d.tenant_id = p_tenant and d.actor_label = any (v_actors)
                and d.day >= v_month and d.day < (v_month + interval '1 month')::date and d.entries ?& v_short_pairs
              union
              select l.day from app_private.audit_label_days l
              where l.label_lower ~ '[^\x01-\x7F]' and l.tenant_id = p_tenant
                and l.day >= v_month and l.day < (v_month + interval '1 month')::date and l.label_lower like v_pattern_lower
                and (v_actions is null or l.action_entries ?| v_actions) and (v_actors is null or l.actor_entries ?| v_actors)) x;
          else
            -- (000062) The names with any of the candidate trigrams, and those outside ASCII.
            v_probe_keys := app_private.audit_probe_keys(p_tenant, v_month, v_short, false);
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
        if v_person_need <> 0 and v_person_months >= 2 then
          -- (000079) and of those, the days the people's names hold its characters
          v_days := case when v_days is null then v_person_days
                         else array(select d from unnest(v_days) d where d = any (v_person_days)) end;
        end if;
      end if;
      if v_days is not null and v_day <> all (v_days) then
        v_day := v_day + case when p_ascending then 1 else -1 end;
        continue;
      end if;
      -- (000098) And on such a day, when the people's or the actions' entries that day (the sealer's
      -- daily counts) are no more than those of the names that hold the pattern's rarest pair, those
      -- entries are read from the log with the pattern checked on each, rather than the day's names
      -- that hold it and then the entries of those with the actions ("ca" with export.requested on
      -- a day of the bench tenant: ~550 names, ~270 exports, ~190 of them matches). (The counts
      -- choose the way only: the entries are read from the log, those not counted yet too.)
      if v_static and (v_actions is not null or v_actors is not null) and v_short_pairs is not null then
        v_by_action := case when v_actions is not null then
          coalesce((select sum(d.entries) from app_private.audit_activity_daily d
                    where d.tenant_id = p_tenant and d.day = v_day and d.action = any (v_actions)), 0) end;
        v_by_actor := case when v_actors is not null then
          coalesce((select sum(d.entries) from app_private.audit_activity_daily d
                    where d.tenant_id = p_tenant and d.actor_label = any (v_actors) and d.day = v_day), 0) end;
        v_fewest := least(v_by_action, v_by_actor);
        -- (the day's entries whose names hold the pattern's rarest pair: at least as many as the
        -- names below would be, read one by one, with the entries of those that match)
        if v_fewest <= (select min(coalesce((d.entries->>p)::bigint, 0)) from app_private.audit_label_pair_days d
                        cross join unnest(v_short_pairs) p where d.tenant_id = p_tenant and d.day = v_day) then
          -- (the smaller: through the log's index of the actions or of the people, planned once a session;
          -- offset 0, so that each is read by its own action or person, not the day's entries joined)
          v_ways := v_by_action is not null and (v_by_actor is null or v_by_action <= v_by_actor);
          -- (000099) Each action's or person's entries of the day in the walk's order, up to a page of
          -- matches (its index's order; the pattern and the cursor checked as they are read, the
          -- cursor not in the index's range: a row comparison beside the day's bounds on the same
          -- column can make the scan start at the range's end instead of the day's): the
          -- day's entries were read whole, then sorted ("pt" with incident.updated, whose first day
          -- of a match in the bench tenant has 3,561 entries of it: 6.6 ms for a page found among the
          -- first few hundred).
          if p_ascending then
            select array_agg(u.occurred_at order by u.occurred_at, u.id), array_agg(u.id order by u.occurred_at, u.id)
              into v_at, v_id
            from (select distinct k.occurred_at, k.id from (
                    select x.* from unnest(case when v_ways then v_actions end) w(way)
                    cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                        where e.tenant_id = p_tenant and e.action = w.way
                                          and e.occurred_at >= greatest(v_start, v_from) and e.occurred_at < least(v_end, v_to)
                                          and (p_cursor_at is null or (e.occurred_at, e.id) > (p_cursor_at, p_cursor_id))
                                          and (v_actors is null or e.actor_label = any (v_actors))
                                          and case when v_label_only then e.resource_label ilike v_pattern
                                                   else e.action ilike v_pattern or e.actor_label ilike v_pattern or e.resource_label ilike v_pattern end
                                        order by e.occurred_at, e.id limit p_limit) x
                    union all
                    select x.* from unnest(case when not v_ways then v_actors end) w(way)
                    cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                        where e.tenant_id = p_tenant and e.actor_label = w.way
                                          and e.occurred_at >= greatest(v_start, v_from) and e.occurred_at < least(v_end, v_to)
                                          and (p_cursor_at is null or (e.occurred_at, e.id) > (p_cursor_at, p_cursor_id))
                                          and (v_actions is null or e.action = any (v_actions))
                                          and case when v_label_only then e.resource_label ilike v_pattern
                                                   else e.action ilike v_pattern or e.actor_label ilike v_pattern or e.resource_label ilike v_pattern end
                                        order by e.occurred_at, e.id limit p_limit) x
                    union all select * from unnest(v_at, v_id)) k
                  order by k.occurred_at, k.id limit p_limit) u;
          else
            select array_agg(u.occurred_at order by u.occurred_at desc, u.id desc), array_agg(u.id order by u.occurred_at desc, u.id desc)
              into v_at, v_id
            from (select distinct k.occurred_at, k.id from (
                    select x.* from unnest(case when v_ways then v_actions end) w(way)
                    cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                        where e.tenant_id = p_tenant and e.action = w.way
                                          and e.occurred_at >= greatest(v_start, v_from) and e.occurred_at < least(v_end, v_to)
                                          and (p_cursor_at is null or (e.occurred_at, e.id) < (p_cursor_at, p_cursor_id))
                                          and (v_actors is null or e.actor_label = any (v_actors))
                                          and case when v_label_only then e.resource_label ilike v_pattern
                                                   else e.action ilike v_pattern or e.actor_label ilike v_pattern or e.resource_label ilike v_pattern end
                                        order by e.occurred_at desc, e.id desc limit p_limit) x
                    union all
                    select x.* from unnest(case when not v_ways then v_actors end) w(way)
                    cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                        where e.tenant_id = p_tenant and e.actor_label = w.way
                                          and e.occurred_at >= greatest(v_start, v_from) and e.occurred_at < least(v_end, v_to)
                                          and (p_cursor_at is null or (e.occurred_at, e.id) < (p_cursor_at, p_cursor_id))
                                          and (v_actions is null or e.action = any (v_actions))
                                          and case when v_label_only then e.resource_label ilike v_pattern
                                                   else e.action ilike v_pattern or e.actor_label ilike v_pattern or e.resource_label ilike v_pattern end
                                        order by e.occurred_at desc, e.id desc limit p_limit) x
                    union all select * from unnest(v_at, v_id)) k
                  order by k.occurred_at desc, k.id desc limit p_limit) u;
          end if;
          v_at := coalesce(v_at, '{}');
          v_id := coalesce(v_id, '{}');
          v_work := v_work + 1 + v_fewest::int / 4;
          v_day := v_day + case when p_ascending then 1 else -1 end;
          continue;
        end if;
      end if;
      v_work := v_work + 5;
      if cardinality(v_trigrams) > 0 then
        v_probe_keys := app_private.audit_probe_keys(p_tenant, v_day, v_trigrams, true);
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
        v_probe_keys := app_private.audit_probe_keys(p_tenant, v_day, v_short, true);
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
    v_edge_range, case when p_ascending then '>=' else '<=' end, v_edge, v_dir, v_dir)
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

set local role :DATABASE_OWNER;
