--! Previous: sha1:c321653bf8a72d903c29f67fba8dd6a5415716f9
--! Hash: sha1:6896b2afae0e3330e883929adc9ea142ad906c59
--! Message: person-chars

-- 000079 The characters of each person's names per day and action: a word of characters alone
-- ("m", "e.", "#") with people goes on, past a sparse first stretch, by the days whose names of
-- theirs hold them.
--
-- A pattern with neither trigrams nor a pair of letters or digits (one character, or characters
-- with marks) has no key among the names: GraphQL's resourceLabelContains walked, after a first
-- stretch of the log, every day's names whose characters allow it (most days, for a common letter),
-- and the page's search read the people's entries in stretches. With people (the page's user
-- filter, GraphQL's actorLabel, or actorContains matching a few) whose own names seldom hold the
-- characters, either read months of the log. In the 2,000,000-entry bench tenant, measured in SQL
-- with JIT off (as the server's connections run), warm: "M" in the resource name with
-- dora@big.test before April, oldest first, 69 ms (her names first hold an "m" on April 5); "m"
-- with her, newest first, in a window ending April 1 (no match) 75 ms; "s" with the nine people of
-- "g.tes" and milestone.completed in a window, newest first, 45 ms (9,700 of their entries before
-- the first whose name holds an "s"); first calls up to 108 ms (bench:search-check).
--
-- The namer now keeps, per tenant, person, UTC day and action, the characters with a bit
-- (app_private.audit_char_mask) of the names of that person's entries of that action that day
-- (app_private.audit_actor_chars, up to its cursor). When app_hidden.audit_find's first stretch of
-- such a search (with people, no incident, no incident named by the pattern) finds its matches
-- sparse, it goes on from there (a call of itself with "by_days") by the days on which those
-- people's names (of the actions) hold every character of the pattern that has a bit and some
-- name of the day its pairs and runs of three (app_private.audit_label_chars), or, for the page's
-- search, on which they took an action the pattern matches or are a person it matches; and by
-- the days of their entries past the namer's cursor; one day's range at a time, as it reads a
-- person's days with actions since 000073. Those three: 3.6 ms, 2.2 ms, 17-27 ms. Not from the
-- start: working out the days costs more than a first stretch that fills the page ("e" with
-- dora: 0.8 ms either way; by the days at once, 5 ms). The per-month characters of each action's
-- names (000069) are now worked out from the people's, not again from the names.
--
-- And app_private.audit_search (the walk of the names) with people, from its second month on,
-- skips the months and days on which those people's names (of the actions) lack a character of
-- the word that has a bit: a word with trigrams whose names the people never meet in the actions
-- had every month probed and most days' names read (" via b" with the nine people of "biG." and
-- session.signed_in or export.requested, whose names are people's emails and incident titles the
-- system exported: 0.58 s for no match; now 14-24 ms).
--
-- Runs as the session's login: the table and functions are on the audit path (see CONVENTIONS.md).

set local role none;

-- The namer waits here (its lock) until this migration commits: every later round keeps its
-- entries' people's characters, and the rows named so far are kept below.
select pg_advisory_xact_lock(7295061840133851322);

create table app_private.audit_actor_chars (
  tenant_id uuid not null,
  actor_label text not null,
  day date not null,
  action text not null,
  chars bigint not null,
  -- (the characters in the key's index too: the days are found without reading the table)
  constraint audit_actor_chars_pkey primary key (tenant_id, actor_label, day, action) include (chars)
) with (fillfactor = 70);
comment on table app_private.audit_actor_chars is
  'The characters (app_private.audit_char_mask) of the resource names of each person''s entries of each action per tenant and UTC day, up to the names'' cursor (app_private.audit_label_state), kept by the namer: a pattern of characters alone with people reads only the days whose names of theirs hold its characters (000079).';

-- Every entry named so far (one pass over the log), each distinct name once.
set local work_mem = '256MB';
insert into app_private.audit_actor_chars (tenant_id, actor_label, day, action, chars)
select x.tenant_id, x.actor_label, x.day, x.action, coalesce(app_private.audit_char_mask(string_agg(x.label, E'\n')), 0)
from (select distinct e.tenant_id, e.actor_label, (e.occurred_at at time zone 'UTC')::date as day, e.action,
             lower(e.resource_label) as label
      from app_public.audit_log e, app_private.audit_label_state s
      where (e.xid, e.id) <= (s.last_xid, s.last_id)) x
group by 1, 2, 3, 4;
analyze app_private.audit_actor_chars;

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
    ), people as (
      -- (000079) the characters (app_private.audit_char_mask) of the names of each person's entries
      -- of each action per day: 0 for entries without a name
      select b.tenant_id, b.actor_label, (b.occurred_at at time zone 'UTC')::date as day, b.action,
             coalesce(app_private.audit_char_mask(lower(string_agg(b.resource_label, E'\n'))), 0) as chars
      from batch b group by 1, 2, 3, 4
    ), charred as (
      -- (a row is written again only when its names bring it a new character)
      insert into app_private.audit_actor_chars as c (tenant_id, actor_label, day, action, chars)
      select p.tenant_id, p.actor_label, p.day, p.action, p.chars from people p
      on conflict on constraint audit_actor_chars_pkey do update set chars = c.chars | excluded.chars
        where c.chars | excluded.chars <> c.chars
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
        -- (000079: from the people's characters above, not worked out again from the names)
        from (select p.tenant_id, date_trunc('month', p.day)::date as month,
                     app_private.audit_action_bits(p.action) as actions, bit_or(p.chars) as chars
              from people p
              group by 1, 2, p.action) y
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
  -- (000079) A pattern with neither trigrams nor a pair, with people: the characters with a bit that
  -- its matches hold, when they are to be found by the days whose names of those people hold them.
  v_person_chars bigint := 0;
  v_triples bit(4096);
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
  -- The people and incidents the page's search also matches by their name (their entries match
  -- whatever their resource's name); a search of the resource name alone has none.
  if v_pattern is not null and (p_filter->>'fields' = 'label') is not true then
    select a.actors, a.incidents into v_alt_actors, v_alt_incidents
    from app_private.audit_search_alternates(v_tenant, v_pattern) a;
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
  if v_actors is not null and p_filter->>'incident' is null and cardinality(v_alt_incidents) = 0
     and v_pattern is not null and pg_catalog.getdatabaseencoding() = 'UTF8' and cardinality(v_trigrams) = 0
     and app_private.audit_short_pattern_trigrams(pg_catalog.lower(v_pattern)) is null then
    v_person_chars := coalesce(app_private.audit_pattern_char_mask(pg_catalog.lower(v_pattern)), 0);
  end if;
  if v_person_chars <> 0 and (p_filter->>'by_days')::boolean is true then
    select * into v_names from app_private.audit_label_state;
    v_days := format(
      'select c.day from app_private.audit_actor_chars c
       where c.tenant_id = %1$L::uuid and c.actor_label = any (%2$L::text[]) and c.day >= %3$L::date and c.day <= %4$L::date%5$s
         and ((c.chars & %6$s = %6$s
               -- and some name of that day holds its pairs of adjacent characters and runs of three
               -- (a day''s, as the names'' walk reads them: 000068, 000075; each day checked once)
               and c.day in (select l.day from app_private.audit_label_chars l
                             where l.tenant_id = %1$L::uuid and l.day >= %3$L::date and l.day <= %4$L::date
                               and l.chars & %6$s = %6$s
                               and app_private.audit_pairs_hold(l.pairs, $5) and app_private.audit_pairs_hold(l.triples, $6)))%7$s)
       union
       select (e.occurred_at at time zone ''UTC'')::date from app_public.audit_log e
       where e.xid >= %8$s and (e.xid, e.id) > (%8$s, %9$s) and e.tenant_id = %1$L::uuid and e.actor_label = any (%2$L::text[])%10$s',
      v_tenant, v_actors, coalesce(v_lo, '-infinity'::date), coalesce(v_hi, 'infinity'::date),
      case when cardinality(v_actions) > 0 then format(' and c.action = any (%L::text[])', v_actions) else '' end,
      v_person_chars,
      case when (p_filter->>'fields' = 'label') is true then ''
           else format(' or c.action ilike %1$L or c.actor_label ilike %1$L or c.actor_label = any (%2$L::text[])', v_pattern, v_alt_actors) end,
      v_names.last_xid, v_names.last_id,
      case when cardinality(v_actions) > 0 then format(' and e.action = any (%L::text[])', v_actions) else '' end);
    -- (the pairs and runs of three as parameters: two literals of 4,096 bits took ~2 ms to plan)
    v_pairs := app_private.audit_pattern_pair_masks(pg_catalog.lower(v_pattern));
    v_triples := app_private.audit_pattern_triple_bits(pg_catalog.lower(v_pattern));
    -- (those days' entries are all there is to read: no walk of the names after them)
    v_indexed := false;
    v_person_chars := 0;
  elsif v_actors is not null and p_filter->>'incident' is null and cardinality(v_actions) > 0 then
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
  open v_rows for execute v_base using v_scan, v_pattern, v_alt_actors, v_alt_incidents, v_pairs, v_triples;
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
  -- A search with too few matches in that stretch: the rest through the names, beyond it.
  return query select * from app_private.audit_search(
    v_tenant, p_filter || jsonb_build_object('alt_actors', v_alt_actors, 'alt_incidents', v_alt_incidents, 'trigrams', to_jsonb(v_trigrams)),
    v_last_at, v_last_id, p_ascending, p_limit - v_found, v_scan);
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
  -- (000079) With people: the characters with a bit that every match of the word holds (0: none, or
  -- a database that is not UTF-8), and the days of the month read whose names of theirs hold them.
  v_person_need bigint := case when v_actors is not null and v_pattern_lower is not null
                               then coalesce(app_private.audit_pattern_char_mask(v_pattern_lower), 0) else 0 end;
  v_person_days date[];
  v_person_months int := 0;
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

set local role :DATABASE_OWNER;
