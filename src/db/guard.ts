/**
 * The DDL guard: event triggers (which only a superuser can create, alter or drop) that stop
 * any non-superuser session, the schema owner included, from dropping or altering the audit
 * log, its triggers, policies and rules, or the functions that capture, attribute, seal and verify
 * entries. Without it the owner could `ALTER TABLE … DISABLE TRIGGER` and then rewrite history,
 * or replace current_user_id() and have the server's changes recorded in another user's name.
 * Installed (and refreshed) by setup whenever it runs as a superuser; migrations that change the
 * audit log must then run in a superuser session (as `npm start` / `npm run migrate` do with such
 * a login). The protected objects are pinned by OID, so renaming them does not slip past.
 */
export const GUARD_SCHEMA = "attest_guard";

const protectedFunctions = [
  "app_private.tg_audit_log__immutable()",
  "app_private.tg_audit_log__capture_only()",
  "app_private.audit_entry_of(text,text,jsonb,jsonb)",
  "app_private.audit_changes(text,jsonb,jsonb,text[])",
  "app_private.tg__audit()",
  "app_private.tg__append_only()",
  "app_private.tg_audit_checkpoints__check()",
  "app_private.tg_audit_log__webhooks()",
  "app_private.audit_entry_body(app_public.audit_log)",
  "app_private.audit_leaf_bytes(bigint,text,text)",
  "app_private.audit_frontier_root(bytea[])",
  "app_private.seal_audit_entries(integer)",
  "app_private.audit_seal_horizon()",
  "app_private.audit_node(uuid,integer,bigint)",
  "app_private.audit_subtree_hash(uuid,bigint,bigint)",
  "app_private.audit_inclusion_path(uuid,bigint,bigint)",
  "app_private.audit_consistency_path(uuid,bigint,bigint)",
  "app_private.verify_audit_log(uuid)",
  "app_private.add_audit_checkpoint(uuid,bigint,bytea,text,text,text)",
  "app_private.incident_leaves(uuid,uuid,bigint)",
  "app_hidden.audit_log_readable()",
  "app_private.audit_hash(app_public.audit_log)",
  "app_private.audit_document(app_public.audit_log)",
  "app_private.canonical_json(jsonb)",
  "app_private.audit_action(text,text,jsonb,jsonb)",
  "app_private.audit_ignored_columns(text)",
  "app_private.audit_resource_of(text,text)",
  "app_public.verify_audit_chain(uuid)",
  // Who is acting: replacing these would put words in other users' mouths.
  "app_private.setting(text)",
  "app_public.current_session_id()",
  "app_hidden.current_api_token()",
  "app_public.current_user_id()",
  "app_public.current_tenant_id()",
  "app_public.current_tenant_role()",
  "app_hidden.current_user_tenant_ids()",
  "app_public.tenant_has_feature(uuid,text)",
  "app_public.current_tenant_has_feature(text)",
];

export const guardSql = `
create schema if not exists ${GUARD_SCHEMA};
revoke all on schema ${GUARD_SCHEMA} from public;
comment on schema ${GUARD_SCHEMA} is 'Owned by a superuser: event triggers that protect the audit log from DDL.';

do $do$
declare
  v_tables oid[] := array['app_public.audit_log'::regclass, 'app_hidden.audit_leaves'::regclass,
    'app_public.audit_checkpoints'::regclass, 'app_private.audit_trees'::regclass,
    'app_private.audit_seal_state'::regclass]::oid[];
  v_functions oid[] := array[${protectedFunctions.map((f) => `'${f}'::regprocedure`).join(", ")}]::oid[];
begin
  -- The function runs as the session's user, who cannot read this schema: everything it needs is inline.
  execute format($fn$
    create or replace function ${GUARD_SCHEMA}.tg_protect_audit_log() returns event_trigger
    language plpgsql set search_path = pg_catalog as $body$
    declare
      r record;
      protected_tables constant oid[] := %L;
      protected_functions constant oid[] := %L;
      hit boolean;
    begin
      if (select rolsuper from pg_roles where rolname = session_user) then
        return;
      end if;
      if tg_event = 'sql_drop' then
        for r in select classid, objid, object_identity from pg_event_trigger_dropped_objects() loop
          hit := (r.classid = 'pg_class'::regclass and r.objid = any (protected_tables))
              or (r.classid = 'pg_proc'::regclass and r.objid = any (protected_functions))
              or r.object_identity like '%% on app_public.audit_log' or r.object_identity like '%% on app_hidden.audit_leaves'
              or r.object_identity like '%% on app_public.audit_checkpoints';
          if hit then
            raise exception 'the audit log is protected: %% may not drop %%', session_user, r.object_identity
              using errcode = '42501', hint = 'Only a superuser session can change the audit log''s definition.';
          end if;
        end loop;
      else
        for r in select classid, objid, command_tag, object_identity from pg_event_trigger_ddl_commands() loop
          hit := (r.classid = 'pg_class'::regclass and r.objid = any (protected_tables))
              or (r.classid = 'pg_proc'::regclass and r.objid = any (protected_functions))
              or (r.classid = 'pg_trigger'::regclass and exists (select 1 from pg_trigger where oid = r.objid and tgrelid = any (protected_tables)))
              or (r.classid = 'pg_policy'::regclass and exists (select 1 from pg_policy where oid = r.objid and polrelid = any (protected_tables)))
              or (r.classid = 'pg_rewrite'::regclass and exists (select 1 from pg_rewrite where oid = r.objid and ev_class = any (protected_tables)));
          if hit then
            raise exception 'the audit log is protected: %% may not run %% on %%', session_user, r.command_tag, r.object_identity
              using errcode = '42501', hint = 'Only a superuser session can change the audit log''s definition.';
          end if;
        end loop;
      end if;
    end;
    $body$
  $fn$, v_tables, v_functions);
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
