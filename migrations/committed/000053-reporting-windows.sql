--! Previous: sha1:1621cf9560f57f6d16275f5dea93720db4cf5597
--! Hash: sha1:423c7125e77f3592b1a18fb08a4c31edd96baef4
--! Message: reporting-windows

-- 000053 The reporting views' windows read only their window, cold or warm.
--
-- Measured on the bench:pages database (10,000,300 entries, a 2,000,000-entry tenant), with
-- PostgreSQL's and the system's caches emptied first (as they often are on a VM that reclaims
-- memory), the README's reporting queries as the reporting role:
--   * one tenant's entries of the last 7 days by action (reporting.audit_entries): 1.7 s cold.
--     The planner read an index-only scan of the (tenant, action, time) index: every entry of the
--     tenant (15,000 pages) for 38,000 in the window. The (tenant, time) index now carries the
--     action, so the same scan reads the window only: 24 ms cold (630 pages).
--   * the top actors of all tenants over 30 days (reporting.actor_activity_daily): 1.0-1.8 s cold,
--     a sequential scan of every day's counts of every tenant (13,000 pages). An index by day that
--     carries what the view's counts need answers it from the window's part alone (index-only):
--     43 ms cold (720 pages). A plain index by day did not: the window's rows lie all over the
--     table (a bitmap scan read 11,000 pages, 1.3 s).
-- The log's index keeps its name (the guard, the pages' plans and the bulk path know it by that).
-- Runs as the session's login: the log and the kept counts are on the audit path (see CONVENTIONS.md).

set local role none;

-- The running sealer finishes its round first (it writes the counts).
select pg_advisory_xact_lock(7295061840133851321);

create index audit_log_tenant_time_idx_053 on app_public.audit_log (tenant_id, occurred_at desc, id desc) include (action);
drop index app_public.audit_log_tenant_time_idx;
alter index app_public.audit_log_tenant_time_idx_053 rename to audit_log_tenant_time_idx;

create index audit_activity_daily_day_idx on app_private.audit_activity_daily (day)
  include (tenant_id, actor_label, entries, last_at);

set local role :DATABASE_OWNER;
