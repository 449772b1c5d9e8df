--! Previous: sha1:807cf5d7e1878e1feeb036a1a68ef5179f0011ae
--! Hash: sha1:4280630aa5c8683f67f963ea73cb74956b3b4c42
--! Message: page-room

-- 000041 Room on the pages of the kept names and daily counts, so that their updates stay on the page.
--
-- The worker's naming round (app_private.name_audit_entries) adds each sealed entry's name to
-- its tenant's day: a new name is a new row, a name seen again that day updates the row (its
-- latest time and count). With full pages every such update wrote a new row version on another
-- page and therefore new entries in both indexes, the GIN index of the name's search keys
-- (about 30 keys, worked out by a SQL function) included: measured on the bench:audit database,
-- 10,000 updated incidents (names already kept that day) took the naming round 0.82-1.06 s, with
-- 38 of 20,000 updates kept on their page (HOT). None of the indexed columns change in such an update
-- (tenant, day, name), so with room on the page PostgreSQL keeps the new version there and touches no
-- index: 0.17-0.59 s for the same rounds with fillfactor 50. The sealer's daily counts per action
-- and actor are updated the same way (its key does not change either). Rows written from now on
-- leave the room; existing pages fill as before until they are rewritten.
-- Runs as the session's login: these tables are on the audit path (see CONVENTIONS.md).

set local role none;

alter table app_private.audit_label_days set (fillfactor = 50);
alter table app_private.audit_activity_daily set (fillfactor = 70);

set local role :DATABASE_OWNER;
