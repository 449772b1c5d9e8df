--! Previous: sha1:d345023a22a906ae87663482b8f3d26f442c3c25
--! Hash: sha1:6d82c4853d191ece42e8a4de217e98788a81a6d9
--! Message: hash-once

-- 000023 Hash the token once: a credential lookup hashes the token once per statement.
--
-- The functions that find a session, an API token or an invitation by its token compared the
-- stored hash with `sha256(convert_to(token, 'UTF8'))`. Where PostgreSQL reads the table rather
-- than its index (it does when the table is small: a few dozen sessions or tokens), that hash
-- was computed again for every row read: app_public.current_user_id() took ~90 µs a call with
-- 42 sessions, and the policies, the capture trigger and the GraphQL request check call it and
-- current_api_token() several times per request. The hash is now a scalar subquery, computed once
-- per statement (~30 µs a call). What each function finds does not change.
-- app_private.current_membership found the tenant a request names with `t.slug = v_tenant or
-- m.tenant_id::text = v_tenant`, which no index serves: it read every tenant (~75 µs). It now
-- looks the slug up by its unique key and the id by the membership key.
-- Runs as the session's login: these functions are on the audit path (see CONVENTIONS.md).

set local role none;

create or replace function app_public.current_user_id()
 RETURNS uuid
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
declare
  v_session text := nullif(current_setting('attest.session_token', true), '');
  v_user uuid;
begin
  if v_session is not null then
    select s.user_id into v_user from app_private.sessions s
    where s.token_hash = (select sha256(convert_to(v_session, 'UTF8'))) and s.revoked_at is null and s.expires_at > now();
    if v_user is not null then
      return v_user;
    end if;
  end if;
  if nullif(current_setting('attest.api_token', true), '') is not null then
    return (app_hidden.current_api_token()).user_id;
  end if;
  return null;
end;
$function$;

create or replace function app_hidden.current_api_token()
 RETURNS app_public.api_tokens
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
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
  where s.token_hash = (select sha256(convert_to(v_token, 'UTF8')))
    and t.revoked_at is null
    and (t.expires_at is null or t.expires_at > now());
  if not found then
    return null;
  end if;
  return r;
end;
$function$;

create or replace function app_public.current_session_id()
 RETURNS uuid
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
declare
  v_token text := nullif(current_setting('attest.session_token', true), '');
begin
  if v_token is null then
    return null;
  end if;
  return (select s.id from app_private.sessions s
          where s.token_hash = (select sha256(convert_to(v_token, 'UTF8'))) and s.revoked_at is null and s.expires_at > now());
end;
$function$;

create or replace function app_private.touch_session(token text)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
  update app_private.sessions s
  set last_active_at = now(), expires_at = greatest(s.expires_at, now() + interval '14 days')
  where s.token_hash = (select sha256(convert_to(token, 'UTF8'))) and s.revoked_at is null and s.expires_at > now()
    and s.last_active_at < now() - interval '1 minute'
$function$;

create or replace function app_private.touch_api_token(token text)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
  update app_public.api_tokens t set last_used_at = now()
  from app_private.api_token_secrets s
  where s.token_hash = (select sha256(convert_to(token, 'UTF8'))) and t.tenant_id = s.tenant_id and t.id = s.token_id
    and (t.last_used_at is null or t.last_used_at < now() - interval '1 minute')
$function$;

create or replace function app_private.sign_out(token text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
declare
  v_session app_private.sessions;
begin
  select * into v_session from app_private.sessions s
  where s.token_hash = (select sha256(convert_to(token, 'UTF8'))) and s.revoked_at is null;
  if v_session.id is not null then
    -- Recorded while the session is still live, so the entry names the user.
    perform set_config('attest.session_token', token, true);
    perform app_private.record_session_event(v_session.user_id, (select email from app_public.users where id = v_session.user_id), 'signed_out');
    update app_private.sessions set revoked_at = now() where id = v_session.id;
  end if;
end;
$function$;

create or replace function app_public.invitation_by_token(token text)
 RETURNS app_public.invitations
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
  select i.* from app_private.invitation_secrets s
  join app_public.invitations i on i.tenant_id = s.tenant_id and i.id = s.invitation_id
  where s.token_hash = (select sha256(convert_to(invitation_by_token.token, 'UTF8')))
    and i.email = app_hidden.current_session_email()
$function$;

create or replace function app_hidden.answerable_invitation(p_token text, p_id uuid)
 RETURNS app_public.invitations
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
declare
  v_email text := app_hidden.current_session_email();
  v_row app_public.invitations;
begin
  if v_email is null then
    raise exception 'Sign in to answer an invitation (API tokens cannot)' using errcode = '42501';
  end if;
  if (p_token is null) = (p_id is null) then
    raise exception 'Give either the invitation''s token or its id' using errcode = '22000';
  end if;
  select i.* into v_row from app_public.invitations i
  where i.email = v_email
    and (i.id = p_id
         or exists (select 1 from app_private.invitation_secrets s
                    where s.token_hash = (select sha256(convert_to(p_token, 'UTF8'))) and s.tenant_id = i.tenant_id and s.invitation_id = i.id))
  for update;
  if v_row.id is null then
    raise exception 'There is no invitation for % with that link: it may be for another email address', v_email using errcode = 'P0002';
  end if;
  if v_row.state <> 'pending' then
    raise exception 'This invitation was already %', v_row.state using errcode = 'P0002';
  end if;
  if v_row.expires_at <= now() then
    raise exception 'This invitation expired on % UTC: ask for a new one', to_char(v_row.expires_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI')
      using errcode = 'P0002';
  end if;
  return v_row;
end;
$function$;

create or replace function app_private.current_membership(OUT tenant_id uuid, OUT role text, OUT features text[])
 RETURNS record
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public'
AS $function$
declare
  v_user uuid := app_public.current_user_id();
  v_tenant text := nullif(current_setting('attest.tenant', true), '');
  v_token_tenant uuid;
  -- The tenant named by its id (canonical form, as `tenant_id::text` prints it), if it is one.
  v_tenant_uuid uuid := case when v_tenant ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                             then v_tenant::uuid end;
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

set local role :DATABASE_OWNER;
