--! Previous: sha1:b74427358610e0ef0259d6ad915922bb0efd7bb3
--! Hash: sha1:03f842022275cb84968007cf5136464b76c25eba
--! Message: evidence-packs

-- 000004 Evidence packs: the installation's signing keys, the build job (enqueued in the same
-- transaction as the request), downloads (audited), and the results of chain verification.

------------------------------------------------------------------------------
-- Signing keys (Ed25519, created by the server on first start; old keys stay published)
------------------------------------------------------------------------------
create table app_private.signing_keys (
  id uuid primary key default gen_random_uuid(),
  algorithm text not null default 'ed25519' check (algorithm = 'ed25519'),
  fingerprint text not null unique check (fingerprint ~ '^[0-9a-f]{64}$'),
  public_key_pem text not null,
  private_key_pem text not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);
create unique index signing_keys_one_active_idx on app_private.signing_keys ((true)) where retired_at is null;
comment on table app_private.signing_keys is
  'The installation''s Ed25519 keys. The active one (retired_at is null) signs evidence packs; retired ones stay published so old packs verify.';

create function app_public.signing_keys()
returns table (fingerprint text, public_key_pem text, created_at timestamptz, retired_at timestamptz)
language sql stable security definer set search_path = pg_catalog, public as $$
  select k.fingerprint, k.public_key_pem, k.created_at, k.retired_at
  from app_private.signing_keys k order by k.created_at
$$;
comment on function app_public.signing_keys() is
  'The public keys that sign evidence packs (SHA-256 fingerprints of the raw Ed25519 keys); retired keys included.';
grant execute on function app_public.signing_keys() to :DATABASE_VISITOR, :DATABASE_AUTHENTICATOR, :DATABASE_REPORTING;

------------------------------------------------------------------------------
-- The build job: requesting an export enqueues it in the same transaction
------------------------------------------------------------------------------
create function app_private.tg_exports__enqueue_build() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  perform graphile_worker.add_job(
    'build_evidence_pack',
    json_build_object('tenantId', new.tenant_id, 'exportId', new.id),
    job_key := 'evidence-pack:' || new.id::text,
    max_attempts := 5
  );
  return null;
end;
$$;
comment on function app_private.tg_exports__enqueue_build() is
  'Enqueues the graphile-worker job that builds a requested evidence pack; it commits or rolls back with the request.';
create trigger _700_enqueue_build after insert on app_public.exports
  for each row execute function app_private.tg_exports__enqueue_build();

------------------------------------------------------------------------------
-- Downloads: owner/admin only, recorded as export.downloaded, read chunk by chunk
------------------------------------------------------------------------------
create function app_hidden.start_export_download(export_id uuid, kind text) returns app_public.exports
language plpgsql volatile security definer set search_path = pg_catalog, public as $$
declare
  v_row app_public.exports;
begin
  if kind not in ('zip', 'pdf') then
    raise exception 'Download the pack as zip or pdf' using errcode = '22023';
  end if;
  if app_public.current_tenant_role() is null or app_public.current_tenant_role() not in ('owner', 'admin') then
    raise exception 'Only owners and admins can download evidence packs' using errcode = '42501';
  end if;
  select * into v_row from app_public.exports e
  where e.tenant_id = app_public.current_tenant_id() and e.id = start_export_download.export_id;
  if v_row.id is null then
    raise exception 'No evidence pack with that id in this tenant' using errcode = 'P0002';
  end if;
  if v_row.status <> 'ready' then
    raise exception 'This evidence pack is not ready yet (%)', v_row.status using errcode = '55000';
  end if;
  update app_public.exports e
  set download_count = e.download_count + 1, last_downloaded_at = now()
  where e.tenant_id = v_row.tenant_id and e.id = v_row.id
  returning * into v_row;
  return v_row;
end;
$$;
comment on function app_hidden.start_export_download(uuid, text) is
  'Checks that the caller may download a ready pack and records the download (audited as export.downloaded).';

create function app_hidden.export_chunk(export_id uuid, kind text, seq int) returns bytea
language sql stable security definer set search_path = pg_catalog, public as $$
  select c.data
  from app_public.exports e
  join app_private.blob_chunks c
    on c.tenant_id = e.tenant_id and c.blob_id = case kind when 'pdf' then e.pdf_blob_id else e.result_blob_id end
  where e.tenant_id = app_public.current_tenant_id() and e.id = export_chunk.export_id and e.status = 'ready'
    and app_public.current_tenant_role() in ('owner', 'admin') and c.seq = export_chunk.seq
$$;

create function app_public.exports_zip_size(e app_public.exports) returns bigint
language sql stable security definer set search_path = pg_catalog, public as $$
  select b.size_bytes from app_private.blobs b where b.tenant_id = e.tenant_id and b.id = e.result_blob_id
$$;
comment on function app_public.exports_zip_size(app_public.exports) is 'Size of the pack ZIP in bytes, once ready.';
create function app_public.exports_pdf_size(e app_public.exports) returns bigint
language sql stable security definer set search_path = pg_catalog, public as $$
  select b.size_bytes from app_private.blobs b where b.tenant_id = e.tenant_id and b.id = e.pdf_blob_id
$$;
comment on function app_public.exports_pdf_size(app_public.exports) is 'Size of the pack''s PDF report in bytes, once ready.';

grant execute on function app_hidden.start_export_download(uuid, text), app_hidden.export_chunk(uuid, text, int),
  app_public.exports_zip_size(app_public.exports), app_public.exports_pdf_size(app_public.exports)
  to :DATABASE_VISITOR;

------------------------------------------------------------------------------
-- Chain verification results (the daily job and manual checks)
------------------------------------------------------------------------------
create table app_private.chain_verifications (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references app_public.tenants,
  checked_at timestamptz not null default now(),
  valid boolean not null,
  entries bigint not null,
  last_seq bigint not null,
  first_invalid_seq bigint,
  problem text
);
create index on app_private.chain_verifications (tenant_id, checked_at desc);
comment on table app_private.chain_verifications is 'Each verification of a tenant''s audit chain (daily by the worker).';

create function app_private.record_chain_verifications() returns int
language sql volatile security definer set search_path = pg_catalog, public as $$
  with verified as (
    insert into app_private.chain_verifications (tenant_id, valid, entries, last_seq, first_invalid_seq, problem)
    select t.id, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem
    from app_public.tenants t cross join lateral app_public.verify_audit_chain(t.id) v
    returning 1
  )
  select count(*)::int from verified
$$;
comment on function app_private.record_chain_verifications() is 'Verifies every tenant''s chain and records the results.';

create function app_public.current_chain_verification()
returns table (checked_at timestamptz, valid boolean, entries bigint, last_seq bigint, first_invalid_seq bigint, problem text)
language sql stable security definer set search_path = pg_catalog, public as $$
  select v.checked_at, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem
  from app_private.chain_verifications v
  where v.tenant_id = app_public.current_tenant_id() and app_hidden.audit_log_readable()
  order by v.checked_at desc limit 1
$$;
comment on function app_public.current_chain_verification() is
  'The latest verification of the current tenant''s audit chain (owner/admin with auditLog).';
grant execute on function app_public.current_chain_verification() to :DATABASE_VISITOR;

create view reporting.chain_verifications as
  select t.slug as tenant_slug, v.checked_at, v.valid, v.entries, v.last_seq, v.first_invalid_seq, v.problem
  from app_private.chain_verifications v join app_public.tenants t on t.id = v.tenant_id;
comment on view reporting.chain_verifications is 'Every recorded verification of every tenant''s audit chain (newest last).';
grant select on reporting.chain_verifications to :DATABASE_REPORTING;

------------------------------------------------------------------------------
-- Worker liveness: jobs held by a worker that stopped beating are handed to another
------------------------------------------------------------------------------
create table app_private.worker_heartbeats (
  worker_id text primary key,
  hostname text not null,
  pid int not null,
  seen_at timestamptz not null default now()
);
comment on table app_private.worker_heartbeats is
  'Each running graphile-worker worker beats here; jobs locked by a worker whose beat stopped (a killed process) are unlocked for a retry instead of waiting 4 hours.';
