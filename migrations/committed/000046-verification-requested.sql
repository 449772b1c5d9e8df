--! Previous: sha1:a35cb90ccdf61cf236b37a48daeede4550ed594e
--! Hash: sha1:0da8ffbec6b8fb1ffb3bcc48402345f31e05a659
--! Message: verification-requested

-- 000046 Whether a verification is on its way.
--
-- After Verify now the page said "not verified yet" (or showed the previous result) until the
-- worker had recorded the new one, and the owner had to reload to see it. The page now says that
-- the log is being verified, and polls until the result is recorded. This tells it: when the
-- tenant's verify_audit_chain job was asked for, while it waits or runs (null otherwise, and for
-- anyone who may not read the log). Reads the worker's queue by the job's key (its unique index).
-- Runs as the session's login: it calls the log's read check, so it is on the audit path.

set local role none;

create function app_hidden.audit_verification_requested() returns timestamptz
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  -- (graphile-worker installs its schema when the worker first starts)
  if to_regclass('graphile_worker.jobs') is null or not app_hidden.audit_log_readable() then
    return null;
  end if;
  return (select j.created_at from graphile_worker.jobs j
          where j.key = 'verify_audit_chain:' || app_public.current_tenant_id()::text
            and j.attempts < j.max_attempts);
end;
$$;
comment on function app_hidden.audit_verification_requested() is
  'When the current tenant''s verification (Verify now, requestAuditVerification) was asked for, while it waits or runs; null otherwise, and for anyone who may not read the log.';
revoke all on function app_hidden.audit_verification_requested() from public;
grant execute on function app_hidden.audit_verification_requested() to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
