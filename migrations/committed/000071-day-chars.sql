--! Previous: sha1:5360203cf94091a7a6a3b36786092d2c73a37442
--! Hash: sha1:2fdf5f2efec89d3903762d043080f6aa95d80409
--! Message: day-chars

-- 000071 A month with many names that hold a word: its days read are those whose names hold the
-- word's characters and pairs, not every day. And the search's helpers cost less: a pattern's
-- pairs, worked out when needed; a word with an actor, read through statements planned once.
--
-- The search's walk (app_private.audit_search) looks a month up once; when the month holds 64 or
-- more names that match, it read every day of the month, from the cursor on, each with a probe of
-- the day's names. The 2,000,000-entry bench tenant's names hold "ransomware" up to October 4, and
-- its entries go on to the end of November: a search of "ransomware" (the newest first) probed 28
-- days of October that hold none before its first match. Every pattern's characters and pairs of
-- adjacent characters are necessary of a matching name, so the month's days are now taken from the
-- per-day characters and pairs (app_private.audit_label_chars, 000064 and 000068), which the
-- characters-only search already reads: one more probe of at most 31 rows for such a month,
-- instead of a probe of every day (for "ransomware" in the bench tenant: exactly its 32 days).
-- Days without any name are not read either way. In a database that is not UTF-8 the days are read
-- as before (the kept characters are of the names lowered as in UTF-8).
-- The pattern's characters and pairs are worked out when a month first needs them, and its
-- characters' month keys (000069) only with actions: each helper is an SQL function run through
-- the SQL-function executor (~0.1-0.2 ms a call), which every search paid before.
-- And a word with an actor or actions (GraphQL's resourceLabelContains with actorContains, action
-- or actionPrefix; the page's search with its user and action filters) reads a day's names'
-- entries through the function's own statements, planned once per session (000059), with the actor
-- and the actions checked on each entry: it was one statement built and planned for every chunk of
-- names ("ransomware" with ana@ in the bench's big tenant: 4.0 ms, now 3.3 ms, p50; "#1" with
-- incident.created, whose names hold it on most days and seldom with that action: the GraphQL
-- request took 17.3 ms, now 11.5 ms, p50).
-- With actions, a walk that goes on past its first month asks which of the months left may hold a
-- match in one statement (app_private.audit_months_may_match), not one call a month.
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

-- (000071) The pairs of a pattern as before (000068, 000070), in one statement of a PL/pgSQL function
-- (planned once per session) that finds the following character's bit by its group, as
-- app_private.audit_char_mask gives it (group i: bit i - 1), instead of an SQL function planned
-- again in every statement that calls it and calling audit_char_mask for each pair: ~0.15 ms a
-- call instead of ~0.9 ms ("%ransomware%", PostgreSQL 15). Every short word's search and count ask
-- for it.
create or replace function app_private.audit_pattern_pair_masks(p_lowered text) returns bit(4096)
language plpgsql immutable parallel safe set search_path = pg_catalog as $$
begin
  return (
    with g as (
      select g.chars, g.i from unnest(app_private.audit_char_groups()) with ordinality g(chars, i)
    ), t as (
      select x.n, case when x.m[2] is null then coalesce(x.m[1], x.m[3]) end as c
      from regexp_matches(p_lowered, '\\(.)|([%_])|(.)', 'g') with ordinality as x(m, n)
    ), p as (
      select lag(t.c) over (order by t.n) as a, t.c as b from t
    ), k as (
      select ga.i, bit_or(1::bigint << (gb.i - 1)::int) as follows
      from p
      join g ga on strpos(ga.chars, p.a) > 0
      join g gb on strpos(gb.chars, p.b) > 0
      where p.a is not null and p.b is not null
      group by ga.i
    )
    select case when exists (select from k) then
             (select string_agg(coalesce(k.follows, 0)::bit(64)::text, '' order by s.i)
              from generate_series(1, 64) s(i) left join k on k.i = s.i)::bit(4096) end);
end;
$$;

-- (000071) The months from p_first to p_last (firsts of months) that may hold a match, as
-- app_private.audit_month_may_match tells of one: in one statement, one probe a month. A walk that
-- goes on past its first month asks for the months left at once instead of one call a month (each
-- ~50 µs: 13 months of the big bench tenant for a word with an action it never goes with).
create function app_private.audit_months_may_match(p_tenant uuid, p_first date, p_last date, p_keys int[], p_all boolean,
  p_actions text[]) returns date[]
-- (Planned without the range's length, a thousand months, which JIT would compile: ~7 ms a call.)
language sql stable parallel safe set search_path = pg_catalog set jit = off as $$
  -- (The actions' bits worked out once, not for each row read.)
  select coalesce(array_agg(x.month order by x.month), '{}') from (
    select mo::date as month
    from pg_catalog.generate_series(p_first, p_last, interval '1 month') mo,
         (select array(select app_private.audit_action_bits(a) from pg_catalog.unnest(p_actions) a) as bits offset 0) b
    where p_keys is null or exists (
      select 1 from pg_catalog.unnest(b.bits) bits
      where (select count(*) from app_private.audit_label_trigram_months m
             where m.tenant_id = p_tenant and m.month = mo::date and m.trigram = any (p_keys)
               and m.actions & bits = bits)
            >= case when p_all then (select count(distinct k) from pg_catalog.unnest(p_keys) k) else 1 end)) x
$$;
comment on function app_private.audit_months_may_match(uuid, date, date, int[], boolean, text[]) is
  'The months from p_first to p_last for which app_private.audit_month_may_match is true (every month when p_keys is null), in one statement (000071).';
revoke all on function app_private.audit_months_may_match(uuid, date, date, int[], boolean, text[]) from public;

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
  v_trigrams text[] := app_private.audit_pattern_trigrams(p_filter->>'pattern');
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
  v_alt_actors text[];
  v_alt_incidents uuid[];
  v_keys text[] := '{}';
  v_probe_keys int[];
  v_at timestamptz[];
  v_id bigint[];
  v_labels text[];
  v_edges timestamptz[];
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
  v_static boolean := app_private.audit_filter_sql(p_filter - 'from' - 'to' - 'actor') = 'true';
  v_actor text := p_filter->>'actor';
begin
  -- The names' cursor first: entries named after this are among the names read below, or past it.
  select * into v_state from app_private.audit_label_state;
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;
  if cardinality(v_actions) > 0 then
    v_char_keys := app_private.audit_char_month_keys(app_private.audit_pattern_char_mask(v_pattern_lower));
  end if;

  -- The range (tenant, window, cursor), and with it every condition of the filter but the
  -- pattern (app_private.audit_filter_sql: the window, actor, incident, surface, IP, capture numbers).
  v_range := format('e.tenant_id = %L::uuid', p_tenant);
  if p_cursor_at is not null then
    v_range := v_range || format(' and (e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)',
      case when p_ascending then '>' else '<' end, p_cursor_at, p_cursor_id);
  end if;
  v_cond := v_range || ' and ' || app_private.audit_filter_sql(p_filter)
    || case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end;
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
    select v_keys || coalesce(array_agg(format('e.actor_label = %L', x.actor)), '{}') into v_keys from (
      (with recursive a(actor) as (
        (select e.actor_label from app_public.audit_log e where e.tenant_id = p_tenant order by e.actor_label limit 1)
        union all
        select (select e.actor_label from app_public.audit_log e
                where e.tenant_id = p_tenant and e.actor_label > a.actor order by e.actor_label limit 1)
        from a where a.actor is not null)
      select a.actor from a where a.actor ilike v_pattern)
      union select unnest(v_alt_actors)) x
    where p_filter->>'actor' is null or x.actor = p_filter->>'actor';
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
       v_state.last_xid, v_state.last_id, v_matches)) k))
    into v_at, v_id using p_limit, v_pattern;
  v_at := coalesce(v_at, '{}');
  v_id := coalesce(v_id, '{}');

  -- 2. The names that match, day by day from the cursor on (a month without any in one probe),
  --    each day's in the order of their entries nearest the cursor, each name's entries that day
  --    a page at most; until no day or name left can come before the page's last entry.
  v_probe := format(
    'select array_agg(u.occurred_at order by u.occurred_at %1$s, u.id %1$s), array_agg(u.id order by u.occurred_at %1$s, u.id %1$s)
     from (select distinct k.occurred_at, k.id from (
             select x.occurred_at, x.id from unnest($2::text[]) l(label)
             cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                 where %2$s and e.resource_label = l.label and e.occurred_at >= $5 and e.occurred_at < $6
                                 order by e.occurred_at %1$s, e.id %1$s limit $1) x
             union all select * from unnest($3::timestamptz[], $4::bigint[])) k
           order by k.occurred_at %1$s, k.id %1$s limit $1) u',
    v_dir, v_cond);
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
                          and not app_private.audit_month_may_match(p_tenant, v_month, v_month_keys, cardinality(v_trigrams) > 0, v_actions))
                         or (v_char_keys is not null
                             and not app_private.audit_month_may_match(p_tenant, v_month, v_char_keys, true, v_actions)) end) then
          -- (000065) No name of the month that holds the pattern's trigrams has entries of the actions,
          -- or (000069) none that holds one of its characters: skipped after a probe of a few rows
          -- (work as one name).
          v_work := v_work + 1;
          v_rows := 0;
        else
          v_work := v_work + 5;
          -- (The keys alone pick the rows: they are the tenant's month; its other conditions check.)
          if v_need <> 0 then
            -- (000064) The month's days whose names hold every character of the pattern that has a bit.
            select array_agg(c.day), count(*) into v_days, v_rows from app_private.audit_label_chars c
            where c.tenant_id = p_tenant and c.day >= v_month and c.day < (v_month + interval '1 month')::date
              and c.chars & v_need = v_need and app_private.audit_pairs_hold(c.pairs, v_pairs);
          elsif v_short is null then
            v_probe_keys := app_private.audit_search_keys(p_tenant, v_month, v_trigrams, false, true);
            select array_agg(distinct l.day), count(*) into v_days, v_rows from (
              select l.day from (select l.* from app_private.audit_label_days l
                                 where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
              where l.tenant_id = p_tenant and l.day >= v_month and l.day < (v_month + interval '1 month')::date
                and case when v_pattern_lower is null then l.label ilike v_pattern else l.label_lower like v_pattern_lower end
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
                union all
                select l.day from app_private.audit_label_days l
                where l.label_lower ~ '[^\x01-\x7F]' and l.tenant_id = p_tenant
                  and l.day >= v_month and l.day < (v_month + interval '1 month')::date and l.label_lower like v_pattern_lower) l
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
          if v_word_chars <> 0 then
            select coalesce(array_agg(c.day), '{}') into v_days from app_private.audit_label_chars c
            where c.tenant_id = p_tenant and c.day >= v_month and c.day < (v_month + interval '1 month')::date
              and c.chars & v_word_chars = v_word_chars and app_private.audit_pairs_hold(c.pairs, v_word_pairs);
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
        select array_agg(l.label order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label),
               array_agg(l.edge order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label)
          into v_labels, v_edges
        from (
          select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge
          from (select l.* from app_private.audit_label_days l
                where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
          where l.tenant_id = p_tenant and l.day = v_day and case when v_pattern_lower is null then l.label ilike v_pattern else l.label_lower like v_pattern_lower end
            and (v_from is null or l.last_at >= v_from) and (v_to is null or l.first_at < v_to)
            and (p_cursor_at is null or case when p_ascending then l.last_at >= p_cursor_at else l.first_at <= p_cursor_at end)
        ) l;
      elsif v_short is not null then
        -- (000062) The day's names with any of the candidate trigrams, and those outside ASCII.
        v_probe_keys := app_private.audit_search_keys(p_tenant, v_day, v_short, true, false);
        select array_agg(l.label order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label),
               array_agg(l.edge order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label)
          into v_labels, v_edges
        from (
          select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge
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
        ) l;
      else
        -- No trigram: the day's names, each checked (the names' primary key, tenant and day).
        select array_agg(l.label order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label),
               array_agg(l.edge order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label)
          into v_labels, v_edges
        from (
          select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge
          from app_private.audit_label_days l
          where l.tenant_id = p_tenant and l.day = v_day and case when v_pattern_lower is null then l.label ilike v_pattern else l.label_lower like v_pattern_lower end
            and (v_from is null or l.last_at >= v_from) and (v_to is null or l.first_at < v_to)
            and (p_cursor_at is null or case when p_ascending then l.last_at >= p_cursor_at else l.first_at <= p_cursor_at end)
        ) l;
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
                  select x.occurred_at, x.id from unnest(v_labels[v_i:v_i + v_chunk - 1]) l(label)
                  cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                      where e.tenant_id = p_tenant and e.resource_label = l.label
                                        and e.occurred_at >= v_start and e.occurred_at < v_end
                                        and (v_from is null or e.occurred_at >= v_from) and (v_to is null or e.occurred_at < v_to)
                                        and (p_cursor_at is null or (e.occurred_at, e.id) > (p_cursor_at, p_cursor_id))
                                        and (v_actor is null or e.actor_label = v_actor)
                                        and (v_actions is null or e.action = any (v_actions))
                                      order by e.occurred_at, e.id limit p_limit) x
                  union all select * from unnest(v_at, v_id)) k
                order by k.occurred_at, k.id limit p_limit) u;
        elsif v_static then
          select array_agg(u.occurred_at order by u.occurred_at desc, u.id desc), array_agg(u.id order by u.occurred_at desc, u.id desc)
            into v_at, v_id
          from (select distinct k.occurred_at, k.id from (
                  select x.occurred_at, x.id from unnest(v_labels[v_i:v_i + v_chunk - 1]) l(label)
                  cross join lateral (select e.occurred_at, e.id from app_public.audit_log e
                                      where e.tenant_id = p_tenant and e.resource_label = l.label
                                        and e.occurred_at >= v_start and e.occurred_at < v_end
                                        and (v_from is null or e.occurred_at >= v_from) and (v_to is null or e.occurred_at < v_to)
                                        and (p_cursor_at is null or (e.occurred_at, e.id) < (p_cursor_at, p_cursor_id))
                                        and (v_actor is null or e.actor_label = v_actor)
                                        and (v_actions is null or e.action = any (v_actions))
                                      order by e.occurred_at desc, e.id desc limit p_limit) x
                  union all select * from unnest(v_at, v_id)) k
                order by k.occurred_at desc, k.id desc limit p_limit) u;
        else
          execute v_probe into v_at, v_id using p_limit, v_labels[v_i:v_i + v_chunk - 1], v_at, v_id, v_start, v_end;
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
