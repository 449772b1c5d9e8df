--! Previous: sha1:446152546b8502a747b2c90f3fc233fde32c560d
--! Hash: sha1:d0ff2985eb18c0f20262ca2315569db7d9f1c7d2
--! Message: joint-entries-column

-- 000102 A column for each name and day's entries per action and actor (filled in by 000103).
--
-- Added in a migration of its own: adding the column locks the names' table against every read
-- until the migration commits, and 000103 then fills it in from the log (45 s for the
-- 10,000,300-entry bench) under row locks alone, while the search and counts go on.
-- Runs as the session's login: the table is on the audit path (see CONVENTIONS.md).

set local role none;

alter table app_private.audit_label_days add column joint_entries jsonb;
comment on column app_private.audit_label_days.joint_entries is
  'The name''s entries that day per action and actor ({"<action> <actor>": n}; an action holds no space), up to the names'' cursor, when it has entries of more than one action and of more than one actor; null otherwise, when they are its action_entries (one actor) or its actor_entries (one action) (000102, 000103).';

set local role :DATABASE_OWNER;
