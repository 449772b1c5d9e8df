--! Previous: sha1:e271499dc28d45bf24c1c3a4729add397ebb5d24
--! Hash: sha1:4138bd5423359a3012295b62d1e42dee712b433b
--! Message: verify-retry

-- 000044 A Verify now cut short by a shutdown runs again.
--
-- The worker cancels a running verification when it shuts down (it no longer holds the shutdown
-- up for the tens of seconds a log of millions of entries takes). With max_attempts 1 the job then
-- failed for good and the owner's Verify now was lost; with 3 graphile-worker runs it again (at
-- the next start, after its short backoff). A verification that completes, intact or broken, is
-- one attempt: only an error retries. Runs as the session's login: on the audit path.

set local role none;

create or replace function app_hidden.request_audit_verification() returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
begin
  if not app_hidden.audit_log_readable() then
    raise exception 'Only owners and admins can verify the audit log' using errcode = '42501';
  end if;
  v_tenant := app_public.current_tenant_id();
  perform graphile_worker.add_job('verify_audit_chain', json_build_object('tenantId', v_tenant),
    job_key := 'verify_audit_chain:' || v_tenant::text, max_attempts := 3);
end;
$$;

set local role :DATABASE_OWNER;
