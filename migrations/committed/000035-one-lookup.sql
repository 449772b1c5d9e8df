--! Previous: sha1:3483c74d56ca97c7b8df4893dbc078b3ddf32e96
--! Hash: sha1:879d036d90039d8e85bfb2543403157c3f2fc1c4
--! Message: one-lookup

-- 000035 One credential lookup per check: a request's checks find its membership once each.
--
-- Every GraphQL request sends its credential check and its statement together (000018), and the
-- policies of the audit log check who reads. Measured with track_functions on the 10M-entry
-- database, an API token reading `auditLogs(first: 25)` made per request 9 calls of
-- app_hidden.current_api_token() (a hash and a join), 5 of app_public.current_user_id() and 4 of
-- app_private.current_membership(): ~0.5 ms of the ~1 ms of PostgreSQL time a request costs.
-- - app_private.current_membership found the user through current_user_id() (which, for an API
--   token, looks the token up) and then looked the token up again for its tenant. An API token
--   alone (no session) is now looked up with its membership, tenant and plan in one statement; with
--   a session, the token is looked up once.
-- - The audit log's policies (the log, its leaves and its checkpoints) asked current_tenant_id()
--   and audit_log_readable(), each finding the membership: two lookups per table read. They now
--   ask app_hidden.audit_log_tenant() once: the tenant whose log the caller may read, or null.
-- - app_hidden.check_request asked current_user_id() and then current_tenant_id(): it now asks
--   for the tenant first, and for the user only when there is none (to tell which error).
-- What each function answers does not change; an admin on a plan without the audit log still gets
-- the plan's message (ATPLN) when the log is read.
-- Runs as the session's login: these functions are on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_private.current_membership(out tenant_id uuid, out role text, out features text[])
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
declare
  v_session text := nullif(current_setting('attest.session_token', true), '');
  v_token text := nullif(current_setting('attest.api_token', true), '');
  v_tenant text := nullif(current_setting('attest.tenant', true), '');
  v_api app_public.api_tokens;
  v_user uuid;
  -- The tenant named by its id (canonical form, as `tenant_id::text` prints it), if it is one.
  v_tenant_uuid uuid := case when v_tenant ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                             then v_tenant::uuid end;
begin
  if v_session is null and v_token is not null then
    -- An API token alone (the API): it acts in its own tenant, as its user. One statement.
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_private.api_token_secrets s
    join app_public.api_tokens t on t.tenant_id = s.tenant_id and t.id = s.token_id
    join app_public.memberships m on m.tenant_id = t.tenant_id and m.user_id = t.user_id
    join app_public.tenants x on x.id = m.tenant_id
    left join app_public.plans p on p.id = x.plan_id
    where s.token_hash = (select sha256(convert_to(v_token, 'UTF8')))
      and t.revoked_at is null
      and (t.expires_at is null or t.expires_at > now());
    return;
  end if;
  -- The user: the session's, else the API token's (as app_public.current_user_id()).
  if v_session is not null then
    select s.user_id into v_user from app_private.sessions s
    where s.token_hash = (select sha256(convert_to(v_session, 'UTF8'))) and s.revoked_at is null and s.expires_at > now();
  end if;
  if v_token is not null then
    v_api := app_hidden.current_api_token();
    v_user := coalesce(v_user, v_api.user_id);
  end if;
  if v_user is null then
    return;
  end if;
  if v_api.tenant_id is not null then
    -- An API token acts in its own tenant.
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user and m.tenant_id = v_api.tenant_id;
  elsif v_tenant is not null then
    -- The tenant the request names (id or slug), if the user belongs to it.
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user
      and m.tenant_id in ((select x.id from app_public.tenants x where x.slug = v_tenant), v_tenant_uuid);
  else
    -- Otherwise the user's only tenant.
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user
      and (select count(*) from app_public.memberships o where o.user_id = v_user) = 1;
  end if;
end;
$function$;

/**
 * The tenant whose audit log the caller may read: its owner or admin, on a plan with the auditLog
 * feature (else the plan's message, ATPLN); null for anyone else. The log's policies ask it once.
 */
create function app_hidden.audit_log_tenant() returns uuid
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
declare
  m record;
begin
  select c.tenant_id, c.role, c.features into m from app_private.current_membership() c;
  if m.role is null or m.role not in ('owner', 'admin') then
    return null;
  end if;
  if not coalesce('auditLog' = any (m.features), false) then
    raise exception 'The audit log is not in your plan. Upgrade to a plan with the auditLog feature to see it.'
      using errcode = 'ATPLN';
  end if;
  return m.tenant_id;
end;
$function$;
comment on function app_hidden.audit_log_tenant() is
  'The tenant whose audit log the caller may read (owner/admin, plan with auditLog; else raises ATPLN), or null.';
revoke all on function app_hidden.audit_log_tenant() from public;
grant execute on function app_hidden.audit_log_tenant() to :DATABASE_VISITOR, :DATABASE_OWNER;

create or replace function app_hidden.audit_log_readable() returns boolean
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
begin
  return app_hidden.audit_log_tenant() is not null;
end;
$function$;

alter policy select_managers_with_feature on app_public.audit_log
  using (tenant_id = (select app_hidden.audit_log_tenant()));
alter policy select_managers_with_feature on app_hidden.audit_leaves
  using (tenant_id = (select app_hidden.audit_log_tenant()));
alter policy select_managers_with_feature on app_public.audit_checkpoints
  using (tenant_id = (select app_hidden.audit_log_tenant()));

create or replace function app_hidden.check_request(p_token_given boolean, p_tenant_given boolean)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'public'
AS $function$
begin
  -- A tenant found: the credentials are valid (a membership has a user). The usual case.
  if app_public.current_tenant_id() is not null then
    return;
  end if;
  if app_public.current_user_id() is null then
    raise exception 'The request''s credentials are not valid.' using errcode = 'AT401';
  end if;
  if p_token_given then
    return;
  end if;
  if p_tenant_given then
    raise exception 'The caller is not a member of the tenant it names.' using errcode = 'AT404';
  end if;
  if (select count(*) from app_public.tenants) > 1 then
    raise exception 'The caller belongs to several tenants and names none.' using errcode = 'AT400';
  end if;
end;
$function$;
