--! Previous: sha1:a7287654c3de2207cc9ab5b7fbfd9eae693ddcf8
--! Hash: sha1:da8da90c5cd232921c127cea3a32d6de5ee77e84
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
-- Computed columns at the cost of a cached plan. A SQL function with a SET clause is never
-- inlined and is planned again on every call, so each was planned and run once per row: `seq` on
-- 25 entries of a GraphQL page cost ~20 ms against 0.5 ms for the page itself. The lookups of an
-- entry's leaf and token name are PL/pgSQL now (planned once per session, ~10 µs a call); the
-- expressions without a subquery and the incident's trail are SQL without SET, which PostgreSQL
-- inlines into the page's own plan. They run with the caller's rights, as before, and name every
-- object with its schema.
------------------------------------------------------------------------------
create or replace function app_public.audit_log_seq(e app_public.audit_log) returns bigint
language plpgsql stable as $$
begin
  return (select l.seq from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id);
end;
$$;

create or replace function app_public.audit_log_sealed_at(e app_public.audit_log) returns timestamptz
language plpgsql stable as $$
begin
  return (select l.sealed_at from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id);
end;
$$;

create or replace function app_public.audit_log_leaf_hash(e app_public.audit_log) returns text
language plpgsql stable as $$
begin
  return (select pg_catalog.encode(l.leaf_hash, 'hex') from app_hidden.audit_leaves l
          where l.tenant_id = e.tenant_id and l.entry_id = e.id);
end;
$$;

create or replace function app_public.audit_log_api_token_name(e app_public.audit_log) returns text
language plpgsql stable as $$
begin
  if e.api_token_id is null then
    return null;
  end if;
  return (select t.resource_label from app_public.audit_log t
          where t.tenant_id = e.tenant_id and t.action in ('api_token.created', 'api_token.updated')
            and t.resource_id = e.api_token_id and t.id <= e.id
          order by t.id desc limit 1);
end;
$$;

create or replace function app_public.audit_checkpoints_root_hash_hex(c app_public.audit_checkpoints) returns text
language sql immutable as $$
  select pg_catalog.encode(c.root_hash, 'hex')
$$;

create or replace function app_public.audit_checkpoints_root_hash(c app_public.audit_checkpoints) returns text
language sql immutable as $$
  select pg_catalog.encode(c.root_hash, 'hex')
$$;

create or replace function app_public.audit_checkpoints_key_id(c app_public.audit_checkpoints) returns text
language sql immutable as $$
  select pg_catalog.encode(pg_catalog.substr(pg_catalog.decode(
    (pg_catalog.regexp_match(c.note, '\n\u2014 \S+ ([A-Za-z0-9+/]+=*)\s*$'))[1], 'base64'), 1, 4), 'hex')
$$;

create or replace function app_public.incidents_audit_trail(i app_public.incidents) returns setof app_public.audit_log
language sql stable as $$
  select e.* from app_public.audit_log e
  where e.tenant_id = i.tenant_id and e.incident_id = i.id
  order by e.id desc
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
