--! Previous: sha1:4138bd5423359a3012295b62d1e42dee712b433b
--! Hash: sha1:a35cb90ccdf61cf236b37a48daeede4550ed594e
--! Message: graphql-verification

-- 000045 Verification over GraphQL, as on the page.
--
-- GraphQL's verifyCurrentAuditChain verifies within the request, under the API's 5 s statement
-- timeout: a log of millions of entries cannot be verified that way. An integrator now asks as
-- the page does (requestAuditVerification: the worker's verify_audit_chain job, one per tenant
-- while it waits) and reads what was recorded (auditVerifications: the tenant's recorded
-- verifications, newest first, the daily job's included). The page's function moves to
-- app_public to be that mutation. Runs as the session's login: on the audit path.

set local role none;

drop function app_hidden.request_audit_verification();

create function app_public.request_audit_verification() returns boolean
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
  return true;
end;
$$;
comment on function app_public.request_audit_verification() is
  'Asks the worker to verify this tenant''s audit log now (owners and admins of a plan with the audit log; requests while one waits make one job). The result is recorded: see auditVerifications.';
revoke all on function app_public.request_audit_verification() from public;
grant execute on function app_public.request_audit_verification() to :DATABASE_VISITOR;

create type app_public.audit_verification as (
  checked_at timestamptz,
  valid boolean,
  entries bigint,
  last_seq bigint,
  first_invalid_seq bigint,
  problem text,
  tree_size bigint,
  pending bigint
);
comment on type app_public.audit_verification is 'A recorded verification of the tenant''s audit log.';
comment on column app_public.audit_verification.checked_at is 'When it ran.';
comment on column app_public.audit_verification.valid is 'Whether every sealed entry matched its leaf and every leaf the signed tree.';
comment on column app_public.audit_verification.entries is 'How many sealed entries were checked.';
comment on column app_public.audit_verification.last_seq is 'The last position checked.';
comment on column app_public.audit_verification.first_invalid_seq is 'The first position that did not match, if any.';
comment on column app_public.audit_verification.problem is 'What was wrong there.';
comment on column app_public.audit_verification.tree_size is 'The size of the tree that was checked.';
comment on column app_public.audit_verification.pending is 'Entries written but not yet sealed when it ran.';

create function app_public.audit_verifications() returns setof app_public.audit_verification
language sql stable security definer set search_path = pg_catalog, public as $$
  select v.checked_at, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem, v.tree_size, v.pending
  from app_private.chain_verifications v
  where v.tenant_id = (select app_hidden.audit_log_tenant())
  order by v.checked_at desc, v.id desc
$$;
comment on function app_public.audit_verifications() is
  'The recorded verifications of this tenant''s audit log (the daily job, Verify now, requestAuditVerification), newest first: owners and admins of a plan with the audit log.';
revoke all on function app_public.audit_verifications() from public;
grant execute on function app_public.audit_verifications() to :DATABASE_VISITOR;

set local role :DATABASE_OWNER;
