--! Previous: sha1:0da8ffbec6b8fb1ffb3bcc48402345f31e05a659
--! Hash: sha1:5db4338d47674941b3b06a2950528bd1c53b6347
--! Message: names-tidy

-- 000047 The names' index without a long pending list.
--
-- The search finds names through a GIN index (audit_label_days_keys_idx). GIN adds new keys to a
-- pending list and merges it into the index when it passes gin_pending_list_limit (4 MB); every
-- search reads the whole list. Measured on the bench's 10M-entry database after the worker had
-- named 100,000 new entries: a list of 134 pages made a GraphQL search by a common word 23 ms
-- instead of 7 ms (a list of 4 MB costs ~50 ms), for every tenant, until autovacuum came by.
-- Merging at once is no answer: each merge costs about the same whatever its size (it updates
-- every key it holds), so fastupdate = off made naming 50,000 entries take 40 s instead of 7 s,
-- and a 256 kB limit 25 s.
-- The namer now merges the list itself when it has caught up, at most every 5 s: right after a
-- bulk load or a burst the list is emptied as soon as the names are kept, and under a steady load
-- it holds at most 5 s of new names. While it is behind (full batches) it merges nothing and GIN
-- merges at its limit, as before.
-- Runs as the session's login: the namer and its state are on the audit path.

set local role none;

alter table app_private.audit_label_state add column tidied_at timestamptz;
comment on column app_private.audit_label_state.tidied_at is
  'When the namer last merged the names'' index''s pending list (app_private.tidy_audit_names).';

create function app_private.tidy_audit_names(p_state app_private.audit_label_state) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  -- (the state as the namer read it, under its lock: no other namer runs meanwhile)
  if p_state.tidied_at is null or p_state.tidied_at < now() - interval '5 seconds' then
    -- An empty list costs a read of the index's first page, and writes nothing.
    if gin_clean_pending_list('app_private.audit_label_days_keys_idx'::regclass) > 0 then
      update app_private.audit_label_state set tidied_at = now();
    end if;
  end if;
end;
$$;
comment on function app_private.tidy_audit_names(app_private.audit_label_state) is
  'Merges the pending list of the names'' index (the search reads all of it on every search), at most every 5 s: the namer calls it when it has caught up.';
revoke all on function app_private.tidy_audit_names(app_private.audit_label_state) from public;

create or replace function app_private.name_audit_entries(max_entries int default 50000) returns bigint
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_seal app_private.audit_seal_state;
  v_state app_private.audit_label_state;
  v_n bigint;
  v_last_xid bigint;
  v_last_id bigint;
begin
  -- One at a time; a second one waits here and then goes on from the first one's cursor.
  perform pg_advisory_xact_lock(7295061840133851322);
  select * into v_seal from app_private.audit_seal_state;
  select * into v_state from app_private.audit_label_state;
  if (v_state.last_xid, v_state.last_id) >= (v_seal.last_xid, v_seal.last_id) then
    perform app_private.tidy_audit_names(v_state);
    return 0;
  end if;
  -- The cursors as literals: the planner then reads the entries between them by the seal order.
  execute format($q$
    with batch as (
      select e.tenant_id, e.xid, e.id, e.occurred_at, e.resource_label
      from app_public.audit_log e
      where e.xid >= %1$s and (e.xid, e.id) > (%1$s, %2$s) and (e.xid, e.id) <= (%3$s, %4$s)
      order by e.xid, e.id
      limit $1
    ), named as (
      insert into app_private.audit_label_days as l (tenant_id, day, label, first_at, last_at, entries)
      select b.tenant_id, (b.occurred_at at time zone 'UTC')::date, b.resource_label, min(b.occurred_at), max(b.occurred_at), count(*)
      from batch b where b.resource_label is not null
      group by 1, 2, 3
      on conflict on constraint audit_label_days_pkey
        do update set first_at = least(l.first_at, excluded.first_at), last_at = greatest(l.last_at, excluded.last_at),
                      entries = l.entries + excluded.entries
    )
    select count(*), (array_agg(b.xid order by b.xid desc, b.id desc))[1], (array_agg(b.id order by b.xid desc, b.id desc))[1]
    from batch b$q$,
    v_state.last_xid, v_state.last_id, v_seal.last_xid, v_seal.last_id)
    into v_n, v_last_xid, v_last_id using max_entries;
  if v_n > 0 then
    update app_private.audit_label_state set last_xid = v_last_xid, last_id = v_last_id;
  end if;
  if v_n < max_entries then
    perform app_private.tidy_audit_names(v_state);
  end if;
  return v_n;
end;
$$;

set local role :DATABASE_OWNER;
