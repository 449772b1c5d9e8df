--! Previous: sha1:e703a26ff81ef17e04037f8a96282f668efff70d
--! Hash: sha1:28977bb0b3468276eaaf20aa46c500b4809a37e3
--! Message: recorded-reads

-- 000011 Reads that matter are recorded, and entries made with an API token name the token.
--
-- * Evidence downloads (`evidence.downloaded`), audit log exports (`audit_log.exported`) and proof
--   requests (`audit_log.proof_requested`) are captured like every other change: a SECURITY DEFINER
--   function checks what the caller may read and inserts one row into an append-only access table
--   (app_private.evidence_downloads, app_private.audit_log_reads); that table's capture triggers
--   write the entry with the caller's attribution (user, token, IP, user agent, request id,
--   surface). The function, not the caller, decides the action, the tenant and the resource.
-- * The name of the API token an entry was made with, as the log recorded it then
--   (`app_public.audit_log_api_token_name`, also in reporting.audit_entries).
--
-- The capture function app_private.tg__audit is unchanged. Its row helpers (audit_resource_of,
-- audit_action, audit_ignored_columns, audit_entry_of) get cases for the two access tables; they
-- are on the audit path, so this migration replaces them as a superuser (see CONVENTIONS.md).

------------------------------------------------------------------------------
-- 1. The access tables: one row per recorded read, written only by the functions below
------------------------------------------------------------------------------
create table app_private.evidence_downloads (
  tenant_id uuid not null references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  evidence_id uuid not null, -- no foreign key: the record outlives a deleted file
  incident_id uuid not null,
  filename text not null,
  size_bytes bigint not null,
  sha256 text not null,
  primary key (tenant_id, id)
);
comment on table app_private.evidence_downloads is
  'One row per evidence download (recorded as evidence.downloaded by the capture triggers). Append-only; written only by app_hidden.start_evidence_download.';

create table app_private.audit_log_reads (
  tenant_id uuid not null references app_public.tenants,
  id uuid not null default gen_random_uuid(),
  kind text not null check (kind in ('exported', 'proof_requested')),
  label text not null,
  -- exports
  format text check (format in ('csv', 'jsonl')),
  filters jsonb,
  entries bigint,
  -- proofs
  proof text check (proof in ('inclusion', 'consistency')),
  seq bigint,
  tree_size bigint,
  from_size bigint,
  to_size bigint,
  primary key (tenant_id, id),
  check ((kind = 'exported') = (format is not null and filters is not null and entries is not null)),
  check ((kind = 'proof_requested') = (proof is not null))
);
comment on table app_private.audit_log_reads is
  'One row per audit log export or proof request (recorded as audit_log.exported / audit_log.proof_requested). Append-only; written only by SECURITY DEFINER functions that check the reader.';

-- Append-only, for the owner too (app_private.tg__append_only from 000008).
create trigger _000_immutable before update or delete on app_private.evidence_downloads
  for each row execute function app_private.tg__append_only();
create trigger _000_immutable before update or delete on app_private.audit_log_reads
  for each row execute function app_private.tg__append_only();

------------------------------------------------------------------------------
-- 2. The capture helpers learn the access tables (audit path: replaced as a superuser)
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

-- Capture on the access tables (as on every audited table; see 000008 section 2).
create trigger _500_audit_insert after insert on app_private.evidence_downloads referencing new table as new_rows
  for each statement execute function app_private.tg__audit('evidence');
create trigger _500_audit_update after update on app_private.evidence_downloads referencing old table as old_rows new table as new_rows
  for each statement execute function app_private.tg__audit('evidence');
create trigger _500_audit_delete after delete on app_private.evidence_downloads referencing old table as old_rows
  for each statement execute function app_private.tg__audit('evidence');
create trigger _000_no_truncate before truncate on app_private.evidence_downloads
  for each statement execute function app_private.tg__audited_no_truncate();
create trigger _500_audit_insert after insert on app_private.audit_log_reads referencing new table as new_rows
  for each statement execute function app_private.tg__audit('audit_log');
create trigger _500_audit_update after update on app_private.audit_log_reads referencing old table as old_rows new table as new_rows
  for each statement execute function app_private.tg__audit('audit_log');
create trigger _500_audit_delete after delete on app_private.audit_log_reads referencing old table as old_rows
  for each statement execute function app_private.tg__audit('audit_log');
create trigger _000_no_truncate before truncate on app_private.audit_log_reads
  for each statement execute function app_private.tg__audited_no_truncate();

------------------------------------------------------------------------------
-- 3. Recording a read: the function checks the reader and decides what is recorded
------------------------------------------------------------------------------

-- Evidence: any member who can see the file (as app_public.evidence's read policy) may download
-- it; each call records one evidence.downloaded and returns what the download needs.
create function app_hidden.start_evidence_download(evidence_id uuid, incident_id uuid default null)
returns table (filename text, content_type text, size_bytes bigint, sha256 text)
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_tenant uuid := app_public.current_tenant_id();
  v_row app_public.evidence;
begin
  select * into v_row from app_public.evidence e
  where v_tenant is not null and e.tenant_id = v_tenant and e.id = start_evidence_download.evidence_id
    and (start_evidence_download.incident_id is null or e.incident_id = start_evidence_download.incident_id);
  if v_row.id is null then
    raise exception 'No evidence file with that id in this tenant' using errcode = 'P0002';
  end if;
  insert into app_private.evidence_downloads (tenant_id, evidence_id, incident_id, filename, size_bytes, sha256)
  values (v_row.tenant_id, v_row.id, v_row.incident_id, v_row.filename, v_row.size_bytes, encode(v_row.sha256, 'hex'));
  return query select v_row.filename, v_row.content_type, v_row.size_bytes, encode(v_row.sha256, 'hex');
end;
$$;
comment on function app_hidden.start_evidence_download(uuid, uuid) is
  'Checks that the caller may read this evidence file (of the incident, if given) and records the download (evidence.downloaded). Call it once per download, before the first byte is sent.';

-- An export of the audit log, by an owner or admin whose plan has the audit log. The server
-- states the format, the filters of the view and the number of entries the export holds.
create function app_hidden.record_audit_log_export(format text, filters jsonb, entries bigint) returns void
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
begin
  if not coalesce(app_hidden.audit_log_readable(), false) then
    raise exception 'Only owners and admins can export the audit log' using errcode = '42501';
  end if;
  if format is null or format not in ('csv', 'jsonl') then
    raise exception 'Export the audit log as csv or jsonl' using errcode = '22023';
  end if;
  if filters is null or jsonb_typeof(filters) <> 'object' or length(filters::text) > 4000 then
    raise exception 'The filters of an export are a JSON object of at most 4000 characters' using errcode = '22023';
  end if;
  if entries is null or entries < 0 then
    raise exception 'The number of exported entries must be 0 or more' using errcode = '22023';
  end if;
  insert into app_private.audit_log_reads (tenant_id, kind, label, format, filters, entries)
  values (app_public.current_tenant_id(), 'exported',
          'Audit log export (' || case format when 'csv' then 'CSV' else 'JSON Lines' end || ')',
          format, filters, entries);
end;
$$;
comment on function app_hidden.record_audit_log_export(text, jsonb, bigint) is
  'Records an export of the current tenant''s audit log (audit_log.exported) with its format, filters and number of entries (owner/admin with auditLog).';

-- A proof handed out (inside the proof functions, which check the reader first).
create function app_private.record_audit_proof_request(p_tenant uuid, p_proof text, p_seq bigint, p_tree_size bigint,
                                                       p_from bigint, p_to bigint) returns void
language sql volatile security definer set search_path = pg_catalog, public as $$
  insert into app_private.audit_log_reads (tenant_id, kind, label, proof, seq, tree_size, from_size, to_size)
  values (p_tenant, 'proof_requested',
          case p_proof when 'inclusion' then 'Inclusion proof · entry ' || p_seq || ' in tree size ' || p_tree_size
                       else 'Consistency proof · tree size ' || p_from || ' → ' || p_to end,
          p_proof, p_seq, p_tree_size, p_from, p_to)
$$;
comment on function app_private.record_audit_proof_request(uuid, text, bigint, bigint, bigint, bigint) is
  'Records a proof of the audit log handed out (audit_log.proof_requested). Not callable by clients: the proof functions call it.';

grant execute on function app_hidden.start_evidence_download(uuid, uuid), app_hidden.record_audit_log_export(text, jsonb, bigint)
  to :DATABASE_VISITOR;

-- The proof functions record what they hand out (audit path: replaced as a superuser). They stay
-- STABLE (GraphQL fields of a query); the recording function they call is volatile.
reset role;

create or replace function app_public.audit_log_inclusion_proof(e app_public.audit_log, tree_size bigint default null)
returns app_public.audit_inclusion_proof
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_seq bigint;
  v_proof app_public.audit_inclusion_proof;
begin
  if e.tenant_id is distinct from app_public.current_tenant_id() or not app_hidden.audit_log_readable() then
    return null;
  end if;
  select l.seq into v_seq from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id;
  if v_seq is null then
    return null; -- pending
  end if;
  v_proof := app_private.inclusion_proof(e.tenant_id, v_seq, audit_log_inclusion_proof.tree_size);
  perform app_private.record_audit_proof_request(e.tenant_id, 'inclusion', v_seq, v_proof.tree_size, null, null);
  return v_proof;
end;
$$;

create or replace function app_public.audit_consistency_proof(from_size bigint, to_size bigint)
returns app_public.audit_consistency_proof
language plpgsql stable security definer set search_path = pg_catalog, public as $$
declare
  v_proof app_public.audit_consistency_proof;
begin
  if not app_hidden.audit_log_readable() then
    raise exception 'Only owners and admins can read the audit log''s proofs' using errcode = '42501';
  end if;
  v_proof := app_private.consistency_proof(app_public.current_tenant_id(), from_size, to_size);
  perform app_private.record_audit_proof_request(app_public.current_tenant_id(), 'consistency', null, null, from_size, to_size);
  return v_proof;
end;
$$;

set role :DATABASE_OWNER;

------------------------------------------------------------------------------
-- 4. Which API token: its name as the log recorded it when the entry was captured
------------------------------------------------------------------------------
-- Tokens can be renamed (by the owner role) and are deleted with their membership; their
-- api_token.created / api_token.updated entries keep every name they had, so the name at the
-- time is the label of the token's latest such entry captured before (or with) this one.
create function app_public.audit_log_api_token_name(e app_public.audit_log) returns text
language sql stable set search_path = pg_catalog, public as $$
  select t.resource_label from app_public.audit_log t
  where e.api_token_id is not null and t.tenant_id = e.tenant_id
    and t.action in ('api_token.created', 'api_token.updated') and t.resource_id = e.api_token_id and t.id <= e.id
  order by t.id desc limit 1
$$;
comment on function app_public.audit_log_api_token_name(app_public.audit_log) is
  'The name of the API token the entry was made with (as it was named when the entry was captured), or null when no token was used.';
grant execute on function app_public.audit_log_api_token_name(app_public.audit_log) to :DATABASE_VISITOR;

-- Reporting: the token's name next to its id (a new last column; the lateral lookup is only
-- run for queries that read it).
create or replace view reporting.audit_entries as
  select t.slug as tenant_slug, t.name as tenant_name, e.tenant_id, l.seq, e.id as entry_id, e.occurred_at,
         e.actor_label as actor, e.actor_user_id, e.api_token_id, e.db_role, e.action, e.resource_type, e.resource_id,
         e.resource_label, e.incident_id, e.changes, e.surface, e.request_id, e.ip, e.user_agent,
         encode(l.leaf_hash, 'hex') as leaf_hash, l.sealed_at,
         (select n.resource_label from app_public.audit_log n
          where e.api_token_id is not null and n.tenant_id = e.tenant_id
            and n.action in ('api_token.created', 'api_token.updated') and n.resource_id = e.api_token_id and n.id <= e.id
          order by n.id desc limit 1) as api_token_name
  from app_public.audit_log e
  join app_public.tenants t on t.id = e.tenant_id
  left join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id;
comment on view reporting.audit_entries is
  'Every audit entry of every tenant, with the tenant''s slug, its position (seq) and leaf hash once sealed (null while pending), and the name of the API token used (as named then).';
