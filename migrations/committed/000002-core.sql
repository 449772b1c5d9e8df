--! Previous: sha1:aa22175e7b56ff566f20966f414897a4479390b8
--! Hash: sha1:cef9999403f6a96b8bdc4935c9da77f40d4ce55f
--! Message: core

-- 000002 Sign-in, API tokens, uploads and the GraphQL surface.
-- The server verifies passwords (argon2) but the database keeps sessions, throttling state and
-- tokens, and records sign-ins in every tenant of the user. Functions in app_public are
-- exposed by PostGraphile; app_hidden holds what the server calls in a user's transaction.

------------------------------------------------------------------------------
-- Who am I
------------------------------------------------------------------------------
create function app_public.current_user() returns app_public.users
language sql stable set search_path = pg_catalog, public as $$
  select u.* from app_public.users u where u.id = app_public.current_user_id()
$$;
comment on function app_public.current_user() is 'The signed-in user, or null.';

create function app_public.current_tenant() returns app_public.tenants
language sql stable set search_path = pg_catalog, public as $$
  select t.* from app_public.tenants t where t.id = app_public.current_tenant_id()
$$;
comment on function app_public.current_tenant() is 'The tenant this request acts in, or null.';

create function app_public.tenants_features(t app_public.tenants) returns text[]
language sql stable security definer set search_path = pg_catalog, public as $$
  select p.features from app_public.plans p where p.id = t.plan_id
$$;
comment on function app_public.tenants_features(app_public.tenants) is 'The features of the tenant''s plan.';

create function app_public.tenants_my_role(t app_public.tenants) returns text
language sql stable security definer set search_path = pg_catalog, public as $$
  select m.role from app_public.memberships m where m.tenant_id = t.id and m.user_id = app_public.current_user_id()
$$;
comment on function app_public.tenants_my_role(app_public.tenants) is 'The signed-in user''s role in this tenant.';

grant execute on function app_public.current_user(), app_public.current_tenant(),
  app_public.tenants_features(app_public.tenants), app_public.tenants_my_role(app_public.tenants)
  to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- Sign-in: lookups, throttling, sessions, and their audit trail
------------------------------------------------------------------------------
create table app_private.sign_in_failures (
  id bigint generated always as identity primary key,
  email text not null,
  ip inet,
  attempted_at timestamptz not null default now()
);
create index on app_private.sign_in_failures (email, attempted_at);
create index on app_private.sign_in_failures (ip, attempted_at);
comment on table app_private.sign_in_failures is 'Failed sign-ins, for throttling (by email and by IP).';

-- One row per sign-in event per tenant of the user: the audit trigger turns each into an entry.
create table app_public.session_events (
  tenant_id uuid not null references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  user_id uuid references app_public.users,
  email text not null,
  kind text not null check (kind in ('signed_in', 'signed_out', 'sign_in_failed')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
create index on app_public.session_events (tenant_id, created_at desc);
comment on table app_public.session_events is
  E'@behavior -insert -update -delete\nSign-ins, sign-outs and failed sign-ins of a tenant''s members (recorded as session.* audit entries).';
create trigger _100_timestamps before insert or update on app_public.session_events
  for each row execute function app_private.tg__timestamps();
create trigger _500_audit after insert or update or delete on app_public.session_events
  for each row execute function app_private.tg__audit('session');
alter table app_public.session_events enable row level security;
create policy select_managers on app_public.session_events for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));
grant select on app_public.session_events to :DATABASE_VISITOR;

create or replace function app_private.audit_resource_of(schema_name text, table_name text) returns text
language sql immutable set search_path = pg_catalog as $$
  select case schema_name || '.' || table_name
    when 'app_public.tenants' then 'tenant'
    when 'app_public.memberships' then 'membership'
    when 'app_public.api_tokens' then 'api_token'
    when 'app_public.incidents' then 'incident'
    when 'app_public.evidence' then 'evidence'
    when 'app_public.nis2_milestones' then 'milestone'
    when 'app_public.exports' then 'export'
    when 'app_public.webhooks' then 'webhook'
    when 'app_public.session_events' then 'session'
  end
$$;

create or replace function app_private.audit_action(resource text, op text, old_row jsonb, new_row jsonb) returns text
language sql immutable set search_path = pg_catalog as $$
  select case
    when resource = 'session' then case when op = 'INSERT' then 'session.' || (new_row->>'kind') end
    when op = 'INSERT' then case resource
      when 'evidence' then 'evidence.uploaded'
      when 'export' then 'export.requested'
      else resource || '.created' end
    when op = 'DELETE' then resource || '.deleted'
    -- updates
    when resource = 'incident' and old_row->>'deleted_at' is null and new_row->>'deleted_at' is not null then 'incident.deleted'
    when resource = 'incident' and old_row->>'deleted_at' is not null and new_row->>'deleted_at' is null then 'incident.restored'
    when resource = 'milestone' and old_row->>'completed_at' is null and new_row->>'completed_at' is not null then 'milestone.completed'
    when resource = 'milestone' and old_row->>'completed_at' is not null and new_row->>'completed_at' is null then 'milestone.reopened'
    when resource = 'api_token' and old_row->>'revoked_at' is null and new_row->>'revoked_at' is not null then 'api_token.revoked'
    when resource = 'webhook' and (old_row->>'active')::boolean and not (new_row->>'active')::boolean then 'webhook.disabled'
    when resource = 'webhook' and not (old_row->>'active')::boolean and (new_row->>'active')::boolean then 'webhook.enabled'
    when resource = 'export' then case
      when new_row->>'status' = old_row->>'status' then
        case when (new_row->>'download_count')::int > (old_row->>'download_count')::int then 'export.downloaded' end
      when new_row->>'status' = 'ready' then 'export.completed'
      when new_row->>'status' = 'failed' then 'export.failed'
      end
    else resource || '.updated'
  end
$$;

-- The label of a session event is the email; tg__audit reads it through this hook.
create or replace function app_private.audit_ignored_columns(resource text) returns text[]
language sql immutable set search_path = pg_catalog as $$
  select array['tenant_id', 'id', 'updated_at'] || case resource
    when 'incident' then array['deleted_by']
    when 'milestone' then array['completed_by']
    when 'export' then array['progress', 'started_at', 'last_downloaded_at']
    when 'api_token' then array['last_used_at']
    when 'session' then array['created_at']
    else array[]::text[]
  end
$$;

/**
 * Everything the server needs to check a password, and the failed attempts of the last 15
 * minutes for this email and from this IP (to slow guessing down).
 */
create function app_private.sign_in_lookup(email text, ip text)
returns table (user_id uuid, password_hash text, email_failures int, ip_failures int)
language sql stable security definer set search_path = pg_catalog, public as $$
  select u.id, s.password_hash,
         (select count(*)::int from app_private.sign_in_failures f
          where f.attempted_at > now() - interval '15 minutes' and f.email = lower(sign_in_lookup.email)),
         (select count(*)::int from app_private.sign_in_failures f
          where f.attempted_at > now() - interval '15 minutes' and f.ip is not null and host(f.ip) = sign_in_lookup.ip)
  from (select 1) one
  left join app_public.users u on u.email = lower(sign_in_lookup.email)
  left join app_private.user_secrets s on s.user_id = u.id
$$;

create function app_private.record_session_event(p_user_id uuid, p_email text, p_kind text) returns void
language sql volatile security definer set search_path = pg_catalog, public as $$
  insert into app_public.session_events (tenant_id, user_id, email, kind)
  select m.tenant_id, p_user_id, p_email, p_kind
  from app_public.memberships m where m.user_id = p_user_id
$$;

create function app_private.sign_in_failed(email text, ip text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_user uuid := (select u.id from app_public.users u where u.email = lower(sign_in_failed.email));
begin
  insert into app_private.sign_in_failures (email, ip)
  values (lower(sign_in_failed.email), case when ip ~ '^[0-9a-fA-F.:]+$' then ip::inet end);
  if v_user is not null then
    perform app_private.record_session_event(v_user, lower(sign_in_failed.email), 'sign_in_failed');
  end if;
end;
$$;

/** Starts a session for a user whose password the server verified; returns the cookie secret. */
create function app_private.sign_in_succeeded(p_user_id uuid) returns text
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_token text := encode(gen_random_bytes(32), 'base64');
begin
  v_token := translate(rtrim(v_token, '='), '+/', '-_');
  insert into app_private.sessions (token_hash, user_id) values (sha256(convert_to(v_token, 'UTF8')), p_user_id);
  perform set_config('attest.session_token', v_token, true); -- the sign-in is the user's own act
  perform app_private.record_session_event(p_user_id, (select email from app_public.users where id = p_user_id), 'signed_in');
  return v_token;
end;
$$;

create function app_private.sign_out(token text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_session app_private.sessions;
begin
  select * into v_session from app_private.sessions s
  where s.token_hash = sha256(convert_to(token, 'UTF8')) and s.revoked_at is null;
  if v_session.id is not null then
    -- Recorded while the session is still live, so the entry names the user.
    perform set_config('attest.session_token', token, true);
    perform app_private.record_session_event(v_session.user_id, (select email from app_public.users where id = v_session.user_id), 'signed_out');
    update app_private.sessions set revoked_at = now() where id = v_session.id;
  end if;
end;
$$;

/** Marks a session as used (at most once a minute) and extends its expiry. */
create function app_private.touch_session(token text) returns void
language sql volatile security definer set search_path = pg_catalog, public as $$
  update app_private.sessions s
  set last_active_at = now(), expires_at = greatest(s.expires_at, now() + interval '14 days')
  where s.token_hash = sha256(convert_to(token, 'UTF8')) and s.revoked_at is null and s.expires_at > now()
    and s.last_active_at < now() - interval '1 minute'
$$;

grant usage on schema app_private to :DATABASE_AUTHENTICATOR;
grant execute on function app_private.sign_in_lookup(text, text), app_private.sign_in_failed(text, text),
  app_private.sign_in_succeeded(uuid), app_private.sign_out(text), app_private.touch_session(text)
  to :DATABASE_AUTHENTICATOR;

------------------------------------------------------------------------------
-- API tokens: created by an owner/admin for themselves, shown once, stored hashed
------------------------------------------------------------------------------
create type app_public.created_api_token as (
  id uuid,
  name text,
  token_prefix text,
  expires_at timestamptz,
  token text
);
comment on type app_public.created_api_token is 'A new API token. `token` is shown only this once; send it as `Authorization: Bearer <token>`.';

create function app_public.create_api_token(name text, expires_at timestamptz default null)
returns app_public.created_api_token
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid := app_public.current_tenant_id();
  v_token text := 'att_' || encode(gen_random_bytes(24), 'hex');
  v_row app_public.api_tokens;
begin
  if v_tenant is null or app_public.current_tenant_role() not in ('owner', 'admin') then
    raise exception 'Only an owner or admin of this tenant can create API tokens' using errcode = '42501';
  end if;
  if expires_at is not null and expires_at <= now() then
    raise exception 'The expiry must be in the future' using errcode = '22023';
  end if;
  insert into app_public.api_tokens (tenant_id, user_id, name, token_prefix, expires_at)
  values (v_tenant, app_public.current_user_id(), create_api_token.name, left(v_token, 12), create_api_token.expires_at)
  returning * into v_row;
  insert into app_private.api_token_secrets (tenant_id, token_id, token_hash)
  values (v_tenant, v_row.id, sha256(convert_to(v_token, 'UTF8')));
  return (v_row.id, v_row.name, v_row.token_prefix, v_row.expires_at, v_token)::app_public.created_api_token;
end;
$$;
comment on function app_public.create_api_token(text, timestamptz) is
  'Creates an API token for the signed-in owner/admin in the current tenant; it acts with their role there.';

create function app_public.revoke_api_token(id uuid) returns app_public.api_tokens
language plpgsql volatile set search_path = pg_catalog, public as $$
declare
  v_row app_public.api_tokens;
begin
  update app_public.api_tokens t set revoked_at = now()
  where t.id = revoke_api_token.id and t.revoked_at is null
  returning * into v_row;
  if v_row.id is null then
    raise exception 'No active API token with that id in this tenant' using errcode = 'P0002';
  end if;
  return v_row;
end;
$$;
comment on function app_public.revoke_api_token(uuid) is 'Revokes an API token of the current tenant (owner/admin).';

-- Mark tokens as used, without an audit entry (last_used_at is ignored by the audit trigger).
create function app_private.touch_api_token(token text) returns void
language sql volatile security definer set search_path = pg_catalog, public as $$
  update app_public.api_tokens t set last_used_at = now()
  from app_private.api_token_secrets s
  where s.token_hash = sha256(convert_to(token, 'UTF8')) and t.tenant_id = s.tenant_id and t.id = s.token_id
    and (t.last_used_at is null or t.last_used_at < now() - interval '1 minute')
$$;
grant execute on function app_private.touch_api_token(text) to :DATABASE_AUTHENTICATOR;

grant execute on function app_public.create_api_token(text, timestamptz), app_public.revoke_api_token(uuid)
  to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- Workspace mutations that are more than a row write
------------------------------------------------------------------------------
create function app_public.delete_incident(id uuid) returns app_public.incidents
language plpgsql volatile set search_path = pg_catalog, public as $$
declare
  v_row app_public.incidents;
begin
  update app_public.incidents i set deleted_at = now()
  where i.id = delete_incident.id and i.deleted_at is null
  returning * into v_row;
  if v_row.id is null then
    raise exception 'No incident with that id that you may delete' using errcode = 'P0002';
  end if;
  return v_row;
end;
$$;
comment on function app_public.delete_incident(uuid) is 'Soft-deletes an incident (recorded as incident.deleted).';

create function app_public.restore_incident(id uuid) returns app_public.incidents
language plpgsql volatile set search_path = pg_catalog, public as $$
declare
  v_row app_public.incidents;
begin
  update app_public.incidents i set deleted_at = null
  where i.id = restore_incident.id and i.deleted_at is not null
  returning * into v_row;
  if v_row.id is null then
    raise exception 'No deleted incident with that id that you may restore' using errcode = 'P0002';
  end if;
  return v_row;
end;
$$;
comment on function app_public.restore_incident(uuid) is 'Restores a soft-deleted incident (recorded as incident.restored).';

create function app_public.complete_milestone(id uuid, notes text default null) returns app_public.nis2_milestones
language plpgsql volatile set search_path = pg_catalog, public as $$
declare
  v_row app_public.nis2_milestones;
begin
  update app_public.nis2_milestones m set completed_at = now(), notes = coalesce(complete_milestone.notes, m.notes)
  where m.id = complete_milestone.id and m.completed_at is null
  returning * into v_row;
  if v_row.id is null then
    raise exception 'No open milestone with that id that you may complete' using errcode = 'P0002';
  end if;
  return v_row;
end;
$$;
comment on function app_public.complete_milestone(uuid, text) is 'Marks a NIS2 milestone as done, with optional notes (recorded as milestone.completed).';

create type app_public.created_webhook as (
  id uuid,
  url text,
  description text,
  actions text[],
  active boolean,
  secret text
);
comment on type app_public.created_webhook is 'A new webhook. `secret` (for verifying signatures) is shown only this once.';

create function app_public.create_webhook(url text, description text default '', actions text[] default '{}')
returns app_public.created_webhook
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid := app_public.current_tenant_id();
  v_row app_public.webhooks;
begin
  if v_tenant is null or app_public.current_tenant_role() not in ('owner', 'admin') then
    raise exception 'Only an owner or admin of this tenant can add webhooks' using errcode = '42501';
  end if;
  if not app_public.tenant_has_feature(v_tenant, 'webhooks') then
    raise exception 'Webhooks are not in your plan' using errcode = 'ATPLN';
  end if;
  insert into app_public.webhooks (tenant_id, url, description, actions)
  values (v_tenant, create_webhook.url, coalesce(create_webhook.description, ''), coalesce(create_webhook.actions, '{}'))
  returning * into v_row;
  return (v_row.id, v_row.url, v_row.description, v_row.actions, v_row.active,
          (select s.secret from app_private.webhook_secrets s where s.tenant_id = v_tenant and s.webhook_id = v_row.id)
         )::app_public.created_webhook;
end;
$$;
comment on function app_public.create_webhook(text, text, text[]) is 'Adds a webhook to the current tenant (owner/admin).';

create function app_public.add_member(email text, role text default 'member') returns app_public.memberships
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_user uuid := (select u.id from app_public.users u where u.email = lower(trim(add_member.email)));
  v_row app_public.memberships;
begin
  if app_public.current_tenant_role() is distinct from 'owner' then
    raise exception 'Only an owner of this tenant can add members' using errcode = '42501';
  end if;
  if v_user is null then
    raise exception 'No Attest user has the email %', lower(trim(add_member.email)) using errcode = 'P0002';
  end if;
  insert into app_public.memberships (tenant_id, user_id, role)
  values (app_public.current_tenant_id(), v_user, add_member.role)
  on conflict (tenant_id, user_id) do nothing
  returning * into v_row;
  if v_row.user_id is null then
    raise exception '% is already a member of this tenant', lower(trim(add_member.email)) using errcode = '23505';
  end if;
  return v_row;
end;
$$;
comment on function app_public.add_member(text, text) is 'Adds an existing user to the current tenant with a role (owner only).';

grant execute on function app_public.delete_incident(uuid), app_public.restore_incident(uuid),
  app_public.complete_milestone(uuid, text), app_public.create_webhook(text, text, text[]),
  app_public.add_member(text, text)
  to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- Evidence bytes: written and read in the user's own transaction, for the current tenant only
------------------------------------------------------------------------------
create function app_hidden.begin_upload() returns uuid
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_id uuid;
begin
  if app_public.current_tenant_id() is null
     or app_public.current_tenant_role() not in ('owner', 'admin', 'member') then
    raise exception 'You may not upload evidence in this tenant' using errcode = '42501';
  end if;
  insert into app_private.blobs (tenant_id, size_bytes, sha256)
  values (app_public.current_tenant_id(), 0, sha256(''))
  returning id into v_id;
  return v_id;
end;
$$;

create function app_hidden.append_upload(blob_id uuid, seq int, data bytea) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  insert into app_private.blob_chunks (tenant_id, blob_id, seq, data)
  select b.tenant_id, b.id, append_upload.seq, append_upload.data
  from app_private.blobs b
  where b.tenant_id = app_public.current_tenant_id() and b.id = append_upload.blob_id and b.finished_at is null;
  if not found then
    raise exception 'No open upload with that id' using errcode = 'P0002';
  end if;
end;
$$;

create function app_hidden.finish_upload(blob_id uuid, size_bytes bigint, sha256 bytea) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  update app_private.blobs b
  set size_bytes = finish_upload.size_bytes, sha256 = finish_upload.sha256, finished_at = now()
  where b.tenant_id = app_public.current_tenant_id() and b.id = finish_upload.blob_id and b.finished_at is null
    and finish_upload.size_bytes = coalesce((select sum(octet_length(c.data)) from app_private.blob_chunks c
                                             where c.tenant_id = b.tenant_id and c.blob_id = b.id), 0);
  if not found then
    raise exception 'The upload is incomplete or unknown' using errcode = 'P0002';
  end if;
end;
$$;

/** A chunk of an evidence file the current user may see (RLS on evidence decides). */
create function app_hidden.evidence_chunk(evidence_id uuid, seq int) returns bytea
language sql stable security definer set search_path = pg_catalog, public as $$
  select c.data
  from app_public.evidence e
  join app_private.blob_chunks c on c.tenant_id = e.tenant_id and c.blob_id = e.blob_id
  where e.tenant_id = app_public.current_tenant_id() and e.id = evidence_chunk.evidence_id and c.seq = evidence_chunk.seq
$$;

grant execute on function app_hidden.begin_upload(), app_hidden.append_upload(uuid, int, bytea),
  app_hidden.finish_upload(uuid, bigint, bytea), app_hidden.evidence_chunk(uuid, int)
  to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- GraphQL shape (smart tags)
------------------------------------------------------------------------------
comment on table app_public.incidents is
  E'@unique id\nA security incident. Deleting sets deleted_at (soft delete).';
comment on table app_public.evidence is
  E'@unique id\n@behavior -insert\nA file attached to an incident; size and SHA-256 are those of the stored bytes. Upload and download over HTTP.';
comment on table app_public.nis2_milestones is
  E'@unique id\n@behavior -update\nNIS2 reporting deadlines of an incident: Early Warning (24 h), Full Notification (72 h), Final Report (30 days) after it was created.';
comment on table app_public.exports is E'@unique id\nAn evidence pack request for an incident and its build status.';
comment on table app_public.webhooks is
  E'@unique id\n@behavior -insert\nA tenant endpoint that receives audit events. actions: exact names or prefixes like incident.*; empty means all.';
comment on table app_public.api_tokens is
  E'@unique id\n@behavior -update\nAPI tokens for integrators: bound to one tenant and one member, acting with that member''s role.';
comment on column app_public.incidents.deleted_at is E'@behavior -insert -update\nWhen the incident was soft-deleted.';

------------------------------------------------------------------------------
-- The audit log over GraphQL: read-only, index-backed filters, a clear error without the plan
------------------------------------------------------------------------------
create extension if not exists btree_gin with schema public;
create index audit_log_tenant_label_trgm_idx on app_public.audit_log using gin (tenant_id, resource_label gin_trgm_ops);
create index audit_log_tenant_actor_trgm_idx on app_public.audit_log using gin (tenant_id, actor_label gin_trgm_ops);

/**
 * Whether the current user may read the current tenant's audit log. Owners and admins of a
 * tenant whose plan lacks auditLog get an error instead of an empty log that looks like no
 * activity; everyone else simply sees nothing.
 */
create function app_hidden.audit_log_readable() returns boolean
language plpgsql stable security definer set search_path = pg_catalog, public as $$
begin
  if app_public.current_tenant_role() not in ('owner', 'admin') or app_public.current_tenant_role() is null then
    return false;
  end if;
  if not app_public.tenant_has_feature(app_public.current_tenant_id(), 'auditLog') then
    raise exception 'The audit log is not in your plan. Upgrade to a plan with the auditLog feature to see it.'
      using errcode = 'ATPLN';
  end if;
  return true;
end;
$$;
comment on function app_hidden.audit_log_readable() is
  'True for an owner/admin of a tenant with auditLog; raises ATPLN for an owner/admin without it; false otherwise.';
grant execute on function app_hidden.audit_log_readable() to :DATABASE_VISITOR;

drop policy select_managers_with_feature on app_public.audit_log;
create policy select_managers_with_feature on app_public.audit_log for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_hidden.audit_log_readable()));

comment on table app_public.audit_log is
  E'@behavior -insert -update -delete -filterBy\nAppend-only, per-tenant hash-chained record of every create, update and delete in a tenant. Written only by triggers.';
comment on column app_public.audit_log.action is E'@behavior +filterBy\nWhat was done, as <resource>.<verb>, e.g. incident.created.';
comment on column app_public.audit_log.actor_label is
  E'@behavior +filterBy\nWho acted: the user''s email at the time, or "system" when no user was signed in.';
comment on column app_public.audit_log.incident_id is E'@behavior +filterBy\nThe incident this entry belongs to, if any.';

-- Helpers that the API does not need to show (currentUser / currentTenant cover them).
comment on function app_public.current_session_id() is E'@behavior -*\nThe live session named by the attest.session_token setting, if any.';
comment on function app_public.current_user_id() is E'@behavior -*\nThe signed-in user (by session or API token), or null.';
comment on function app_public.current_tenant_id() is
  E'@behavior -*\nThe tenant this request acts in: the API token''s; else the attest.tenant setting (id or slug) when the user is a member of it; else the user''s only tenant.';
comment on function app_public.tenant_has_feature(uuid, text) is E'@behavior -*\nWhether the tenant''s plan includes the feature.';
comment on table app_public.memberships is
  E'@behavior -insert\nWho belongs to a tenant, with which tenant role: owner, admin, member or viewer. Add members with addMember.';

-- Relation names for the composite (tenant_id, …) foreign keys.
comment on constraint evidence_tenant_id_incident_id_fkey on app_public.evidence is E'@fieldName incident\n@foreignFieldName evidence';
comment on constraint nis2_milestones_tenant_id_incident_id_fkey on app_public.nis2_milestones is E'@fieldName incident\n@foreignFieldName milestones';
comment on constraint exports_tenant_id_incident_id_fkey on app_public.exports is E'@fieldName incident\n@foreignFieldName exports';
comment on constraint api_tokens_tenant_id_user_id_fkey on app_public.api_tokens is E'@fieldName membership\n@foreignFieldName apiTokens';

create function app_public.incidents_audit_trail(i app_public.incidents) returns setof app_public.audit_log
language sql stable set search_path = pg_catalog, public as $$
  select e.* from app_public.audit_log e
  where e.tenant_id = i.tenant_id and e.incident_id = i.id
  order by e.seq desc
$$;
comment on function app_public.incidents_audit_trail(app_public.incidents) is
  'The audit entries of this incident, its evidence, milestones and exports, newest first (owner/admin with auditLog).';
grant execute on function app_public.incidents_audit_trail(app_public.incidents) to :DATABASE_VISITOR;

-- HTTP API calls made with an API token (uploads, downloads) are their own surface.
alter table app_public.audit_log drop constraint audit_log_surface_check;
alter table app_public.audit_log add constraint audit_log_surface_check
  check (surface in ('web', 'graphql', 'api', 'worker', 'sql', 'seed'));
comment on column app_public.audit_log.surface is 'Where the change came from: web, graphql, api (HTTP API with a token), worker, sql or seed.';
