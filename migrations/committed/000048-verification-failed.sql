--! Previous: sha1:5db4338d47674941b3b06a2950528bd1c53b6347
--! Hash: sha1:370ad85f020b35b7d2826853e510b98d4a97f378
--! Message: verification-failed

-- 000048 A verification that could not run says so.
--
-- The worker tries a verification three times (000044). When all three fail (the database went
-- away, the worker was stopped each time), the job stays in the queue, failed, and the page showed
-- the previous result as if nothing had been asked. This tells the page that the tenant's last
-- verification failed for good (true), so that it says so and offers to try again (Verify now
-- queues a new job: graphile-worker keeps the failed one, without its key). Null for anyone who
-- may not read the log. Runs as the session's login: it calls the log's read check, on the
-- audit path.

set local role none;

create function app_hidden.audit_verification_failed() returns boolean
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  if to_regclass('graphile_worker.jobs') is null or not app_hidden.audit_log_readable() then
    return null;
  end if;
  return exists (select 1 from graphile_worker.jobs j
                 where j.key = 'verify_audit_chain:' || app_public.current_tenant_id()::text
                   and j.attempts >= j.max_attempts);
end;
$$;
comment on function app_hidden.audit_verification_failed() is
  'Whether the current tenant''s last requested verification failed on every attempt (null for anyone who may not read the log).';
revoke all on function app_hidden.audit_verification_failed() from public;
grant execute on function app_hidden.audit_verification_failed() to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
