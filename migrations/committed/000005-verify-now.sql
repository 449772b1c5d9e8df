--! Previous: sha1:03f842022275cb84968007cf5136464b76c25eba
--! Hash: sha1:fafae743e20f2733b911b6d4b9d15df137551777
--! Message: verify-now

-- 000005 "Verify now" on the Audit Log page: an owner or admin (with auditLog) verifies the
-- current tenant's chain on demand; the result is recorded like the daily job's.
create function app_public.verify_current_audit_chain()
returns table (checked_at timestamptz, valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text)
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  if not app_hidden.audit_log_readable() then
    raise exception 'Only owners and admins can verify the audit log' using errcode = '42501';
  end if;
  return query
  insert into app_private.chain_verifications as v (tenant_id, valid, entries, last_seq, first_invalid_seq, problem)
  select app_public.current_tenant_id(), c.valid, c.entries, c.last_seq, c.first_invalid_seq, c.problem
  from app_public.verify_audit_chain(app_public.current_tenant_id()) c
  returning v.checked_at, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem;
end;
$$;
comment on function app_public.verify_current_audit_chain() is
  'Verifies the current tenant''s audit chain now and records the result (owner/admin with auditLog).';
grant execute on function app_public.verify_current_audit_chain() to :DATABASE_VISITOR;
