--! Previous: sha1:7710cf606489e00a123c63c54497ee43be932785
--! Hash: sha1:d86f96175bdba53b22089b73dde53287cfd6c2fa
--! Message: trigram-people

-- 000097 The people of each month's names with their trigrams (and characters): a word with a
-- person who never, or seldom, acts on the names that hold it skips the months where none of that
-- person's names holds it, as a word with an action does since 000065.
--
-- The Audit Log page's search "ARN" with the user filter "system", and GraphQL's
-- resourceLabelContains "arn" with actorLabel "system", in the 2,000,000-entry bench tenant: the
-- walk probed every month's names that hold "arn" (~8,200 a month, none of them the system's),
-- 35-55 ms each time against 4-8 ms in the 300-entry tenant (big ÷ small 4.8-7.6 at p95);
-- "capture" with "system" the same way (ratio 2.7-2.9). The month probe (app_private.audit_months_may_match)
-- knew each trigram's actions, not its people.
--
-- app_private.audit_label_trigram_months now also keeps, per tenant, month and trigram (and
-- character, -1 ... -64), the people of the entries of the names that hold it, two bits each
-- (app_private.audit_person_bits of the actor label), written by the namer in the
-- same statement. A month where one of the word's trigrams (or characters) has no name with entries
-- of one of the people holds no match of the word with those people: the walk (audit_search) and
-- the count (audit_connection_count) skip it. As with the actions, the bits can only let through a
-- month that holds no match (a collision), never skip one that holds one; a row without the people
-- (null) lets every month through. A person takes two bits of 256 (app_private.audit_person_bits),
-- not of 64 as an action does: a trigram's month may have many people (the actions are a few dozen),
-- and with 64 bits the two of one person were already among those of the nine others of a month
-- in a test tenant of ten people, in 6 of its 30 months.
-- Runs as the session's login: the table and functions are on the audit path (see CONVENTIONS.md).

set local role none;

-- The namer waits here (its lock) until this migration commits: every later round adds its
-- people, and the people of the names named so far are added below.
select pg_advisory_xact_lock(7295061840133851322);

-- A person's two bits of 256. (No SET clause, so that PostgreSQL inlines it where it is called, as
-- audit_action_bits is not: its body was planned again at every call, 000078; every name is
-- schema-qualified instead, its operators too.)
create function app_private.audit_person_bits(p_actor text) returns bit(256)
language sql immutable parallel safe as $$
  select pg_catalog.set_bit(pg_catalog.set_bit(pg_catalog.repeat('0', 256)::pg_catalog.bit(256),
                                               x.h operator(pg_catalog.&) 255, 1),
                            (x.h operator(pg_catalog.>>) 8) operator(pg_catalog.&) 255, 1)
  from (select pg_catalog.hashtext(p_actor) as h) x
$$;
comment on function app_private.audit_person_bits(text) is
  'The two bits of a person (an actor label) in a set of people (app_private.audit_label_trigram_months.actors, 000097).';
revoke all on function app_private.audit_person_bits(text) from public;

alter table app_private.audit_label_trigram_months add column actors bit(256);
comment on column app_private.audit_label_trigram_months.actors is
  'The people of the entries of the month''s names that hold the trigram (or character), two bits each (app_private.audit_person_bits of the actor label); null: not known, anyone (000097).';

-- The people of the names named so far: of each name's trigrams from the names' own people per day
-- (app_private.audit_label_days.actor_entries, up to the same cursor), and of each character from
-- the people's characters per day and action (app_private.audit_actor_chars, 000079); a key that
-- is both a trigram's hash and a character's (-1 ... -64) holds both, as the namer writes it.
set local work_mem = '512MB';
create temporary table audit_trigram_people on commit drop as
select z.tenant_id, z.month, z.key, bit_or(z.actors) as actors
from (
  select x.tenant_id, x.month, k.key, x.actors
  from (select l.tenant_id, date_trunc('month', l.day)::date as month, l.label,
               bit_or((select bit_or(app_private.audit_person_bits(a)) from jsonb_object_keys(l.actor_entries) a)) as actors
        from app_private.audit_label_days l
        group by 1, 2, 3) x
  cross join lateral (
    select hashtext(t) as key from unnest(show_trgm(x.label)) t
    union all
    select 0 where lower(x.label) ~ '[^\x01-\x7F]') k
  union all
  select c.tenant_id, date_trunc('month', c.day)::date, -i, app_private.audit_person_bits(c.actor_label)
  from app_private.audit_actor_chars c
  cross join generate_series(1, 64) i
  where c.chars & (1::bigint << (i - 1)) <> 0) z
group by 1, 2, 3;
update app_private.audit_label_trigram_months m set actors = p.actors
from audit_trigram_people p
where p.tenant_id = m.tenant_id and p.month = m.month and p.key = m.trigram;
analyze app_private.audit_label_trigram_months;

drop function app_private.audit_months_may_match(uuid, date, date, int[], boolean, text[]);
create function app_private.audit_months_may_match(p_tenant uuid, p_first date, p_last date, p_keys int[], p_all boolean,
  p_actions text[], p_actors text[] default null) returns date[]
-- (Planned without the range's length, a thousand months, which JIT would compile: ~7 ms a call.)
language plpgsql stable parallel safe set search_path = pg_catalog set jit = off as $$
declare
  -- (000078) The actions' bits as app_private.audit_action_bits gives them, worked out here: that
  -- LANGUAGE sql function with a SET clause had its body parsed and planned again at every call.
  -- (000097) And the people's, two bits of 256 (app_private.audit_person_bits, inlined); null: no
  -- such condition.
  v_bits bigint[] := case when p_actions is not null then
                       array(select (1::bigint << (x.h & 63)) | (1::bigint << ((x.h >> 6) & 63))
                             from (select pg_catalog.hashtext(a) as h from pg_catalog.unnest(p_actions) a) x) end;
  v_people bit(256)[] := case when p_actors is not null then
                           array(select app_private.audit_person_bits(a) from pg_catalog.unnest(p_actors) a) end;
  v_need int := case when p_all then (select count(distinct k) from pg_catalog.unnest(p_keys) k) else 1 end;
begin
  return (
    select coalesce(array_agg(mo::date order by mo), '{}')
    from pg_catalog.generate_series(p_first, p_last, interval '1 month') mo
    where p_keys is null or (
      (v_bits is null or exists (
         select 1 from pg_catalog.unnest(v_bits) bits
         where (select count(*) from app_private.audit_label_trigram_months m
                where m.tenant_id = p_tenant and m.month = mo::date and m.trigram = any (p_keys)
                  and m.actions & bits = bits) >= v_need))
      -- (000097) and one of the people with entries of names that hold them (a row written before
      -- the people were kept, null, may hold anyone's)
      and (v_people is null or exists (
         select 1 from pg_catalog.unnest(v_people) bits
         where (select count(*) from app_private.audit_label_trigram_months m
                where m.tenant_id = p_tenant and m.month = mo::date and m.trigram = any (p_keys)
                  and (m.actors is null or m.actors & bits = bits)) >= v_need))));
end;
$$;
comment on function app_private.audit_months_may_match(uuid, date, date, int[], boolean, text[], text[]) is
  'The months from p_first to p_last (their first days) that may hold a match of a word whose keys (among app_private.audit_label_trigram_months: every one of them, or any when p_all is false) have names with entries of one of the actions (null: any action) and of one of the people (null: anyone); every month when p_keys is null (000065, 000071, 000097).';
revoke all on function app_private.audit_months_may_match(uuid, date, date, int[], boolean, text[], text[]) from public;

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
    ), char_sums as (
      -- (000090) each day's entries per action and character of the mask, of the names that hold it
      -- (app_private.audit_char_entries_sql: one pass over the batch's names and actions, ~3.5 us each)
      select y.tenant_id, y.day, y.action, %5$s as entries
      from (select b.tenant_id, (b.occurred_at at time zone 'UTC')::date as day, b.action, lower(b.resource_label) as l, count(*) as n
            from batch b where b.resource_label is not null
            group by 1, 2, 3, 4) y
      group by 1, 2, 3
    ), char_days as (
      -- (000081) each day's entries per character, of the names that hold it: the actions' sums
      -- added up (not a second pass over the names)
      insert into app_private.audit_label_char_days as d (tenant_id, day, entries)
      select z.tenant_id, z.day, array_agg(z.n order by z.i)
      from (select c.tenant_id, c.day, u.i, sum(u.n)::bigint as n
            from char_sums c cross join lateral unnest(c.entries) with ordinality u(n, i)
            group by 1, 2, 3) z
      group by 1, 2
      on conflict on constraint audit_label_char_days_pkey
        do update set entries = app_private.audit_add_char_entries(d.entries, excluded.entries)
    ), char_action_days as (
      insert into app_private.audit_label_char_action_days as d (tenant_id, day, action, entries)
      select c.tenant_id, c.day, c.action, c.entries from char_sums c
      on conflict on constraint audit_label_char_action_days_pkey
        do update set entries = app_private.audit_add_char_entries(d.entries, excluded.entries)
    ), person_char_days as (
      -- (000096) each person's entries per day, action and character of the mask, of the names
      -- that hold it (app_private.audit_char_entries_sql, one pass over the batch's names by person)
      insert into app_private.audit_actor_char_days as d (tenant_id, actor_label, day, action, entries)
      select y.tenant_id, y.actor_label, y.day, y.action, %5$s as entries
      from (select b.tenant_id, b.actor_label, (b.occurred_at at time zone 'UTC')::date as day, b.action,
                   lower(b.resource_label) as l, count(*) as n
            from batch b where b.resource_label is not null
            group by 1, 2, 3, 4, 5) y
      group by 1, 2, 3, 4
      on conflict on constraint audit_actor_char_days_pkey
        do update set entries = app_private.audit_add_char_entries(d.entries, excluded.entries)
    ), named_pairs as (
      -- (000096) the pairs of adjacent ASCII letters or digits of each lowered name of the batch
      -- whose lowered form is ASCII (pg_trgm's trigrams of the name: two such characters side by
      -- side are in one of its words, and so in one of its trigrams), once per person, day, action
      -- and name: the days' sums and the people's are added up from them
      select y.tenant_id, y.actor_label, y.day, y.action, y.n, p.pair
      from (select b.tenant_id, b.actor_label, (b.occurred_at at time zone 'UTC')::date as day, b.action,
                   lower(b.resource_label) as l, count(*) as n
            from batch b where b.resource_label is not null
            group by 1, 2, 3, 4, 5) y
      cross join lateral (
        select distinct substr(t.t, i.i, 2) as pair
        from unnest(show_trgm(y.l)) t(t), generate_series(1, 2) i(i)
        where t.t ~ '^[a-z0-9 ]{3}$' and substr(t.t, i.i, 2) ~ '^[a-z0-9]{2}$') p
      where y.l !~ '[^\x01-\x7F]'
    ), pair_days as (
      -- (000083) each day's entries per pair, of the names that hold it
      insert into app_private.audit_label_pair_days as d (tenant_id, day, entries)
      select z.tenant_id, z.day, jsonb_object_agg(z.pair, z.n)
      from (select p.tenant_id, p.day, p.pair, sum(p.n)::bigint as n from named_pairs p group by 1, 2, 3) z
      group by 1, 2
      on conflict on constraint audit_label_pair_days_pkey
        do update set entries = app_private.audit_add_counts(d.entries, excluded.entries)
    ), person_pair_days as (
      -- (000096) and each person's, per day and action
      insert into app_private.audit_actor_pair_days as d (tenant_id, actor_label, day, action, entries)
      select z.tenant_id, z.actor_label, z.day, z.action, jsonb_object_agg(z.pair, z.n)
      from (select p.tenant_id, p.actor_label, p.day, p.action, p.pair, sum(p.n)::bigint as n
            from named_pairs p group by 1, 2, 3, 4, 5) z
      group by 1, 2, 3, 4
      on conflict on constraint audit_actor_pair_days_pkey
        do update set entries = app_private.audit_add_counts(d.entries, excluded.entries)
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
      -- (000065) a row is written only when a name brings its trigram a new action (000097: or a
      -- new person)
      insert into app_private.audit_label_trigram_months as m (tenant_id, month, trigram, actions, actors)
      select u.tenant_id, u.month, u.key, bit_or(u.actions), bit_or(u.actors)
      from (
        -- (app_private.audit_label_trigram_keys written out: a call of it per name costs more than
        -- its work, and the grouping below takes out the keys a name holds twice)
        select x.tenant_id, x.month, k.key, x.actions, x.actors
        from (select b.tenant_id, date_trunc('month', b.occurred_at at time zone 'UTC')::date as month, b.resource_label,
                     bit_or(app_private.audit_action_bits(b.action)) as actions,
                     bit_or(app_private.audit_person_bits(b.actor_label)) as actors
              from batch b where b.resource_label is not null
              group by 1, 2, 3) x
        cross join lateral (
          select hashtext(t) as key from unnest(show_trgm(x.resource_label)) t
          union all
          select 0 where lower(x.resource_label) ~ '[^\x01-\x7F]') k
        union all
        -- (000069) and each character with a bit, -1 … -64, with the actions of the names that hold
        -- it (one mask for the names of each action of the month, not one per name)
        -- (000097: and with the people of those names, one mask for each action and person)
        select y.tenant_id, y.month, -i, y.actions, y.actors
        -- (000079: from the people's characters above, not worked out again from the names)
        from (select p.tenant_id, date_trunc('month', p.day)::date as month,
                     app_private.audit_action_bits(p.action) as actions,
                     app_private.audit_person_bits(p.actor_label) as actors, bit_or(p.chars) as chars
              from people p
              group by 1, 2, p.action, p.actor_label) y
        cross join generate_series(1, 64) i
        where y.chars & (1::bigint << (i - 1)) <> 0) u
      group by 1, 2, 3
      on conflict (tenant_id, month, trigram) do update set actions = m.actions | excluded.actions,
                                                            actors = m.actors | excluded.actors
        where m.actions | excluded.actions <> m.actions or (m.actors | excluded.actors) is distinct from m.actors
    )
    select count(*), (array_agg(b.xid order by b.xid desc, b.id desc))[1], (array_agg(b.id order by b.xid desc, b.id desc))[1]
    from batch b$q$,
    v_state.last_xid, v_state.last_id, v_seal.last_xid, v_seal.last_id, app_private.audit_char_entries_sql())
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
          if v_months_probed = 2 then
            -- (000071) The walk goes on past its first month: the months left that may hold a match,
            -- in one statement each for the trigrams' and the characters' keys.
            v_lo := case when p_ascending then v_month else date_trunc('month', v_first)::date end;
            v_hi := case when p_ascending then date_trunc('month', v_last)::date else v_month end;
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
  v_matching text[]; -- (000092) the people an actorContains matches (and the actorLabel among them)
  v_edge_pred text[]; -- (000092) v_pred, and those people when they are few: for reading the log by them
  v_char int; -- (000096) one character with people: its element of the people's kept sums
  v_pair boolean; -- (000096) two ASCII letters or digits with people, or with actions alone
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
  -- (000092) The people the pattern matches among the log's actors (and the actorLabel among them):
  -- none counts nothing; a few are also an exact condition that the actor indexes serve, on the
  -- kept daily counts and on the log's own entries read by actor (the window's edges, a short window).
  if c->>'actorContains' is not null then
    v_matching := array(select x from unnest(app_hidden.audit_actors_matching(
                          '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%')) x
                        where v_actor_label is null or x = v_actor_label);
    if cardinality(v_matching) = 0 then
      return jsonb_build_object('n', 0);
    elsif cardinality(v_matching) <= 256 then
      v_actor_pred := v_actor_pred || format(' and d.actor_label = any (%L::text[])', v_matching);
      v_edge_pred := array[format('e.actor_label = any (%L::text[])', v_matching)];
    end if;
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
  v_edge_pred := v_pred || coalesce(v_edge_pred, '{}');

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
  -- (000096) One character that has a bit of its own, with people (an actorLabel or actorContains;
  -- and actions or not): the entries the namer keeps per person, day, action and character
  -- (app_private.audit_actor_char_days), over the window's whole days, as a word is counted from
  -- its names' kept counts ('label'). Before, every name of those days that holds the character
  -- was read (most of a large log's names) and, with actions, each such name's entries of the day.
  v_char := case when v_label_lower is not null and v_unit in ('label', 'names')
                      and (v_actor_label is not null or c->>'actorContains' is not null)
                 then app_private.audit_char_entries_index(lower(c->>'resourceLabelContains')) end;
  -- (000096) Two ASCII letters or digits with people: the entries the namer keeps per person, day,
  -- action and pair (app_private.audit_actor_pair_days), and the names outside ASCII that hold them.
  -- And with actions alone: every person's sums of those actions.
  v_pair := v_label_lower is not null and v_unit in ('label', 'names')
            and (v_actor_label is not null or c->>'actorContains' is not null or v_actions is not null)
            and lower(c->>'resourceLabelContains') ~ '^[a-z0-9]{2}$';
  if v_char is not null or v_pair then
    v_unit := 'label';
  end if;
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
    v_people := v_matching;
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
    execute format('select count(*) from app_public.audit_log e where %s', array_to_string(v_edge_pred, ' and ')) into v_rest;
    return jsonb_build_object('n', v_rest);
  end if;

  select * into v_seal from app_private.audit_seal_state;
  select * into v_names from app_private.audit_label_state;
  -- A word over the whole log, counted before for this tenant up to an earlier cursor of the
  -- names: that part cannot change (no entry can appear at or below a cursor the namer moved
  -- past, and entries are immutable), so only the entries named since are counted from the log
  -- (through the sealing order's index; literals, one short range), unless there are many.
  -- (000092) A word over a window too: its whole days' kept counts, which grow the same way.
  if v_unit in ('label', 'names') then
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
          -- ('label': of the window's whole days, which its kept counts hold)
          array_to_string(v_pred
            || case when v_unit = 'label' and v_lo is not null then array[format('e.occurred_at >= %L::timestamptz', v_lo)] else '{}' end
            || case when v_unit = 'label' and v_hi is not null then array[format('e.occurred_at < %L::timestamptz', v_hi)] else '{}' end,
            ' and '), (v_base->>'xid')::bigint, (v_base->>'id')::bigint,
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
  elsif v_char is not null then
    -- (000096) one character with people: their kept sums over the window's whole days
    execute format(
      'select coalesce(sum(d.entries[$2]), 0) from app_private.audit_actor_char_days d
       where d.tenant_id = $1 and ($3::date is null or d.day >= $3) and ($4::date is null or d.day < $4)
         and ($5::text[] is null or d.action = any ($5)) and %s', v_actor_pred)
      into v_kept using v_tenant, v_char, (v_lo at time zone 'UTC')::date, (v_hi at time zone 'UTC')::date, v_actions;
  elsif v_pair then
    -- (000096) two ASCII letters or digits with people: their kept sums over the window's whole
    -- days, and the entries of theirs (of the actions) of the names outside ASCII that hold them,
    -- read from the log up to the names' cursor (left out of the pairs as of the days', 000083)
    execute format(
      'select coalesce(sum((d.entries->>$2)::bigint), 0) from app_private.audit_actor_pair_days d
       where d.tenant_id = $1 and ($3::date is null or d.day >= $3) and ($4::date is null or d.day < $4)
         and ($5::text[] is null or d.action = any ($5)) and %s', v_actor_pred)
      into v_kept using v_tenant, lower(c->>'resourceLabelContains'), (v_lo at time zone 'UTC')::date,
                        (v_hi at time zone 'UTC')::date, v_actions;
    execute format(
      'select count(*) from app_private.audit_label_days l
       cross join lateral (
         select 1 from app_public.audit_log e
         where e.tenant_id = $1 and e.resource_label = l.label
           and e.occurred_at >= (l.day::timestamp at time zone ''UTC'') and e.occurred_at < ((l.day + 1)::timestamp at time zone ''UTC'')
           and (e.xid, e.id) <= (%s, %s) and %s) e
       where l.tenant_id = $1 and l.label_lower ~ ''[^\x01-\x7F]'' and l.label_lower like $2
         and ($3::date is null or l.day >= $3) and ($4::date is null or l.day < $4)',
      v_names.last_xid, v_names.last_id, array_to_string(v_pred, ' and '))
      into v_n using v_tenant, v_label_lower, (v_lo at time zone 'UTC')::date, (v_hi at time zone 'UTC')::date;
    v_kept := v_kept + v_n;
  elsif v_unit = 'label' and v_entries = 'l.entries' and v_label_lower is not null
        and lower(c->>'resourceLabelContains') ~ '^[a-z0-9]{2}$' then
    -- (000083) Two ASCII letters or digits alone (no action or actor): the entries the namer keeps
    -- per day and pair of the names whose lowered form is ASCII
    -- (app_private.audit_label_pair_days), and the names outside ASCII that hold it (their own
    -- index), over the window's whole days. Before, every name of the month that has one of the
    -- pair's 37 candidate trigrams was read and checked ("re": most of a large log's names,
    -- 0.4-0.8 s in the 2,000,000-entry bench tenant).
    select coalesce(sum((d.entries->>lower(c->>'resourceLabelContains'))::bigint), 0)
    into v_kept
    from app_private.audit_label_pair_days d
    where d.tenant_id = v_tenant
      and (v_lo is null or d.day >= (v_lo at time zone 'UTC')::date)
      and (v_hi is null or d.day < (v_hi at time zone 'UTC')::date);
    v_kept := v_kept + (
      select coalesce(sum(l.entries), 0)
      from app_private.audit_label_days l
      where l.tenant_id = v_tenant and l.label_lower ~ '[^\x01-\x7F]' and l.label_lower like v_label_lower
        and (v_lo is null or l.day >= (v_lo at time zone 'UTC')::date)
        and (v_hi is null or l.day < (v_hi at time zone 'UTC')::date));
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
    -- (000097) with actions, or with a few people (v_people)
    v_month_keys := case when v_actions is not null or v_people is not null then app_private.audit_pattern_month_keys(v_trigrams, v_short) end;
    v_char_keys := case when v_actions is not null or v_people is not null
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
      v_may := app_private.audit_months_may_match(v_tenant, v_month, v_last, v_month_keys, cardinality(v_trigrams) > 0, v_actions, v_people);
    end if;
    if v_char_keys is not null then
      v_may := array(select x from unnest(app_private.audit_months_may_match(v_tenant, v_month, v_last, v_char_keys, true, v_actions, v_people)) x
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
  elsif v_unit = 'label' and v_actions is not null and v_actor_label is null and c->>'actorContains' is null
        and v_label_lower is not null
        and app_private.audit_char_entries_index(lower(c->>'resourceLabelContains')) is not null then
    -- (000090) One character that has a bit of its own, with actions (no actor): the entries the
    -- namer keeps per day, action and character (app_private.audit_label_char_action_days), over
    -- the window's whole days. Before, every name of those days that holds the character was read
    -- and its entries of the actions added up ("a" with the evidence actions since April in the
    -- 2,000,000-entry bench tenant: 0.33 s; "g" with export.requested since May: 0.16 s).
    select coalesce(sum(d.entries[app_private.audit_char_entries_index(lower(c->>'resourceLabelContains'))]), 0)
    into v_kept
    from app_private.audit_label_char_action_days d
    where d.tenant_id = v_tenant and d.action = any (v_actions)
      and (v_lo is null or d.day >= (v_lo at time zone 'UTC')::date)
      and (v_hi is null or d.day < (v_hi at time zone 'UTC')::date);
  elsif v_entries = 'l.entries' and v_label_lower is not null
        and app_private.audit_char_entries_index(lower(c->>'resourceLabelContains')) is not null then
    -- (000081) One character that has a bit of its own, alone (no action or actor): the entries
    -- the namer keeps per day and character (app_private.audit_label_char_days), over the window's
    -- whole days. Its names' entries were added up before, every name of every day that holds it:
    -- ~0.5 s for "e" in the 2,000,000-entry bench tenant (451,000 names and days).
    select coalesce(sum(d.entries[app_private.audit_char_entries_index(lower(c->>'resourceLabelContains'))]), 0)
    into v_kept
    from app_private.audit_label_char_days d
    where d.tenant_id = v_tenant
      and (v_lo is null or d.day >= (v_lo at time zone 'UTC')::date)
      and (v_hi is null or d.day < (v_hi at time zone 'UTC')::date);
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
    -- (000092) With actions: only the months where a name that holds the word's trigrams has entries
    -- of one of them (000065), as the count with actors and actions and the search do.
    if v_actions is not null or v_people is not null then
      v_may := app_private.audit_months_may_match(v_tenant, v_month, v_last,
                 app_private.audit_pattern_month_keys(v_trigrams, null), true, v_actions, v_people);
    end if;
    while v_month <= v_last loop
      if v_may is not null and v_month <> all (v_may) then
        v_n := 0;
      else
        v_probe_keys := app_private.audit_probe_keys(v_tenant, v_month, v_trigrams, false);
        execute v_count_sql into v_n using v_probe_keys, v_tenant, v_month, v_lo, v_hi, v_label_lower, v_label;
      end if;
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
    'select (select count(*) from app_public.audit_log e where %7$s and %2$s)
          + (select count(*) from app_public.audit_log e where %7$s and %3$s)
          + (select count(*) from app_public.audit_log e where %1$s and %4$s and %5$s and %6$s)',
    array_to_string(v_pred, ' and '),
    case when v_lo is null then 'false' else format('e.occurred_at < %L::timestamptz', v_lo) end,
    case when v_hi is null then 'false' else format('e.occurred_at >= %L::timestamptz', v_hi) end,
    v_cursor,
    case when v_lo is null then 'true' else format('e.occurred_at >= %L::timestamptz', v_lo) end,
    case when v_hi is null then 'true' else format('e.occurred_at < %L::timestamptz', v_hi) end,
    array_to_string(v_edge_pred, ' and '))
    into v_rest;
  return jsonb_build_object('n', v_kept + v_rest)
    || case when v_unit in ('label', 'names') then
         jsonb_build_object('base', jsonb_build_object(v_tenant::text,
           jsonb_build_object('xid', v_names.last_xid, 'id', v_names.last_id, 'kept', v_kept)))
       else '{}' end;
end;
$$;


set local role :DATABASE_OWNER;
