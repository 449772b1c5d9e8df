--! Previous: sha1:b3f056ca84576e16e76dcc0e896393b4ef7be73f
--! Hash: sha1:c321653bf8a72d903c29f67fba8dd6a5415716f9
--! Message: walk-past-cursor

-- 000078 The walk: entries past the names' cursor read only when there are any; keys and bits worked out
-- in place. The count of a word with a few people: their counts read by name.
--
-- app_private.audit_search (the walk of a large tenant's names) begins with one statement for what
-- the names cannot give yet: the entries past the names' cursor (sealed and not named, or not
-- sealed) that match, merged with the entries of the actions, people and incidents the pattern
-- names, if any. It is built with format() from the filter and run with EXECUTE: PostgreSQL plans
-- it at every call, ~0.3 ms (the log has ten indexes to weigh), and the namer keeps up with the log
-- (a round every ~0.2 s), so mostly it finds nothing. Measured on the 10M-entry bench database, big
-- tenant, the walk alone (app_private.audit_search called directly), in a window without names:
-- ~0.45 ms a call with it, ~0.15 ms without.
--
-- Now the walk asks first whether the log's last entry in sealing order (any tenant's, one step
-- back along the (xid, id) index) is past the names' cursor. When it is not, no entry is, and that
-- part is left out of the statement; with nothing else to read (a word of the resource name
-- alone, GraphQL's resourceLabelContains, or one that names no action, person or incident), the
-- statement is not run at all. When some entry is past the cursor, the statement reads them as
-- before. The walk alone, 200 calls in one transaction, three alternating runs, with the names
-- caught up: "#1" with incident.created 2.5 -> 1.9 ms, "ransomware" in the resource name 1.24 ->
-- 0.80 ms, "ransomware" as the page searches it 1.50 -> 1.04 ms.
--
-- And the walk and the count take the trigrams' keys of each month and day they probe from
-- app_private.audit_probe_keys (new, PL/pgSQL, planned once a session), which gives what
-- app_private.audit_search_keys gives: that LANGUAGE sql function (its subquery keeps it from being
-- inlined) had its body parsed and planned again in each transaction that called it, a few times a
-- search (~4.5% of a big-tenant search's time in the backend, by perf). (It stays: the names' index
-- is built on it.)
--
-- And app_private.audit_months_may_match (the walk's probe of a month, or of the months left, for a
-- word with actions: up to four calls a search) works out the actions' two bits itself: it called
-- app_private.audit_action_bits, a LANGUAGE sql function with a SET clause (never inlined), whose
-- body was parsed and planned again at every call. One transaction a call, three alternating
-- runs of 300, medians (round trip included): one month 0.34-0.39 -> 0.30-0.33 ms, a year of
-- months 0.43-0.44 -> 0.31-0.38 ms; the same months as before (compared on 24 keys x actions x
-- all/any combinations).
--
-- And when a word's trigrams' keys and its characters' keys must all be there (a word with a mark,
-- with actions), the walk probes the months for both in one call of audit_months_may_match, not
-- one each ("#1" with incident.created, the walk alone: 1.84-1.95 -> 1.79-1.87 ms).
--
-- And the count of a word with actorContains (GraphQL totalCount, app_hidden.audit_connection_count)
-- reads the matching people's counts of each name and day by name when the pattern matches a few
-- people (up to 16; app_hidden.audit_actors_matching finds them among the log's actors): it expanded
-- every matching name's counts by person (jsonb_each_text) and matched each key with ILIKE, ~4 us a
-- name and day. A first count (no base kept), big bench tenant, medians of 7: "ransomware" with
-- "ana@" 78 -> 12-14 ms, "laptop" with "@" 160 -> 46 ms, "#1" with "a" 129 -> 56 ms; the same counts.
-- With actions too, the names and days are read (their entries that day checked) only where those
-- people have entries: "ransomware" with incident.updated and "ana@" 134 -> 107 ms, with a pattern
-- that matches no one 125 -> 13 ms.
-- It also finds the reader's tenant in one lookup (app_hidden.audit_log_tenant), as 000076 did
-- for the search.
--
-- All three (of the walk), against 000076's walk, one transaction a call as a request makes them, three alternating
-- runs of 200, medians: "#1" with incident.created 2.83-2.91 -> 2.15-2.31 ms; "ransomware" in the
-- resource name with one person 2.81-3.38 -> 1.89-2.00 ms; "ransomware" as the page searches it
-- 1.85-1.97 -> 1.24-1.35 ms.
--
-- Runs as the session's login: the functions are on the audit path (see CONVENTIONS.md).

set local role none;

/**
 * (000078) The keys of trigrams for a day (p_day) or for the month of p_at, exactly as
 * app_private.audit_search_keys(p_tenant, p_at, p_trigrams, p_day, not p_day) gives them. That
 * LANGUAGE sql function is not inlined (its subquery), so its body was parsed and planned again in
 * every transaction that called it; this statement is planned once a session. (audit_search_keys
 * stays: the names' index is built on it.)
 */
create function app_private.audit_probe_keys(p_tenant uuid, p_at date, p_trigrams text[], p_day boolean) returns int[]
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
begin
  return array(
    select (hashtextextended(t, case when p_day then hashtextextended(p_tenant::text, p_at - date '2000-01-01')
                                     else hashtextextended(p_tenant::text, -(extract(year from p_at)::int * 12 + extract(month from p_at)::int)) end)
            % 2147483647)::int
    from unnest(p_trigrams) t);
end;
$$;
comment on function app_private.audit_probe_keys(uuid, date, text[], boolean) is
  'The keys of trigrams for a day or a month, as app_private.audit_search_keys gives them, planned once a session (000078).';
revoke all on function app_private.audit_probe_keys(uuid, date, text[], boolean) from public;

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
            if v_both is not null then
              v_may := app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_both, true, v_actions);
            else
              if v_month_keys is not null then
                v_may := app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_month_keys, cardinality(v_trigrams) > 0, v_actions);
              end if;
              if v_char_keys is not null then
                v_may := array(select x from unnest(app_private.audit_months_may_match(p_tenant, v_lo, v_hi, v_char_keys, true, v_actions)) x
                               where v_may is null or x = any (v_may));
              end if;
            end if;
          end if;
        end if;
        if coalesce(cardinality(v_actions), 0) > 0
           and (case when v_may is not null then v_month <> all (v_may)
                    when v_both is not null then v_month <> all (app_private.audit_months_may_match(p_tenant, v_month, v_month, v_both, true, v_actions))
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
      end if;
      if v_days is not null and v_day <> all (v_days) then
        v_day := v_day + case when p_ascending then 1 else -1 end;
        continue;
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

create or replace function app_private.audit_months_may_match(p_tenant uuid, p_first date, p_last date, p_keys int[], p_all boolean,
  p_actions text[]) returns date[]
-- (Planned without the range's length, a thousand months, which JIT would compile: ~7 ms a call.)
language plpgsql stable parallel safe set search_path = pg_catalog set jit = off as $$
declare
  -- (000078) The actions' bits as app_private.audit_action_bits gives them, worked out here: that
  -- LANGUAGE sql function with a SET clause had its body parsed and planned again at every call.
  v_bits bigint[] := array(select (1::bigint << (x.h & 63)) | (1::bigint << ((x.h >> 6) & 63))
                           from (select pg_catalog.hashtext(a) as h from pg_catalog.unnest(p_actions) a) x);
  v_need int := case when p_all then (select count(distinct k) from pg_catalog.unnest(p_keys) k) else 1 end;
begin
  return (
    select coalesce(array_agg(mo::date order by mo), '{}')
    from pg_catalog.generate_series(p_first, p_last, interval '1 month') mo
    where p_keys is null or exists (
      select 1 from pg_catalog.unnest(v_bits) bits
      where (select count(*) from app_private.audit_label_trigram_months m
             where m.tenant_id = p_tenant and m.month = mo::date and m.trigram = any (p_keys)
               and m.actions & bits = bits) >= v_need));
end;
$$;

create or replace function app_hidden.audit_connection_count(p_condition jsonb, p_bases jsonb, p_delta_limit int default 10000,
  p_scan_limit int default 10000)
returns jsonb
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  c jsonb := coalesce(p_condition, '{}');
  v_tenant uuid;
  v_seal app_private.audit_seal_state;
  v_names app_private.audit_label_state;
  v_given text[];
  v_from timestamptz := (c->>'occurredAfter')::timestamptz;
  v_to timestamptz := (c->>'occurredBefore')::timestamptz;
  v_actions text[];
  v_label text;
  v_label_lower text; -- ILIKE's own comparison: lower(name) LIKE lower(pattern) (null: use ILIKE)
  v_actor_pred text := 'true'; -- on the kept daily counts' actor_label
  v_pred text[] := '{}';       -- every condition, on the log's rows (alias e)
  v_unit text;
  v_lo timestamptz;
  v_hi timestamptz;
  v_kept bigint;
  v_rest bigint;
  v_cursor text;
  v_trigrams text[];
  v_month date;
  v_last date;
  v_probe_keys int[];
  k text;
  esc constant text := '([\\%_])';
  v_base jsonb; -- this count as a caller kept it (p_bases), for the current tenant
  v_based boolean := false;
  v_delta bigint[];
  v_short text[];
  v_n bigint;
  v_names_sql text;
  v_count_sql text;
  v_first date;
  v_final date;
  v_workers text := current_setting('max_parallel_workers_per_gather');
  v_need bigint := 0; -- (000064) a word without trigrams or a pair: the characters its names hold
  v_pairs bit(4096); -- (000068) and its pairs of adjacent characters
  v_month_keys int[]; -- (000065) the word's keys among the months' trigrams and actions
  v_char_keys int[]; -- (000069) and its characters' keys
  v_may date[]; -- (000072) the months that may hold a match of the word with the actions (null: every month)
  v_entries text := 'l.entries'; -- (000072) a name's entries that the count takes: of the actions, or of the actors
  v_actor_label text := c->>'actorLabel'; -- (000072) the actor conditions, on the names' entries by actor
  v_people text[]; -- (000078) the people an actorContains with a word matches (null: not looked up)
begin
  -- (000078) The reader's tenant when they may read its log: one lookup of their membership
  -- (audit_log_readable and current_tenant_id made one each; ATPLN without the plan's auditLog).
  v_tenant := app_hidden.audit_log_tenant();
  if v_tenant is null then
    return jsonb_build_object('n', 0);
  end if;
  if jsonb_typeof(c) <> 'object' then
    raise exception 'a condition is an object' using errcode = '22023';
  end if;
  for k in select jsonb_object_keys(c) loop
    if k not in ('action', 'actionPrefix', 'actorContains', 'actorLabel', 'incidentId', 'occurredAfter', 'occurredAt',
                 'occurredBefore', 'resourceLabelContains', 'rowId', 'tenantId') then
      raise exception 'unknown audit log condition: %', k using errcode = '22023';
    end if;
  end loop;
  -- Columns that are never NULL match nothing when asked for NULL; another tenant's entries are not readable.
  if exists (select 1 from jsonb_each(c) x where x.value = 'null'::jsonb
             and x.key in ('action', 'actorLabel', 'occurredAt', 'rowId', 'tenantId'))
     or (c->>'tenantId' is not null and (c->>'tenantId')::uuid <> v_tenant) then
    return jsonb_build_object('n', 0);
  end if;
  select array_agg(x.key order by x.key) into v_given from jsonb_each(c) x
  where x.value <> 'null'::jsonb or x.key = 'incidentId';
  v_given := coalesce(v_given, '{}');

  -- Every condition as SQL on the log's rows (values quoted; LIKE's wildcards in the words escaped).
  if c->>'action' is not null then
    v_pred := v_pred || format('e.action = %L', c->>'action');
    v_actions := array[c->>'action'];
  end if;
  if c->>'actionPrefix' is not null then
    v_pred := v_pred || format('e.action like %L', regexp_replace(c->>'actionPrefix', esc, '\\\1', 'g') || '%');
    v_actions := case when v_actions is null
                   then app_private.audit_actions_like(v_tenant, regexp_replace(c->>'actionPrefix', esc, '\\\1', 'g') || '%')
                   else array(select a from unnest(v_actions) a where a like regexp_replace(c->>'actionPrefix', esc, '\\\1', 'g') || '%') end;
  end if;
  if c->>'actorLabel' is not null then
    v_pred := v_pred || format('e.actor_label = %L', c->>'actorLabel');
    v_actor_pred := format('d.actor_label = %L', c->>'actorLabel');
  end if;
  if c->>'actorContains' is not null then
    v_pred := v_pred || format('e.actor_label ilike %L', '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%');
    v_actor_pred := v_actor_pred || format(' and d.actor_label ilike %L', '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%');
  end if;
  if c->>'resourceLabelContains' is not null then
    v_label := '%' || regexp_replace(c->>'resourceLabelContains', esc, '\\\1', 'g') || '%';
    -- In a UTF-8 database ILIKE lowers the name and the pattern and compares them with LIKE
    -- (like.c, Generic_Text_IC_like); the names keep their lowered form (label_lower), so only the
    -- pattern is lowered here, once.
    if getdatabaseencoding() = 'UTF8' then
      v_label_lower := lower(v_label);
    end if;
    v_pred := v_pred || format('e.resource_label ilike %L', v_label);
  end if;
  if c ? 'incidentId' then
    v_pred := v_pred || case when c->>'incidentId' is null then 'e.incident_id is null'
                             else format('e.incident_id = %L::uuid', c->>'incidentId') end;
  end if;
  if v_from is not null then
    v_pred := v_pred || format('e.occurred_at >= %L::timestamptz', v_from);
  end if;
  if v_to is not null then
    v_pred := v_pred || format('e.occurred_at < %L::timestamptz', v_to);
  end if;
  if c->>'occurredAt' is not null then
    v_pred := v_pred || format('e.occurred_at = %L::timestamptz', c->>'occurredAt');
  end if;
  if c->>'rowId' is not null then
    v_pred := v_pred || format('e.id = %L::bigint', c->>'rowId');
  end if;
  v_pred := v_pred || format('e.tenant_id = %L::uuid', v_tenant);

  -- Which kept counts answer it: per hour (actions, a window), per day (and actors), per day and name (a word).
  v_unit := case
    when v_given <@ array['action', 'actionPrefix', 'occurredAfter', 'occurredBefore', 'tenantId'] then 'hour'
    when v_given <@ array['action', 'actionPrefix', 'actorContains', 'actorLabel', 'occurredAfter', 'occurredBefore', 'tenantId'] then 'day'
    -- (000072) a word, and actions or actors: the names' entries of those actions or actors, kept per day
    when v_given <@ array['action', 'actionPrefix', 'resourceLabelContains', 'occurredAfter', 'occurredBefore', 'tenantId']
      or v_given <@ array['actorContains', 'actorLabel', 'resourceLabelContains', 'occurredAfter', 'occurredBefore', 'tenantId'] then 'label'
    -- a word and actions or actors (000063): the entries of the names that hold the word
    when v_given @> array['resourceLabelContains'] and v_given <@ array['action', 'actionPrefix', 'actorContains',
         'actorLabel', 'occurredAfter', 'occurredBefore', 'resourceLabelContains', 'tenantId'] then 'names'
  end;
  -- A small log is read whole sooner than month by month through the names.
  if v_unit = 'names' and coalesce((select t.size from app_private.audit_trees t where t.tenant_id = v_tenant), 0) <= p_scan_limit then
    v_unit := null;
  end if;
  if v_actions is not null and cardinality(v_actions) = 0 then
    return jsonb_build_object('n', 0);
  end if;
  -- (000078) With a word: the people an actorContains matches among the log's actors
  -- (app_hidden.audit_actors_matching; and the actorLabel, if given, among them), or the actorLabel alone. When
  -- they are few (up to 16), a name and day is counted only when it has entries of theirs, and
  -- their counts are read by name: expanding every matching name's counts by person
  -- (jsonb_each_text) and matching each key took ~4 us a name and day (74 ms of 83 for
  -- "ransomware" with actorContains "ana@" in the 2,000,000-entry bench tenant), and with actions
  -- every such name's entries that day were read (134 ms of a month's 10,599 names, most with no
  -- entry of the person).
  if v_unit in ('label', 'names') and c->>'actorContains' is not null then
    v_people := array(select x from unnest(app_hidden.audit_actors_matching(
                        '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%')) x
                      where v_actor_label is null or x = v_actor_label);
    if cardinality(v_people) > 16 then
      v_people := null;
    end if;
  elsif v_unit in ('label', 'names') and v_actor_label is not null then
    v_people := array[v_actor_label];
  end if;
  if v_actions is not null then
    v_entries := case when cardinality(v_actions) = 1 then format('coalesce((l.action_entries->>%L)::bigint, 0)', v_actions[1])
                      else format('(select coalesce(sum((l.action_entries->>a)::bigint), 0) from unnest(%L::text[]) a)', v_actions) end;
  elsif v_people is not null then
    v_entries := coalesce((select string_agg(format('coalesce((l.actor_entries->>%L)::bigint, 0)', x), ' + ') from unnest(v_people) x), '0');
  elsif v_actor_label is not null and c->>'actorContains' is null then
    v_entries := format('coalesce((l.actor_entries->>%L)::bigint, 0)', v_actor_label);
  elsif c->>'actorContains' is not null then
    v_entries := format('(select coalesce(sum(a.value::bigint), 0) from jsonb_each_text(l.actor_entries) a where %s and a.key ilike %L)',
                        case when v_actor_label is not null then format('a.key = %L', v_actor_label) else 'true' end,
                        '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%');
  end if;
  -- The whole hours (days) of the window: [v_lo, v_hi); null is no bound.
  if v_unit in ('hour', 'day', 'label') then
    v_lo := date_trunc(case v_unit when 'hour' then 'hour' else 'day' end, v_from, 'UTC');
    if v_lo < v_from then
      v_lo := v_lo + case v_unit when 'hour' then interval '1 hour' else interval '1 day' end;
    end if;
    v_hi := date_trunc(case v_unit when 'hour' then 'hour' else 'day' end, v_to, 'UTC');
    if v_lo >= v_hi then
      v_unit := null; -- less than two hours (days): the log's own entries
    end if;
  end if;
  if v_unit is null then
    execute format('select count(*) from app_public.audit_log e where %s', array_to_string(v_pred, ' and ')) into v_rest;
    return jsonb_build_object('n', v_rest);
  end if;

  select * into v_seal from app_private.audit_seal_state;
  select * into v_names from app_private.audit_label_state;
  -- A word over the whole log, counted before for this tenant up to an earlier cursor of the
  -- names: that part cannot change (no entry can appear at or below a cursor the namer moved
  -- past, and entries are immutable), so only the entries named since are counted from the log
  -- (through the sealing order's index; literals, one short range), unless there are many.
  if (v_unit = 'label' and v_lo is null and v_hi is null) or v_unit = 'names' then
    v_base := p_bases->(v_tenant::text);
    if jsonb_typeof(v_base) = 'object' and jsonb_typeof(v_base->'xid') = 'number' and v_base->>'xid' ~ '^\d{1,18}$'
       and jsonb_typeof(v_base->'id') = 'number' and v_base->>'id' ~ '^\d{1,18}$'
       and jsonb_typeof(v_base->'kept') = 'number' and v_base->>'kept' ~ '^\d{1,18}$'
       and ((v_base->>'xid')::bigint, (v_base->>'id')::bigint) <= (v_names.last_xid, v_names.last_id) then
      if ((v_base->>'xid')::bigint, (v_base->>'id')::bigint) = (v_names.last_xid, v_names.last_id) then
        v_delta := array[0, 0];
      else
        execute format(
          'select array[count(*) filter (where %s), count(*)] from (
             select * from app_public.audit_log e
             where e.xid >= %s and (e.xid, e.id) > (%2$s, %s) and (e.xid, e.id) <= (%s, %s) limit %s) e',
          array_to_string(v_pred, ' and '), (v_base->>'xid')::bigint, (v_base->>'id')::bigint,
          v_names.last_xid, v_names.last_id, greatest(p_delta_limit, 0))
          into v_delta;
      end if;
      if v_delta[2] < p_delta_limit then
        v_kept := (v_base->>'kept')::bigint + v_delta[1];
        v_based := true;
      end if;
    end if;
  end if;
  if v_based then
    null;
  elsif v_unit = 'names'
        or (v_unit = 'label' and cardinality(app_private.audit_pattern_trigrams(v_label)) = 0
            and app_private.audit_short_pattern_trigrams(v_label_lower) is not null) then
    -- (000063) Month by month, the names that hold the word (as the search finds them): for a
    -- word with actions or actors ('names'), of each such name and day the entries up to the
    -- names' cursor that meet every condition (the log's index by tenant, name and time; the
    -- window and the other conditions checked on them); for a word alone without trigrams but a
    -- pair of ASCII letters or digits or a character outside ASCII ('label'), the names' kept
    -- counts over the window's whole days (the ASCII names with one of the pair's candidate
    -- trigrams, through the names' index, and the names outside ASCII, through their partial
    -- index: two disjoint sets).
    -- What it costs grows with the word's entries, not with the log: a rare word in a few
    -- milliseconds, one of 140,000 entries in the 2,000,000-entry bench tenant in ~0.3 s (the scan
    -- of the tenant's entries it replaces took 3.4 s), and once: what is below the cursor is a base.
    v_trigrams := app_private.audit_pattern_trigrams(v_label);
    v_short := case when cardinality(v_trigrams) = 0 then app_private.audit_short_pattern_trigrams(v_label_lower) end;
    v_need := case when cardinality(v_trigrams) = 0 and v_short is null
                   then coalesce(app_private.audit_pattern_char_mask(v_label_lower), 0) else 0 end;
    v_pairs := case when v_need <> 0 then app_private.audit_pattern_pair_masks(v_label_lower) end;
    v_month_keys := case when v_actions is not null then app_private.audit_pattern_month_keys(v_trigrams, v_short) end;
    v_char_keys := case when v_actions is not null
                        then app_private.audit_char_month_keys(app_private.audit_pattern_char_mask(v_label_lower)) end;
    v_names_sql := case
      when cardinality(v_trigrams) > 0 then
        'select l.day, l.label, l.entries from (select l.* from app_private.audit_label_days l
           where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> $3 offset 0) l where %1$s'
      when v_short is not null then
        'select l.day, l.label, l.entries from (select l.* from app_private.audit_label_days l
           where cardinality($3) > 0 and app_private.audit_label_keys(l.tenant_id, l.day, l.label) && $3 offset 0) l
         where %1$s and l.label_lower !~ ''[^\x01-\x7F]''
         union all
         select l.day, l.label, l.entries from app_private.audit_label_days l where l.label_lower ~ ''[^\x01-\x7F]'' and %1$s'
      -- (000064) the days whose names hold the word's characters
      when v_need <> 0 then
        'select l.day, l.label, l.entries from app_private.audit_label_chars c
         join app_private.audit_label_days l on l.tenant_id = c.tenant_id and l.day = c.day
         where c.tenant_id = $1 and c.day >= $2 and c.day < ($2 + interval ''1 month'')::date and c.chars & $8 = $8
           and app_private.audit_pairs_hold(c.pairs, $9) and %1$s'
      else 'select l.day, l.label, l.entries from app_private.audit_label_days l where %1$s'
    end;
    v_names_sql := format(v_names_sql,
      'l.tenant_id = $1 and l.day >= $2 and l.day < ($2 + interval ''1 month'')::date
       and ($6::date is null or l.day >= $6) and ($7::date is null or l.day <= $7)
       and case when $4::text is null then l.label ilike $5 else l.label_lower like $4 end
       and ($10::text[] is null or l.action_entries ?| $10::text[])'
      -- (000078) the few people's names and days
      || case when v_people is not null then format(' and l.actor_entries ?| %L::text[]', v_people) else '' end);
    v_names_sql := replace(v_names_sql, 'select l.day, l.label, l.entries from', format('select l.day, l.label, %s as entries from', v_entries));
    -- (Without parallel workers: PostgreSQL prices a probe of many keys at a large part of the
    -- names and starts workers for it, ~30 ms a month, to read a few names.)
    perform set_config('max_parallel_workers_per_gather', '0', true);
    -- The window's days: whole days for the kept counts ('label': [v_lo, v_hi)), else every day
    -- it touches (its entries are checked).
    v_first := case when v_unit = 'label' then (v_lo at time zone 'UTC')::date else (v_from at time zone 'UTC')::date end;
    v_final := case when v_unit = 'label' then (v_hi at time zone 'UTC')::date - 1 else (v_to at time zone 'UTC')::date end;
    v_count_sql := case when v_unit = 'label' then format('select coalesce(sum(l.entries), 0) from (%s) l', v_names_sql)
      else format(
        'select count(*) from (%s) l
         cross join lateral (
           select 1 from app_public.audit_log e
           where e.tenant_id = $1 and e.resource_label = l.label
             and e.occurred_at >= (l.day::timestamp at time zone ''UTC'') and e.occurred_at < ((l.day + 1)::timestamp at time zone ''UTC'')
             and (e.xid, e.id) <= (%s, %s) and %s) e',
        v_names_sql, v_names.last_xid, v_names.last_id, array_to_string(v_pred, ' and '))
    end;
    v_kept := 0;
    v_month := date_trunc('month', greatest(v_first,
                 (select min(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant)))::date;
    v_last := least(v_final, (select max(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant));
    -- (000072) The months that may hold a match, in one statement for each set of keys (one call a
    -- month before).
    if v_month_keys is not null then
      v_may := app_private.audit_months_may_match(v_tenant, v_month, v_last, v_month_keys, cardinality(v_trigrams) > 0, v_actions);
    end if;
    if v_char_keys is not null then
      v_may := array(select x from unnest(app_private.audit_months_may_match(v_tenant, v_month, v_last, v_char_keys, true, v_actions)) x
                     where v_may is null or x = any (v_may));
    end if;
    while v_month <= v_last loop
      if v_may is not null and v_month <> all (v_may) then
        -- (000065) No name of the month that holds the word's trigrams has entries of the actions,
        -- or (000069) none that holds one of its characters.
        v_n := 0;
      else
        -- (000078) app_private.audit_probe_keys: as audit_search_keys, planned once a session (below too)
        v_probe_keys := case when cardinality(v_trigrams) > 0 then app_private.audit_probe_keys(v_tenant, v_month, v_trigrams, false)
                             when v_short is not null then app_private.audit_probe_keys(v_tenant, v_month, v_short, false) end;
        execute v_count_sql into v_n using v_tenant, v_month, v_probe_keys, v_label_lower, v_label, v_first, v_final, v_need, v_pairs, v_actions;
      end if;
      v_kept := v_kept + v_n;
      v_month := (v_month + interval '1 month')::date;
    end loop;
    perform set_config('max_parallel_workers_per_gather', v_workers, true);
  elsif v_unit = 'hour' and v_actions is null and v_lo is null and v_hi is null then
    -- The whole log (a tenant's auditLogs without another condition, 000063): its tree's size, as
    -- app_hidden.audit_entry_count() counts it, not a sum of every hour of its history.
    select coalesce(max(t.size), 0) into v_kept from app_private.audit_trees t where t.tenant_id = v_tenant;
  elsif v_unit = 'hour' then
    select coalesce(sum(h.entries), 0) into v_kept from app_private.audit_activity_hourly h
    where h.tenant_id = v_tenant and (v_lo is null or h.hour >= v_lo) and (v_hi is null or h.hour < v_hi)
      and (v_actions is null or h.action = any (v_actions));
  elsif v_unit = 'day' then
    execute format(
      'select coalesce(sum(d.entries), 0) from app_private.audit_activity_daily d
       where d.tenant_id = $1 and ($2::date is null or d.day >= $2) and ($3::date is null or d.day < $3)
         and ($4::text[] is null or d.action = any ($4)) and %s', v_actor_pred)
      into v_kept using v_tenant, (v_lo at time zone 'UTC')::date, (v_hi at time zone 'UTC')::date, v_actions;
  elsif cardinality(app_private.audit_pattern_trigrams(v_label)) = 0
        and coalesce(app_private.audit_pattern_char_mask(v_label_lower), 0) <> 0 then
    -- (000064) No trigram or pair, but characters to look the days up by: the names of the
    -- window's days that hold them all.
    v_need := app_private.audit_pattern_char_mask(v_label_lower);
    v_pairs := app_private.audit_pattern_pair_masks(v_label_lower);
    execute format(
      'select coalesce(sum(%s), 0)
       from app_private.audit_label_chars c
       join app_private.audit_label_days l on l.tenant_id = c.tenant_id and l.day = c.day
       where c.tenant_id = $1 and c.chars & $2 = $2 and app_private.audit_pairs_hold(c.pairs, $3)
         and ($4::timestamptz is null or c.day >= ($4 at time zone ''UTC'')::date)
         and ($5::timestamptz is null or c.day < ($5 at time zone ''UTC'')::date)
         and l.label_lower like $6', v_entries)
      into v_kept using v_tenant, v_need, v_pairs, v_lo, v_hi, v_label_lower;
  elsif cardinality(app_private.audit_pattern_trigrams(v_label)) = 0 then
    -- No trigram to look the names up by: every name of the window is checked.
    execute format(
      'select coalesce(sum(%s), 0) from app_private.audit_label_days l
       where l.tenant_id = $1 and ($2::timestamptz is null or l.day >= ($2 at time zone ''UTC'')::date)
         and ($3::timestamptz is null or l.day < ($3 at time zone ''UTC'')::date)
         and case when $4::text is null then l.label ilike $5 else l.label_lower like $4 end', v_entries)
      into v_kept using v_tenant, v_lo, v_hi, v_label_lower, v_label;
  else
    -- Month by month through the names' index (as audit_label_matches): a key's list is a few
    -- names of one tenant's month, whatever the size of the log.
    v_trigrams := app_private.audit_pattern_trigrams(v_label);
    v_kept := 0;
    v_month := date_trunc('month', greatest((v_lo at time zone 'UTC')::date,
                 (select min(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant)))::date;
    v_last := least(((v_hi at time zone 'UTC')::date - 1),
                 (select max(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant));
    v_count_sql := format(
      'select coalesce(sum(%s), 0) from (select l.* from app_private.audit_label_days l
                                         where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> $1 offset 0) l
       where l.tenant_id = $2 and l.day >= $3 and l.day < ($3 + interval ''1 month'')::date
         and ($4::timestamptz is null or l.day >= ($4 at time zone ''UTC'')::date)
         and ($5::timestamptz is null or l.day < ($5 at time zone ''UTC'')::date)
         and case when $6::text is null then l.label ilike $7 else l.label_lower like $6 end', v_entries);
    while v_month <= v_last loop
      v_probe_keys := app_private.audit_probe_keys(v_tenant, v_month, v_trigrams, false);
      execute v_count_sql into v_n using v_probe_keys, v_tenant, v_month, v_lo, v_hi, v_label_lower, v_label;
      v_kept := v_kept + v_n;
      v_month := (v_month + interval '1 month')::date;
    end loop;
  end if;
  -- And from the log: the edges of the window (all entries there), and the entries within the
  -- whole hours (days) that the kept counts do not hold yet (past their cursor; literals, so that
  -- this is one short range of the (xid, id) index).
  v_cursor := case when v_unit in ('label', 'names')
    then format('e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s)', v_names.last_xid, v_names.last_id)
    else format('e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s)', v_seal.last_xid, v_seal.last_id) end;
  execute format(
    'select (select count(*) from app_public.audit_log e where %1$s and %2$s)
          + (select count(*) from app_public.audit_log e where %1$s and %3$s)
          + (select count(*) from app_public.audit_log e where %1$s and %4$s and %5$s and %6$s)',
    array_to_string(v_pred, ' and '),
    case when v_lo is null then 'false' else format('e.occurred_at < %L::timestamptz', v_lo) end,
    case when v_hi is null then 'false' else format('e.occurred_at >= %L::timestamptz', v_hi) end,
    v_cursor,
    case when v_lo is null then 'true' else format('e.occurred_at >= %L::timestamptz', v_lo) end,
    case when v_hi is null then 'true' else format('e.occurred_at < %L::timestamptz', v_hi) end)
    into v_rest;
  return jsonb_build_object('n', v_kept + v_rest)
    || case when (v_unit = 'label' and v_lo is null and v_hi is null) or v_unit = 'names' then
         jsonb_build_object('base', jsonb_build_object(v_tenant::text,
           jsonb_build_object('xid', v_names.last_xid, 'id', v_names.last_id, 'kept', v_kept)))
       else '{}' end;
end;
$$;
