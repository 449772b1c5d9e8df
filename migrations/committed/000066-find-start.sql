--! Previous: sha1:9cca75aa7f5e8e4143dd3de7adbdbbb8f156a975
--! Hash: sha1:6994c28d9937357354a56b208ae5740e37c9a607
--! Message: find-start

-- 000066 Where the page's reading starts: its first stretch reads its range in order, the first
-- rows first; and an actor with an action starts where they meet.
--
-- app_hidden.audit_find reads a range of the log (the tenant, a window, an action, an actor …) in
-- order and stops at a page of matches, or, for a rare word, after a hundredth of its reading. Its
-- rows came from a FOR … IN EXECUTE loop, which PostgreSQL plans for reading every row up to the
-- limit (10,000): a range it estimated below that (one day of the 2,000,000-entry bench tenant,
-- ~5,500 entries) was read whole through a bitmap and sorted before the first row came, 8–9 ms,
-- and the page's search for any word in a one-day window took ~23 ms against ~6 ms in the
-- 300-entry tenant. An explicit cursor is planned for its first rows (cursor_tuple_fraction): the
-- range's index in order, as for the longer ranges.
--
-- And an actor with an action: the search starts where they meet.
--
-- app_hidden.audit_find reads an actor's entries in order (the actor is the range's key) and
-- checks each for the actions asked for. An actor with an action they seldom or never took was read
-- entry by entry: GraphQL's auditLogs with actorContains and an action that never go together read
-- all 250,000 entries of the actor in the 2,000,000-entry bench tenant (0.7 s) to find none, and
-- the page offered "Search older entries" after each 10,000. The range now starts at the nearest
-- day on which the actor has entries of one of the actions (the sealer's daily counts, per tenant,
-- UTC day, action and actor), or at the nearest such entry that is not sealed yet; with neither,
-- nothing matches. Each call starts again from its cursor, so a reading jumps over the days
-- between.
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

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
  v_indexed boolean := cardinality(app_private.audit_pattern_trigrams(p_filter->>'pattern')) > 0
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
  v_day date;
  v_pending timestamptz;
  v_bound timestamptz;
  -- (000064) A pattern with neither trigrams nor a pair: the characters with a bit that its matches hold.
  v_need bigint := case when not v_indexed and pg_catalog.getdatabaseencoding() = 'UTF8'
                        then coalesce(app_private.audit_pattern_char_mask(pg_catalog.lower(p_filter->>'pattern')), 0) else 0 end;
  r record;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  v_tenant := app_public.current_tenant_id();
  -- (000064) Such a pattern goes on through the names too when its characters are in at most a
  -- quarter of the tenant's days' names: the names of those days alone are read; in more of them,
  -- the log is read for it in stretches, as before (a day's names cost more than its entries).
  if v_need <> 0 then
    v_indexed := (select 4 * count(*) filter (where c.chars & v_need = v_need) <= count(*)
                  from app_private.audit_label_chars c where c.tenant_id = v_tenant);
  end if;
  select array_agg(distinct a) into v_actions from jsonb_array_elements_text(coalesce(p_filter->'actions', '[]')) a;

  -- (000066) An actor and actions: the range (the actor's entries) starts at the nearest day, from
  -- the cursor on and within the window, on which the actor has entries of one of the actions (the
  -- sealer's daily counts), or at the nearest such entry not sealed yet. The days between hold no
  -- match; with no such day or entry nothing matches. (GraphQL's actorContains with an action they
  -- never go together with read every entry of the actor: 0.7 s for 250,000 in the bench tenant.)
  if p_filter->>'actor' is not null and p_filter->>'incident' is null and cardinality(v_actions) > 0 then
    select * into v_seal from app_private.audit_seal_state;
    select d.day into v_day from app_private.audit_activity_daily d
    where d.tenant_id = v_tenant and d.actor_label = p_filter->>'actor' and d.action = any (v_actions)
      and (p_cursor_at is null
           or case when p_ascending then d.day >= (p_cursor_at at time zone 'UTC')::date
                   else d.day <= (p_cursor_at at time zone 'UTC')::date end)
      and (p_filter->>'from' is null or d.day >= ((p_filter->>'from')::timestamptz at time zone 'UTC')::date)
      and (p_filter->>'to' is null or d.day <= ((p_filter->>'to')::timestamptz at time zone 'UTC')::date)
    order by case when p_ascending then d.day end, d.day desc
    limit 1;
    -- (The seal cursor as literals: one short range of the sealing order's index.)
    execute format(
      'select %s(e.occurred_at) from app_public.audit_log e
       where e.xid >= %s and (e.xid, e.id) > (%2$s, %s) and e.tenant_id = %L::uuid and e.actor_label = %L
         and e.action = any (%L::text[])',
      case when p_ascending then 'min' else 'max' end, v_seal.last_xid, v_seal.last_id, v_tenant,
      p_filter->>'actor', v_actions)
      into v_pending;
    if v_day is null and v_pending is null then
      return;
    end if;
    v_bound := case when p_ascending
      then least(v_day::timestamp at time zone 'UTC', v_pending)
      else greatest((v_day + 1)::timestamp at time zone 'UTC', v_pending + interval '1 microsecond') end;
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
    v_range := v_range || format(' and (e.occurred_at, e.id) %s (%L::timestamptz, %L::bigint)',
      case when p_ascending then '>' else '<' end, p_cursor_at, p_cursor_id);
  end if;
  if v_bound is not null then
    v_range := v_range || format(' and e.occurred_at %s %L::timestamptz', case when p_ascending then '>=' else '<' end, v_bound);
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
  open v_rows for execute v_base using v_scan, v_pattern, v_alt_actors, v_alt_incidents;
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
    elsif v_indexed and v_scanned >= v_cut and v_found * (v_scan / 10) < p_limit * v_scanned then
      -- A rare word: its matches, if any, are sooner found through the names.
      v_stopped := true;
      exit;
    end if;
  end loop;
  close v_rows;
  if v_full then
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
    v_tenant, p_filter || jsonb_build_object('alt_actors', v_alt_actors, 'alt_incidents', v_alt_incidents),
    v_last_at, v_last_id, p_ascending, p_limit - v_found, v_scan);
end;
$$;

set local role :DATABASE_OWNER;
