--! Previous: sha1:a7287654c3de2207cc9ab5b7fbfd9eae693ddcf8
--! Hash: sha1:cea8df2b544caf3c99961c31696fce6b90dd6d6a
--! Message: request-speed

-- 000014 Request speed: who is acting, worked out in one pass per call with cached plans.
--
-- Every statement a request runs asks the database who is acting: its row-level security policies
-- call current_tenant_id(), current_tenant_role() and audit_log_readable() (once per statement, as
-- init plans), and so do the log's SECURITY DEFINER read functions. Those were SQL functions that
-- called each other: audit_log_readable() ran current_tenant_role() twice and current_tenant_id()
-- once, each of those current_user_id(), which ran current_session_id() and current_api_token()…
-- PostgreSQL cannot inline a SECURITY DEFINER function and plans a non-inlined SQL function's
-- query again on every call, so one audit_log_readable() cost ~3 ms of planning (measured on the
-- demo database, PostgreSQL 15), paid by every statement of every request.
--
-- Now each is PL/pgSQL (whose plans are kept for the session) and does its own lookups once:
-- app_private.current_membership() finds the user's tenant, role and plan features in one query,
-- and the public functions read what they need from it. What each function answers is unchanged.

create function app_private.current_membership(out tenant_id uuid, out role text, out features text[])
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_user uuid := app_public.current_user_id();
  v_tenant text := nullif(current_setting('attest.tenant', true), '');
  v_token_tenant uuid;
begin
  if v_user is null then
    return;
  end if;
  if nullif(current_setting('attest.api_token', true), '') is not null then
    v_token_tenant := (app_hidden.current_api_token()).tenant_id;
  end if;
  if v_token_tenant is not null then
    -- An API token acts in its own tenant.
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user and m.tenant_id = v_token_tenant;
  elsif v_tenant is not null then
    -- The tenant the request names (id or slug), if the user belongs to it.
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user and (t.slug = v_tenant or m.tenant_id::text = v_tenant);
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
$$;
comment on function app_private.current_membership() is
  'The tenant this request acts in, the user''s role there and its plan''s features (all null when none): what current_tenant_id(), current_tenant_role() and audit_log_readable() answer from.';

create or replace function app_public.current_tenant_has_feature(feature text) returns boolean
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return coalesce(feature = any ((app_private.current_membership()).features), false);
end;
$$;

create or replace function app_public.current_user() returns app_public.users
language plpgsql stable set search_path = pg_catalog, public as $$
declare
  r app_public.users;
begin
  select u.* into r from app_public.users u where u.id = app_public.current_user_id();
  if not found then
    return null;
  end if;
  return r;
end;
$$;

create or replace function app_public.current_tenant() returns app_public.tenants
language plpgsql stable set search_path = pg_catalog, public as $$
declare
  r app_public.tenants;
begin
  select t.* into r from app_public.tenants t where t.id = app_public.current_tenant_id();
  if not found then
    return null;
  end if;
  return r;
end;
$$;

create or replace function app_public.tenants_features(t app_public.tenants) returns text[]
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return (select p.features from app_public.plans p where p.id = t.plan_id);
end;
$$;

create or replace function app_public.tenants_my_role(t app_public.tenants) returns text
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return (select m.role from app_public.memberships m where m.tenant_id = t.id and m.user_id = app_public.current_user_id());
end;
$$;

create or replace function app_hidden.current_user_tenant_ids() returns setof uuid
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  if nullif(current_setting('attest.api_token', true), '') is not null and (app_hidden.current_api_token()).id is not null then
    return;
  end if;
  return query select m.tenant_id from app_public.memberships m where m.user_id = app_public.current_user_id();
end;
$$;

create or replace function app_hidden.current_session_email() returns text
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return (select u.email from app_private.sessions s join app_public.users u on u.id = s.user_id
          where s.id = app_public.current_session_id());
end;
$$;

------------------------------------------------------------------------------
-- The functions on the audit path (owned by <prefix>_audit once the DDL guard is installed):
-- replaced as the session's login, a superuser.
------------------------------------------------------------------------------
set local role none;

create or replace function app_private.setting(name text) returns text
language plpgsql stable set search_path = pg_catalog as $$
begin
  return nullif(current_setting(name, true), '');
end;
$$;

create or replace function app_public.current_session_id() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_token text := nullif(current_setting('attest.session_token', true), '');
begin
  if v_token is null then
    return null;
  end if;
  return (select s.id from app_private.sessions s
          where s.token_hash = sha256(convert_to(v_token, 'UTF8')) and s.revoked_at is null and s.expires_at > now());
end;
$$;

create or replace function app_hidden.current_api_token() returns app_public.api_tokens
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_token text := nullif(current_setting('attest.api_token', true), '');
  r app_public.api_tokens;
begin
  if v_token is null then
    return null;
  end if;
  select t.* into r
  from app_private.api_token_secrets s
  join app_public.api_tokens t on t.tenant_id = s.tenant_id and t.id = s.token_id
  where s.token_hash = sha256(convert_to(v_token, 'UTF8'))
    and t.revoked_at is null
    and (t.expires_at is null or t.expires_at > now());
  if not found then
    return null;
  end if;
  return r;
end;
$$;

create or replace function app_public.current_user_id() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_session text := nullif(current_setting('attest.session_token', true), '');
  v_user uuid;
begin
  if v_session is not null then
    select s.user_id into v_user from app_private.sessions s
    where s.token_hash = sha256(convert_to(v_session, 'UTF8')) and s.revoked_at is null and s.expires_at > now();
    if v_user is not null then
      return v_user;
    end if;
  end if;
  if nullif(current_setting('attest.api_token', true), '') is not null then
    return (app_hidden.current_api_token()).user_id;
  end if;
  return null;
end;
$$;

create or replace function app_public.current_tenant_id() returns uuid
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return (app_private.current_membership()).tenant_id;
end;
$$;

create or replace function app_public.current_tenant_role() returns text
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return (app_private.current_membership()).role;
end;
$$;

create or replace function app_public.tenant_has_feature(tenant_id uuid, feature text) returns boolean
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  return coalesce((
    select tenant_has_feature.feature = any (p.features)
    from app_public.tenants t join app_public.plans p on p.id = t.plan_id
    where t.id = tenant_has_feature.tenant_id
  ), false);
end;
$$;

create or replace function app_hidden.audit_log_readable() returns boolean
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_role text;
  v_features text[];
begin
  select m.role, m.features into v_role, v_features from app_private.current_membership() m;
  if v_role is null or v_role not in ('owner', 'admin') then
    return false;
  end if;
  if not coalesce('auditLog' = any (v_features), false) then
    raise exception 'The audit log is not in your plan. Upgrade to a plan with the auditLog feature to see it.'
      using errcode = 'ATPLN';
  end if;
  return true;
end;
$$;

set local role :DATABASE_OWNER;
