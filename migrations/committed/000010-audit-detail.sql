--! Previous: sha1:c04c0d5496fea7aa9f9d10b611f69cc11f13603b
--! Hash: sha1:e703a26ff81ef17e04037f8a96282f668efff70d
--! Message: audit-detail

-- 000010 Hashes in hex everywhere, and an entry's leaf for whoever checks its proof.
--
-- GraphQL gave the evidence SHA-256 as base64 (a bytea column) while the pages, packs and the
-- PDF show hex: `Evidence.sha256` is now the hex string. Checkpoints get `rootHash` (hex, as
-- inclusion proofs name it; `rootHashHex` stays) and `keyId` (the C2SP key ID of the signature
-- line, hex). `AuditLog.leaf` gives the exact leaf bytes (as text) whose SHA-256 after a 0x00 byte
-- is the leaf hash, so an owner can check an entry's proof without an evidence pack. The
-- reporting view of checkpoints adds `key_id`.

-- Evidence: the hash in hex.
comment on column app_public.evidence.sha256 is E'@behavior -*\nSHA-256 of the stored bytes (see the sha256 field: hex).';
create function app_public.evidence_sha256(e app_public.evidence) returns text
language sql immutable set search_path = pg_catalog as $$
  select encode(e.sha256, 'hex')
$$;
comment on function app_public.evidence_sha256(app_public.evidence) is
  E'@notNull\nSHA-256 of the stored bytes, in lowercase hex (as the download''s X-Content-SHA256 header and evidence packs give it).';
grant execute on function app_public.evidence_sha256(app_public.evidence) to :DATABASE_VISITOR;

-- Checkpoints: the root in hex under the name proofs use, and the signature's key ID.
create function app_public.audit_checkpoints_root_hash(c app_public.audit_checkpoints) returns text
language sql immutable set search_path = pg_catalog as $$
  select encode(c.root_hash, 'hex')
$$;
comment on function app_public.audit_checkpoints_root_hash(app_public.audit_checkpoints) is
  E'@notNull\nThe tree''s root hash in lowercase hex (the note carries it in base64).';

-- A C2SP signed note ends with its signature lines: "— <key name> <base64(4-byte key ID || signature)>".
create function app_public.audit_checkpoints_key_id(c app_public.audit_checkpoints) returns text
language sql immutable set search_path = pg_catalog as $$
  select encode(substring(decode((regexp_match(c.note, '\n\u2014 \S+ ([A-Za-z0-9+/]+=*)\s*$'))[1], 'base64') from 1 for 4), 'hex')
$$;
comment on function app_public.audit_checkpoints_key_id(app_public.audit_checkpoints) is
  'The C2SP key ID of the checkpoint''s signature (hex, 4 bytes): the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key).';
grant execute on function app_public.audit_checkpoints_root_hash(app_public.audit_checkpoints),
  app_public.audit_checkpoints_key_id(app_public.audit_checkpoints) to :DATABASE_VISITOR;

-- An entry's leaf, as the log hashed it (owners and admins of a plan with the audit log).
create function app_public.audit_log_leaf(e app_public.audit_log) returns text
language sql stable security definer set search_path = pg_catalog, public as $$
  select convert_from(app_private.audit_leaf_bytes(l.seq, l.incident_prev, app_private.audit_entry_body(e)), 'UTF8')
  from app_hidden.audit_leaves l
  where l.tenant_id = e.tenant_id and l.entry_id = e.id
    and e.tenant_id = app_public.current_tenant_id() and app_hidden.audit_log_readable()
$$;
comment on function app_public.audit_log_leaf(app_public.audit_log) is
  'The entry''s leaf in the log (UTF-8 text): its leaf hash is SHA-256(0x00 || these bytes). Null while pending.';
grant execute on function app_public.audit_log_leaf(app_public.audit_log) to :DATABASE_VISITOR;

-- What a DBA needs to confirm a pack's checkpoint: tenant, size, root (hex), the signed note,
-- the key's fingerprint and the signature's key ID, and when it was made.
create or replace view reporting.audit_checkpoints as
  select t.slug as tenant_slug, c.tenant_id, c.tree_size, encode(c.root_hash, 'hex') as root_hash, c.created_at,
         c.origin, c.note, c.key_fingerprint,
         -- (inline, not app_public.audit_checkpoints_key_id: functions in a view run with the reader's rights)
         encode(substring(decode((regexp_match(c.note, '\n\u2014 \S+ ([A-Za-z0-9+/]+=*)\s*$'))[1], 'base64') from 1 for 4), 'hex') as key_id
  from app_public.audit_checkpoints c
  join app_public.tenants t on t.id = c.tenant_id;
comment on view reporting.audit_checkpoints is
  'Every signed checkpoint of every tenant''s log: size, root hash (hex), the signed note as stored, the signing key''s fingerprint and the note''s key ID (hex).';
