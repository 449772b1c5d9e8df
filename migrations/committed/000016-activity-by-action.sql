--! Previous: sha1:d0456661420a21a82150a0afb956f5eb7d47eaa7
--! Hash: sha1:b18f83200ad51088ea48eb0b5a775e7c07e01a5e
--! Message: activity-by-action

-- 000016 Activity by action: a view's count and chart read the kept activity in one pass.
--
-- A view of the Audit Log filtered by actions counts its matches (all time, or a window on whole
-- hours) from app_private.audit_activity_hourly. Its key leads with the hour, so two actions in a
-- tenant of 2M entries read every hour × action row of the tenant, and the count grouped them by
-- hour before adding them up (~40 ms). Now:
--  - (tenant_id, action, hour) including the count serves a filter by actions;
--  - app_hidden.audit_activity_total adds them up in one pass, with the pending entries counted
--    live as audit_activity does (~6 ms for two actions over two years of hours);
--  - app_hidden.audit_activity_days gives the chart its entries per day in the page's time zone
--    directly (it grouped by hour and action first, then by day: ~12 ms for 30 days of a big tenant).
-- Runs as the session's login: the table and the function are on the audit path (the DDL guard
-- hands them to the audit role).

set local role none;

-- The running sealer finishes its round first (it writes the activity).
select pg_advisory_xact_lock(7295061840133851321);

-- Both keys carry the count, so that either is read alone (an index-only scan; without it, the
-- planner read the whole tenant through a covering action index for an hour range).
create index audit_activity_hourly_action_idx
  on app_private.audit_activity_hourly (tenant_id, action, hour) include (entries);
alter table app_private.audit_activity_hourly
  drop constraint audit_activity_hourly_pkey,
  add constraint audit_activity_hourly_pkey primary key (tenant_id, hour, action) include (entries);

/**
 * How many entries of the current tenant fall in [p_from, p_to) (null: unbounded) with one of the
 * actions (null: any): the sealed ones from the hourly activity, the pending ones counted live.
 * Exact when both ends are whole UTC hours (what the page asks it for). Owner/admin with auditLog.
 */
create or replace function app_hidden.audit_activity_total(p_from timestamptz, p_to timestamptz, p_actions text[])
returns bigint
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  v_state app_private.audit_seal_state;
  v_n bigint;
begin
  if not app_hidden.audit_log_readable() then
    return 0;
  end if;
  select * into v_state from app_private.audit_seal_state;
  -- The sealer's cursor as literals, as in audit_activity: the pending entries are one short range.
  execute format($q$
    select coalesce((select sum(h.entries) from app_private.audit_activity_hourly h
                     where h.tenant_id = $1 and ($2::timestamptz is null or h.hour >= $2)
                       and ($3::timestamptz is null or h.hour < $3) and ($4::text[] is null or h.action = any ($4))), 0)
         + (select count(*) from app_public.audit_log e
            where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1
              and ($2::timestamptz is null or e.occurred_at >= $2) and ($3::timestamptz is null or e.occurred_at < $3)
              and ($4::text[] is null or e.action = any ($4)))$q$,
    v_state.last_xid, v_state.last_id)
    into v_n using app_public.current_tenant_id(), p_from, p_to, p_actions;
  return v_n;
end;
$$;
comment on function app_hidden.audit_activity_total(timestamptz, timestamptz, text[]) is
  'How many entries of the current tenant fall in [p_from, p_to) (null: unbounded) with one of the actions (null: any): sealed ones from the kept hourly activity, pending ones counted live. Owner/admin with auditLog only.';
revoke all on function app_hidden.audit_activity_total(timestamptz, timestamptz, text[]) from public;
grant execute on function app_hidden.audit_activity_total(timestamptz, timestamptz, text[]) to :DATABASE_VISITOR;

/**
 * Entries of the current tenant per day in time zone p_zone, for hours in [p_from, p_to) (null:
 * unbounded) and the actions (null: any): the sealed ones from the hourly activity, the pending
 * ones counted live. An hour belongs to the day its start falls on in the zone. Owner/admin with auditLog.
 */
create or replace function app_hidden.audit_activity_days(p_from timestamptz, p_to timestamptz, p_actions text[], p_zone text)
returns table (day date, entries bigint)
language plpgsql stable security definer set search_path = pg_catalog as $$
declare
  v_state app_private.audit_seal_state;
begin
  if not app_hidden.audit_log_readable() then
    return;
  end if;
  select * into v_state from app_private.audit_seal_state;
  return query execute format($q$
    select (a.hour at time zone $5)::date, sum(a.entries)::bigint
    from (
      select h.hour, h.entries from app_private.audit_activity_hourly h
      where h.tenant_id = $1 and ($2::timestamptz is null or h.hour >= $2) and ($3::timestamptz is null or h.hour < $3)
        and ($4::text[] is null or h.action = any ($4))
      union all
      select date_trunc('hour', e.occurred_at, 'UTC'), 1 from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and e.tenant_id = $1
        and ($2::timestamptz is null or e.occurred_at >= $2) and ($3::timestamptz is null or e.occurred_at < $3)
        and ($4::text[] is null or e.action = any ($4))
    ) a
    group by 1$q$, v_state.last_xid, v_state.last_id)
  using app_public.current_tenant_id(), p_from, p_to, p_actions, p_zone;
end;
$$;
comment on function app_hidden.audit_activity_days(timestamptz, timestamptz, text[], text) is
  'Entries of the current tenant per day in the given time zone, for hours in [p_from, p_to) (null: unbounded) and the given actions (null: all): sealed ones from the kept hourly activity, pending ones counted live. Owner/admin with auditLog only.';
revoke all on function app_hidden.audit_activity_days(timestamptz, timestamptz, text[], text) from public;
grant execute on function app_hidden.audit_activity_days(timestamptz, timestamptz, text[], text) to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
