--! Previous: sha1:7a5ee6151651b614eda18abc4cf3d0c0380d313c
--! Hash: sha1:d4a22240996b7a845f410f77b2a5644dd66a0f87
--! Message: horizon-fix

-- 000027 Horizon fix: a transaction that began after the horizon's snapshot no longer stops sealing.
--
-- app_private.audit_seal_horizon widens the 32-bit xids of the running transactions (pg_locks) to
-- 64 bits against the snapshot's xmax, and took any xid above the xmax's low 32 bits for one of
-- the previous epoch. But pg_locks is read after the snapshot is taken, and a transaction that
-- began in between has an xid at or above the xmax: it was widened 2^32 too low, the horizon came
-- out negative, and the round sealed nothing. Under steady writes that happened in most rounds
-- (found with bench:audit's seal latency at 1,000 writes/s: rounds sealed 0 entries until the
-- writes stopped; p50 2.1 s, p99 5.2 s). Now each xid is widened to the 64-bit xid nearest to the
-- xmax (a running transaction's xid is always within 2^31 of it), in app_private.xid_widen.
-- Runs as the session's login: the function is on the audit path (see CONVENTIONS.md).

set local role none;

create function app_private.xid_widen(p_xid xid, p_near bigint) returns bigint
language sql immutable parallel safe as $$ -- no SET, so that it is inlined
  select (p_near & -4294967296) + p_xid::text::bigint
         + case when p_xid::text::bigint - (p_near & 4294967295) > 2147483648 then -4294967296
                when (p_near & 4294967295) - p_xid::text::bigint > 2147483648 then 4294967296
                else 0 end
$$;
comment on function app_private.xid_widen(xid, bigint) is
  'The 64-bit transaction id whose low 32 bits are p_xid and which is nearest to p_near (for xids of running transactions, within 2^31 of the next xid).';

create or replace function app_private.audit_seal_horizon() returns bigint
language sql volatile set search_path = pg_catalog as $$
  with next as (
    select pg_snapshot_xmax(pg_current_snapshot())::text::bigint as xmax
  ), running as (
    select l.transactionid as x
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'transactionid' and l.mode = 'ExclusiveLock' and a.datname = current_database()
    union all
    select p.transaction from pg_prepared_xacts p where p.database = current_database()
  )
  -- (a transaction that began after the snapshot has an xid at or above its xmax: least() keeps xmax)
  select least((select xmax from next), (select min(app_private.xid_widen(r.x, n.xmax)) from running r cross join next n))
$$;

set local role :DATABASE_OWNER;
