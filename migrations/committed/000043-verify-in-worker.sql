--! Previous: sha1:d91d6721d4f2ec9db831d05a1538bafb53991776
--! Hash: sha1:e271499dc28d45bf24c1c3a4729add397ebb5d24
--! Message: verify-in-worker

-- 000043 "Verify now" runs in the worker.
--
-- The Audit Log page's Verify now ran app_public.verify_current_audit_chain() inside the request.
-- Verifying recomputes every entry: 43.6 s for the 2,000,005 entries of the bench's big tenant on
-- this 2-core machine, so past the pages' 15 s statement timeout the owner got "The request took
-- too long" and nothing was recorded. The page now asks the worker to verify its tenant
-- (app_hidden.request_audit_verification: one job per tenant, job key verify_audit_chain:<tenant>,
-- so repeated clicks while it waits make one job), and shows the recorded result as before when it
-- is done. The worker's task records it with app_private.record_chain_verification, as the daily
-- job does for every tenant. (app_public.verify_current_audit_chain, GraphQL's
-- verifyCurrentAuditChain, still verifies within the request, under the API's statement timeout.)
-- Runs as the session's login: these functions are on the audit path (see CONVENTIONS.md).

set local role none;

create function app_private.record_chain_verification(p_tenant uuid)
returns table (valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text)
language sql volatile security definer set search_path = pg_catalog, public as $$
  insert into app_private.chain_verifications as c (tenant_id, valid, entries, last_seq, first_invalid_seq, problem, tree_size, pending)
  select p_tenant, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem, v.tree_size, v.pending
  from app_private.verify_audit_log(p_tenant) v
  returning c.valid, c.entries, c.last_seq, c.first_invalid_seq, c.problem
$$;
comment on function app_private.record_chain_verification(uuid) is
  'Verifies one tenant''s audit log and records the result (the worker''s verify_audit_chain task, for Verify now).';

create function app_hidden.request_audit_verification() returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid;
begin
  if not app_hidden.audit_log_readable() then
    raise exception 'Only owners and admins can verify the audit log' using errcode = '42501';
  end if;
  v_tenant := app_public.current_tenant_id();
  perform graphile_worker.add_job('verify_audit_chain', json_build_object('tenantId', v_tenant),
    job_key := 'verify_audit_chain:' || v_tenant::text, max_attempts := 1);
end;
$$;
comment on function app_hidden.request_audit_verification() is
  'Asks the worker to verify the current tenant''s audit log (owners and admins of a plan with the audit log): the result is recorded in chain_verifications.';

revoke all on function app_private.record_chain_verification(uuid) from public;
revoke all on function app_hidden.request_audit_verification() from public;
grant execute on function app_hidden.request_audit_verification() to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
