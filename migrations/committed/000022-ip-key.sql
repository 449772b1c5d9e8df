--! Previous: sha1:f9a5ddebabc20bd18eea772eb0d0e0ea2267cdf1
--! Hash: sha1:d345023a22a906ae87663482b8f3d26f442c3c25
--! Message: ip-key

-- 000023 IP key: the Audit Log's IP filter reads an index of its own.
--
-- An IP was checked on the entries read in time order: in a large log, a view by IP (or IP and
-- surface) read its whole stretch of 10,000 entries and stopped there with the few it had found
-- ("searched up to …"), ~30 ms for a 2M-entry tenant where a 300-entry tenant needs ~10 ms. People
-- look up an address across a log (everything done from it), so the IP now has an index like the
-- actor's and the incident's: (tenant, ip, time, id), of the entries that have one, and
-- app_hidden.audit_find reads that range when the view names an IP but no incident or actor.
-- The IP is then checked as before when an incident or actor is the key. Which entries match,
-- and in which order, does not change.
-- Runs as the session's login: audit_find is on the audit path (see CONVENTIONS.md); the index
-- is on the log (the DDL guard protects it from then on).

set local role none;

create index audit_log_tenant_ip_idx on app_public.audit_log (tenant_id, ip, occurred_at desc, id desc)
  where ip is not null;

create or replace function app_hidden.audit_find(
  p_filter jsonb, p_cursor_at timestamptz, p_cursor_id bigint, p_ascending boolean, p_limit int, p_scan int default 10000)
returns table (occurred_at timestamptz, id bigint, scan_end boolean)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
  v_dir text := case when p_ascending then 'asc' else 'desc' end;
  v_pattern text := p_filter->>'pattern';
  v_search text := $s$(e.action || ' ' || e.actor_label || ' ' || coalesce(e.resource_label, ''))$s$;
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
  v_extra text := '';
  v_cond text;
  v_matched text;
  v_scan int := greatest(p_scan, p_limit);
  -- A search that has found nothing in the first fifth of the stretch goes to the trigram index.
  v_cut int := greatest(p_limit, v_scan / 5);
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
    v_check := v_check || case
      when cardinality(v_alt_actors) > 0 or cardinality(v_alt_incidents) > 0
        then format('(%s ilike $2 or e.actor_label = any ($3) or e.incident_id = any ($4))', v_search)
      else format('%s ilike $2', v_search) end;
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
    elsif v_pattern is not null and v_found = 0 and v_scanned >= v_cut then
      -- A rare word: its matches, if any, are sooner found through the trigram index.
      v_stopped := true;
      exit;
    end if;
  end loop;
  if v_scanned < v_scan and not v_stopped then
    return; -- the range ended: there is nothing more to find
  end if;
  if v_pattern is null then
    -- Stopped after p_scan rows: where to go on from.
    occurred_at := v_last_at;
    id := v_last_id;
    scan_end := true;
    return next;
    return;
  end if;

  -- A search with too few matches in that stretch: the rest from the trigram index, beyond it (and
  -- from the index range of each person or incident the pattern also stands for).
  v_cond := v_range
    || case when p_filter->>'incident' is null and p_filter->>'actor' is null and not v_keyed_ip and cardinality(v_actions) > 0
         then format(' and e.action = any (%L::text[])', v_actions) else '' end
    || coalesce(' and ' || nullif(array_to_string(v_check[1:cardinality(v_check) - 1], ' and '), ''), '');
  select coalesce(string_agg(format(
           ' union (select e.occurred_at, e.id from app_public.audit_log e where %s and e.actor_label = %L and (e.occurred_at, e.id) %s ($3, $4) order by e.occurred_at %s, e.id %s limit $1)',
           v_cond, a, case when p_ascending then '>' else '<' end, v_dir, v_dir), ''), '')
    into v_extra from unnest(v_alt_actors) a;
  select v_extra || coalesce(string_agg(format(
           ' union (select e.occurred_at, e.id from app_public.audit_log e where %s and e.incident_id = %L::uuid and (e.occurred_at, e.id) %s ($3, $4) order by e.occurred_at %s, e.id %s limit $1)',
           v_cond, i, case when p_ascending then '>' else '<' end, v_dir, v_dir), ''), '')
    into v_extra from unnest(v_alt_incidents) i;
  return query execute format(
    'with m as materialized (select e.occurred_at, e.id from app_public.audit_log e where %s and %s ilike $2) '
    || 'select x.occurred_at, x.id, false from ((select m.occurred_at, m.id from m where (m.occurred_at, m.id) %s ($3, $4))%s) x '
    || 'order by x.occurred_at %s, x.id %s limit $1',
    v_cond, v_search, case when p_ascending then '>' else '<' end, v_extra, v_dir, v_dir)
    using p_limit - v_found, v_pattern, v_last_at, v_last_id;
end;
$$;

set local role :DATABASE_OWNER;
