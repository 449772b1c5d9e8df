--! Previous: sha1:4280630aa5c8683f67f963ea73cb74956b3b4c42
--! Hash: sha1:d91d6721d4f2ec9db831d05a1538bafb53991776
--! Message: label-lower

-- 000042 The names kept per day keep their lowered form, so that counting the entries of a common
-- word compares each name with LIKE instead of lowering it with ILIKE.
--
-- GraphQL `auditLogs(condition: { resourceLabelContains })` with `totalCount` adds up the kept
-- names' per-day counts of every name that contains the word (000033): in the 10M-entry bench
-- tenant "ransomware" is in 20,641 name-days. Measured on its biggest month (19,593 name-days):
-- 13.5 ms to find them through the names' index, 28-31 ms more to check each with ILIKE, which lowers
-- the name (and the pattern) on every row; 18 ms with lower(name) LIKE, ~5 ms with LIKE on a stored
-- lowered name. The whole count took ~59 ms in psql, and the request's p95 was 62 ms (target 50).
-- In a UTF-8 database `name ILIKE pattern` is exactly `lower(name) LIKE lower(pattern)` (PostgreSQL
-- does just that, like.c Generic_Text_IC_like, with the same collation); in another encoding the
-- count keeps ILIKE. Adding the column rewrites the table of names once (and rebuilds its indexes).
-- Runs as the session's login: the table and the function are on the audit path (see CONVENTIONS.md).

set local role none;

alter table app_private.audit_label_days add column label_lower text generated always as (lower(label)) stored;
comment on column app_private.audit_label_days.label_lower is
  'lower(label): what ILIKE compares a pattern with in a UTF-8 database, kept so that counting a word does not lower every name.';

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

set local role :DATABASE_OWNER;
