--! Previous: sha1:370ad85f020b35b7d2826853e510b98d4a97f378
--! Hash: sha1:919bac193de55090cec4dcf8953c55e296522e32
--! Message: verification-job

-- 000049 One look at the verification job.
--
-- The Audit Log page asked the worker's queue twice on every view, through two functions (000046:
-- is a verification waiting or running, 000048: did the last one fail on every attempt), each
-- checking the caller again and looking the same job up by its key. One function now answers
-- both from one lookup (the job's key is unique: one row or none). Null for anyone who may not
-- read the log. Runs as the session's login: it calls the log's read check, on the audit path.

set local role none;

drop function app_hidden.audit_verification_requested();
drop function app_hidden.audit_verification_failed();

create function app_hidden.audit_verification_job(out requested_at timestamptz, out failed boolean)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  -- (graphile-worker installs its schema when the worker first starts)
  if to_regclass('graphile_worker.jobs') is null or not app_hidden.audit_log_readable() then
    return;
  end if;
  select case when j.attempts < j.max_attempts then j.created_at end, j.attempts >= j.max_attempts
    into requested_at, failed
  from graphile_worker.jobs j
  where j.key = 'verify_audit_chain:' || app_public.current_tenant_id()::text;
end;
$$;
comment on function app_hidden.audit_verification_job() is
  'The current tenant''s verification job (Verify now, requestAuditVerification): when it was asked for while it waits or runs (requested_at), or that it failed on every attempt (failed); nulls when there is none, and for anyone who may not read the log.';
revoke all on function app_hidden.audit_verification_job() from public;
grant execute on function app_hidden.audit_verification_job() to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
