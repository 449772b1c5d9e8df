--! Previous: sha1:28977bb0b3468276eaaf20aa46c500b4809a37e3
--! Hash: sha1:0c62ae9791062e578e0204b6c5aaa4aef54ee6fd
--! Message: invitations

-- 000012 People: nobody becomes a member without accepting an invitation, and sign-in events
-- belong to the person.
--
-- Invitations: an owner or admin invites an email address with a role; the answer is the same
-- whether or not the address has an Attest account. The invitee, signed in with that address,
-- accepts or declines (from their home page, or with the single-use link whose token only the
-- inviter saw: only its SHA-256 is stored). Pending invitations can be revoked and expire after
-- 7 days. add_member (which added anyone without asking) is gone, and the user role can no longer
-- insert memberships: accept_invitation is the only way in.
--
-- Sign-in events are recorded in the tenants the user belongs to at the time (a tenant never gets
-- entries from before the person joined it, and no entry names another tenant), and in the
-- person's own history (app_private.sign_in_history, read with my_sign_ins), which is kept even
-- for a user without tenants. Failed sign-ins of an account are summarised per burst (15 minutes
-- from its first failure): one session.sign_in_failed entry with the count and the first and last
-- time, written when the burst ends (the sweep, the account's next attempt, or a successful
-- sign-in); nothing is recorded or sent to webhooks per attempt, throttled or not.
--
-- Changes to the audit path's mapping functions (create or replace, in a superuser session):
-- audit_resource_of (+ app_public.invitations -> 'invitation'), audit_action (+ invitation state
-- changes: invitation.accepted / .declined / .revoked / .expired), audit_entry_of (+ the
-- invitation's label: its email). Nothing else on the path changes.

------------------------------------------------------------------------------
-- 1. The audit mapping knows invitations, besides the access tables of 000011 (audit path: owned by
--    the audit role once guarded)
------------------------------------------------------------------------------
reset role;

create or replace function app_private.audit_resource_of(schema_name text, table_name text) returns text
language sql immutable as $$
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
    when 'app_public.invitations' then 'invitation'
    -- reads: their entries are about the evidence file and the audit log
    when 'app_private.evidence_downloads' then 'evidence'
    when 'app_private.audit_log_reads' then 'audit_log'
  end
$$;

create or replace function app_private.audit_action(resource text, op text, old_row jsonb, new_row jsonb) returns text
language sql immutable as $$
  select case
    when resource = 'session' then case when op = 'INSERT' then 'session.' || (new_row->>'kind') end
    -- a row of app_private.evidence_downloads (the only evidence rows with evidence_id)
    when resource = 'evidence' and coalesce(new_row, old_row) ? 'evidence_id' then
      case when op = 'INSERT' then 'evidence.downloaded' end
    when resource = 'audit_log' then case when op = 'INSERT' then 'audit_log.' || (new_row->>'kind') end
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
    when resource = 'invitation' and old_row->>'state' = 'pending' and new_row->>'state' <> 'pending' then
      'invitation.' || (new_row->>'state')
    else resource || '.updated'
  end
$$;

create or replace function app_private.audit_ignored_columns(resource text) returns text[]
language sql immutable as $$
  select array['tenant_id', 'id', 'updated_at'] || case resource
    when 'incident' then array['deleted_by']
    when 'milestone' then array['completed_by']
    when 'export' then array['progress', 'started_at', 'last_downloaded_at']
    when 'api_token' then array['last_used_at']
    when 'session' then array['created_at']
    when 'webhook' then array['consecutive_failures']
    -- evidence_id: a download's resource id (no evidence row has that column)
    when 'evidence' then array['evidence_id']
    when 'audit_log' then array['kind', 'label']
    else array[]::text[]
  end
$$;

create or replace function app_private.audit_entry_of(resource text, op text, old_row jsonb, new_row jsonb)
returns table (tenant_id uuid, action text, resource_id uuid, resource_label text, incident_id uuid, changes jsonb)
language sql stable as $$
  select coalesce((x.r->>'tenant_id')::uuid, (x.r->>'id')::uuid),
         x.action,
         case resource when 'membership' then (x.r->>'user_id')::uuid when 'session' then (x.r->>'user_id')::uuid
                       when 'evidence' then coalesce(x.r->>'evidence_id', x.r->>'id')::uuid
                       when 'audit_log' then null
                       else (x.r->>'id')::uuid end,
         left(case resource
           when 'incident' then x.r->>'title'
           when 'evidence' then x.r->>'filename'
           when 'milestone' then
             (case x.r->>'kind' when 'early_warning' then 'Early Warning'
                               when 'full_notification' then 'Full Notification'
                               else 'Final Report' end)
             || ' · ' || coalesce((select i.title from app_public.incidents i
                                   where i.tenant_id = (x.r->>'tenant_id')::uuid and i.id = (x.r->>'incident_id')::uuid), '?')
           when 'export' then 'Evidence pack · ' || coalesce((select i.title from app_public.incidents i
                                   where i.tenant_id = (x.r->>'tenant_id')::uuid and i.id = (x.r->>'incident_id')::uuid), '?')
           when 'webhook' then x.r->>'url'
           when 'membership' then (select u.email from app_public.users u where u.id = (x.r->>'user_id')::uuid)
           when 'api_token' then x.r->>'name'
           when 'tenant' then x.r->>'name'
           when 'session' then x.r->>'email'
           when 'audit_log' then x.r->>'label'
           when 'invitation' then x.r->>'email'
         end, 500),
         case resource when 'incident' then (x.r->>'id')::uuid
                       when 'evidence' then (x.r->>'incident_id')::uuid
                       when 'milestone' then (x.r->>'incident_id')::uuid
                       when 'export' then (x.r->>'incident_id')::uuid end,
         x.changes
  from (
    select coalesce(new_row, old_row) as r,
           app_private.audit_action(resource, op, old_row, new_row) as action,
           -- the field-level diff: {"field": {"old": …, "new": …}}; only "new" on create and only
           -- "old" on delete, listing set fields only (a subquery, not a function: it is planned
           -- once with the capture statement instead of on every call)
           (select coalesce(jsonb_object_agg(key,
                     case when op = 'INSERT' then jsonb_build_object('new', n.value)
                          when op = 'DELETE' then jsonb_build_object('old', o.value)
                          else jsonb_build_object('old', o.value, 'new', n.value) end), '{}')
            from jsonb_each(coalesce(old_row, '{}')) o
            full join jsonb_each(coalesce(new_row, '{}')) n using (key)
            where key <> all (app_private.audit_ignored_columns(resource))
              and o.value is distinct from n.value
              and (op = 'UPDATE' or coalesce(n.value, o.value) <> 'null'::jsonb)) as changes
  ) x
  where x.action is not null
    and not (op = 'UPDATE' and x.changes = '{}') -- an update that changes nothing records nothing
$$;

set role :DATABASE_OWNER;

------------------------------------------------------------------------------
-- 2. Invitations
------------------------------------------------------------------------------
create table app_public.invitations (
  tenant_id uuid not null references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  email text not null
    constraint invitations_email_check check (email = lower(email) and email ~ '^[^@\s]+@[^@\s]+$' and char_length(email) <= 320),
  role text not null constraint invitations_role_check check (role in ('owner', 'admin', 'member', 'viewer')),
  invited_by uuid references app_public.users,
  state text not null default 'pending'
    constraint invitations_state_check check (state in ('pending', 'accepted', 'declined', 'revoked', 'expired')),
  expires_at timestamptz not null default now() + interval '7 days',
  closed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
-- One open invitation per address and tenant (a second one is refused; revoke to send a new one).
create unique index invitations_one_pending_idx on app_public.invitations (tenant_id, email) where state = 'pending';
-- The invitee's pending invitations, across tenants.
create index invitations_pending_email_idx on app_public.invitations (email) where state = 'pending';
comment on table app_public.invitations is
  E'@unique id\n@behavior -insert -update -delete -query:resource:list -query:resource:connection\nAn invitation to join a tenant with a role. Nobody becomes a member without accepting one. Created with inviteMember; answered with acceptInvitation / declineInvitation; revoked with revokeInvitation.';
comment on column app_public.invitations.email is 'The invited address. The invitee signs in with an account of this email to answer.';
comment on column app_public.invitations.role is 'The role the invitee gets on accepting: owner, admin, member or viewer.';
comment on column app_public.invitations.invited_by is 'The user who sent the invitation.';
comment on column app_public.invitations.state is
  'pending, accepted, declined, revoked or expired (a pending invitation past expires_at can no longer be answered; see isOpen).';
comment on column app_public.invitations.expires_at is 'Until when a pending invitation can be accepted (7 days after it was sent).';
comment on column app_public.invitations.closed_at is 'When it was accepted, declined, revoked or marked expired.';

create trigger _100_timestamps before insert or update on app_public.invitations
  for each row execute function app_private.tg__timestamps();
create trigger _500_audit_insert after insert on app_public.invitations referencing new table as new_rows
  for each statement execute function app_private.tg__audit('invitation');
create trigger _500_audit_update after update on app_public.invitations referencing old table as old_rows new table as new_rows
  for each statement execute function app_private.tg__audit('invitation');
create trigger _500_audit_delete after delete on app_public.invitations referencing old table as old_rows
  for each statement execute function app_private.tg__audit('invitation');
create trigger _000_no_truncate before truncate on app_public.invitations
  for each statement execute function app_private.tg__audited_no_truncate();

-- The link's secret: only its SHA-256, removed once the invitation is answered or revoked.
create table app_private.invitation_secrets (
  tenant_id uuid not null,
  invitation_id uuid not null,
  token_hash bytea not null,
  primary key (tenant_id, invitation_id),
  foreign key (tenant_id, invitation_id) references app_public.invitations on delete cascade
);
create index invitation_secrets_token_hash_idx on app_private.invitation_secrets (token_hash);
comment on table app_private.invitation_secrets is 'SHA-256 of each open invitation''s link token (single use: removed when answered or revoked).';

/** The signed-in person's email: for a browser session only (an API token acts for a tenant, not a person). */
create function app_hidden.current_session_email() returns text
language sql stable security definer set search_path = pg_catalog, public as $$
  select u.email from app_private.sessions s join app_public.users u on u.id = s.user_id
  where s.id = app_public.current_session_id()
$$;
comment on function app_hidden.current_session_email() is
  'The email of the user signed in with a session (not an API token), or null: whose invitations these are.';

alter table app_public.invitations enable row level security;
create policy select_managers on app_public.invitations for select
  using (tenant_id = (select app_public.current_tenant_id()) and (select app_public.current_tenant_role()) in ('owner', 'admin'));
create policy select_invitee on app_public.invitations for select
  using (email = (select app_hidden.current_session_email()));
grant select on app_public.invitations to :DATABASE_VISITOR;
grant execute on function app_hidden.current_session_email() to :DATABASE_VISITOR;

/** Whether the caller may see this invitation (as a manager of its tenant, or as the invitee). */
create function app_hidden.invitation_visible(p_tenant uuid, p_id uuid) returns boolean
language sql stable security definer set search_path = pg_catalog, public as $$
  select exists (
    select 1 from app_public.invitations i
    where i.tenant_id = p_tenant and i.id = p_id
      and ((i.tenant_id = app_public.current_tenant_id() and app_public.current_tenant_role() in ('owner', 'admin'))
           or i.email = app_hidden.current_session_email()))
$$;
comment on function app_hidden.invitation_visible(uuid, uuid) is
  'Whether the caller may see this invitation: an owner/admin of its tenant (the current one), or the invitee.';

create function app_public.invitations_tenant_name(i app_public.invitations) returns text
language sql stable security definer set search_path = pg_catalog, public as $$
  select t.name from app_public.tenants t where t.id = i.tenant_id and app_hidden.invitation_visible(i.tenant_id, i.id)
$$;
comment on function app_public.invitations_tenant_name(app_public.invitations) is 'The name of the tenant the invitation is to.';

create function app_public.invitations_invited_by_email(i app_public.invitations) returns text
language sql stable security definer set search_path = pg_catalog, public as $$
  select u.email from app_public.invitations v join app_public.users u on u.id = v.invited_by
  where v.tenant_id = i.tenant_id and v.id = i.id and app_hidden.invitation_visible(i.tenant_id, i.id)
$$;
comment on function app_public.invitations_invited_by_email(app_public.invitations) is 'The email of who sent the invitation.';

create function app_public.invitations_is_open(i app_public.invitations) returns boolean
language sql stable set search_path = pg_catalog as $$
  select i.state = 'pending' and i.expires_at > now()
$$;
comment on function app_public.invitations_is_open(app_public.invitations) is 'Pending and not expired: it can still be accepted, declined or revoked.';

grant execute on function app_hidden.invitation_visible(uuid, uuid), app_public.invitations_tenant_name(app_public.invitations),
  app_public.invitations_invited_by_email(app_public.invitations), app_public.invitations_is_open(app_public.invitations)
  to :DATABASE_VISITOR;

create type app_public.created_invitation as (
  id uuid,
  email text,
  role text,
  expires_at timestamptz,
  token text
);
comment on type app_public.created_invitation is
  'A new invitation. `token` is shown only this once: pass the link /invitations/<token> on to the invitee (Attest sends no mail).';

create function app_public.invite_member(email text, role text default 'member') returns app_public.created_invitation
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid := app_public.current_tenant_id();
  v_my_role text := app_public.current_tenant_role();
  v_email text := lower(trim(invite_member.email));
  v_role text := coalesce(nullif(trim(invite_member.role), ''), 'member');
  v_token text := 'inv_' || encode(gen_random_bytes(24), 'hex');
  v_row app_public.invitations;
begin
  if v_tenant is null or v_my_role is null or v_my_role not in ('owner', 'admin') then
    raise exception 'Only an owner or admin of this tenant can invite people' using errcode = '42501';
  end if;
  if v_role not in ('owner', 'admin', 'member', 'viewer') then
    raise exception 'The role must be owner, admin, member or viewer.' using errcode = '23514';
  end if;
  if v_role = 'owner' and v_my_role <> 'owner' then
    raise exception 'Only an owner can invite another owner' using errcode = '42501';
  end if;
  if v_email is null or v_email !~ '^[^@\s]+@[^@\s]+$' or char_length(v_email) > 320 then
    raise exception 'That is not a valid email address.' using errcode = '23514';
  end if;
  -- Members are listed on the Members page already: saying so reveals nothing new.
  if exists (select 1 from app_public.memberships m join app_public.users u on u.id = m.user_id
             where m.tenant_id = v_tenant and u.email = v_email) then
    raise exception '% is already a member of this tenant', v_email using errcode = '23505';
  end if;
  -- An expired invitation makes room for a new one.
  update app_public.invitations i set state = 'expired', closed_at = now()
  where i.tenant_id = v_tenant and i.email = v_email and i.state = 'pending' and i.expires_at <= now();
  delete from app_private.invitation_secrets s
  using app_public.invitations i
  where i.tenant_id = v_tenant and i.email = v_email and i.state = 'expired'
    and s.tenant_id = i.tenant_id and s.invitation_id = i.id;
  if exists (select 1 from app_public.invitations i where i.tenant_id = v_tenant and i.email = v_email and i.state = 'pending') then
    raise exception '% already has an open invitation to this tenant: revoke it to send a new one', v_email using errcode = '23505';
  end if;
  insert into app_public.invitations (tenant_id, email, role, invited_by)
  values (v_tenant, v_email, v_role, app_public.current_user_id())
  returning * into v_row;
  insert into app_private.invitation_secrets (tenant_id, invitation_id, token_hash)
  values (v_tenant, v_row.id, sha256(convert_to(v_token, 'UTF8')));
  return (v_row.id, v_row.email, v_row.role, v_row.expires_at, v_token)::app_public.created_invitation;
end;
$$;
comment on function app_public.invite_member(text, text) is
  'Invites an email address to the current tenant with a role (owner/admin; only an owner invites an owner). The answer is the same whether or not the address has an account.';

/**
 * The invitation the signed-in person may answer, found by its link token or its id, locked; or
 * an error that says why not. Only the invitee (a session whose user has the invited email) finds it.
 */
create function app_hidden.answerable_invitation(p_token text, p_id uuid) returns app_public.invitations
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
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
                    where s.token_hash = sha256(convert_to(p_token, 'UTF8')) and s.tenant_id = i.tenant_id and s.invitation_id = i.id))
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
$$;
comment on function app_hidden.answerable_invitation(text, uuid) is
  'The open invitation (by link token or id) the signed-in person may answer, locked; raises why not otherwise.';

create function app_public.accept_invitation(token text default null, id uuid default null) returns app_public.invitations
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_row app_public.invitations := app_hidden.answerable_invitation(accept_invitation.token, accept_invitation.id);
begin
  if exists (select 1 from app_public.memberships m where m.tenant_id = v_row.tenant_id and m.user_id = app_public.current_user_id()) then
    raise exception 'You are already a member of this tenant' using errcode = '23505';
  end if;
  update app_public.invitations i set state = 'accepted', closed_at = now()
  where i.tenant_id = v_row.tenant_id and i.id = v_row.id
  returning * into v_row;
  insert into app_public.memberships (tenant_id, user_id, role)
  values (v_row.tenant_id, app_public.current_user_id(), v_row.role);
  delete from app_private.invitation_secrets s where s.tenant_id = v_row.tenant_id and s.invitation_id = v_row.id;
  return v_row;
end;
$$;
comment on function app_public.accept_invitation(text, uuid) is
  'Accepts an invitation for the signed-in person (by its link token or its id): they become a member with its role.';

create function app_public.decline_invitation(token text default null, id uuid default null) returns app_public.invitations
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_row app_public.invitations := app_hidden.answerable_invitation(decline_invitation.token, decline_invitation.id);
begin
  update app_public.invitations i set state = 'declined', closed_at = now()
  where i.tenant_id = v_row.tenant_id and i.id = v_row.id
  returning * into v_row;
  delete from app_private.invitation_secrets s where s.tenant_id = v_row.tenant_id and s.invitation_id = v_row.id;
  return v_row;
end;
$$;
comment on function app_public.decline_invitation(text, uuid) is 'Declines an invitation for the signed-in person (by its link token or its id).';

create function app_public.revoke_invitation(id uuid) returns app_public.invitations
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid := app_public.current_tenant_id();
  v_row app_public.invitations;
begin
  if v_tenant is null or app_public.current_tenant_role() is null or app_public.current_tenant_role() not in ('owner', 'admin') then
    raise exception 'Only an owner or admin of this tenant can revoke invitations' using errcode = '42501';
  end if;
  update app_public.invitations i set state = 'revoked', closed_at = now()
  where i.tenant_id = v_tenant and i.id = revoke_invitation.id and i.state = 'pending'
  returning * into v_row;
  if v_row.id is null then
    raise exception 'No pending invitation with that id in this tenant' using errcode = 'P0002';
  end if;
  delete from app_private.invitation_secrets s where s.tenant_id = v_row.tenant_id and s.invitation_id = v_row.id;
  return v_row;
end;
$$;
comment on function app_public.revoke_invitation(uuid) is 'Revokes a pending invitation of the current tenant (owner/admin).';

create function app_public.my_invitations() returns setof app_public.invitations
language sql stable set search_path = pg_catalog, public as $$
  select i.* from app_public.invitations i
  where i.email = app_hidden.current_session_email() and i.state = 'pending' and i.expires_at > now()
  order by i.created_at desc, i.id
$$;
comment on function app_public.my_invitations() is 'The signed-in person''s open invitations, to any tenant, newest first.';

/** The invitation a link token names, when it is the signed-in person's (any state); null otherwise. */
create function app_public.invitation_by_token(token text) returns app_public.invitations
language sql stable security definer set search_path = pg_catalog, public as $$
  select i.* from app_private.invitation_secrets s
  join app_public.invitations i on i.tenant_id = s.tenant_id and i.id = s.invitation_id
  where s.token_hash = sha256(convert_to(invitation_by_token.token, 'UTF8'))
    and i.email = app_hidden.current_session_email()
$$;
comment on function app_public.invitation_by_token(text) is
  'The open invitation a link token names, if it is for the signed-in person; null otherwise (also once answered: the token is single-use).';

grant execute on function app_public.invite_member(text, text), app_hidden.answerable_invitation(text, uuid),
  app_public.accept_invitation(text, uuid), app_public.decline_invitation(text, uuid), app_public.revoke_invitation(uuid),
  app_public.my_invitations(), app_public.invitation_by_token(text)
  to :DATABASE_VISITOR;

-- Nobody is added without their consent: no more add_member, no INSERT on memberships for users.
drop function app_public.add_member(text, text);
drop policy insert_owner on app_public.memberships;
revoke insert on app_public.memberships from :DATABASE_VISITOR;
comment on table app_public.memberships is
  E'@behavior -insert\nWho belongs to a tenant, with which tenant role: owner, admin, member or viewer. People join by accepting an invitation (inviteMember, acceptInvitation).';

------------------------------------------------------------------------------
-- 3. Sign-in events: the person's own history, bursts of failures summarised
------------------------------------------------------------------------------
alter table app_public.session_events
  add column attempts int constraint session_events_attempts_check check (attempts > 0),
  add column first_attempt_at timestamptz,
  add column last_attempt_at timestamptz;
comment on column app_public.session_events.attempts is 'For sign_in_failed: how many attempts the burst had.';
comment on column app_public.session_events.first_attempt_at is 'For sign_in_failed: the burst''s first failed attempt.';
comment on column app_public.session_events.last_attempt_at is 'For sign_in_failed: the burst''s last failed attempt.';
comment on table app_public.session_events is
  E'@behavior -insert -update -delete\nSign-ins, sign-outs and failed sign-ins (one row per burst) of a tenant''s members while they were members (recorded as session.* audit entries).';

create table app_private.sign_in_history (
  user_id uuid not null references app_public.users on delete cascade,
  id bigint generated always as identity,
  kind text not null check (kind in ('signed_in', 'signed_out', 'sign_in_failed')),
  occurred_at timestamptz not null default now(),
  ip inet,
  user_agent text,
  attempts int,
  first_attempt_at timestamptz,
  last_attempt_at timestamptz,
  primary key (user_id, id)
);
comment on table app_private.sign_in_history is
  'Every user''s own sign-ins, sign-outs and failed sign-in bursts (whatever their tenants), read by the user with my_sign_ins.';

-- The open burst of failed sign-ins of an account (at most one): counted here, recorded when it ends.
create table app_private.sign_in_bursts (
  user_id uuid primary key references app_public.users on delete cascade,
  email text not null,
  first_at timestamptz not null default now(),
  last_at timestamptz not null default now(),
  attempts int not null default 1,
  last_ip inet,
  last_user_agent text
);
create index sign_in_bursts_first_at_idx on app_private.sign_in_bursts (first_at);
comment on table app_private.sign_in_bursts is
  'Failed sign-ins of an account being counted: a burst lasts 15 minutes from its first failure and is recorded once, as one summary, when it ends.';

/** The request's IP setting as inet, or null. */
create function app_private.request_ip() returns inet
language plpgsql stable set search_path = pg_catalog as $$
begin
  return nullif(current_setting('attest.ip', true), '')::inet;
exception when others then
  return null;
end;
$$;
comment on function app_private.request_ip() is 'The attest.ip setting as inet, or null when unset or not an address.';

create or replace function app_private.record_session_event(p_user_id uuid, p_email text, p_kind text) returns void
language sql volatile security definer set search_path = pg_catalog, public as $$
  -- In the tenants the user belongs to now (a tenant they join later never sees it) …
  insert into app_public.session_events (tenant_id, user_id, email, kind)
  select m.tenant_id, p_user_id, p_email, p_kind
  from app_public.memberships m where m.user_id = p_user_id;
  -- … and in their own history, which they always see.
  insert into app_private.sign_in_history (user_id, kind, ip, user_agent)
  values (p_user_id, p_kind, app_private.request_ip(), left(nullif(current_setting('attest.user_agent', true), ''), 500));
$$;
comment on function app_private.record_session_event(uuid, text, text) is
  'Records a sign-in or sign-out in the tenants the user belongs to now and in the user''s own history.';

/**
 * Records the account's burst of failed sign-ins, if any (only once it has ended, unless
 * `p_even_if_open`): one session.sign_in_failed entry with the count and first/last time in every
 * tenant the user already belonged to when the burst began, and one row in their history. The
 * entry carries the last attempt's IP and user agent. Call under the account's burst lock.
 */
create function app_private.close_sign_in_burst(p_user_id uuid, p_even_if_open boolean) returns boolean
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_burst app_private.sign_in_bursts;
  v_ip text := current_setting('attest.ip', true);
  v_agent text := current_setting('attest.user_agent', true);
  v_request text := current_setting('attest.request_id', true);
begin
  delete from app_private.sign_in_bursts b
  where b.user_id = p_user_id and (p_even_if_open or b.first_at <= now() - interval '15 minutes')
  returning * into v_burst;
  if v_burst.user_id is null then
    return false;
  end if;
  -- The entry is about the attempts, not about whichever request happens to close the burst.
  perform set_config('attest.ip', coalesce(host(v_burst.last_ip), ''), true),
          set_config('attest.user_agent', coalesce(v_burst.last_user_agent, ''), true),
          set_config('attest.request_id', '', true);
  insert into app_public.session_events (tenant_id, user_id, email, kind, attempts, first_attempt_at, last_attempt_at)
  select m.tenant_id, v_burst.user_id, v_burst.email, 'sign_in_failed', v_burst.attempts, v_burst.first_at, v_burst.last_at
  from app_public.memberships m
  where m.user_id = v_burst.user_id and m.created_at <= v_burst.first_at;
  insert into app_private.sign_in_history (user_id, kind, ip, user_agent, attempts, first_attempt_at, last_attempt_at)
  values (v_burst.user_id, 'sign_in_failed', v_burst.last_ip, v_burst.last_user_agent, v_burst.attempts, v_burst.first_at, v_burst.last_at);
  perform set_config('attest.ip', coalesce(v_ip, ''), true),
          set_config('attest.user_agent', coalesce(v_agent, ''), true),
          set_config('attest.request_id', coalesce(v_request, ''), true);
  return true;
end;
$$;
comment on function app_private.close_sign_in_burst(uuid, boolean) is
  'Records an account''s burst of failed sign-ins as one summary (count, first and last time) and ends it.';

/** A failed sign-in of a known account: counted in its burst; an ended burst is recorded first. Records nothing per attempt. */
create function app_private.note_sign_in_failure(p_user_id uuid, p_email text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  perform pg_advisory_xact_lock(hashtextextended('attest:sign-in-burst:' || p_user_id::text, 0));
  update app_private.sign_in_bursts b
  set attempts = b.attempts + 1, last_at = now(), last_ip = app_private.request_ip(),
      last_user_agent = left(nullif(current_setting('attest.user_agent', true), ''), 500)
  where b.user_id = p_user_id and b.first_at > now() - interval '15 minutes';
  if found then
    return;
  end if;
  perform app_private.close_sign_in_burst(p_user_id, true);
  insert into app_private.sign_in_bursts (user_id, email, last_ip, last_user_agent)
  values (p_user_id, p_email, app_private.request_ip(), left(nullif(current_setting('attest.user_agent', true), ''), 500));
end;
$$;
comment on function app_private.note_sign_in_failure(uuid, text) is
  'Counts a failed sign-in in the account''s current burst (15 minutes from its first failure), recording an ended burst first.';

/** Records every burst that has ended (the worker runs this every minute). Returns how many. */
create function app_private.close_ended_sign_in_bursts() returns int
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_user uuid;
  v_closed int := 0;
begin
  for v_user in select b.user_id from app_private.sign_in_bursts b where b.first_at <= now() - interval '15 minutes' loop
    perform pg_advisory_xact_lock(hashtextextended('attest:sign-in-burst:' || v_user::text, 0));
    if app_private.close_sign_in_burst(v_user, false) then
      v_closed := v_closed + 1;
    end if;
  end loop;
  return v_closed;
end;
$$;
comment on function app_private.close_ended_sign_in_bursts() is
  'Records every burst of failed sign-ins that has ended (15 minutes after its first failure) as one summary each.';

-- The sign-in functions: failures go to the burst, a successful sign-in records the burst first.
create or replace function app_private.sign_in_attempt(email text, ip text, refuse_after int, refuse_ip_after int)
returns table (attempt_id bigint, user_id uuid, password_hash text, email_failures int, ip_failures int, refused boolean)
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_email text := lower(sign_in_attempt.email);
  v_ip inet := case when sign_in_attempt.ip ~ '^[0-9a-fA-F.:]+$' then sign_in_attempt.ip::inet end;
  v_user uuid;
  v_hash text;
  v_email_failures int;
  v_ip_failures int;
  v_attempt bigint;
begin
  perform pg_advisory_xact_lock(hashtextextended('attest:sign-in:email:' || v_email, 0));
  if v_ip is not null then
    perform pg_advisory_xact_lock(hashtextextended('attest:sign-in:ip:' || host(v_ip), 0));
  end if;
  select u.id, s.password_hash into v_user, v_hash
  from app_public.users u left join app_private.user_secrets s on s.user_id = u.id
  where u.email = v_email;
  select count(*)::int into v_email_failures from app_private.sign_in_failures f
  where f.attempted_at > now() - interval '15 minutes' and f.email = v_email;
  select count(*)::int into v_ip_failures from app_private.sign_in_failures f
  where f.attempted_at > now() - interval '15 minutes' and v_ip is not null and f.ip = v_ip;
  insert into app_private.sign_in_failures (email, ip) values (v_email, v_ip) returning id into v_attempt;
  if v_email_failures >= refuse_after or v_ip_failures >= refuse_ip_after then
    if v_user is not null then
      perform app_private.note_sign_in_failure(v_user, v_email);
    end if;
    return query select v_attempt, null::uuid, null::text, v_email_failures, v_ip_failures, true;
    return;
  end if;
  return query select v_attempt, v_user, v_hash, v_email_failures, v_ip_failures, false;
end;
$$;
comment on function app_private.sign_in_attempt(text, text, int, int) is
  'Counts recent failed sign-ins for an email and an IP and records this attempt as one, atomically (advisory locks); refuses past the limits (counted in the account''s burst).';

create or replace function app_private.sign_in_attempt_failed(email text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_user uuid := (select u.id from app_public.users u where u.email = lower(sign_in_attempt_failed.email));
begin
  if v_user is not null then
    perform app_private.note_sign_in_failure(v_user, lower(sign_in_attempt_failed.email));
  end if;
end;
$$;
comment on function app_private.sign_in_attempt_failed(text) is
  'Counts a failed sign-in (already counted for throttling by sign_in_attempt) in the account''s burst of failures.';

create or replace function app_private.sign_in_failed(email text, ip text) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_user uuid := (select u.id from app_public.users u where u.email = lower(sign_in_failed.email));
begin
  insert into app_private.sign_in_failures (email, ip)
  values (lower(sign_in_failed.email), case when ip ~ '^[0-9a-fA-F.:]+$' then ip::inet end);
  if v_user is not null then
    perform app_private.note_sign_in_failure(v_user, lower(sign_in_failed.email));
  end if;
end;
$$;

create or replace function app_private.sign_in_succeeded(p_user_id uuid) returns text
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_token text := encode(gen_random_bytes(32), 'base64');
begin
  -- Failed attempts before this sign-in are recorded first (as system: not the user's own act).
  perform pg_advisory_xact_lock(hashtextextended('attest:sign-in-burst:' || p_user_id::text, 0));
  perform app_private.close_sign_in_burst(p_user_id, true);
  v_token := translate(rtrim(v_token, '='), '+/', '-_');
  insert into app_private.sessions (token_hash, user_id) values (sha256(convert_to(v_token, 'UTF8')), p_user_id);
  perform set_config('attest.session_token', v_token, true); -- the sign-in is the user's own act
  perform app_private.record_session_event(p_user_id, (select email from app_public.users where id = p_user_id), 'signed_in');
  return v_token;
end;
$$;

create type app_public.sign_in_event as (
  kind text,
  occurred_at timestamptz,
  ip text,
  user_agent text,
  attempts int,
  first_attempt_at timestamptz,
  last_attempt_at timestamptz
);
comment on type app_public.sign_in_event is
  'One of your sign-ins, sign-outs or bursts of failed sign-ins (attempts, first and last time).';

create function app_public.my_sign_ins() returns setof app_public.sign_in_event
language sql stable security definer set search_path = pg_catalog, public as $$
  select h.kind, h.occurred_at, host(h.ip), h.user_agent, h.attempts, h.first_attempt_at, h.last_attempt_at
  from app_private.sign_in_history h
  where h.user_id = (select s.user_id from app_private.sessions s where s.id = app_public.current_session_id())
  order by h.occurred_at desc, h.id desc
$$;
comment on function app_public.my_sign_ins() is
  'Your own sign-in history, newest first: sign-ins, sign-outs and bursts of failed sign-ins (signed-in session only).';
grant execute on function app_public.my_sign_ins() to :DATABASE_VISITOR;
