--! Previous: sha1:90a65c60e8858412b658b912244a20dab2017990
--! Hash: sha1:f812225656c9ecfb89779d318a092285981e1600
--! Message: name-shapes

-- 000105 The shapes of the names: a word's count from names that differ only in their numbers.
--
-- GraphQL's totalCount of a word (resourceLabelContains, alone or with actions or people) adds up
-- the entries of every name and day that holds it, month by month (000063). When the word's names
-- are many, so is the work, even for a word whose names all look alike: in the 2,000,000-entry
-- bench tenant the first count of "pcap" (200,001 entries, each of its own name
-- "capture-1333334.pcap") took 0.46 s, "warning" 0.15 s, "laptop" with a person 0.06 s, in a
-- session that had counted other words before (the server's kept connections); the next counts
-- come from the server's base (000058).
--
-- Most of the names that make a log large differ only in their numbers (ticket, incident and
-- file numbers, dates, addresses). The namer now also keeps, per tenant, UTC day and shape, the
-- entries of the names of that shape (app_private.audit_shape_days), with their entries of each
-- action, of each actor and of each action and actor, as it keeps them per name (000072, 000103). A name's shape is its lowered
-- form with each run of ASCII digits as one \x01 (app_private.audit_name_shape). A word that holds
-- no ASCII digit and no \x01 is in a name exactly when it is in the name's shape: each of its
-- places in the name holds no digit, so the shape holds it unchanged, and each of its places in the
-- shape holds no \x01, so the name holds it unchanged. Such a word is counted from the shapes of
-- the window's whole days, alone, with actions or people, or with both (then the edge days' names
-- that hold it are read from the log, as before); the bench tenant has 451,260 names and days, and
-- 4,059 shapes and days. A word with digits is counted from the names, as before.
-- Runs as the session's login: the table and functions are on the audit path (see CONVENTIONS.md).

set local role none;

-- The namer waits here (its lock) until this migration commits: every later round adds its
-- entries, and the names named so far are counted below.
select pg_advisory_xact_lock(7295061840133851322);

create function app_private.audit_name_shape(p_label text) returns text
language sql immutable parallel safe set search_path = pg_catalog as $$
  select regexp_replace(lower(p_label), '[0-9]+', E'\x01', 'g')
$$;
comment on function app_private.audit_name_shape(text) is
  'A resource name''s shape: its lowered form with each run of ASCII digits as one \x01 (000105). A word without ASCII digits or \x01 is in a name exactly when it is in its shape.';
revoke all on function app_private.audit_name_shape(text) from public;

create table app_private.audit_shape_days (
  tenant_id uuid not null,
  day date not null,
  -- app_private.audit_name_shape of the names
  shape text not null,
  -- the day's entries of the names of this shape, and of each action ({"incident.updated": 12})
  -- and of each actor ({"ana@example.com": 3})
  entries bigint not null,
  action_entries jsonb not null,
  actor_entries jsonb not null,
  -- and of each action and actor ({"incident.updated ana@example.com": 2}) when it has more than
  -- one of each, else null (app_private.audit_joint_entries, as app_private.audit_label_days)
  joint_entries jsonb,
  constraint audit_shape_days_pkey primary key (tenant_id, day, shape)
) with (fillfactor = 70);
comment on table app_private.audit_shape_days is
  'Each tenant''s entries per UTC day and shape of their resource names (app_private.audit_name_shape), with their entries per action and per actor, up to the names'' cursor (app_private.audit_label_state), kept by the namer: a word without digits is counted from them (000105).';
-- The names named so far: each tenant's month of names, grouped by shape (so without reading the log).
do $$
declare
  r record;
begin
  for r in
    select l.tenant_id, date_trunc('month', l.day)::date as month
    from app_private.audit_label_days l group by 1, 2 order by 1, 2
  loop
    insert into app_private.audit_shape_days (tenant_id, day, shape, entries, action_entries, actor_entries, joint_entries)
    select r.tenant_id, t.day, t.shape, t.entries, t.actions, t.actors,
           case when (select count(*) from jsonb_object_keys(t.actions)) > 1
                 and (select count(*) from jsonb_object_keys(t.actors)) > 1 then t.joint end
    from (select s.day, s.shape, s.entries,
                 (select coalesce(jsonb_object_agg(a.key, a.n), '{}')
                  from (select x.key, sum(x.value::bigint) as n from unnest(s.actions) o, jsonb_each_text(o) x group by 1) a) as actions,
                 (select coalesce(jsonb_object_agg(a.key, a.n), '{}')
                  from (select x.key, sum(x.value::bigint) as n from unnest(s.actors) o, jsonb_each_text(o) x group by 1) a) as actors,
                 (select coalesce(jsonb_object_agg(a.key, a.n), '{}')
                  from (select x.key, sum(x.value::bigint) as n from unnest(s.joints) o, jsonb_each_text(o) x group by 1) a) as joint
          from (select l.day, app_private.audit_name_shape(l.label) as shape, sum(l.entries)::bigint as entries,
                       array_agg(l.action_entries) as actions, array_agg(l.actor_entries) as actors,
                       array_agg(app_private.audit_joint_entries(l.action_entries, l.actor_entries, l.joint_entries)) as joints
                from app_private.audit_label_days l
                where l.tenant_id = r.tenant_id and l.day >= r.month and l.day < (r.month + interval '1 month')::date
                group by 1, 2) s) t;
  end loop;
end;
$$;
-- A word's shapes, by their trigrams within the tenant (btree_gin for the tenant); built after the
-- fill, so that none of its keys are left in GIN's pending list.
create index audit_shape_days_trigrams on app_private.audit_shape_days using gin (tenant_id, shape gin_trgm_ops);
analyze app_private.audit_shape_days;

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
      insert into app_private.audit_label_days as l (tenant_id, day, label, first_at, last_at, entries, action_entries, actor_entries,
                                                     joint_entries)
      select x.tenant_id, x.day, x.label, min(x.first_at), max(x.last_at), sum(x.n) filter (where x.g = 1)::bigint,
             -- (000072) and its entries of each action and of each actor (a row of x is one or the
             -- other, or 000103 both)
             jsonb_object_agg(x.action, x.n) filter (where x.g = 1),
             jsonb_object_agg(x.actor_label, x.n) filter (where x.g = 2),
             -- (000103) and of each action and actor, when it has more than one of each
             case when count(*) filter (where x.g = 1) > 1 and count(*) filter (where x.g = 2) > 1
                  then jsonb_object_agg(x.action || ' ' || x.actor_label, x.n) filter (where x.g = 0) end
      from (select b.tenant_id, (b.occurred_at at time zone 'UTC')::date as day, b.resource_label as label, b.action,
                   b.actor_label, min(b.occurred_at) as first_at, max(b.occurred_at) as last_at, count(*) as n,
                   grouping(b.action, b.actor_label) as g
            from batch b where b.resource_label is not null
            group by grouping sets ((1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 3, 4, 5))) x
      group by 1, 2, 3
      on conflict on constraint audit_label_days_pkey
        do update set first_at = least(l.first_at, excluded.first_at), last_at = greatest(l.last_at, excluded.last_at),
                      entries = l.entries + excluded.entries,
                      action_entries = app_private.audit_add_entries(l.action_entries, excluded.action_entries),
                      actor_entries = app_private.audit_add_entries(l.actor_entries, excluded.actor_entries),
                      joint_entries = app_private.audit_add_joint_entries(l.action_entries, l.actor_entries, l.joint_entries,
                                                                          excluded.action_entries, excluded.actor_entries,
                                                                          excluded.joint_entries)
    ), shaped as (
      -- (000105) and each shape's: the lowered name with every run of ASCII digits as one \x01
      -- (app_private.audit_shape_days), with its entries of each action, of each actor and, when it
      -- has more than one of each, of each action and actor, as the names' above
      insert into app_private.audit_shape_days as l (tenant_id, day, shape, entries, action_entries, actor_entries, joint_entries)
      select x.tenant_id, x.day, x.shape, sum(x.n) filter (where x.g = 1)::bigint,
             jsonb_object_agg(x.action, x.n) filter (where x.g = 1),
             jsonb_object_agg(x.actor_label, x.n) filter (where x.g = 2),
             case when count(*) filter (where x.g = 1) > 1 and count(*) filter (where x.g = 2) > 1
                  then jsonb_object_agg(x.action || ' ' || x.actor_label, x.n) filter (where x.g = 0) end
      from (select b.tenant_id, (b.occurred_at at time zone 'UTC')::date as day,
                   app_private.audit_name_shape(b.resource_label) as shape, b.action, b.actor_label, count(*) as n,
                   grouping(b.action, b.actor_label) as g
            from batch b where b.resource_label is not null
            group by grouping sets ((1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 3, 4, 5))) x
      group by 1, 2, 3
      on conflict on constraint audit_shape_days_pkey
        do update set entries = l.entries + excluded.entries,
                      action_entries = app_private.audit_add_entries(l.action_entries, excluded.action_entries),
                      actor_entries = app_private.audit_add_entries(l.actor_entries, excluded.actor_entries),
                      joint_entries = app_private.audit_add_joint_entries(l.action_entries, l.actor_entries, l.joint_entries,
                                                                          excluded.action_entries, excluded.actor_entries,
                                                                          excluded.joint_entries)
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
      -- (000104) every pair of adjacent characters, spaces and marks too, of each lowered name of
      -- the batch whose lowered form is ASCII (000096: letters and digits alone, from pg_trgm's
      -- trigrams), once per person, day, action and name: the days' sums and the people's are
      -- added up from them
      select y.tenant_id, y.actor_label, y.day, y.action, y.n, p.pair
      from (select b.tenant_id, b.actor_label, (b.occurred_at at time zone 'UTC')::date as day, b.action,
                   lower(b.resource_label) as l, count(*) as n
            from batch b where b.resource_label is not null
            group by 1, 2, 3, 4, 5) y
      cross join lateral (
        select distinct substr(y.l, i.i, 2) as pair
        from generate_series(1, length(y.l) - 1) i(i)) p
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
  v_acted date[]; -- (000101) the months where the people have entries of the actions
  v_all text[]; -- (000101) every actor of the log
  v_others text[]; -- (000101) the log's actors an actorContains does not match, when they are few (null: many, or an actorLabel)
  v_pure text := 'false'; -- (000103) a name and day counted from its kept entries ('names': every day wholly inside the window)
  v_people_entries text; -- (000103) a name's entries of the people ('names')
  v_joint text; -- (000103) a name's entries of the actions by the people, from its kept entries per action and actor
  v_whole_first date; -- (000103) the window's first and last whole UTC days (null: no bound)
  v_whole_last date;
  v_by_others boolean; -- (000103) the people counted as every actor but those the pattern leaves out
  v_actions_entries text; -- (000103) a name's entries of the actions ('names')
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
    -- (000101) every actor of the log, and those the pattern matches among them
    v_all := app_hidden.audit_actors_matching('%');
    v_matching := array(select x from unnest(v_all) x
                        where x ilike '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%'
                          and (v_actor_label is null or x = v_actor_label));
    -- (000101) A pattern most actors hold ("@" or a domain: every person but "system"): its
    -- people are the log's actors but a few, and a name's entries of theirs are its entries but
    -- those few's.
    if v_actor_label is null and cardinality(v_all) - cardinality(v_matching) <= 16 then
      v_others := array(select x from unnest(v_all) x where x <> all (v_matching));
    end if;
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
            and lower(c->>'resourceLabelContains') ~ '^[\x01-\x7F]{2}$'; -- (000104) any two ASCII characters
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
  -- (000103) A name's entries of the actions, and of the people, as SQL (null: not asked); the
  -- count takes the first of them, or all its entries. The sums are written out as one
  -- expression of lookups: a subquery per name and day, over the keys' array, costs a few
  -- microseconds each.
  v_by_others := v_others is not null and (v_people is null or cardinality(v_others) < cardinality(v_people));
  v_actions_entries := case when v_actions is not null then app_private.audit_sum_sql('action_entries', v_actions) end;
  v_people_entries := case
    -- (000101) the name's entries but those of the actors the pattern does not match
    when v_by_others then format('(l.entries - %s)', app_private.audit_sum_sql('actor_entries', v_others))
    when v_people is not null then app_private.audit_sum_sql('actor_entries', v_people)
    when v_actor_label is not null and c->>'actorContains' is null then format('coalesce((l.actor_entries->>%L)::bigint, 0)', v_actor_label)
    when c->>'actorContains' is not null then
      format('(select coalesce(sum(a.value::bigint), 0) from jsonb_each_text(l.actor_entries) a where %s and a.key ilike %L)',
             case when v_actor_label is not null then format('a.key = %L', v_actor_label) else 'true' end,
             '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%') end;
  v_entries := coalesce(v_actions_entries, v_people_entries, 'l.entries');
  -- (000103) A word with actions and people ('names'): a name and day's entries of the actions by
  -- the people, from what the namer keeps of it. A name and day with entries of more than one
  -- action and more than one actor keeps them per action and actor (joint_entries,
  -- {"<action> <actor>": n}); with one action, or one actor, they are its entries of the people
  -- (of the one action, if it is one of the actions) or of the actions (by the one actor, if
  -- it is one of the people), the smaller of the two. Only the window's edge days are read from
  -- the log. Before, every name and day whose people took the actions was read from the log
  -- ("s review" with incident.updated and a person who updates incidents: ~0.2-0.5 s the first
  -- time in the 2,000,000-entry bench tenant).
  if v_unit = 'names' then
    v_joint := case
      when v_by_others then format('(%s - %s)', v_actions_entries,
        app_private.audit_sum_sql('joint_entries', array(select a || ' ' || p from unnest(v_actions) a, unnest(v_others) p)))
      when v_people is not null then
        app_private.audit_sum_sql('joint_entries', array(select a || ' ' || p from unnest(v_actions) a, unnest(v_people) p))
      else format('(select coalesce(sum(j.value::bigint), 0) from jsonb_each_text(l.joint_entries) j
                    where split_part(j.key, '' '', 1) = any (%L::text[]) and substr(j.key, strpos(j.key, '' '') + 1) ilike %L)',
                  v_actions, '%' || regexp_replace(c->>'actorContains', esc, '\\\1', 'g') || '%') end;
    v_entries := format('case when l.joint_entries is null then least(%s, %s) else %s end', v_actions_entries, v_people_entries, v_joint);
    v_whole_first := (date_trunc('day', v_from, 'UTC') at time zone 'UTC')::date
                     + case when date_trunc('day', v_from, 'UTC') < v_from then 1 else 0 end;
    v_whole_last := (date_trunc('day', v_to, 'UTC') at time zone 'UTC')::date - 1;
    v_pure := format('(%s and %s)',
                     case when v_whole_first is null then 'true' else format('l.day >= %L::date', v_whole_first) end,
                     case when v_whole_last is null then 'true' else format('l.day <= %L::date', v_whole_last) end);
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
        and lower(c->>'resourceLabelContains') ~ '^[\x01-\x7F]{2}$' then -- (000104) any two ASCII characters
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
  elsif v_unit in ('label', 'names') and v_label_lower is not null and lower(c->>'resourceLabelContains') !~ '[0-9\x01]'
        and app_private.audit_char_entries_index(lower(c->>'resourceLabelContains')) is null then
    -- (000105) A word without ASCII digits, alone, with actions, with people or with both: the
    -- entries of its names' shapes over the window's whole days (app_private.audit_shape_days: a
    -- name's shape is its lowered form with each run of ASCII digits as one \x01, so a word
    -- without digits or \x01 is in a name exactly when it is in the name's shape), of the actions
    -- by the people as a name's (000103). Most names differ only in their numbers
    -- ("capture-1333334.pcap", "Lost laptop #1006"): the 2,000,000-entry bench tenant has 451,260
    -- names and days but 4,059 shapes and days. Before, every name and day that holds the word was
    -- read, month by month: "pcap" (200,001 entries, each of its own name) 0.46 s the first time.
    -- (A word without trigrams reads the shapes of the window's days by the primary key, behind
    -- "offset 0": the trigram index, asked for a pattern it takes no trigram from, reads every key
    -- of every shape, 46 ms for "n_." in that tenant.)
    execute format(
      'select coalesce(sum(%s), 0) from (
         select * from app_private.audit_shape_days l
         where l.tenant_id = $1 and ($2::date is null or l.day >= $2) and ($3::date is null or l.day < $3)%s) l
       where l.shape like $4 and ($5::text[] is null or l.action_entries ?| $5)%s', v_entries,
      case when cardinality(app_private.audit_pattern_trigrams(v_label)) = 0 then ' offset 0' else '' end,
      case when v_people is not null then format(' and l.actor_entries ?| %L::text[]', v_people) else '' end)
      into v_kept
      using v_tenant,
            case when v_unit = 'label' then (v_lo at time zone 'UTC')::date else v_whole_first end,
            case when v_unit = 'label' then (v_hi at time zone 'UTC')::date else v_whole_last + 1 end,
            v_label_lower, v_actions;
    -- With actions and people ('names'): the edge days' names that hold it, and their entries
    -- from the log (the log's index by tenant, name and time). ('label': the edges are read below.)
    if v_unit = 'names' then
      execute format(
        'select count(*) from app_private.audit_label_days l
         cross join lateral (
           select 1 from app_public.audit_log e
           where e.tenant_id = $1 and e.resource_label = l.label
             and e.occurred_at >= (l.day::timestamp at time zone ''UTC'') and e.occurred_at < ((l.day + 1)::timestamp at time zone ''UTC'')
             and (e.xid, e.id) <= (%s, %s) and %s) e
         where l.tenant_id = $1 and l.day = any ($2) and l.label_lower like $3
           and ($4::text[] is null or l.action_entries ?| $4)%s',
        v_names.last_xid, v_names.last_id, array_to_string(v_pred, ' and '),
        case when v_people is not null then format(' and l.actor_entries ?| %L::text[]', v_people) else '' end)
        into v_n
        using v_tenant,
              array(select d from unnest(array[(v_from at time zone 'UTC')::date, (v_to at time zone 'UTC')::date]) d
                    where d is not null and not (d >= coalesce(v_whole_first, '-infinity'::date)
                                                 and d <= coalesce(v_whole_last, 'infinity'::date))),
              v_label_lower, v_actions;
      v_kept := v_kept + v_n;
    end if;
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
    v_names_sql := replace(v_names_sql, 'select l.day, l.label, l.entries from',
                           format('select l.day, l.label, %s as entries, %s as pure from', v_entries, v_pure));
    -- (Without parallel workers: PostgreSQL prices a probe of many keys at a large part of the
    -- names and starts workers for it, ~30 ms a month, to read a few names.)
    perform set_config('max_parallel_workers_per_gather', '0', true);
    -- The window's days: whole days for the kept counts ('label': [v_lo, v_hi)), else every day
    -- it touches (its entries are checked).
    v_first := case when v_unit = 'label' then (v_lo at time zone 'UTC')::date else (v_from at time zone 'UTC')::date end;
    v_final := case when v_unit = 'label' then (v_hi at time zone 'UTC')::date - 1 else (v_to at time zone 'UTC')::date end;
    v_count_sql := case when v_unit = 'label' then format('select coalesce(sum(l.entries), 0) from (%s) l', v_names_sql)
      -- (000103) a name and day wholly inside the window: its kept entries; the edge days: the log's
      else format(
        'select coalesce(sum(case when l.pure then l.entries else (
           select count(*) from app_public.audit_log e
           where e.tenant_id = $1 and e.resource_label = l.label
             and e.occurred_at >= (l.day::timestamp at time zone ''UTC'') and e.occurred_at < ((l.day + 1)::timestamp at time zone ''UTC'')
             and (e.xid, e.id) <= (%s, %s) and %s) end), 0)
         from (%s) l',
        v_names.last_xid, v_names.last_id, array_to_string(v_pred, ' and '), v_names_sql)
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
    -- (000101) With actions and people: only the months where those people have entries of those
    -- actions at all (the sealer's per day, action and actor counts, which hold at least every entry
    -- up to the names' cursor). The months' bits keep the actions and the people of a trigram's
    -- names apart, so a month where the word's names have entries of the actions, and others of the
    -- people, was read name by name ("r #" with export.requested and a person who never requests an
    -- export: every name and day of the year that has both, 6,024 in the 2,000,000-entry bench
    -- tenant, and their entries from the log, for a count of 0).
    if v_actions is not null and (v_actor_label is not null or c->>'actorContains' is not null) then
      execute format(
        'select coalesce(array_agg(distinct date_trunc(''month'', d.day)::date), ''{}'')
         from app_private.audit_activity_daily d
         where d.tenant_id = $1 and d.day >= $2 and d.day <= $3 and d.action = any ($4) and %s', v_actor_pred)
        into v_acted using v_tenant, v_month, v_last, v_actions;
      v_may := array(select x from unnest(coalesce(v_may, v_acted)) x where x = any (v_acted));
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

-- The shapes' trigram index takes new keys as the names' index does: into GIN's pending list,
-- which every count through it reads whole (000047: ~0.1 ms a page, up to 4 MB before GIN merges
-- it). The namer merges both lists when it has caught up, at most every 5 s.
create or replace function app_private.tidy_audit_names(p_state app_private.audit_label_state) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public set jit = off as $$
begin
  -- (the state as the namer read it, under its lock: no other namer runs meanwhile)
  if p_state.tidied_at is null or p_state.tidied_at < now() - interval '5 seconds' then
    -- An empty list costs a read of the index's first page, and writes nothing.
    if gin_clean_pending_list('app_private.audit_label_days_keys_idx'::regclass)
       + gin_clean_pending_list('app_private.audit_shape_days_trigrams'::regclass) > 0 then
      update app_private.audit_label_state set tidied_at = now();
    end if;
  end if;
end;
$$;
comment on function app_private.tidy_audit_names(app_private.audit_label_state) is
  'Merges the pending lists of the names'' index and of the shapes'' index (a search or count reads all of one on every use), at most every 5 s: the namer calls it when it has caught up (000047, 000105).';

set local role :DATABASE_OWNER;
