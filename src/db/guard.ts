/**
 * The DDL guard: what a superuser installs so that no other role, the schema owner included, can
 * write the audit log or change how it is written. Installed (and refreshed) by setup whenever it
 * runs as a superuser; a DBA runs it otherwise (`npm run --silent guard-sql | psql`). It:
 *
 * 1. works out the audit path from the catalog, not from a list kept by hand: the log's tables
 *    (audit_log, audit_leaves, audit_checkpoints, audit_trees, audit_seal_state, and the activity the
 *    sealer keeps for the pages and reports: audit_activity_hourly/hours/daily, and the search's audit_label_days/state/chars,
 *    and chain_verifications, the recorded results of verifying each log, which the page and
 *    reporting.chain_status show: nobody may record a verification that did not run), the audited
 *    tables (those with a capture trigger), the views of the SQL reporting interface (schema
 *    reporting), every function their triggers and the log's policies
 *    call, every SECURITY DEFINER function that reads or writes the log's tables, and, closing
 *    over their source, every app function those call (`app_private.audit_path()` lists it);
 * 2. hands the log's tables, its sequence and every function on the path to `<prefix>_audit`, a
 *    role nobody logs in as and nobody is a member of (it is itself a member of the owner role, so
 *    what the path may do does not change); the owner keeps no privilege on them;
 * 3. installs event triggers (which only a superuser can create, alter or drop) that stop any
 *    non-superuser session from dropping, altering or replacing anything on the path, from adding,
 *    dropping, disabling or renaming triggers, rules or policies of the log's tables and the
 *    audited tables, and from dropping or renaming an audited table.
 *
 * Migrations that change the audit path therefore run in a superuser session (as `npm start` /
 * `npm run migrate` do with such a login); see migrations/CONVENTIONS.md.
 */
export const GUARD_SCHEMA = "attest_guard";

export const guardSql = `
create schema if not exists ${GUARD_SCHEMA};
revoke all on schema ${GUARD_SCHEMA} from public;
comment on schema ${GUARD_SCHEMA} is 'Owned by a superuser: event triggers that protect the audit log from DDL.';

-- The audit path, from the catalog. Used here and by the tests; readable by the owner so that an
-- operator can see what is protected.
create or replace function ${GUARD_SCHEMA}.audit_path()
returns table (kind text, oid oid, identity text)
language sql stable set search_path = pg_catalog as $$
  with recursive
  log_tables as (
    select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where (n.nspname, c.relname) in (('app_public', 'audit_log'), ('app_hidden', 'audit_leaves'),
      ('app_public', 'audit_checkpoints'), ('app_private', 'audit_trees'), ('app_private', 'audit_seal_state'),
      ('app_private', 'audit_activity_hourly'), ('app_private', 'audit_activity_hours'),
      ('app_private', 'audit_activity_daily'),
      ('app_private', 'audit_label_days'), ('app_private', 'audit_label_state'), ('app_private', 'audit_label_chars'),
      ('app_private', 'audit_label_trigram_months'), ('app_private', 'audit_surface_days'), ('app_private', 'audit_actor_chars'),
      ('app_private', 'audit_label_char_days'), ('app_private', 'audit_label_pair_days'),
      ('app_private', 'audit_label_char_action_days'),
      ('app_private', 'audit_actor_char_days'),
      ('app_private', 'audit_actor_pair_days'), ('app_private', 'audit_shape_days'),
      ('app_private', 'chain_verifications'))
  ),
  -- The SQL reporting interface (the DBA's reports and chain status): its views read the log, and
  -- whoever could replace one could hide entries from the reports or show a forged verification.
  reporting_views as (
    select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'reporting' and c.relkind in ('v', 'm')
  ),
  audited_tables as (
    select distinct t.tgrelid as oid from pg_trigger t
    where t.tgfoid = 'app_private.tg__audit()'::regprocedure
  ),
  roots as (
    -- every trigger function of the log's tables and of the audited tables
    select t.tgfoid as oid from pg_trigger t
    where not t.tgisinternal and (t.tgrelid in (select oid from log_tables) or t.tgrelid in (select oid from audited_tables))
    union
    -- every function the log's policies call
    select d.refobjid from pg_depend d join pg_policy p on d.classid = 'pg_policy'::regclass and d.objid = p.oid
    where d.refclassid = 'pg_proc'::regclass and p.polrelid in (select oid from log_tables)
    union
    -- every SECURITY DEFINER function that reads or writes the log's tables (sealing, proofs, verification)
    select p.oid from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where p.prosecdef and n.nspname in ('app_public', 'app_private', 'app_hidden', 'reporting')
      and p.prosrc ~ '(audit_log|audit_leaves|audit_checkpoints|audit_trees|audit_seal_state|chain_verifications)'
  ),
  path(oid) as (
    select oid from roots
    union
    -- and every function of Attest's schemas that a function on the path names in its source
    select callee.oid
    from path
    join pg_proc caller on caller.oid = path.oid
    cross join lateral regexp_matches(caller.prosrc, '(app_public|app_private|app_hidden)\\.([a-z0-9_]+)\\s*\\(', 'g') as m(ref)
    join pg_namespace cn on cn.nspname = m.ref[1]
    join pg_proc callee on callee.pronamespace = cn.oid and callee.proname = m.ref[2]
  )
  select 'function', p.oid, p.oid::regprocedure::text from path p
  union all select 'log table', oid, oid::regclass::text from log_tables
  union all select 'reporting view', oid, oid::regclass::text from reporting_views
  union all select 'audited table', oid, oid::regclass::text from audited_tables
$$;

do $do$
declare
  v_owner text := (select nspowner::regrole::text from pg_namespace where nspname = 'app_public');
  v_audit text := regexp_replace((select nspowner::regrole::text from pg_namespace where nspname = 'app_public'), '_owner$', '_audit');
  v_functions oid[];
  v_log_tables oid[];
  v_log_indexes oid[];
  v_audited oid[];
  v_audited_names text[];
  v_audited_args text[];
  r record;
begin
  if not exists (select 1 from pg_roles where rolname = v_audit) then
    raise exception 'role % does not exist: run npm run migrate (or the SQL it prints for a DBA) first', v_audit;
  end if;
  select array_agg(oid) filter (where kind = 'function'), array_agg(oid) filter (where kind in ('log table', 'reporting view')),
         array_agg(oid) filter (where kind = 'audited table')
    into v_functions, v_log_tables, v_audited
  from ${GUARD_SCHEMA}.audit_path();
  -- The log's indexes: what its readers and the sealer rely on (a schema's owner may drop them).
  select coalesce(array_agg(i.indexrelid), '{}') into v_log_indexes from pg_index i where i.indrelid = any (v_log_tables);
  -- What each audited table is called and which capture argument it has, pinned.
  select array_agg(n.nspname || '.' || c.relname order by u.ord), array_agg(app_private.audit_resource_of(n.nspname, c.relname) order by u.ord)
    into v_audited_names, v_audited_args
  from unnest(v_audited) with ordinality u(oid, ord) join pg_class c on c.oid = u.oid join pg_namespace n on n.oid = c.relnamespace;

  -- 2. The audit role owns the log and its path; it may do what the owner may (it is a member).
  -- (Ownership is changed only where it differs: ALTER TABLE … OWNER locks the table against every
  -- reader and writer even when nothing changes, and setup runs this at every start, while another
  -- Attest may be writing and sealing: the two deadlocked.)
  execute format('grant %I to %I', v_owner, v_audit);
  for r in select u.oid::regclass as t, c.relowner <> v_audit::regrole as moves
           from unnest(v_log_tables) u(oid) join pg_class c on c.oid = u.oid loop
    if r.moves then
      execute format('alter table %s owner to %I', r.t, v_audit);
    end if;
    -- The owner (the worker) reads the whole log; it writes nothing there.
    execute format('grant select on %s to %I', r.t, v_owner);
    if (select relrowsecurity from pg_class where oid = r.t) and not exists (
      select 1 from pg_policy where polrelid = r.t and polname = 'select_owner_role'
    ) then
      execute format('create policy select_owner_role on %s for select to %I using (true)', r.t, v_owner);
    end if;
  end loop;
  if (select c.relowner from pg_class c where c.oid = 'app_private.audit_entry_id_seq'::regclass) <> v_audit::regrole then
    execute format('alter sequence app_private.audit_entry_id_seq owner to %I', v_audit);
  end if;
  for r in select u.oid::regprocedure as f, p.proowner <> v_audit::regrole as moves
           from unnest(v_functions) u(oid) join pg_proc p on p.oid = u.oid loop
    if r.moves then
      execute format('alter function %s owner to %I', r.f, v_audit);
    end if;
    -- The owner may still call them (the worker does); it can no longer change them.
    execute format('grant execute on function %s to %I', r.f, v_owner);
  end loop;
  execute format('grant usage on schema ${GUARD_SCHEMA} to %I', v_owner);
  execute format('grant execute on function ${GUARD_SCHEMA}.audit_path() to %I', v_owner);

  -- 3. The event trigger function. It runs as the session's user, who cannot read this schema:
  -- everything it needs is inline.
  execute format($fn$
    create or replace function ${GUARD_SCHEMA}.tg_protect_audit_log() returns event_trigger
    language plpgsql set search_path = pg_catalog as $body$
    declare
      r record;
      log_tables constant oid[] := %L;
      log_indexes constant oid[] := %L;
      audited_tables constant oid[] := %L;
      audited_names constant text[] := %L;
      audited_args constant text[] := %L;
      path_functions constant oid[] := %L;
      guarded_tables oid[] := log_tables || audited_tables;
      hit boolean;
    begin
      if (select rolsuper from pg_roles where rolname = session_user) then
        return;
      end if;
      if tg_event = 'sql_drop' then
        for r in select classid, objid, object_identity from pg_event_trigger_dropped_objects() loop
          hit := (r.classid = 'pg_class'::regclass and r.objid = any (guarded_tables || log_indexes))
              or (r.classid = 'pg_proc'::regclass and r.objid = any (path_functions))
              or (r.classid in ('pg_trigger'::regclass, 'pg_policy'::regclass, 'pg_rewrite'::regclass)
                  and exists (select 1 from unnest(guarded_tables) g where r.object_identity like '%% on ' || g::regclass::text));
          if hit then
            raise exception 'the audit log is protected: %% may not drop %%', session_user, r.object_identity
              using errcode = '42501', hint = 'Only a superuser session can change the audit log or how it is written.';
          end if;
        end loop;
      else
        for r in select classid, objid, command_tag, object_identity from pg_event_trigger_ddl_commands() loop
          hit := (r.classid = 'pg_class'::regclass and r.objid = any (log_tables || log_indexes))
              or (r.classid = 'pg_proc'::regclass and r.objid = any (path_functions))
              or (r.classid = 'pg_trigger'::regclass and exists (select 1 from pg_trigger where oid = r.objid and tgrelid = any (guarded_tables)))
              or (r.classid = 'pg_policy'::regclass and exists (select 1 from pg_policy where oid = r.objid and polrelid = any (log_tables)))
              or (r.classid = 'pg_rewrite'::regclass and exists (select 1 from pg_rewrite where oid = r.objid and ev_class = any (guarded_tables)));
          if hit then
            raise exception 'the audit log is protected: %% may not run %% on %%', session_user, r.command_tag, r.object_identity
              using errcode = '42501', hint = 'Only a superuser session can change the audit log or how it is written.';
          end if;
        end loop;
        -- ALTER TABLE on an audited table may add a column, but not switch capture off or rename
        -- the table away from its capture triggers.
        for r in
          select t.oid::regclass as tbl
          from unnest(audited_tables, audited_names, audited_args) t(oid, name, arg)
          join pg_class c on c.oid = t.oid join pg_namespace n on n.oid = c.relnamespace
          where n.nspname || '.' || c.relname <> t.name
             or exists (select 1 from pg_trigger g where g.tgrelid = t.oid and g.tgfoid = any (path_functions)
                          and g.tgenabled not in ('O', 'A'))
             or (select count(*) from pg_trigger g
                 where g.tgrelid = t.oid and g.tgname like '\\_500\\_audit\\_%%' and encode(g.tgargs, 'escape') = t.arg || '\\000') <> 3
        loop
          raise exception 'the audit log is protected: %% may not switch off, detach or rename the capture of %%', session_user, r.tbl
            using errcode = '42501', hint = 'Only a superuser session can change how an audited table is captured.';
        end loop;
      end if;
    end;
    $body$
  $fn$, v_log_tables, v_log_indexes, v_audited, v_audited_names, v_audited_args, v_functions);
end;
$do$;

do $$
begin
  if not exists (select 1 from pg_event_trigger where evtname = 'attest_protect_audit_log_ddl') then
    create event trigger attest_protect_audit_log_ddl on ddl_command_end
      execute function ${GUARD_SCHEMA}.tg_protect_audit_log();
  end if;
  if not exists (select 1 from pg_event_trigger where evtname = 'attest_protect_audit_log_drop') then
    create event trigger attest_protect_audit_log_drop on sql_drop
      execute function ${GUARD_SCHEMA}.tg_protect_audit_log();
  end if;
end;
$$;
`;
