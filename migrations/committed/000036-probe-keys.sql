--! Previous: sha1:879d036d90039d8e85bfb2543403157c3f2fc1c4
--! Hash: sha1:71aaa4eab2ae631f839a3b29e81c6d9460f65ffb
--! Message: probe-keys

-- 000036 Probe keys worked out once: a probe of the names' index no longer plans a SQL function each time.
--
-- Each probe of the names' index (a month's or a day's, in app_private.audit_search,
-- app_hidden.audit_connection_count and app_hidden.audit_label_matches) compared the index's
-- expression with app_private.audit_search_keys(…) written into the statement. In a cached (generic)
-- plan PostgreSQL does not inline that SQL function: it runs it through the SQL-function executor,
-- which plans its body again on every execution of the probe. Measured on the 10M-entry bench
-- database (PostgreSQL 15, a month's probe of the 2M-entry tenant, PL/pgSQL loop, generic plans):
-- 141 µs a probe with the call in the statement, 23 µs with the keys in a variable plus 10 µs to
-- work them out. A rare word's search makes 13 month probes and a common word's dozens of day
-- probes. The keys are now worked out in PL/pgSQL before each probe and passed as a value. What
-- each function returns does not change.
-- Runs as the session's login: the functions are on the audit path (see CONVENTIONS.md).

set local role none;

/** Past audit_find's first stretch: the entries matching a search pattern (and the rest of a filter), in page order after a cursor; see migrations 000029 and 000036. */
create or replace function app_private.audit_search(
  p_tenant uuid, p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int, p_scan int)
returns table (occurred_at timestamptz, id bigint, scan_end boolean)
-- (Its probes of the names run up to a few dozen times a call: planned once, not each time.)
language plpgsql stable set search_path = pg_catalog, public set plan_cache_mode = force_generic_plan as $$
declare
  v_pattern text := p_filter->>'pattern';
  v_trigrams text[] := app_private.audit_pattern_trigrams(p_filter->>'pattern');
  -- "fields": "label": the pattern matches the resource name only (GraphQL's resourceLabelContains)
  v_label_only boolean := coalesce(p_filter->>'fields' = 'label', false);
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
        v_probe_keys := app_private.audit_search_keys(p_tenant, v_month, v_trigrams, false, true);
        select array_agg(distinct l.day), count(*) into v_days, v_rows from (
          select l.day from (select l.* from app_private.audit_label_days l
                             where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
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
      v_probe_keys := app_private.audit_search_keys(p_tenant, v_day, v_trigrams, true, false);
      select array_agg(l.label order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label),
             array_agg(l.edge order by case when p_ascending then l.edge end, case when not p_ascending then l.edge end desc, l.label)
        into v_labels, v_edges
      from (
        select l.label, case when p_ascending then greatest(l.first_at, p_cursor_at) else least(l.last_at, p_cursor_at) end as edge
        from (select l.* from app_private.audit_label_days l
              where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
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
comment on function app_private.audit_search(uuid, jsonb, timestamptz, bigint, boolean, int, int) is
  'For app_hidden.audit_find: past its first stretch, the keys of a tenant''s entries matching a search pattern and the rest of a filter, in page order after a cursor (migration 000029).';
revoke all on function app_private.audit_search(uuid, jsonb, timestamptz, bigint, boolean, int, int) from public;

/**
 * How many of the current tenant's entries match a GraphQL `AuditLogCondition` (the argument as
 * given: a column's condition set to null asks for NULL there, the others' null is no condition).
 */
create or replace function app_hidden.audit_connection_count(p_condition jsonb) returns bigint
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
begin
  if not app_hidden.audit_log_readable() then
    return 0;
  end if;
  v_tenant := app_public.current_tenant_id();
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
    return 0;
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
    when v_given <@ array['resourceLabelContains', 'occurredAfter', 'occurredBefore', 'tenantId'] then 'label'
  end;
  if v_actions is not null and cardinality(v_actions) = 0 then
    return 0;
  end if;
  -- The whole hours (days) of the window: [v_lo, v_hi); null is no bound.
  if v_unit is not null then
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
    return v_rest;
  end if;

  select * into v_seal from app_private.audit_seal_state;
  select * into v_names from app_private.audit_label_state;
  if v_unit = 'hour' then
    select coalesce(sum(h.entries), 0) into v_kept from app_private.audit_activity_hourly h
    where h.tenant_id = v_tenant and (v_lo is null or h.hour >= v_lo) and (v_hi is null or h.hour < v_hi)
      and (v_actions is null or h.action = any (v_actions));
  elsif v_unit = 'day' then
    execute format(
      'select coalesce(sum(d.entries), 0) from app_private.audit_activity_daily d
       where d.tenant_id = $1 and ($2::date is null or d.day >= $2) and ($3::date is null or d.day < $3)
         and ($4::text[] is null or d.action = any ($4)) and %s', v_actor_pred)
      into v_kept using v_tenant, (v_lo at time zone 'UTC')::date, (v_hi at time zone 'UTC')::date, v_actions;
  elsif cardinality(app_private.audit_pattern_trigrams(v_label)) = 0 then
    -- No trigram to look the names up by: every name of the window is checked.
    select coalesce(sum(l.entries), 0) into v_kept from app_private.audit_label_days l
    where l.tenant_id = v_tenant and (v_lo is null or l.day >= (v_lo at time zone 'UTC')::date)
      and (v_hi is null or l.day < (v_hi at time zone 'UTC')::date) and l.label ilike v_label;
  else
    -- Month by month through the names' index (as audit_label_matches): a key's list is a few
    -- names of one tenant's month, whatever the size of the log.
    v_trigrams := app_private.audit_pattern_trigrams(v_label);
    v_kept := 0;
    v_month := date_trunc('month', greatest((v_lo at time zone 'UTC')::date,
                 (select min(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant)))::date;
    v_last := least(((v_hi at time zone 'UTC')::date - 1),
                 (select max(l.day) from app_private.audit_label_days l where l.tenant_id = v_tenant));
    while v_month <= v_last loop
      v_probe_keys := app_private.audit_search_keys(v_tenant, v_month, v_trigrams, false, true);
      v_kept := v_kept + coalesce((
        select sum(l.entries) from (select l.* from app_private.audit_label_days l
                                    where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
        where l.tenant_id = v_tenant and l.day >= v_month and l.day < (v_month + interval '1 month')::date
          and (v_lo is null or l.day >= (v_lo at time zone 'UTC')::date)
          and (v_hi is null or l.day < (v_hi at time zone 'UTC')::date)
          and l.label ilike v_label), 0);
      v_month := (v_month + interval '1 month')::date;
    end loop;
  end if;
  -- And from the log: the edges of the window (all entries there), and the entries within the
  -- whole hours (days) that the kept counts do not hold yet (past their cursor; literals, so that
  -- this is one short range of the (xid, id) index).
  v_cursor := case when v_unit = 'label'
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
  return v_kept + v_rest;
end;
$$;

comment on function app_hidden.audit_connection_count(jsonb) is
  'How many of the current tenant''s entries match a GraphQL auditLogs condition: from the kept counts per hour, day, actor and name where they answer it, the rest from the log.';

revoke all on function app_hidden.audit_connection_count(jsonb) from public;
grant execute on function app_hidden.audit_connection_count(jsonb) to :DATABASE_VISITOR;

/** Capture numbers of the current tenant's entries whose resource label matches an ILIKE pattern (through the names, month by month). */
create or replace function app_hidden.audit_label_matches(p_pattern text) returns setof bigint
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_state app_private.audit_label_state;
  v_trigrams text[] := app_private.audit_pattern_trigrams(p_pattern);
  v_month date;
  v_last date;
  v_probe_keys int[];
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
    v_probe_keys := app_private.audit_search_keys(v_tenant, v_month, v_trigrams, false, true);
    return query
      select e.id from (select l.* from app_private.audit_label_days l
                        where app_private.audit_label_keys(l.tenant_id, l.day, l.label) @> v_probe_keys offset 0) l
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


set local role :DATABASE_OWNER;
