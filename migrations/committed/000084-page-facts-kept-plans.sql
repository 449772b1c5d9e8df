--! Previous: sha1:47e5e83eb56bfe561f425f74c4cafebf0a0ebefb
--! Hash: sha1:0c47b0c637dca831f5bcecf0911d659b884cdfb8
--! Message: page-facts-kept-plans

-- 000084 The Audit Log page's chart and kept counts, and its facts, without planning at each call.
--
-- The page's second statement (the count, the chart's days, the log's facts and its verification
-- job) took ~1.5 ms of PostgreSQL in the 300-entry bench tenant, ~0.8 ms of it in these functions:
-- - audit_activity_days and audit_activity_total built their statement with format() and EXECUTE
--   at every call, so that the sealer's cursor was a literal and the planner read the pending
--   entries through the seal order's index: parsed and planned each time (~0.3 ms). As in 000082,
--   the statement is now static and its plan kept for the session (force_generic_plan): the pending
--   entries are read in seal order, at most 10,000 (the order and the limit make that index the
--   plan whatever the planner estimates); with 10,000 or more pending they run as before. The
--   actions are read one at a time through the (tenant, action, hour) index (a lateral join): a
--   generic plan cannot tell how wide the window is, and read every hour of it through the primary
--   key instead (9 ms instead of 2 for two actions over the big tenant's year). The days are
--   grouped by hashing (enable_sort = off): a generic plan expects few hours and sorted them.
-- - They, audit_log_facts and audit_verification_job found the reader's membership twice each
--   (audit_log_readable, then current_tenant_id): now once (audit_log_tenant, which raises ATPLN
--   as audit_log_readable did).
-- Measured as the big bench tenant's admin, one call per transaction: the page's chart (30 days)
-- 0.77 -> 0.35 ms (small tenant 0.65 -> 0.19-0.25); 92 days 1.93 -> 1.26 ms (small 1.08 -> 0.30);
-- the kept count of an action over 95 days 1.15-1.46 -> 0.48-0.70 ms. A chart of a year (which the
-- page never asks for: 92 days at most) takes ~0.85 ms more than before: the zone is a parameter of
-- the kept plan, looked up for each hour.
-- What each function answers does not change.
-- Runs as the session's login: these functions read the log as SECURITY DEFINER functions, so
-- they are on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_hidden.audit_activity_total(p_from timestamptz, p_to timestamptz, p_actions text[])
returns bigint
language plpgsql stable security definer set search_path = pg_catalog set plan_cache_mode = force_generic_plan as $$
declare
  -- The reader's tenant when they may read its log (ATPLN without the plan's auditLog): one
  -- lookup of their membership.
  v_tenant uuid := app_hidden.audit_log_tenant();
  v_from timestamptz := coalesce(p_from, '-infinity');
  v_to timestamptz := coalesce(p_to, 'infinity');
  v_state app_private.audit_seal_state;
  v_n bigint;
begin
  if v_tenant is null then
    return 0;
  end if;
  select * into v_state from app_private.audit_seal_state;
  if (select count(*) from (select from app_public.audit_log e
                            where (e.xid, e.id) > (v_state.last_xid, v_state.last_id)
                            order by e.xid, e.id
                            limit 10000) x) < 10000 then
    -- The kept hours, and the entries not sealed yet (at most 10,000, read in seal order).
    return coalesce((select sum(h.entries) from app_private.audit_activity_hours h
                     where p_actions is null and h.tenant_id = v_tenant and h.hour >= v_from and h.hour < v_to), 0)
         -- an action at a time: a generic plan reads each through the (tenant, action, hour) index
         + coalesce((select sum(h.entries)
                     from (select distinct a from unnest(p_actions) a) a
                     cross join lateral (
                       select sum(h.entries) as entries from app_private.audit_activity_hourly h
                       where h.tenant_id = v_tenant and h.action = a.a and h.hour >= v_from and h.hour < v_to) h), 0)
         + (select count(*)
            from (select e.tenant_id, e.occurred_at, e.action from app_public.audit_log e
                  where (e.xid, e.id) > (v_state.last_xid, v_state.last_id)
                  order by e.xid, e.id
                  limit 10000) x
            where x.tenant_id = v_tenant and x.occurred_at >= v_from and x.occurred_at < v_to
              and (p_actions is null or x.action = any (p_actions)));
  end if;
  -- Many entries not sealed yet: the cursor as literals, so that the planner sees how far it is.
  execute format($q$
    select coalesce((select sum(h.entries) from app_private.%3$s h
                     where h.tenant_id = $1 and ($2::timestamptz is null or h.hour >= $2)
                       and ($3::timestamptz is null or h.hour < $3) and %4$s), 0)
         + (select count(*) from app_public.audit_log e
            where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1
              and ($2::timestamptz is null or e.occurred_at >= $2) and ($3::timestamptz is null or e.occurred_at < $3)
              and ($4::text[] is null or e.action = any ($4)))$q$,
    v_state.last_xid, v_state.last_id,
    case when p_actions is null then 'audit_activity_hours' else 'audit_activity_hourly' end,
    case when p_actions is null then 'true' else 'h.action = any ($4)' end)
    into v_n using v_tenant, p_from, p_to, p_actions;
  return v_n;
end;
$$;

create or replace function app_hidden.audit_activity_days(p_from timestamptz, p_to timestamptz, p_actions text[], p_zone text)
returns table (day date, entries bigint)
language plpgsql stable security definer set search_path = pg_catalog set plan_cache_mode = force_generic_plan set enable_sort = off as $$
declare
  -- The reader's tenant when they may read its log (ATPLN without the plan's auditLog): one
  -- lookup of their membership.
  v_tenant uuid := app_hidden.audit_log_tenant();
  v_from timestamptz := coalesce(p_from, '-infinity');
  v_to timestamptz := coalesce(p_to, 'infinity');
  v_state app_private.audit_seal_state;
begin
  if v_tenant is null then
    return;
  end if;
  select * into v_state from app_private.audit_seal_state;
  if (select count(*) from (select from app_public.audit_log e
                            where (e.xid, e.id) > (v_state.last_xid, v_state.last_id)
                            order by e.xid, e.id
                            limit 10000) x) < 10000 then
    -- The kept hours, and the entries not sealed yet (at most 10,000, read in seal order).
    return query
      select (a.hour at time zone p_zone)::date, sum(a.entries)::bigint
      from (
        select h.hour, h.entries from app_private.audit_activity_hours h
        where p_actions is null and h.tenant_id = v_tenant and h.hour >= v_from and h.hour < v_to
        union all
        select h.hour, h.entries
        from (select distinct a from unnest(p_actions) a) a
        cross join lateral (
          select h.hour, h.entries from app_private.audit_activity_hourly h
          where h.tenant_id = v_tenant and h.action = a.a and h.hour >= v_from and h.hour < v_to
          offset 0) h
        union all
        select date_trunc('hour', x.occurred_at, 'UTC'), 1
        from (select e.tenant_id, e.occurred_at, e.action from app_public.audit_log e
              where (e.xid, e.id) > (v_state.last_xid, v_state.last_id)
              order by e.xid, e.id
              limit 10000) x
        where x.tenant_id = v_tenant and x.occurred_at >= v_from and x.occurred_at < v_to
          and (p_actions is null or x.action = any (p_actions))
      ) a
      group by 1;
    return;
  end if;
  -- Many entries not sealed yet: the cursor as literals, so that the planner sees how far it is.
  return query execute format($q$
    select (a.hour at time zone $5)::date, sum(a.entries)::bigint
    from (
      select h.hour, h.entries from app_private.%3$s h
      where h.tenant_id = $1 and ($2::timestamptz is null or h.hour >= $2) and ($3::timestamptz is null or h.hour < $3)
        and %4$s
      union all
      select date_trunc('hour', e.occurred_at, 'UTC'), 1 from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1
        and ($2::timestamptz is null or e.occurred_at >= $2) and ($3::timestamptz is null or e.occurred_at < $3)
        and ($4::text[] is null or e.action = any ($4))
    ) a
    group by 1$q$, v_state.last_xid, v_state.last_id,
    case when p_actions is null then 'audit_activity_hours' else 'audit_activity_hourly' end,
    case when p_actions is null then 'true' else 'h.action = any ($4)' end)
  using v_tenant, p_from, p_to, p_actions, p_zone;
end;
$$;

create or replace function app_hidden.audit_log_facts(out entries bigint, out latest_id bigint, out actions text[], out chain json)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  -- The reader's tenant when they may read its log (ATPLN without the plan's auditLog): one
  -- lookup of their membership.
  v_tenant uuid := app_hidden.audit_log_tenant();
begin
  entries := 0;
  actions := '{}';
  if v_tenant is null then
    return;
  end if;
  entries := app_private.audit_log_size(v_tenant);
  latest_id := (select max(e.id) from app_public.audit_log e where e.tenant_id = v_tenant);
  -- A skip scan over the (tenant_id, action) index: one index probe per distinct action.
  actions := array(
    with recursive a(action) as (
      (select e.action from app_public.audit_log e where e.tenant_id = v_tenant order by e.action using ~<~ limit 1)
      union all
      select (select e.action from app_public.audit_log e
              where e.tenant_id = v_tenant and e.action ~>~ a.action order by e.action using ~<~ limit 1)
      from a where a.action is not null
    )
    select a.action from a where a.action is not null);
  chain := (
    select row_to_json(v) from (
      select to_char(c.checked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as checked_at, c.valid,
             c.entries::text as entries, c.last_seq::text as last_seq, c.first_invalid_seq::text as first_invalid_seq, c.problem
      from app_private.chain_verifications c
      where c.tenant_id = v_tenant
      order by c.checked_at desc limit 1) v);
end;
$$;

create or replace function app_hidden.audit_verification_job(out requested_at timestamptz, out failed boolean)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
begin
  -- (graphile-worker installs its schema when the worker first starts)
  if to_regclass('graphile_worker.jobs') is null then
    return;
  end if;
  -- The reader's tenant when they may read its log (ATPLN without the plan's auditLog).
  v_tenant := app_hidden.audit_log_tenant();
  if v_tenant is null then
    return;
  end if;
  select case when j.attempts < j.max_attempts then j.created_at end, j.attempts >= j.max_attempts
    into requested_at, failed
  from graphile_worker.jobs j
  where j.key = 'verify_audit_chain:' || v_tenant::text;
end;
$$;

set local role :DATABASE_OWNER;
