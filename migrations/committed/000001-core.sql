--! Previous: -
--! Hash: sha1:aa22175e7b56ff566f20966f414897a4479390b8
--! Message: core

-- 000001 Attest core: tenants, users, the workspace tables, and the audit log that
-- PostgreSQL itself records, scopes, seals and refuses to rewrite.
-- Conventions: migrations/CONVENTIONS.md. Roles come in as placeholders
-- (:DATABASE_OWNER runs this file; :DATABASE_VISITOR is the logged-in user role;
-- :DATABASE_AUTHENTICATOR logs in for the server; :DATABASE_REPORTING reads `reporting`).

------------------------------------------------------------------------------
-- Extensions and defaults
------------------------------------------------------------------------------
create extension if not exists pg_trgm with schema public;
create extension if not exists pgcrypto with schema public;

-- Nothing is executable by PUBLIC unless granted here.
alter default privileges revoke execute on functions from public;
revoke all on schema public from public;
grant usage on schema public to :DATABASE_VISITOR, :DATABASE_REPORTING;

create schema app_public;
create schema app_hidden;
create schema app_private;
create schema reporting;
comment on schema app_public is 'Exposed to the API (PostGraphile). Every table has row-level security.';
comment on schema app_hidden is 'Granted to the user role but not exposed to the API.';
comment on schema app_private is 'Secrets and machinery: reachable only through SECURITY DEFINER functions.';
comment on schema reporting is 'Read-only views across tenants for DBAs; granted only to the reporting role.';

grant usage on schema app_public, app_hidden to :DATABASE_VISITOR;
grant usage on schema reporting to :DATABASE_REPORTING;

------------------------------------------------------------------------------
-- Plans, tenants, users, memberships
------------------------------------------------------------------------------
create table app_public.plans (
  id text primary key check (id ~ '^[a-z][a-z0-9_]*$'),
  name text not null,
  features text[] not null default '{}'
    check (features <@ array['auditLog', 'nis2Timeline', 'evidencePacks', 'webhooks'])
);
comment on table app_public.plans is 'A plan grants features: auditLog, nis2Timeline, evidencePacks, webhooks.';
insert into app_public.plans (id, name, features) values
  ('free', 'Free', '{}'),
  ('basic', 'Basic', array['nis2Timeline']),
  ('business', 'Business', array['auditLog', 'nis2Timeline', 'evidencePacks', 'webhooks']);

create table app_public.tenants (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  name text not null check (char_length(name) between 1 and 200),
  plan_id text not null references app_public.plans,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index on app_public.tenants (plan_id);
comment on table app_public.tenants is 'A workspace. Every tenant-owned row carries its tenant_id first in its keys.';

create table app_public.users (
  id uuid primary key default gen_random_uuid(),
  email text not null unique check (email = lower(email) and email ~ '^[^@\s]+@[^@\s]+$'),
  name text not null default '' check (char_length(name) <= 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table app_public.users is 'A person who can sign in. Users are global; memberships put them in tenants.';

create table app_private.user_secrets (
  user_id uuid primary key references app_public.users on delete cascade,
  password_hash text not null,
  updated_at timestamptz not null default now()
);
comment on table app_private.user_secrets is 'Password hashes (argon2id, computed by the server).';

create table app_public.memberships (
  tenant_id uuid not null references app_public.tenants,
  user_id uuid not null references app_public.users,
  role text not null default 'member' check (role in ('owner', 'admin', 'member', 'viewer')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, user_id)
);
create index on app_public.memberships (user_id);
comment on table app_public.memberships is 'Who belongs to a tenant, with which tenant role: owner, admin, member or viewer.';

create table app_private.sessions (
  id uuid primary key default gen_random_uuid(),
  token_hash bytea not null unique,
  user_id uuid not null references app_public.users on delete cascade,
  created_at timestamptz not null default now(),
  last_active_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '14 days',
  revoked_at timestamptz
);
create index on app_private.sessions (user_id);
comment on table app_private.sessions is 'Sign-in sessions. The cookie holds a secret; only its SHA-256 is stored.';

create table app_public.api_tokens (
  tenant_id uuid not null references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  user_id uuid not null references app_public.users,
  name text not null check (char_length(name) between 1 and 100),
  token_prefix text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz,
  primary key (tenant_id, id),
  foreign key (tenant_id, user_id) references app_public.memberships (tenant_id, user_id) on delete cascade
);
comment on table app_public.api_tokens is 'API tokens for integrators: bound to one tenant and one member, acting with that member''s role.';

create table app_private.api_token_secrets (
  tenant_id uuid not null,
  token_id uuid not null,
  token_hash bytea not null unique,
  primary key (tenant_id, token_id),
  foreign key (tenant_id, token_id) references app_public.api_tokens on delete cascade
);

------------------------------------------------------------------------------
-- Who is acting, in which tenant: read from transaction-local settings
------------------------------------------------------------------------------
create function app_private.setting(name text) returns text
language sql stable set search_path = pg_catalog as $$
  select nullif(current_setting(name, true), '')
$$;
comment on function app_private.setting(text) is 'A custom setting, or null when unset or empty.';

create function app_public.current_session_id() returns uuid
language sql stable security definer set search_path = pg_catalog, public as $$
  select s.id
  from app_private.sessions s
  where s.token_hash = sha256(convert_to(app_private.setting('attest.session_token'), 'UTF8'))
    and s.revoked_at is null
    and s.expires_at > now()
$$;
comment on function app_public.current_session_id() is 'The live session named by the attest.session_token setting, if any.';

create function app_hidden.current_api_token() returns app_public.api_tokens
language sql stable security definer set search_path = pg_catalog, public as $$
  select t.*
  from app_private.api_token_secrets s
  join app_public.api_tokens t using (tenant_id)
  where s.token_hash = sha256(convert_to(app_private.setting('attest.api_token'), 'UTF8'))
    and t.id = s.token_id
    and t.revoked_at is null
    and (t.expires_at is null or t.expires_at > now())
$$;
comment on function app_hidden.current_api_token() is 'The live API token named by the attest.api_token setting, if any.';

create function app_public.current_user_id() returns uuid
language sql stable security definer set search_path = pg_catalog, public as $$
  select coalesce(
    (select s.user_id from app_private.sessions s where s.id = app_public.current_session_id()),
    (select (app_hidden.current_api_token()).user_id)
  )
$$;
comment on function app_public.current_user_id() is 'The signed-in user (by session or API token), or null.';

create function app_public.current_tenant_id() returns uuid
language sql stable security definer set search_path = pg_catalog, public as $$
  select m.tenant_id
  from app_public.memberships m
  join app_public.tenants t on t.id = m.tenant_id
  where m.user_id = app_public.current_user_id()
    and case
      when (app_hidden.current_api_token()).id is not null then
        m.tenant_id = (app_hidden.current_api_token()).tenant_id
      when app_private.setting('attest.tenant') is not null then
        m.tenant_id::text = app_private.setting('attest.tenant') or t.slug = app_private.setting('attest.tenant')
      else
        (select count(*) from app_public.memberships o where o.user_id = m.user_id) = 1
    end
$$;
comment on function app_public.current_tenant_id() is
  'The tenant this request acts in: the API token''s; else the attest.tenant setting (id or slug) when the user is a member of it; else the user''s only tenant.';

create function app_public.current_tenant_role() returns text
language sql stable security definer set search_path = pg_catalog, public as $$
  select m.role
  from app_public.memberships m
  where m.tenant_id = app_public.current_tenant_id()
    and m.user_id = app_public.current_user_id()
$$;
comment on function app_public.current_tenant_role() is 'The current user''s role in the current tenant: owner, admin, member, viewer, or null.';

create function app_hidden.current_user_tenant_ids() returns setof uuid
language sql stable security definer set search_path = pg_catalog, public as $$
  select m.tenant_id
  from app_public.memberships m
  where m.user_id = app_public.current_user_id()
    and (app_hidden.current_api_token()).id is null
$$;
comment on function app_hidden.current_user_tenant_ids() is
  'Every tenant the signed-in user belongs to (for the tenant switcher); none for an API token, which is bound to one tenant.';

create function app_public.tenant_has_feature(tenant_id uuid, feature text) returns boolean
language sql stable security definer set search_path = pg_catalog, public as $$
  select coalesce((
    select feature = any (p.features)
    from app_public.tenants t join app_public.plans p on p.id = t.plan_id
    where t.id = tenant_has_feature.tenant_id
  ), false)
$$;
comment on function app_public.tenant_has_feature(uuid, text) is 'Whether the tenant''s plan includes the feature.';

create function app_public.current_tenant_has_feature(feature text) returns boolean
language sql stable set search_path = pg_catalog, public as $$
  select app_public.tenant_has_feature(app_public.current_tenant_id(), feature)
$$;
comment on function app_public.current_tenant_has_feature(text) is 'Whether the current tenant''s plan includes the feature.';

-- Rows inserted through the API belong to the current tenant.
alter table app_public.memberships alter column tenant_id set default app_public.current_tenant_id();

grant execute on function
  app_public.current_session_id(),
  app_hidden.current_api_token(),
  app_public.current_user_id(),
  app_public.current_tenant_id(),
  app_public.current_tenant_role(),
  app_hidden.current_user_tenant_ids(),
  app_public.tenant_has_feature(uuid, text),
  app_public.current_tenant_has_feature(text)
to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- Workspace tables
------------------------------------------------------------------------------
create table app_public.incidents (
  tenant_id uuid not null default app_public.current_tenant_id() references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  title text not null check (char_length(title) between 1 and 255 and title ~ '\S'),
  severity text not null default 'medium' check (severity in ('low', 'medium', 'high', 'critical')),
  status text not null default 'open' check (status in ('open', 'in_progress', 'resolved', 'closed')),
  description text not null default '' check (char_length(description) <= 4000),
  root_cause text check (char_length(root_cause) <= 4000),
  lessons_learned text check (char_length(lessons_learned) <= 4000),
  nis2_enabled boolean not null default false,
  created_by uuid default app_public.current_user_id() references app_public.users,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  deleted_by uuid references app_public.users,
  primary key (tenant_id, id)
);
create index on app_public.incidents (tenant_id, created_at desc) where deleted_at is null;
comment on table app_public.incidents is 'A security incident. Deleting sets deleted_at (soft delete).';
comment on column app_public.incidents.nis2_enabled is 'Turning NIS2 reporting on creates the three NIS2 milestones.';

create table app_private.blobs (
  tenant_id uuid not null references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  size_bytes bigint not null check (size_bytes >= 0),
  sha256 bytea not null check (octet_length(sha256) = 32),
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  primary key (tenant_id, id)
);
create table app_private.blob_chunks (
  tenant_id uuid not null,
  blob_id uuid not null,
  seq int not null check (seq >= 0),
  data bytea not null,
  primary key (tenant_id, blob_id, seq),
  foreign key (tenant_id, blob_id) references app_private.blobs on delete cascade
);
comment on table app_private.blobs is 'File contents (evidence, packs) stored in the database in chunks, so a file and its row commit together.';

create table app_public.evidence (
  tenant_id uuid not null default app_public.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  incident_id uuid not null,
  filename text not null check (char_length(filename) between 1 and 255 and filename !~ '[/\\[:cntrl:]]' and filename not in ('.', '..')),
  content_type text not null default 'application/octet-stream' check (char_length(content_type) <= 255),
  size_bytes bigint not null,
  sha256 bytea not null,
  blob_id uuid not null,
  uploaded_by uuid default app_public.current_user_id() references app_public.users,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, incident_id) references app_public.incidents,
  foreign key (tenant_id, blob_id) references app_private.blobs
);
create index on app_public.evidence (tenant_id, incident_id);
create index on app_public.evidence (tenant_id, blob_id);
comment on table app_public.evidence is 'A file attached to an incident; size and SHA-256 are those of the stored bytes.';

create table app_public.nis2_milestones (
  tenant_id uuid not null,
  id uuid not null default gen_random_uuid(),
  incident_id uuid not null,
  kind text not null check (kind in ('early_warning', 'full_notification', 'final_report')),
  due_at timestamptz not null,
  completed_at timestamptz,
  completed_by uuid references app_public.users,
  notes text check (char_length(notes) <= 4000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, incident_id, kind),
  foreign key (tenant_id, incident_id) references app_public.incidents
);
create index on app_public.nis2_milestones (tenant_id, due_at) where completed_at is null;
comment on table app_public.nis2_milestones is
  'NIS2 reporting deadlines of an incident: Early Warning (24 h), Full Notification (72 h), Final Report (30 days) after it was created.';

create table app_public.exports (
  tenant_id uuid not null default app_public.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  incident_id uuid not null,
  requested_by uuid default app_public.current_user_id() references app_public.users,
  status text not null default 'queued' check (status in ('queued', 'building', 'ready', 'failed')),
  progress int not null default 0 check (progress between 0 and 100),
  error text,
  result_blob_id uuid,
  pdf_blob_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  download_count int not null default 0,
  last_downloaded_at timestamptz,
  primary key (tenant_id, id),
  foreign key (tenant_id, incident_id) references app_public.incidents,
  foreign key (tenant_id, result_blob_id) references app_private.blobs,
  foreign key (tenant_id, pdf_blob_id) references app_private.blobs
);
create index on app_public.exports (tenant_id, incident_id);
comment on table app_public.exports is 'An evidence pack request for an incident and its build status.';

create table app_public.webhooks (
  tenant_id uuid not null default app_public.current_tenant_id() references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  url text not null check (char_length(url) <= 2000 and url ~* '^https?://[^\s/]+'),
  description text not null default '' check (char_length(description) <= 500),
  actions text[] not null default '{}' check (array_position(actions, null) is null),
  active boolean not null default true,
  created_by uuid default app_public.current_user_id() references app_public.users,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
comment on table app_public.webhooks is 'A tenant endpoint that receives audit events. actions: exact names or prefixes like incident.*; empty means all.';

create table app_private.webhook_secrets (
  tenant_id uuid not null,
  webhook_id uuid not null,
  secret text not null default encode(gen_random_bytes(32), 'hex'),
  primary key (tenant_id, webhook_id),
  foreign key (tenant_id, webhook_id) references app_public.webhooks on delete cascade
);
comment on table app_private.webhook_secrets is 'Signing secrets of webhooks; never readable through the API.';

------------------------------------------------------------------------------
-- The audit log
------------------------------------------------------------------------------
create table app_public.audit_log (
  tenant_id uuid not null references app_public.tenants,
  seq bigint not null,
  occurred_at timestamptz not null,
  actor_user_id uuid,
  actor_label text not null,
  db_role text not null,
  action text not null check (action ~ '^[a-z_]+\.[a-z_]+$'),
  resource_type text not null,
  resource_id uuid,
  resource_label text,
  incident_id uuid,
  changes jsonb not null default '{}' check (jsonb_typeof(changes) = 'object'),
  request_id text,
  ip inet,
  user_agent text,
  surface text not null check (surface in ('web', 'graphql', 'worker', 'sql', 'seed')),
  prev_hash bytea check (octet_length(prev_hash) = 32),
  hash bytea not null check (octet_length(hash) = 32),
  primary key (tenant_id, seq),
  check ((seq = 1) = (prev_hash is null))
);
create index audit_log_tenant_time_idx on app_public.audit_log (tenant_id, occurred_at desc, seq desc);
create index audit_log_tenant_action_idx on app_public.audit_log (tenant_id, action text_pattern_ops, seq desc);
create index audit_log_tenant_incident_idx on app_public.audit_log (tenant_id, incident_id, seq) where incident_id is not null;
create index audit_log_tenant_actor_idx on app_public.audit_log (tenant_id, actor_label, seq desc);
create index audit_log_occurred_brin on app_public.audit_log using brin (occurred_at);
comment on table app_public.audit_log is
  'Append-only, per-tenant hash-chained record of every create, update and delete in a tenant. Written only by triggers.';
comment on column app_public.audit_log.seq is 'Position in the tenant''s chain: 1, 2, 3, … without gaps.';
comment on column app_public.audit_log.actor_label is 'Who acted: the user''s email at the time, or "system" when no user was signed in.';
comment on column app_public.audit_log.db_role is 'The database role that made the change.';
comment on column app_public.audit_log.action is 'What was done, as <resource>.<verb>, e.g. incident.created.';
comment on column app_public.audit_log.resource_label is 'What was affected, as it was named at the time (incident title, evidence filename, …).';
comment on column app_public.audit_log.changes is 'Field-level diff: {"field": {"old": …, "new": …}}; only "new" on create, only "old" on delete.';
comment on column app_public.audit_log.surface is 'Where the change came from: web, graphql, worker, sql or seed.';
comment on column app_public.audit_log.prev_hash is 'The hash of the previous entry of this tenant (null for the first).';
comment on column app_public.audit_log.hash is 'SHA-256 of the canonical JSON of this entry (see app_private.audit_document).';

create table app_private.audit_heads (
  tenant_id uuid primary key references app_public.tenants,
  last_seq bigint not null,
  last_hash bytea,
  updated_at timestamptz not null default now()
);
comment on table app_private.audit_heads is 'The head of each tenant''s chain. Its row lock serialises a tenant''s audit writes.';

-- Canonical JSON (RFC 8785 style for the values we store: strings, integers, booleans, null,
-- arrays, objects; keys sorted by code point; no white space). The Node verifier does the same.
create function app_private.canonical_json(j jsonb) returns text
language plpgsql immutable strict set search_path = pg_catalog as $$
declare
  result text;
begin
  case jsonb_typeof(j)
    when 'object' then
      select '{' || coalesce(string_agg(to_json(k)::text || ':' || app_private.canonical_json(v), ',' order by k collate "C"), '') || '}'
        into result from jsonb_each(j) as e(k, v);
    when 'array' then
      select '[' || coalesce(string_agg(app_private.canonical_json(v), ',' order by i), '') || ']'
        into result from jsonb_array_elements(j) with ordinality as a(v, i);
    when 'string' then
      result := to_json(j #>> '{}')::text;
    else
      result := j::text;
  end case;
  return result;
end;
$$;
comment on function app_private.canonical_json(jsonb) is 'Canonical text of a JSON value: sorted keys, no white space. Hash input.';

-- The document an entry's hash covers. Evidence packs ship these documents so that an
-- offline verifier can recompute every hash.
create function app_private.audit_document(e app_public.audit_log) returns jsonb
language sql stable set search_path = pg_catalog as $$
  select jsonb_build_object(
    'v', 1,
    'tenant_id', e.tenant_id,
    'seq', e.seq,
    'occurred_at', to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'actor_user_id', e.actor_user_id,
    'actor_label', e.actor_label,
    'db_role', e.db_role,
    'action', e.action,
    'resource_type', e.resource_type,
    'resource_id', e.resource_id,
    'resource_label', e.resource_label,
    'incident_id', e.incident_id,
    'changes', e.changes,
    'request_id', e.request_id,
    'ip', host(e.ip),
    'user_agent', e.user_agent,
    'surface', e.surface,
    'prev_hash', encode(e.prev_hash, 'hex')
  )
$$;
comment on function app_private.audit_document(app_public.audit_log) is 'The JSON document of an audit entry that its hash covers.';

create function app_private.audit_hash(e app_public.audit_log) returns bytea
language sql stable set search_path = pg_catalog as $$
  select sha256(convert_to(app_private.canonical_json(app_private.audit_document(e)), 'UTF8'))
$$;

-- Seal: fill in who/where/when and link the entry into its tenant's chain.
create function app_private.tg_audit_log__seal() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_ip text := app_private.setting('attest.ip');
begin
  if pg_trigger_depth() < 2 then
    raise exception 'audit entries are written only by the database''s capture triggers'
      using errcode = '42501';
  end if;
  new.occurred_at := date_trunc('milliseconds', clock_timestamp());
  new.actor_user_id := app_public.current_user_id();
  new.actor_label := coalesce((select u.email from app_public.users u where u.id = new.actor_user_id), 'system');
  new.db_role := coalesce(nullif(current_setting('role'), 'none'), session_user);
  new.request_id := left(app_private.setting('attest.request_id'), 200);
  new.user_agent := left(app_private.setting('attest.user_agent'), 500);
  new.surface := coalesce(app_private.setting('attest.surface'), 'sql');
  begin
    new.ip := v_ip::inet;
  exception when others then
    new.ip := null;
  end;

  insert into app_private.audit_heads as h (tenant_id, last_seq)
  values (new.tenant_id, 1)
  on conflict (tenant_id) do update set last_seq = h.last_seq + 1, updated_at = now()
  returning h.last_seq, h.last_hash into new.seq, new.prev_hash;

  new.hash := app_private.audit_hash(new);
  update app_private.audit_heads set last_hash = new.hash where tenant_id = new.tenant_id;
  return new;
end;
$$;

create function app_private.tg_audit_log__immutable() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  raise exception 'the audit log is append-only: % is not allowed', tg_op using errcode = '42501';
end;
$$;

create trigger _000_immutable before update or delete on app_public.audit_log
  for each row execute function app_private.tg_audit_log__immutable();
create trigger _000_no_truncate before truncate on app_public.audit_log
  for each statement execute function app_private.tg_audit_log__immutable();
create trigger _100_seal before insert on app_public.audit_log
  for each row execute function app_private.tg_audit_log__seal();

-- Even the owner keeps only SELECT and the INSERT that the seal trigger guards.
revoke update, delete, truncate, references, trigger on app_public.audit_log from :DATABASE_OWNER;

-- Verify a tenant's chain: recompute every hash, check every link and the head.
create function app_public.verify_audit_chain(tenant_id uuid)
returns table (valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text)
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  r record;
  v_expected bigint := 1;
  v_prev bytea := null;
  v_head app_private.audit_heads;
begin
  for r in
    select e.seq, e.prev_hash, e.hash, app_private.audit_hash(e) as recomputed
    from app_public.audit_log e
    where e.tenant_id = verify_audit_chain.tenant_id
    order by e.seq
  loop
    if r.seq > v_expected then
      return query select false, v_expected - 1, r.seq, v_expected,
        format('entry %s is missing (the chain jumps from %s to %s)', v_expected, v_expected - 1, r.seq);
      return;
    elsif r.hash is distinct from r.recomputed then
      return query select false, v_expected - 1, r.seq, r.seq,
        format('entry %s was altered: its contents do not match its hash', r.seq);
      return;
    elsif r.prev_hash is distinct from v_prev then
      return query select false, v_expected - 1, r.seq, r.seq,
        format('entry %s does not link to entry %s: one of them was altered or replaced', r.seq, r.seq - 1);
      return;
    end if;
    v_prev := r.hash;
    v_expected := v_expected + 1;
  end loop;

  select * into v_head from app_private.audit_heads h where h.tenant_id = verify_audit_chain.tenant_id;
  if coalesce(v_head.last_seq, 0) <> v_expected - 1 then
    return query select false, v_expected - 1, v_expected - 1, v_expected,
      format('the chain head is at entry %s but the log ends at entry %s: entries were removed from the end',
        coalesce(v_head.last_seq, 0), v_expected - 1);
    return;
  elsif v_head.last_hash is distinct from v_prev then
    return query select false, v_expected - 1, v_expected - 1, v_expected - 1,
      format('entry %s does not match the chain head: it was altered or replaced', v_expected - 1);
    return;
  end if;
  return query select true, v_expected - 1, v_expected - 1, null::bigint, null::text;
end;
$$;
comment on function app_public.verify_audit_chain(uuid) is
  'Recomputes a tenant''s audit chain and names the first broken entry (missing, altered, unlinked, or truncated).';

------------------------------------------------------------------------------
-- Capture: one audit entry per changed row of every tenant-owned table
------------------------------------------------------------------------------
create function app_private.audit_action(resource text, op text, old_row jsonb, new_row jsonb) returns text
language sql immutable set search_path = pg_catalog as $$
  select case
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
comment on function app_private.audit_action(text, text, jsonb, jsonb) is
  'The audit action of a row change, e.g. incident.deleted for a soft delete. Null means: not audited (export progress ticks).';

-- Columns that never make an entry on their own and never appear in a diff.
create function app_private.audit_ignored_columns(resource text) returns text[]
language sql immutable set search_path = pg_catalog as $$
  select array['tenant_id', 'id', 'updated_at'] || case resource
    when 'incident' then array['deleted_by']
    when 'milestone' then array['completed_by']
    when 'export' then array['progress', 'started_at', 'last_downloaded_at']
    when 'api_token' then array['last_used_at']
    else array[]::text[]
  end
$$;

create function app_private.audit_resource_of(schema_name text, table_name text) returns text
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
  end
$$;
comment on function app_private.audit_resource_of(text, text) is
  'The audited tables and their resource names; the capture trigger runs on these tables only.';

create function app_private.tg__audit() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_resource text := tg_argv[0];
  v_old jsonb := case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) end;
  v_new jsonb := case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) end;
  v_row jsonb := coalesce(v_new, v_old);
  v_ignored text[] := app_private.audit_ignored_columns(v_resource);
  v_changes jsonb;
  v_action text;
  v_label text;
  v_incident_id uuid;
  v_resource_id uuid;
begin
  -- Only the tables this trigger was written for: attached to any other table it would let that
  -- table's rows pose as audited changes.
  if app_private.audit_resource_of(tg_table_schema, tg_table_name) is distinct from v_resource then
    raise exception 'app_private.tg__audit(%) is not the capture trigger of %.%', v_resource, tg_table_schema, tg_table_name
      using errcode = '42501';
  end if;
  select coalesce(jsonb_object_agg(key,
           case when tg_op = 'INSERT' then jsonb_build_object('new', n.value)
                when tg_op = 'DELETE' then jsonb_build_object('old', o.value)
                else jsonb_build_object('old', o.value, 'new', n.value) end), '{}')
    into v_changes
  from jsonb_each(coalesce(v_old, '{}')) o
  full join jsonb_each(coalesce(v_new, '{}')) n using (key)
  where key <> all (v_ignored)
    and o.value is distinct from n.value
    and (tg_op = 'UPDATE' or coalesce(n.value, o.value) <> 'null'::jsonb); -- creates and deletes list set fields only

  if tg_op = 'UPDATE' and v_changes = '{}' then
    return null; -- an update that changes nothing records nothing
  end if;
  v_action := app_private.audit_action(v_resource, tg_op, v_old, v_new);
  if v_action is null then
    return null;
  end if;

  v_incident_id := case v_resource
    when 'incident' then (v_row->>'id')::uuid
    when 'evidence' then (v_row->>'incident_id')::uuid
    when 'milestone' then (v_row->>'incident_id')::uuid
    when 'export' then (v_row->>'incident_id')::uuid
  end;
  v_resource_id := case v_resource
    when 'membership' then (v_row->>'user_id')::uuid
    when 'session' then (v_row->>'user_id')::uuid
    else (v_row->>'id')::uuid
  end;
  v_label := case v_resource
    when 'incident' then v_row->>'title'
    when 'evidence' then v_row->>'filename'
    when 'milestone' then
      (case v_row->>'kind' when 'early_warning' then 'Early Warning'
                           when 'full_notification' then 'Full Notification'
                           else 'Final Report' end)
      || ' · ' || coalesce((select i.title from app_public.incidents i
                            where i.tenant_id = (v_row->>'tenant_id')::uuid and i.id = v_incident_id), '?')
    when 'export' then 'Evidence pack · ' || coalesce((select i.title from app_public.incidents i
                            where i.tenant_id = (v_row->>'tenant_id')::uuid and i.id = v_incident_id), '?')
    when 'webhook' then v_row->>'url'
    when 'membership' then (select u.email from app_public.users u where u.id = (v_row->>'user_id')::uuid)
    when 'api_token' then v_row->>'name'
    when 'tenant' then v_row->>'name'
    when 'session' then v_row->>'email'
  end;

  insert into app_public.audit_log (tenant_id, action, resource_type, resource_id, resource_label, incident_id, changes,
                                    seq, occurred_at, actor_label, db_role, surface, hash)
  values (coalesce((v_row->>'tenant_id')::uuid, (v_row->>'id')::uuid), v_action, v_resource, v_resource_id,
          left(v_label, 500), v_incident_id, v_changes,
          0, now(), '', '', 'sql', '\x0000000000000000000000000000000000000000000000000000000000000000');
  -- (seq, occurred_at, actor, role, surface and hash above are placeholders: the seal trigger sets them.)
  return null;
end;
$$;
comment on function app_private.tg__audit() is
  'Capture trigger: writes one audit entry per changed row, in the same transaction. Argument: the resource name.';

create trigger _500_audit after insert or update or delete on app_public.tenants
  for each row execute function app_private.tg__audit('tenant');
create trigger _500_audit after insert or update or delete on app_public.memberships
  for each row execute function app_private.tg__audit('membership');
create trigger _500_audit after insert or update or delete on app_public.api_tokens
  for each row execute function app_private.tg__audit('api_token');
create trigger _500_audit after insert or update or delete on app_public.incidents
  for each row execute function app_private.tg__audit('incident');
create trigger _500_audit after insert or update or delete on app_public.evidence
  for each row execute function app_private.tg__audit('evidence');
create trigger _500_audit after insert or update or delete on app_public.nis2_milestones
  for each row execute function app_private.tg__audit('milestone');
create trigger _500_audit after insert or update or delete on app_public.exports
  for each row execute function app_private.tg__audit('export');
create trigger _500_audit after insert or update or delete on app_public.webhooks
  for each row execute function app_private.tg__audit('webhook');

------------------------------------------------------------------------------
-- Row rules (timestamps, who did it, NIS2 milestones, last owner, evidence bytes)
------------------------------------------------------------------------------
create function app_private.tg__timestamps() returns trigger
language plpgsql set search_path = pg_catalog as $$
begin
  if tg_op = 'INSERT' then
    new.created_at := coalesce(new.created_at, now());
  else
    new.created_at := old.created_at; -- created_at never changes
  end if;
  new.updated_at := case when tg_op = 'UPDATE' then greatest(now(), old.updated_at + interval '1 millisecond') else now() end;
  return new;
end;
$$;

create trigger _100_timestamps before insert or update on app_public.tenants for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.users for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.memberships for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.api_tokens for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.incidents for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.evidence for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.nis2_milestones for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.exports for each row execute function app_private.tg__timestamps();
create trigger _100_timestamps before insert or update on app_public.webhooks for each row execute function app_private.tg__timestamps();

create function app_private.tg_incidents__rules() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  if tg_op = 'UPDATE' then
    if old.deleted_at is not null and new.deleted_at is not null then
      raise exception 'this incident is deleted; restore it before changing it' using errcode = '55000';
    end if;
    if old.deleted_at is null and new.deleted_at is not null then
      new.deleted_at := now();
      new.deleted_by := app_public.current_user_id();
    elsif new.deleted_at is null then
      new.deleted_by := null;
    end if;
  elsif new.deleted_at is not null then
    raise exception 'an incident cannot be created deleted' using errcode = '22023';
  end if;
  if new.nis2_enabled and (tg_op = 'INSERT' or not old.nis2_enabled)
     and not app_public.tenant_has_feature(new.tenant_id, 'nis2Timeline') then
    raise exception 'NIS2 reporting is not in your plan' using errcode = '42501', hint = 'Upgrade to a plan with the nis2Timeline feature.';
  end if;
  return new;
end;
$$;
create trigger _200_rules before insert or update on app_public.incidents
  for each row execute function app_private.tg_incidents__rules();

create function app_private.tg_incidents__nis2_milestones() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  insert into app_public.nis2_milestones (tenant_id, incident_id, kind, due_at)
  select new.tenant_id, new.id, k.kind, new.created_at + k.after
  from (values ('early_warning', interval '24 hours'),
               ('full_notification', interval '72 hours'),
               ('final_report', interval '30 days')) as k(kind, after)
  on conflict (tenant_id, incident_id, kind) do nothing;
  return null;
end;
$$;
create trigger _600_nis2_milestones after insert or update of nis2_enabled on app_public.incidents
  for each row when (new.nis2_enabled) execute function app_private.tg_incidents__nis2_milestones();

create function app_private.tg_nis2_milestones__rules() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  if tg_op = 'UPDATE' then
    new.kind := old.kind;
    new.due_at := old.due_at;
    new.incident_id := old.incident_id;
    if exists (select 1 from app_public.incidents i
               where i.tenant_id = new.tenant_id and i.id = new.incident_id and i.deleted_at is not null) then
      raise exception 'this incident is deleted; restore it before changing it' using errcode = '55000';
    end if;
    if old.completed_at is null and new.completed_at is not null then
      new.completed_at := now();
      new.completed_by := app_public.current_user_id();
    elsif new.completed_at is null then
      new.completed_by := null;
    else
      new.completed_at := old.completed_at;
      new.completed_by := old.completed_by;
    end if;
  end if;
  return new;
end;
$$;
create trigger _200_rules before update on app_public.nis2_milestones
  for each row execute function app_private.tg_nis2_milestones__rules();

create function app_public.nis2_milestones_status(m app_public.nis2_milestones) returns text
language sql stable set search_path = pg_catalog as $$
  select case when m.completed_at is not null then 'completed'
              when m.due_at < now() then 'overdue'
              else 'pending' end
$$;
comment on function app_public.nis2_milestones_status(app_public.nis2_milestones) is 'pending, completed or overdue.';

create function app_private.tg_memberships__keep_an_owner() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  if old.role = 'owner' and (tg_op = 'DELETE' or new.role <> 'owner') then
    perform 1 from app_public.tenants where id = old.tenant_id for update;
    if not exists (select 1 from app_public.memberships
                   where tenant_id = old.tenant_id and role = 'owner' and user_id <> old.user_id) then
      raise exception 'a tenant must keep at least one owner' using errcode = '23514';
    end if;
  end if;
  return coalesce(new, old);
end;
$$;
create trigger _200_keep_an_owner before update or delete on app_public.memberships
  for each row execute function app_private.tg_memberships__keep_an_owner();

create function app_private.tg_evidence__from_blob() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
  v_blob app_private.blobs;
begin
  if tg_op = 'UPDATE' then
    new.blob_id := old.blob_id;
    new.incident_id := old.incident_id;
  end if;
  select * into v_blob from app_private.blobs b where b.tenant_id = new.tenant_id and b.id = new.blob_id;
  if v_blob.id is null or v_blob.finished_at is null then
    raise exception 'the uploaded file was not found or is incomplete' using errcode = '23503';
  end if;
  new.size_bytes := v_blob.size_bytes;
  new.sha256 := v_blob.sha256;
  return new;
end;
$$;
create trigger _200_from_blob before insert or update on app_public.evidence
  for each row execute function app_private.tg_evidence__from_blob();

create function app_private.tg_evidence__drop_blob() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  delete from app_private.blobs b where b.tenant_id = old.tenant_id and b.id = old.blob_id
    and not exists (select 1 from app_public.evidence e where e.tenant_id = old.tenant_id and e.blob_id = old.blob_id);
  return null;
end;
$$;
create trigger _700_drop_blob after delete on app_public.evidence
  for each row execute function app_private.tg_evidence__drop_blob();

create function app_private.tg_webhooks__secret() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  insert into app_private.webhook_secrets (tenant_id, webhook_id) values (new.tenant_id, new.id);
  return null;
end;
$$;
create trigger _700_secret after insert on app_public.webhooks
  for each row execute function app_private.tg_webhooks__secret();

------------------------------------------------------------------------------
-- Row-level security: policies first, then grants
------------------------------------------------------------------------------
alter table app_public.plans enable row level security;
alter table app_public.tenants enable row level security;
alter table app_public.users enable row level security;
alter table app_public.memberships enable row level security;
alter table app_public.api_tokens enable row level security;
alter table app_public.incidents enable row level security;
alter table app_public.evidence enable row level security;
alter table app_public.nis2_milestones enable row level security;
alter table app_public.exports enable row level security;
alter table app_public.webhooks enable row level security;
alter table app_public.audit_log enable row level security;

create policy select_all on app_public.plans for select using (true);

create policy select_current on app_public.tenants for select
  using (id = (select app_public.current_tenant_id()));
create policy select_own on app_public.tenants for select
  using (id in (select app_hidden.current_user_tenant_ids()));

create policy select_self on app_public.users for select
  using (id = (select app_public.current_user_id()));
create policy select_members on app_public.users for select
  using (id in (select m.user_id from app_public.memberships m where m.tenant_id = (select app_public.current_tenant_id())));

create policy select_current on app_public.memberships for select
  using (tenant_id = (select app_public.current_tenant_id()));
create policy insert_owner on app_public.memberships for insert
  with check (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) = 'owner');
create policy update_owner on app_public.memberships for update
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) = 'owner');
create policy delete_owner on app_public.memberships for delete
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) = 'owner');

create policy select_managers on app_public.api_tokens for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));
create policy update_managers on app_public.api_tokens for update
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));

create policy select_current on app_public.incidents for select
  using (tenant_id = (select app_public.current_tenant_id()));
create policy insert_editors on app_public.incidents for insert
  with check (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin', 'member'));
create policy update_editors on app_public.incidents for update
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin', 'member'));

create policy select_current on app_public.evidence for select
  using (tenant_id = (select app_public.current_tenant_id()));
create policy insert_editors on app_public.evidence for insert
  with check (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin', 'member'));
create policy update_editors on app_public.evidence for update
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin', 'member'));
create policy delete_editors on app_public.evidence for delete
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin', 'member'));

create policy select_current on app_public.nis2_milestones for select
  using (tenant_id = (select app_public.current_tenant_id()));
create policy update_editors on app_public.nis2_milestones for update
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin', 'member'));

create policy select_managers on app_public.exports for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));
create policy insert_managers on app_public.exports for insert
  with check (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin')
              and (select app_public.current_tenant_has_feature('evidencePacks')));

create policy select_managers on app_public.webhooks for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));
create policy insert_managers on app_public.webhooks for insert
  with check (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin')
              and (select app_public.current_tenant_has_feature('webhooks')));
create policy update_managers on app_public.webhooks for update
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));
create policy delete_managers on app_public.webhooks for delete
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));

create policy select_managers_with_feature on app_public.audit_log for select
  using (tenant_id = (select app_public.current_tenant_id())
         and (select app_public.current_tenant_role()) in ('owner', 'admin')
         and (select app_public.current_tenant_has_feature('auditLog')));

grant select on app_public.plans, app_public.tenants, app_public.users to :DATABASE_VISITOR;
grant select on app_public.memberships to :DATABASE_VISITOR;
grant insert (user_id, role), update (role), delete on app_public.memberships to :DATABASE_VISITOR;
grant select on app_public.api_tokens to :DATABASE_VISITOR;
grant update (revoked_at) on app_public.api_tokens to :DATABASE_VISITOR;
grant select on app_public.incidents to :DATABASE_VISITOR;
grant insert (title, severity, status, description, root_cause, lessons_learned, nis2_enabled),
      update (title, severity, status, description, root_cause, lessons_learned, nis2_enabled, deleted_at)
  on app_public.incidents to :DATABASE_VISITOR;
grant select, delete on app_public.evidence to :DATABASE_VISITOR;
grant insert (incident_id, filename, content_type, blob_id), update (filename) on app_public.evidence to :DATABASE_VISITOR;
grant select on app_public.nis2_milestones to :DATABASE_VISITOR;
grant update (completed_at, notes) on app_public.nis2_milestones to :DATABASE_VISITOR;
grant select on app_public.exports to :DATABASE_VISITOR;
grant insert (incident_id) on app_public.exports to :DATABASE_VISITOR;
grant select, delete on app_public.webhooks to :DATABASE_VISITOR;
grant insert (url, description, actions, active), update (url, description, actions, active) on app_public.webhooks to :DATABASE_VISITOR;
grant select on app_public.audit_log to :DATABASE_VISITOR;
grant execute on function app_public.nis2_milestones_status(app_public.nis2_milestones) to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- Installation state
------------------------------------------------------------------------------
create table app_private.db_credentials (
  role_name text primary key,
  password text not null,
  created_at timestamptz not null default now()
);
comment on table app_private.db_credentials is
  'Generated passwords of login roles that Attest created itself (the authenticator), so every server process can log in.';

------------------------------------------------------------------------------
-- Reporting views for DBAs (read-only, across tenants)
------------------------------------------------------------------------------
create view reporting.audit_entries as
  select t.slug as tenant_slug, t.name as tenant_name, e.tenant_id, e.seq, e.occurred_at,
         e.actor_label as actor, e.actor_user_id, e.db_role, e.action, e.resource_type, e.resource_id,
         e.resource_label, e.incident_id, e.changes, e.surface, e.request_id, e.ip, e.user_agent
  from app_public.audit_log e
  join app_public.tenants t on t.id = e.tenant_id;
comment on view reporting.audit_entries is 'Every audit entry of every tenant, with the tenant''s slug.';

create view reporting.activity_daily as
  select t.slug as tenant_slug, (e.occurred_at at time zone 'UTC')::date as day, e.action,
         count(*) as entries, count(distinct e.actor_label) as actors
  from app_public.audit_log e
  join app_public.tenants t on t.id = e.tenant_id
  group by 1, 2, 3;
comment on view reporting.activity_daily is 'Audit entries per tenant, per UTC day and per action.';

create view reporting.tenants as
  select t.slug as tenant_slug, t.name as tenant_name, t.plan_id as plan, p.features, t.created_at,
         (select count(*) from app_public.memberships m where m.tenant_id = t.id) as members,
         (select count(*) from app_public.incidents i where i.tenant_id = t.id and i.deleted_at is null) as incidents
  from app_public.tenants t join app_public.plans p on p.id = t.plan_id;
comment on view reporting.tenants is 'Tenants with their plan, features and sizes.';

create view reporting.chain_status as
  select t.slug as tenant_slug, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem,
         now() as checked_at
  from app_public.tenants t
  cross join lateral app_public.verify_audit_chain(t.id) v;
comment on view reporting.chain_status is 'Verifies every tenant''s audit chain when read (one row per tenant).';

grant select on all tables in schema reporting to :DATABASE_REPORTING;
grant execute on function app_public.verify_audit_chain(uuid) to :DATABASE_REPORTING;
