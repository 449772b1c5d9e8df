--! Previous: sha1:6f7dba72a85aa0dd28cd68518b0476164e8062b2
--! Hash: sha1:587df50f14604b528d88b58b63c5b6a42f6373a0
--! Message: page-search-stretches

-- 000040 The page's search for a word without trigrams reads the log in stretches again.
--
-- 000039 let a name-only search without trigrams go through the names. Its test of that in
-- app_hidden.audit_find, `p_filter->>'fields' = 'label'`, is null for the page's search (which has
-- no "fields"), and so was the whole condition for a page search without trigrams ("ab", "qz"):
-- past a first stretch without a page of matches it went to the names, which read nothing for it,
-- and the search ended there, as if nothing older matched, instead of offering "Search older
-- entries". The condition is now false there, as before 000039; the search test has such words.
-- Runs as the session's login: the function reads the log (see CONVENTIONS.md).

set local role none;

/**
 * Keys (occurred_at, id) of up to p_limit entries of the current tenant matching the filter, in
 * page order after the cursor (000022), reading one index range. A search reads a first stretch
 * checking the pattern on each entry and, when its matches there are too sparse to fill the page soon
 * (000037) or not enough in all of it, goes on through app_private.audit_search.
 */
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
  -- 000039); the page's other patterns without trigrams are read for.
  -- (Never null: a null here sent the page's words without trigrams to the names, 000040.)
  v_indexed boolean := cardinality(app_private.audit_pattern_trigrams(p_filter->>'pattern')) > 0
    or (coalesce(p_filter->>'fields' = 'label', false) and p_filter->>'pattern' is not null);
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
    elsif v_indexed and v_scanned >= v_cut and v_found * (v_scan / 10) < p_limit * v_scanned then
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

set local role :DATABASE_OWNER;
