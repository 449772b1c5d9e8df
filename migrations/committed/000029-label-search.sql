--! Previous: sha1:0b822b579779cf56ae2fc21882517c099983b3ae
--! Hash: sha1:2a5805b383d3887b6f0ed63b64749342df4acdbc
--! Message: label-search

-- 000029 Label search: a search goes on through the names the pattern matches, day by day.
--
-- A search reads a first stretch of the log checking the pattern on each entry (000019), then
-- went on through a trigram index over every entry's "action actor resource" text. That index
-- answers "which entries match" all at once, in no order: for a word found in many entries (a word
-- of incident titles in a busy tenant, 141,000 of 2,000,000 entries) the page fetched and checked
-- every one of them to show the newest 25 (~0.1-0.45 s), and the index cost every captured entry
-- some 30 trigram keys.
--
-- Now the worker keeps, per tenant and UTC day, the distinct resource names of the day's sealed
-- entries (app_private.audit_label_days: the name, its first and latest entry that day, how many;
-- app_private.name_audit_entries, after each sealing round and in a transaction of its own, so that
-- sealing never waits for it), and indexes each name's trigrams as keys that carry the tenant and
-- the day (and the month): hash(tenant, day, trigram), worked out by the index
-- (app_private.audit_label_keys), not stored. Such a key's entries in the GIN index are the few
-- names of one tenant's day, so "which of this day's names contain these trigrams" is a small
-- lookup whatever the log's size. The log itself gets an ordered index by name: (tenant,
-- resource_label, time, id): one B-tree entry per captured entry instead of ~30 trigram keys.
--
-- Past its first stretch a search (app_private.audit_search):
--  1. reads the entries of the actions, actors (email, or people by name) and incidents (current
--     title) the pattern matches, a page at most of each, and the entries past the names' cursor
--     (not sealed yet, or sealed a moment ago), read directly;
--  2. goes through the months from the cursor on (newest first, or oldest first), skipping a month
--     in one probe when none of its names matches, and through a matching month's days; reads a
--     day's matching names in the order of their entries nearest the cursor and, for each, its
--     entries that day (a page at most); and stops as soon as no day or name left can come before
--     the page's last entry. A common word reads a day or two of names, a rare one a probe per month;
--  3. when other conditions (surface, IP, …) leave too few matches among many names or days, it
--     stops after about p_scan / 10 of them and says where (scan_end), as every bounded view does:
--     the page shows what it found and "Search older entries →".
-- What a search matches is what the page says it does: the action, the user's email or name, the
-- resource's name, or an incident's current title, each on its own (a pattern no longer matches
-- across the space joining two of them). A pattern without three letters or digits in a row has
-- no trigram: it is checked on the entries read, in bounded stretches. The GraphQL API's
-- resourceLabelContains reads the names too. The log loses its trigram index.

create table app_private.audit_label_days (
  tenant_id uuid not null,
  day date not null,
  label text not null,
  first_at timestamptz not null,
  last_at timestamptz not null,
  entries bigint not null check (entries > 0),
  primary key (tenant_id, day, label)
);
comment on table app_private.audit_label_days is
  'The distinct resource names of each tenant''s sealed audit entries per UTC day, with the first and latest entry''s time, and how many (kept by the sealer; the Audit Log''s search reads it).';

create table app_private.audit_label_state (
  id boolean primary key default true check (id),
  last_xid bigint not null,
  last_id bigint not null
);
comment on table app_private.audit_label_state is
  'How far the names are kept: every sealed entry at or before (last_xid, last_id) in (xid, id) order is in audit_label_days.';

/**
 * Search keys of trigrams in a tenant's day and month (see the migration): 32-bit hashes (one that
 * two share only costs a row checked). A plain SQL expression, so that PostgreSQL inlines it into
 * the index of the names (which works it out for every name it indexes).
 */
create function app_private.audit_search_keys(p_tenant uuid, p_day date, p_trigrams text[], p_day_keys boolean, p_month_keys boolean)
returns int[] language sql immutable parallel safe as $$
  select array(
    select (pg_catalog.hashtextextended(t, s.seed) % 2147483647)::int
    from pg_catalog.unnest(p_trigrams) t,
         (select pg_catalog.hashtextextended(p_tenant::text, p_day - date '2000-01-01') as seed where p_day_keys
          union all
          select pg_catalog.hashtextextended(p_tenant::text, -(extract(year from p_day)::int * 12 + extract(month from p_day)::int))
          where p_month_keys) s)
$$;

/** A name's search keys in its day and month: the index of the names is on them, so they are not stored. */
create function app_private.audit_label_keys(p_tenant uuid, p_day date, p_label text) returns int[]
language sql immutable parallel safe as $$
  select app_private.audit_search_keys(p_tenant, p_day, public.show_trgm(p_label), true, true)
$$;

/**
 * Up to three trigrams that every text matching an ILIKE pattern contains: pg_trgm's, within words
 * (a word at either end of the pattern may go on in the text), of ASCII letters and digits (pg_trgm
 * hashes the others, padding included: which of those are within a word cannot be told). None when
 * the pattern has no three such characters in a row. Three, spread over the sorted list: each key
 * of a probe reads its list in the index (~0.1 ms for a common trigram of a busy month), and three
 * already leave few names that contain them without matching (those are checked).
 */
create function app_private.audit_pattern_trigrams(p_pattern text) returns text[]
language sql immutable parallel safe set search_path = pg_catalog, public as $$
  select case when cardinality(a) <= 3 then a else array[a[1], a[(cardinality(a) + 1) / 2], a[cardinality(a)]] end
  from (select coalesce(array_agg(t order by t), '{}') as a from unnest(show_trgm(p_pattern)) t where t ~ '^[a-z0-9]{3}$') x
$$;

-- Runs as the session's login from here: the log, its indexes and the functions below are on the
-- audit path (see CONVENTIONS.md).
set local role none;

-- The running sealer finishes its round first; the names are filled up to its cursor.
select pg_advisory_xact_lock(7295061840133851321);

insert into app_private.audit_label_days (tenant_id, day, label, first_at, last_at, entries)
select d.tenant_id, d.day, d.label, d.first_at, d.last_at, d.entries
from (
  select e.tenant_id, (e.occurred_at at time zone 'UTC')::date as day, e.resource_label as label,
         min(e.occurred_at) as first_at, max(e.occurred_at) as last_at, count(*) as entries
  from app_public.audit_log e, app_private.audit_seal_state s
  where e.resource_label is not null and (e.xid, e.id) <= (s.last_xid, s.last_id)
  group by 1, 2, 3
) d;
insert into app_private.audit_label_state (last_xid, last_id) select s.last_xid, s.last_id from app_private.audit_seal_state s;

-- (the keys' index is built once they are all in)
create index audit_label_days_keys_idx on app_private.audit_label_days
  using gin (app_private.audit_label_keys(tenant_id, day, label));

create index audit_log_tenant_label_idx on app_public.audit_log (tenant_id, resource_label, occurred_at desc, id desc)
  where resource_label is not null;
drop index app_public.audit_log_tenant_search_trgm_idx;

/** Past audit_find's first stretch: the entries matching a search pattern (and the rest of a filter), in page order after a cursor; see the migration. */
create or replace function app_private.audit_search(
  p_tenant uuid, p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int, p_scan int)
returns table (occurred_at timestamptz, id bigint, scan_end boolean)
-- (Its probes of the names run up to a few dozen times a call: planned once, not each time.)
language plpgsql stable set search_path = pg_catalog, public set plan_cache_mode = force_generic_plan as $$
declare
  v_pattern text := p_filter->>'pattern';
  v_trigrams text[] := app_private.audit_pattern_trigrams(p_filter->>'pattern');
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
begin
  -- The names' cursor first: entries named after this are among the names read below, or past it.
  select * into v_state from app_private.audit_label_state;
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;

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
  -- (audit_find has looked the people and incidents up already.)
  v_alt_actors := array(select jsonb_array_elements_text(p_filter->'alt_actors'));
  v_alt_incidents := array(select jsonb_array_elements_text(p_filter->'alt_incidents'))::uuid[];
  select v_keys || coalesce(array_agg(format('e.action = %L', x.action)), '{}') into v_keys from (
    with recursive a(action) as (
      (select e.action from app_public.audit_log e where e.tenant_id = p_tenant order by e.action using ~<~ limit 1)
      union all
      select (select e.action from app_public.audit_log e
              where e.tenant_id = p_tenant and e.action ~>~ a.action order by e.action using ~<~ limit 1)
      from a where a.action is not null)
    select a.action from a where a.action ilike v_pattern) x;
  select v_keys || coalesce(array_agg(format('e.actor_label = %L', x.actor)), '{}') into v_keys from (
    (with recursive a(actor) as (
      (select e.actor_label from app_public.audit_log e where e.tenant_id = p_tenant order by e.actor_label limit 1)
      union all
      select (select e.actor_label from app_public.audit_log e
              where e.tenant_id = p_tenant and e.actor_label > a.actor order by e.actor_label limit 1)
      from a where a.actor is not null)
    select a.actor from a where a.actor ilike v_pattern)
    union select unnest(v_alt_actors)) x;
  select v_keys || coalesce(array_agg(format('e.incident_id = %L::uuid', i)), '{}') into v_keys from unnest(v_alt_incidents) i;
  execute format(
    'select array_agg(u.occurred_at order by u.occurred_at %1$s, u.id %1$s), array_agg(u.id order by u.occurred_at %1$s, u.id %1$s)
     from (select distinct k.occurred_at, k.id from (%2$s) k order by k.occurred_at %1$s, k.id %1$s limit $1) u',
    v_dir,
    (select string_agg(format(
       '(select e.occurred_at, e.id from app_public.audit_log e where %s and %s order by e.occurred_at %s, e.id %s limit $1)',
       v_cond, k, v_dir, v_dir), ' union all ')
     from unnest(v_keys || format(
       'e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and (e.action ilike $2 or e.actor_label ilike $2 or e.resource_label ilike $2)',
       v_state.last_xid, v_state.last_id)) k))
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
  if cardinality(v_trigrams) > 0 then
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
      if v_month is distinct from date_trunc('month', v_day)::date then
        -- A new month: one probe tells whether any of its names matches, and on which days when
        -- they are few (else every day of it is read).
        v_month := date_trunc('month', v_day)::date;
        v_work := v_work + 5;
        -- (The keys alone pick the rows: they are the tenant's month; its other conditions check.)
        select array_agg(distinct l.day), count(*) into v_days, v_rows from (
          select l.day from (select l.* from app_private.audit_label_days l
                             where app_private.audit_label_keys(l.tenant_id, l.day, l.label)
                                   @> app_private.audit_search_keys(p_tenant, v_month, v_trigrams, false, true) offset 0) l
          where l.tenant_id = p_tenant and l.day >= v_month and l.day < (v_month + interval '1 month')::date
            and l.label ilike v_pattern
          limit 64) l;
        if v_rows = 0 then
          v_day := case when p_ascending then (v_month + interval '1 month')::date else v_month - 1 end;
          continue;
        elsif v_rows >= 64 then
          v_days := null;
        end if;
      end if;
      if v_days is not null and v_day <> all (v_days) then
        v_day := v_day + case when p_ascending then 1 else -1 end;
        continue;
      end if;
      v_work := v_work + 5;
      select array_agg(l.label order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label),
             array_agg(l.edge order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label)
        into v_labels, v_edges
      from (
        select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge
        from (select l.* from app_private.audit_label_days l
              where app_private.audit_label_keys(l.tenant_id, l.day, l.label)
                    @> app_private.audit_search_keys(p_tenant, v_day, v_trigrams, true, false) offset 0) l
        where l.tenant_id = p_tenant and l.day = v_day and l.label ilike v_pattern
          and (v_from is null or l.last_at >= v_from) and (v_to is null or l.first_at < v_to)
          and (p_cursor_at is null or case when p_ascending then l.last_at >= p_cursor_at else l.first_at <= p_cursor_at end)
      ) l;
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
        execute v_probe into v_at, v_id using p_limit, v_labels[v_i:v_i + v_chunk - 1], v_at, v_id, v_start, v_end;
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
       and (e.action ilike $1 or e.actor_label ilike $1 or e.resource_label ilike $1
            or e.actor_label = any ($2) or e.incident_id = any ($3))',
    p_tenant, v_mark.id, v_cond)
    using v_pattern, v_alt_actors, v_alt_incidents;
  occurred_at := v_mark.occurred_at;
  id := v_mark.id;
  scan_end := true;
  return next;
end;
$$;
comment on function app_private.audit_search(uuid, jsonb, timestamptz, bigint, boolean, int, int) is
  'For app_hidden.audit_find: past its first stretch, the keys of a tenant''s entries matching a search pattern and the rest of a filter, in page order after a cursor (migration 000029).';
revoke all on function app_private.audit_search(uuid, jsonb, timestamptz, bigint, boolean, int, int) from public;

/**
 * Keys (occurred_at, id) of up to p_limit entries of the current tenant matching the filter, in
 * page order after the cursor (000022), reading one index range. A search reads a first stretch
 * checking the pattern on each entry and, when its matches are not found there in the first twentieth
 * of the stretch or not enough in all of it, goes on through app_private.audit_search (above).
 */
create or replace function app_hidden.audit_find(
  p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int, p_scan int default 10000)
returns table (occurred_at timestamptz, id bigint, scan_end boolean)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_dir text := case when p_ascending then 'asc' else 'desc' end;
  v_pattern text := p_filter->>'pattern';
  -- A pattern with trigrams goes on through the names past the stretch; one without is read for.
  v_indexed boolean := cardinality(app_private.audit_pattern_trigrams(p_filter->>'pattern')) > 0;
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
  -- A search that has found nothing in the first twentieth of the stretch goes on through the names.
  v_cut int := greatest(p_limit, v_scan / 20);
  v_stopped boolean := false;
  r record;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  v_tenant := app_public.current_tenant_id();
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;

  -- The range: the tenant, the time window, the cursor, and the one key an index serves.
  v_range := format('e.tenant_id = %L::uuid', v_tenant);
  if p_filter->>'from' is not null then
    v_range := v_range || format(' and e.occurred_at >= %L::timestamptz', p_filter->>'from');
  end if;
  if p_filter->>'to' is not null then
    v_range := v_range || format(' and e.occurred_at < %L::timestamptz', p_filter->>'to');
  end if;
  if p_cursor_at is not null then
    v_range := v_range || format(' and (e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)',
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
  if (p_filter->>'incident' is not null or p_filter->>'actor' is not null or v_keyed_ip) and cardinality(v_actions) > 0 then
    v_check := v_check || format('e.action = any (%L::text[])', v_actions);
  end if;
  if p_filter->>'surface' is not null then
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
  if v_pattern is not null then
    select a.actors, a.incidents into v_alt_actors, v_alt_incidents
    from app_private.audit_search_alternates(v_tenant, v_pattern) a;
    v_check := v_check || '(e.action ilike $2 or e.actor_label ilike $2 or e.resource_label ilike $2 or e.actor_label = any ($3) or e.incident_id = any ($4))'::text;
  end if;

  v_matched := case when cardinality(v_check) > 0 then array_to_string(v_check, ' and ') else 'true' end;

  -- The range in order, at most p_scan rows, each with whether it matches: one index range, or
  -- one per action merged (when the actions are the key).
  v_base := case
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
  for r in execute v_base using v_scan, v_pattern, v_alt_actors, v_alt_incidents loop
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
        return;
      end if;
    elsif v_indexed and v_found = 0 and v_scanned >= v_cut then
      -- A rare word: its matches, if any, are sooner found through the names.
      v_stopped := true;
      exit;
    end if;
  end loop;
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

/** How many entries of the current tenant match the filter, counting at most p_cap. */
create or replace function app_hidden.audit_count(p_filter jsonb, p_cap int) returns bigint
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
      then ' and (e.action ilike $2 or e.actor_label ilike $2 or e.resource_label ilike $2'
           || ' or e.actor_label = any ($3) or e.incident_id = any ($4))' else '' end,
    case when jsonb_array_length(coalesce(p_filter->'actions', '[]')) > 0
      then format(' and e.action = any (%L::text[])', array(select jsonb_array_elements_text(p_filter->'actions'))) else '' end)
    into v_n using p_cap, p_filter->>'pattern', v_alt_actors, v_alt_incidents;
  return v_n;
end;
$$;

/** Capture numbers of the current tenant's entries whose resource label matches an ILIKE pattern (through the names, month by month). */
create or replace function app_hidden.audit_label_matches(p_pattern text) returns setof bigint
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_state app_private.audit_label_state;
  v_trigrams text[] := app_private.audit_pattern_trigrams(p_pattern);
  v_month date;
  v_last date;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  v_tenant := app_public.current_tenant_id();
  select * into v_state from app_private.audit_label_state;
  if cardinality(v_trigrams) = 0 then
    -- No trigram to look up: every entry of the tenant is checked.
    return query select e.id from app_public.audit_log e where e.tenant_id = v_tenant and e.resource_label ilike p_pattern;
    return;
  end if;
  v_month := date_trunc('month', (select min(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant))::date;
  v_last := (select max(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant);
  while v_month <= v_last loop
    return query
      select e.id from (select l.* from app_private.audit_label_days l
                        where app_private.audit_label_keys(l.tenant_id, l.day, l.label)
                              @> app_private.audit_search_keys(v_tenant, v_month, v_trigrams, false, true) offset 0) l
      join app_public.audit_log e on e.tenant_id = l.tenant_id and e.resource_label = l.label
        and e.occurred_at >= (l.day::timestamp at time zone 'UTC') and e.occurred_at < ((l.day + 1)::timestamp at time zone 'UTC')
      where l.tenant_id = v_tenant and l.day >= v_month and l.day < (v_month + interval '1 month')::date
        and l.label ilike p_pattern;
    v_month := (v_month + interval '1 month')::date;
  end loop;
  -- And the entries not among the names yet.
  return query execute format(
    'select e.id from app_public.audit_log e where e.tenant_id = %L::uuid and e.xid >= %s and (e.xid, e.id) > (%2$s, %3$s)
       and e.resource_label ilike $1',
    v_tenant, v_state.last_xid, v_state.last_id)
    using p_pattern;
end;
$$;

/**
 * Keeps the names of up to max_entries sealed entries past the names' cursor, in (xid, id) order,
 * and moves the cursor (called by the worker after each sealing round, in a transaction of its
 * own: sealing does not wait for the search's bookkeeping). Returns how many entries it read.
 */
create or replace function app_private.name_audit_entries(max_entries int default 50000) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
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
    return 0;
  end if;
  -- The cursors as literals: the planner then reads the entries between them by the seal order.
  execute format($q$
    with batch as (
      select e.tenant_id, e.xid, e.id, e.occurred_at, e.resource_label
      from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and (e.xid, e.id) <= (%3$s, %4$s)
      order by e.xid, e.id
      limit $1
    ), named as (
      insert into app_private.audit_label_days as l (tenant_id, day, label, first_at, last_at, entries)
      select b.tenant_id, (b.occurred_at at time zone 'UTC')::date, b.resource_label, min(b.occurred_at), max(b.occurred_at), count(*)
      from batch b where b.resource_label is not null
      group by 1, 2, 3
      on conflict on constraint audit_label_days_pkey
        do update set first_at = least(l.first_at, excluded.first_at), last_at = greatest(l.last_at, excluded.last_at),
                      entries = l.entries + excluded.entries
    )
    select count(*), (array_agg(b.xid order by b.xid desc, b.id desc))[1], (array_agg(b.id order by b.xid desc, b.id desc))[1]
    from batch b$q$,
    v_state.last_xid, v_state.last_id, v_seal.last_xid, v_seal.last_id)
    into v_n, v_last_xid, v_last_id using max_entries;
  if v_n > 0 then
    update app_private.audit_label_state set last_xid = v_last_xid, last_id = v_last_id;
  end if;
  return v_n;
end;
$$;
comment on function app_private.name_audit_entries(int) is
  'Keeps the resource names of sealed audit entries per tenant and day for the Audit Log''s search (the worker calls it after sealing).';
revoke all on function app_private.name_audit_entries(int) from public;
grant execute on function app_private.name_audit_entries(int) to :DATABASE_SEALER;

set local role :DATABASE_OWNER;
