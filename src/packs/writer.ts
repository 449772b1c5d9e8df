/**
 * Writes an evidence pack (src/packs/format.ts) as a ZIP to a Writable, streaming: every file is
 * read from its source once, hashed on the way into the ZIP and never held whole, so memory stays
 * flat whatever the size of the evidence. What is kept is small and bounded by the incident: the
 * manifest's file list and the seq/hash of each of the incident's audit entries.
 *
 * The writer refuses input that would make a pack fail verification (an entry whose hash does not
 * match its document, a chain with a gap, evidence whose bytes are not the ones incident.json
 * lists, a key whose fingerprint is not the one given): it throws PackBuildError and destroys the
 * output instead of signing something false. It does not read the database; the builder does.
 */
import { createHash, createPublicKey, type KeyObject, sign } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { stringify } from "csv-stringify/sync";
import { ZipFile } from "yazl";
import { auditHash, canonicalJson } from "./canonical.ts";
import {
  CHAIN_PATH,
  type ChainLink,
  ENTRIES_CSV_PATH,
  ENTRIES_JSONL_PATH,
  ENTRY_CSV_COLUMNS,
  type EntryLine,
  formatFingerprint,
  INCIDENT_PATH,
  type IncidentFile,
  MANIFEST_PATH,
  type Manifest,
  type ManifestFile,
  PACK_FORMAT,
  README_PATH,
  REPORT_PATH,
  SIGNATURE_PATH,
} from "./format.ts";

/** The installation's signing key. */
export interface PackSigningKey {
  privateKey: KeyObject;
  /** SPKI PEM of the public half of privateKey. */
  publicKeyPem: string;
  /** publicKeyFingerprint() of it: 64 hex digits (colons, as formatFingerprint prints them, are accepted). */
  fingerprint: string;
}

/** One evidence file. Its bytes must be the ones incident.json lists (same size and SHA-256). */
export interface PackEvidence {
  id: string;
  filename: string;
  size: number;
  /** The bytes, in chunks of bounded size (a Readable works). Not read before the file's turn. */
  content: AsyncIterable<Uint8Array>;
}

export interface WritePackOptions {
  /** Where the ZIP goes (a file, an upload stream). Ended when the pack is complete, destroyed on failure. */
  output: Writable;
  /** incident.json: the incident, its tenant, milestones and evidence index (paths from evidencePath()). */
  incident: IncidentFile;
  signingKey: PackSigningKey;
  toolVersion: string;
  generatedAt: Date;
  /** The evidence files, in the order they go into the ZIP; exactly the ones incident.evidence lists. */
  evidence: PackEvidence[];
  /**
   * The incident's audit entries, oldest first. Called twice (entries.jsonl, then entries.csv): each
   * call must yield the same entries, so bound the query by the head's seq or read in one snapshot.
   */
  entries: () => AsyncIterable<EntryLine>;
  /** The tenant's chain from the incident's first entry to the head, oldest first. Its last link is the signed head. */
  chain: AsyncIterable<ChainLink>;
  /** report.pdf, e.g. a Readable. */
  report: AsyncIterable<Uint8Array>;
  /** The report's size if known in advance (makes progress percentages steadier). */
  reportSize?: number;
  /**
   * Called as content goes into the pack: bytes of file content written so far, and the total
   * expected. The total is the sizes known in advance (README, incident.json, evidence, report if
   * reportSize) plus the audit files as they stream, so it can grow a little near the end; on the
   * last call both are equal. Called once per chunk: throttle before writing it anywhere.
   */
  onProgress?: (bytesWritten: number, totalBytesExpected: number) => void;
  /** Aborts the write: the output is destroyed and writePack rejects. */
  signal?: AbortSignal;
}

export interface WrittenPack {
  manifest: Manifest;
  /** SHA-256 (hex) of the exact bytes of manifest.json. */
  manifestSha256: string;
  /** manifest.sig: base64 Ed25519 signature of manifest.json. */
  signature: string;
  /** Bytes of the ZIP written to the output. */
  zipSize: number;
}

/** The input cannot make a valid pack (a builder bug, or a broken audit chain in the database). */
export class PackBuildError extends Error {
  override name = "PackBuildError";
}

/** Where an evidence file goes in the pack: evidence/<first 8 characters of its id>-<filename>. */
export function evidencePath(id: string, filename: string): string {
  return `evidence/${id.slice(0, 8)}-${filename}`;
}

/** The fingerprint of an Ed25519 public key: SHA-256 (hex) of its raw 32 bytes. */
export function publicKeyFingerprint(publicKey: KeyObject | string): string {
  const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey;
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`not an Ed25519 key (${key.asymmetricKeyType})`);
  const jwk = key.export({ format: "jwk" });
  const raw = Buffer.from(jwk.x ?? "", "base64url");
  if (raw.length !== 32) throw new Error("not an Ed25519 public key");
  return createHash("sha256").update(raw).digest("hex");
}

/** Options of audit/entries.csv. Cells that start like a formula get a leading ' (OWASP CSV injection). */
export const ENTRY_CSV_OPTIONS = { escape_formulas: true, record_delimiter: "\r\n" } as const;

/** The cells of an entry's row in audit/entries.csv (ENTRY_CSV_COLUMNS), before CSV encoding. */
export function entryCsvRow(line: EntryLine): string[] {
  const d = line.document;
  const cells: Record<(typeof ENTRY_CSV_COLUMNS)[number], string> = {
    seq: String(d.seq),
    occurred_at: d.occurred_at,
    actor: d.actor_label,
    action: d.action,
    resource_type: d.resource_type,
    resource_id: d.resource_id ?? "",
    resource_label: d.resource_label ?? "",
    incident_id: d.incident_id ?? "",
    request_id: d.request_id ?? "",
    ip: d.ip ?? "",
    user_agent: d.user_agent ?? "",
    surface: d.surface,
    db_role: d.db_role,
    changes: canonicalJson(d.changes),
    prev_hash: d.prev_hash ?? "",
    hash: line.hash,
  };
  return ENTRY_CSV_COLUMNS.map((c) => cells[c]);
}

function jsonFile(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, "utf8");
}

function normalizeHex(fingerprint: string): string {
  return fingerprint.replaceAll(":", "").toLowerCase();
}

function checkSigningKey(key: PackSigningKey): { fingerprint: string; publicKeyPem: string } {
  const { privateKey } = key;
  if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== "ed25519") {
    throw new PackBuildError("the signing key must be an Ed25519 private key");
  }
  const derived = createPublicKey(privateKey);
  let given: KeyObject;
  try {
    given = createPublicKey(key.publicKeyPem);
  } catch (error) {
    throw new PackBuildError(`the signing key's public key PEM cannot be read: ${(error as Error).message}`);
  }
  if (!derived.equals(given)) throw new PackBuildError("the public key PEM is not the public half of the signing key");
  const fingerprint = publicKeyFingerprint(derived);
  if (normalizeHex(key.fingerprint) !== fingerprint) {
    throw new PackBuildError(`the signing key's fingerprint is ${fingerprint}, not ${key.fingerprint}`);
  }
  return { fingerprint, publicKeyPem: derived.export({ type: "spki", format: "pem" }).toString() };
}

function checkEvidence(incident: IncidentFile, evidence: PackEvidence[]): Map<string, string> {
  const listed = new Map(incident.evidence.map((e) => [e.id, e]));
  const expectedSha = new Map<string, string>();
  const paths = new Set<string>();
  for (const file of evidence) {
    const { id, filename, size } = file;
    if (filename === "" || filename === "." || filename === ".." || /[/\\\p{Cc}]/u.test(filename)) {
      throw new PackBuildError(`evidence ${id}: the filename ${JSON.stringify(filename)} cannot be a path in the pack`);
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new PackBuildError(`evidence ${id}: invalid size ${size}`);
    const path = evidencePath(id, filename);
    if (paths.has(path)) throw new PackBuildError(`two evidence files would both be ${path}`);
    paths.add(path);
    const entry = listed.get(id);
    if (!entry) throw new PackBuildError(`evidence ${id} (${filename}) is not in incident.json's evidence index`);
    if (entry.path !== path || entry.size !== size || entry.filename !== filename) {
      throw new PackBuildError(
        `evidence ${id}: incident.json lists ${entry.path} (${entry.size} bytes), the file is ${path} (${size} bytes)`,
      );
    }
    expectedSha.set(path, entry.sha256.toLowerCase());
    listed.delete(id);
  }
  for (const missing of listed.values()) {
    throw new PackBuildError(`incident.json lists evidence ${missing.id} (${missing.filename}) but no file was given`);
  }
  return expectedSha;
}

function isHash(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value);
}

/**
 * Writes the pack to options.output and resolves once the output has finished. On any failure
 * (a source throws, the input is inconsistent, the output fails, the signal aborts) the output is
 * destroyed, the source being read is destroyed, and the promise rejects.
 */
export async function writePack(options: WritePackOptions): Promise<WrittenPack> {
  const { incident: incidentFile, output } = options;
  const key = checkSigningKey(options.signingKey);
  const expectedEvidenceSha = checkEvidence(incidentFile, options.evidence);
  const tenant = { id: incidentFile.tenant.id, slug: incidentFile.tenant.slug, name: incidentFile.tenant.name };
  const incident = { id: incidentFile.incident.id, title: incidentFile.incident.title };
  const generatedAt = options.generatedAt.toISOString();
  const toolVersion = options.toolVersion;

  const readme = Buffer.from(
    readmeText({ tenant, incident, generatedAt, toolVersion, fingerprint: key.fingerprint }),
    "utf8",
  );
  const incidentJson = jsonFile(incidentFile);

  let written = 0;
  let expected =
    readme.length +
    incidentJson.length +
    options.evidence.reduce((sum, e) => sum + e.size, 0) +
    (options.reportSize ?? 0);
  const progress = (bytes: number, sizeKnownInAdvance: boolean) => {
    written += bytes;
    if (!sizeKnownInAdvance) expected += bytes;
    options.onProgress?.(written, expected);
  };

  const files: ManifestFile[] = [];
  const entrySeqs: number[] = [];
  const entryHashes: string[] = [];
  const entryPrevHashes = new Map<number, { hash: string; prevHash: string | null }>();
  let chainFrom: number | undefined;
  let head: { seq: number; hash: string } | undefined;
  let manifestBytes: Buffer | undefined;
  let signature: string | undefined;

  /** Streams one file's content, checking, counting and hashing it; adds it to the manifest at the end. */
  async function* measure(
    path: string,
    source: AsyncIterable<Uint8Array | string>,
    known: { size?: number; sha256?: string; sizeKnownInAdvance: boolean },
  ): AsyncGenerator<Uint8Array> {
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of source) {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
      if (!(bytes instanceof Uint8Array))
        throw new PackBuildError(`${path}: its source yielded something other than bytes`);
      size += bytes.byteLength;
      if (known.size !== undefined && size > known.size) {
        throw new PackBuildError(`${path}: the source has more than the ${known.size} bytes announced`);
      }
      hash.update(bytes);
      progress(bytes.byteLength, known.sizeKnownInAdvance);
      yield bytes;
    }
    if (known.size !== undefined && size !== known.size) {
      throw new PackBuildError(`${path}: the source has ${size} bytes, ${known.size} were announced`);
    }
    const sha256 = hash.digest("hex");
    if (known.sha256 !== undefined && sha256 !== known.sha256) {
      throw new PackBuildError(`${path}: its SHA-256 is ${sha256}, incident.json lists ${known.sha256}`);
    }
    files.push({ path, size, sha256 });
  }

  async function* entriesJsonl(): AsyncGenerator<string> {
    let previous = 0;
    for await (const line of options.entries()) {
      const d = line.document;
      if (!Number.isSafeInteger(d.seq) || d.seq <= previous) {
        throw new PackBuildError(`audit entry ${d.seq} comes after entry ${previous}: entries must be oldest first`);
      }
      previous = d.seq;
      if (line.hash !== auditHash(d as unknown as Record<string, unknown>)) {
        throw new PackBuildError(
          `audit entry ${d.seq}: its hash does not match its document (is the tenant's audit chain intact?)`,
        );
      }
      if (d.tenant_id !== tenant.id || d.incident_id !== incident.id) {
        throw new PackBuildError(`audit entry ${d.seq} belongs to incident ${d.incident_id}, not ${incident.id}`);
      }
      entrySeqs.push(d.seq);
      entryHashes.push(line.hash);
      entryPrevHashes.set(d.seq, { hash: line.hash, prevHash: d.prev_hash });
      yield `${JSON.stringify({ document: d, hash: line.hash })}\n`;
    }
  }

  async function* entriesCsv(): AsyncGenerator<string> {
    yield stringify([], { ...ENTRY_CSV_OPTIONS, header: true, columns: [...ENTRY_CSV_COLUMNS], bom: true });
    let i = 0;
    for await (const line of options.entries()) {
      if (line.document.seq !== entrySeqs[i] || line.hash !== entryHashes[i]) {
        throw new PackBuildError(
          `the audit entries changed between entries.jsonl and entries.csv (entry ${line.document.seq}): read them in one snapshot or bounded by the head's seq`,
        );
      }
      i++;
      yield stringify([entryCsvRow(line)], ENTRY_CSV_OPTIONS);
    }
    if (i !== entrySeqs.length) {
      throw new PackBuildError(`entries.csv got ${i} audit entries, entries.jsonl ${entrySeqs.length}`);
    }
  }

  async function* chainJsonl(): AsyncGenerator<string> {
    let last: ChainLink | undefined;
    let entriesSeen = 0;
    for await (const link of options.chain) {
      if (
        !Number.isSafeInteger(link.seq) ||
        !isHash(link.hash) ||
        !(link.prev_hash === null || isHash(link.prev_hash))
      ) {
        throw new PackBuildError(`chain link ${JSON.stringify(link)} is malformed`);
      }
      if (last === undefined) {
        chainFrom = link.seq;
        if (entrySeqs.length > 0 && link.seq !== entrySeqs[0]) {
          throw new PackBuildError(
            `the chain starts at ${link.seq}, not at the incident's first entry ${entrySeqs[0]}`,
          );
        }
      } else if (link.seq !== last.seq + 1) {
        throw new PackBuildError(`the chain jumps from ${last.seq} to ${link.seq}`);
      } else if (link.prev_hash !== last.hash) {
        throw new PackBuildError(
          `chain link ${link.seq} does not link to ${last.seq} (is the tenant's audit chain intact?)`,
        );
      }
      const entry = entryPrevHashes.get(link.seq);
      if (entry) {
        if (entry.hash !== link.hash || entry.prevHash !== link.prev_hash) {
          throw new PackBuildError(`audit entry ${link.seq} does not match its chain link`);
        }
        entriesSeen++;
      }
      last = link;
      yield `${JSON.stringify({ seq: link.seq, prev_hash: link.prev_hash, hash: link.hash })}\n`;
    }
    if (last === undefined) throw new PackBuildError("the chain is empty: a pack needs at least the head");
    if (entriesSeen !== entrySeqs.length) {
      throw new PackBuildError(`the chain ends at ${last.seq} before the incident's last entry ${entrySeqs.at(-1)}`);
    }
    head = { seq: last.seq, hash: last.hash };
  }

  function buildManifest(): Manifest {
    if (chainFrom === undefined || head === undefined) throw new PackBuildError("the chain was not written");
    return {
      format: PACK_FORMAT,
      tool: { name: "attest", version: toolVersion },
      generated_at: generatedAt,
      tenant,
      incident,
      files,
      audit: { entries: entrySeqs, chain_from: chainFrom, head },
      signing_key: { algorithm: "ed25519", fingerprint: key.fingerprint, public_key_pem: key.publicKeyPem },
    };
  }

  const zip = new ZipFile();
  const zipOutput = zip.outputStream as Readable;
  const mtime = options.generatedAt;
  const pending = new Set<AsyncIterable<unknown>>([
    ...options.evidence.map((e) => e.content),
    options.chain,
    options.report,
  ]);
  let active: Readable | undefined;
  let failure: unknown;
  const fail = (error: unknown) => {
    failure ??= error;
    active?.destroy();
    zipOutput.destroy(error instanceof Error ? error : new Error(String(error)));
  };
  zip.on("error", fail);

  /** Adds a file whose content is produced only when the ZIP gets to it (yazl adds files one at a time, in order). */
  function addFile(path: string, open: () => AsyncIterable<Uint8Array>, size?: number) {
    zip.addReadStreamLazy(path, { mtime, compress: true, ...(size === undefined ? {} : { size }) }, (callback) => {
      try {
        const readable = Readable.from(open(), { objectMode: false });
        readable.once("error", fail);
        active = readable;
        callback(null, readable);
      } catch (error) {
        callback(error, undefined as unknown as Readable);
      }
    });
  }
  const once = (bytes: Buffer) => Readable.from([bytes], { objectMode: false });

  addFile(README_PATH, () => measure(README_PATH, once(readme), { sizeKnownInAdvance: true }), readme.length);
  addFile(INCIDENT_PATH, () => measure(INCIDENT_PATH, once(incidentJson), { sizeKnownInAdvance: true }));
  for (const e of options.evidence) {
    const path = evidencePath(e.id, e.filename);
    const known = { size: e.size, sha256: expectedEvidenceSha.get(path), sizeKnownInAdvance: true };
    addFile(path, () => {
      pending.delete(e.content);
      return measure(path, e.content, known);
    });
  }
  addFile(ENTRIES_JSONL_PATH, () => measure(ENTRIES_JSONL_PATH, entriesJsonl(), { sizeKnownInAdvance: false }));
  addFile(ENTRIES_CSV_PATH, () => measure(ENTRIES_CSV_PATH, entriesCsv(), { sizeKnownInAdvance: false }));
  addFile(CHAIN_PATH, () => {
    pending.delete(options.chain);
    return measure(CHAIN_PATH, chainJsonl(), { sizeKnownInAdvance: false });
  });
  addFile(REPORT_PATH, () => {
    pending.delete(options.report);
    const known = { size: options.reportSize, sizeKnownInAdvance: options.reportSize !== undefined };
    return measure(REPORT_PATH, options.report, known);
  });
  addFile(MANIFEST_PATH, () => {
    manifestBytes = jsonFile(buildManifest());
    signature = sign(null, manifestBytes, options.signingKey.privateKey).toString("base64");
    return once(manifestBytes);
  });
  addFile(SIGNATURE_PATH, () => once(Buffer.from(signature ?? "", "ascii")));
  zip.end();

  let zipSize = 0;
  try {
    await pipeline(
      zipOutput,
      async function* count(source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          zipSize += chunk.length;
          yield chunk;
        }
      },
      output,
      { signal: options.signal },
    );
  } catch (error) {
    active?.destroy();
    // Sources the ZIP never got to are left unread: close the ones that hold resources (streams).
    for (const source of pending) (source as Partial<Readable>).destroy?.();
    throw failure ?? error;
  }
  if (manifestBytes === undefined || signature === undefined) throw new PackBuildError("the manifest was not written");
  return {
    manifest: JSON.parse(manifestBytes.toString("utf8")) as Manifest,
    manifestSha256: createHash("sha256").update(manifestBytes).digest("hex"),
    signature,
    zipSize,
  };
}

function readmeText(p: {
  tenant: Manifest["tenant"];
  incident: Manifest["incident"];
  generatedAt: string;
  toolVersion: string;
  fingerprint: string;
}): string {
  return `Attest evidence pack
====================

Incident:   ${p.incident.title} (${p.incident.id})
Workspace:  ${p.tenant.name} (${p.tenant.slug})
Generated:  ${p.generatedAt} by Attest ${p.toolVersion}
Signed by:  Ed25519 key ${formatFingerprint(p.fingerprint)}

This ZIP is a self-contained, tamper-evident record of one incident. Before you trust it, check
that the fingerprint above is one the Attest installation that made it publishes, at
https://<installation>/.well-known/attest-signing-keys.json (retired keys stay listed), or one its
administrators give you by another channel: anyone can sign a pack with a key of their own.

What is inside
--------------
  README.txt            this file
  incident.json         the incident, its NIS2 milestones and the index of its evidence files
  evidence/             every evidence file, byte for byte, named <first 8 characters of its id>-<filename>
  audit/entries.jsonl   the incident's audit entries, oldest first, one per line: {"document": {...}, "hash": "..."}
  audit/entries.csv     the same entries as a spreadsheet (UTF-8; a cell that starts with = + - @ or a
                        tab gets a leading ' so that spreadsheets do not run it as a formula)
  audit/chain.jsonl     the workspace's hash chain from the incident's first entry to the signed head,
                        one link per line: {"seq": n, "prev_hash": "...", "hash": "..."}; links of other
                        entries show only their hashes
  report.pdf            the report for people
  manifest.json         every other file's path, size and SHA-256, the entries, the chain's head, the key
  manifest.sig          the Ed25519 signature (base64) of the exact bytes of manifest.json

Verify with Attest
------------------
In a checkout of Attest (npm install done), with the fingerprint the installation publishes:

  npm run verify -- pack.zip --key <fingerprint>

It prints one line, VALID: ... or INVALID: <check>: <what is wrong>, and exits 0 or 1. It needs
no network and no database. The fingerprint may also be given as ATTEST_TRUSTED_KEYS=<fp>,<fp>.

Verify by hand (OpenSSL 3, jq, sha256sum), in the directory where the ZIP was extracted
-----------------------------------------------------------------------------------------
1. The signature, and the key that made it:

     jq -r .signing_key.public_key_pem manifest.json > key.pem
     base64 -d manifest.sig > manifest.sig.bin
     openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in manifest.json -sigfile manifest.sig.bin
     openssl pkey -pubin -in key.pem -outform DER | tail -c 32 | sha256sum

   The first command must print "Signature Verified Successfully". The last prints the key's
   fingerprint: it must equal signing_key.fingerprint in manifest.json and the fingerprint the
   installation publishes (without the colons).

2. Every file: for each entry of "files" in manifest.json, the file exists, has that size in bytes
   and that SHA-256 (sha256sum <path>). The ZIP holds no other file than these, manifest.json and
   manifest.sig.

3. Every audit entry: for each line of audit/entries.jsonl, the SHA-256 (hex) of the canonical JSON
   of "document" equals "hash". Canonical JSON: object keys sorted by Unicode code point, no white
   space, strings escaped as JSON.stringify escapes them, integers as plain digits. The documents'
   "seq" are audit.entries of manifest.json, in that order, and each document's incident_id and
   tenant_id are this incident's and this workspace's. audit/entries.csv has the same rows.
   jq prints the canonical JSON of a document with jq -jcS .document (except for text holding
   the DEL character U+007F, which jq escapes), so this finds any altered entry:

     while IFS= read -r l; do
       [ "$(printf '%s' "$l" | jq -jcS .document | sha256sum | cut -c1-64)" = "$(printf '%s' "$l" | jq -r .hash)" ] ||
         echo "altered: $(printf '%s' "$l" | jq .document.seq)"
     done < audit/entries.jsonl

4. The chain: audit/chain.jsonl runs from audit.chain_from to audit.head.seq without a gap; each
   link's prev_hash is the previous link's hash; the last link is audit.head. Every audit entry is
   in the chain with the same hash, and its document's prev_hash is its link's prev_hash. So no
   entry can be changed, removed or moved without breaking the chain up to the signed head.

What the signature cannot show: that whoever holds the signing key did not rebuild or trim the
history before signing (an entry left out of entries.jsonl whose link stays in the chain looks like
another incident's entry). To rule that out, ask the installation to confirm that its audit chain
has audit.head.hash at audit.head.seq and that the incident has exactly the entries audit.entries
lists, or compare with other packs of the same workspace: where their chains overlap, every link
must be the same.
`;
}
