--! Previous: sha1:d05319741e449930f526cc5005281772971d29b0
--! Hash: sha1:f83fb580fa675c983417eb8acebab4ce2d1f0960
--! Message: short-words-count

-- 000063 GraphQL's totalCount: short words, and words with actions or actors, from the names.
--
-- app_hidden.audit_connection_count counts a condition from the counts the sealer and the namer
-- keep when they answer it: actions and a window (per hour), actors (per day), a word and a window
-- (per name and day). Three cases read far more than that:
-- - A resourceLabelContains pattern without trigrams was counted by reading every name of the
--   tenant's window: ~700 ms for the first count of a pair of letters in the 2,000,000-entry bench
--   tenant (a base from it served the next ones, 000058). For a pair of ASCII letters or digits,
--   or a character outside ASCII, it now reads, month by month, the names that 000062's search
--   reads: the ASCII names with one of the pair's candidate trigrams, and the names outside ASCII
--   (two disjoint sets). One ASCII character still reads every name of the window.
-- - A word together with an action or an actor (`resourceLabelContains` and `actorContains`,
--   say) was counted by reading every entry of the tenant: 3.4 s in the bench tenant, however rare
--   the word. It is now counted from the names that hold the word (found month by month as the
--   search finds them), reading each such name's entries of the day through the log's (tenant,
--   name, time) index and checking the other conditions on them, up to the names' cursor; the
--   entries past it are counted from the log as before. Below that cursor nothing can change, so
--   the count is a base for the next one (000058) like a word's alone. A tenant of at most 10,000
--   sealed entries is still read whole (a few milliseconds; month by month through the names it
--   would take one statement a month).
-- - A tenant's auditLogs without another condition (`currentTenant { auditLogs { totalCount } }`)
--   added up every hour of the tenant's history (5 ms in the bench tenant); it is counted as
--   Query.auditLogs is, from the tree's size and the entries pending.
-- Runs as the session's login: the function reads the audit log's tables (see CONVENTIONS.md).

set local role none;

-- (A fourth argument: up to how many entries a tenant's are read whole rather than through the names.)
drop function app_hidden.audit_connection_count(jsonb, jsonb, int);

create function app_hidden.audit_connection_count(p_condition jsonb, p_bases jsonb, p_delta_limit int default 10000,
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
begin
  if not app_hidden.audit_log_readable() then
    return jsonb_build_object('n', 0);
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
    when v_given <@ array['resourceLabelContains', 'occurredAfter', 'occurredBefore', 'tenantId'] then 'label'
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
      else 'select l.day, l.label, l.entries from app_private.audit_label_days l where %1$s'
    end;
    v_names_sql := format(v_names_sql,
      'l.tenant_id = $1 and l.day >= $2 and l.day < ($2 + interval ''1 month'')::date
       and ($6::date is null or l.day >= $6) and ($7::date is null or l.day <= $7)
       and case when $4::text is null then l.label ilike $5 else l.label_lower like $4 end');
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
    while v_month <= v_last loop
      v_probe_keys := case when cardinality(v_trigrams) > 0 then app_private.audit_search_keys(v_tenant, v_month, v_trigrams, false, true)
                           when v_short is not null then app_private.audit_search_keys(v_tenant, v_month, v_short, false, true) end;
      execute v_count_sql into v_n using v_tenant, v_month, v_probe_keys, v_label_lower, v_label, v_first, v_final;
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
  elsif cardinality(app_private.audit_pattern_trigrams(v_label)) = 0 then
    -- No trigram to look the names up by: every name of the window is checked.
    select coalesce(sum(l.entries), 0) into v_kept from app_private.audit_label_days l
    where l.tenant_id = v_tenant and (v_lo is null or l.day >= (v_lo at time zone 'UTC')::date)
      and (v_hi is null or l.day < (v_hi at time zone 'UTC')::date)
      and case when v_label_lower is null then l.label ilike v_label else l.label_lower like v_label_lower end;
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
          and case when v_label_lower is null then l.label ilike v_label else l.label_lower like v_label_lower end), 0);
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
comment on function app_hidden.audit_connection_count(jsonb, jsonb, int, int) is
  'How many of the current tenant''s entries match a GraphQL auditLogs condition ({"n": …}): from the kept counts per hour, day, actor and name where they answer it (a word with actions or actors: the entries of the names that hold the word, in a log of more than p_scan_limit entries), the rest from the log. For a word over the whole log, also {"base": {tenant: {xid, id, kept}}}, which p_bases takes back to count only what was named since (fewer than p_delta_limit entries, else counted whole).';
revoke all on function app_hidden.audit_connection_count(jsonb, jsonb, int, int) from public;
grant execute on function app_hidden.audit_connection_count(jsonb, jsonb, int, int) to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
