/**
 * Writes an evidence pack (format version 2, src/packs/format.ts) as a ZIP to a Writable,
 * streaming: every file is read from its source once, hashed on the way into the ZIP and never
 * held whole, so memory stays flat whatever the size of the evidence. What is kept is small and
 * bounded by the incident: the manifest's file list and the position and leaf hash of each of the
 * incident's audit entries.
 *
 * The writer refuses input that would make a false pack: a checkpoint not signed by the pack's key
 * or not of this tenant's log, an entry whose leaf and proof do not lead to the checkpoint's root,
 * positions that do not increase, a broken incident link, an entry of another incident or tenant,
 * evidence whose bytes are not the ones incident.json lists, a key whose fingerprint is not the one
 * given. It throws PackBuildError and destroys the output instead of signing something false. It
 * does not read the database (the builder does) and never writes version 1.
 */
import { createHash, createPublicKey, type KeyObject, sign } from "node:crypto";
import { createRequire } from "node:module";
import { Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32, deflateRawSync } from "node:zlib";
import { stringify } from "csv-stringify/sync";
import { ZipFile } from "yazl";
import { type Checkpoint, CheckpointError, checkpointSignedBy, parseCheckpoint } from "../audit/checkpoint.ts";
import { LeafError, parseLeaf } from "../audit/leaf.ts";
import { hashLeaf } from "../audit/merkle.ts";
import {
  ENTRY_CSV_OPTIONS,
  leafCsvRow,
  linkProblem,
  type PackScope,
  type ProvenLeaf,
  proveLeaf,
  strangerProblem,
} from "./entries.ts";
import {
  CHECKPOINT_PATH,
  ENTRIES_CSV_PATH,
  ENTRIES_JSONL_PATH,
  ENTRY_CSV_COLUMNS,
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
import { readmeText } from "./readme.ts";

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
  /**
   * Deflate the file in the ZIP (default true). False stores it as it is: right for content that
   * does not compress (images, archives, encrypted data; see looksCompressible), where deflate
   * costs most of the pack's time and saves nothing.
   */
  compress?: boolean;
}

/**
 * Whether content whose samples are `samples` (a few pieces from its start, middle and end) is
 * worth deflating: a fast deflate (level 1) of the samples saves at least 10 %. Already
 * compressed or encrypted content does not.
 */
export function looksCompressible(samples: readonly Uint8Array[]): boolean {
  const total = samples.reduce((sum, s) => sum + s.byteLength, 0);
  if (total < 512) return true;
  const compressed = samples.reduce((sum, s) => sum + deflateRawSync(s, { level: 1 }).byteLength, 0);
  return compressed <= total * 0.9;
}

// yazl computes each entry's CRC-32 with buffer-crc32 (JavaScript, ~80 MB/s here: seconds of the
// main thread for a large pack). The same CRC-32 comes from zlib (native, >1 GB/s): yazl's copy
// of buffer-crc32 is given zlib's for what yazl calls (a number or nothing as the previous CRC).
{
  const yazlRequire = createRequire(createRequire(import.meta.url).resolve("yazl"));
  const bufferCrc32 = yazlRequire("buffer-crc32") as {
    unsigned: (buffer: Uint8Array | string, previous?: number | Uint8Array) => number;
    __zlib?: true;
  };
  if (!bufferCrc32.__zlib) {
    const original = bufferCrc32.unsigned;
    bufferCrc32.unsigned = (buffer, previous) =>
      previous === undefined || typeof previous === "number"
        ? crc32(buffer, previous ?? 0)
        : original(buffer, previous);
    bufferCrc32.__zlib = true;
  }
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
   * The signed checkpoint note of the tenant's log (audit_checkpoints.note, exactly as stored),
   * signed by signingKey under the origin `<prefix>/audit/<tenant id>`.
   */
  checkpoint: string;
  /**
   * Every sealed audit entry of the incident up to the checkpoint's tree size, oldest first, each
   * with its inclusion proof in that tree. Called twice (entries.jsonl, then entries.csv): each call
   * must yield the same entries (app_private.incident_leaves(tenant, incident, tree size) does).
   */
  entries: () => AsyncIterable<PackEntry>;
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

/** One audit entry of the incident, as sealed in the tenant's log. */
export interface PackEntry {
  /** Its position in the tenant's log (1-based). */
  seq: number;
  /** The exact leaf bytes (UTF-8 text). */
  leaf: Uint8Array;
  /** Its RFC 9162 inclusion proof in the tree of the checkpoint's size, leaf side first. */
  proof: readonly Uint8Array[];
}

/** The input cannot make a valid pack (a builder bug, or a broken audit log in the database). */
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

/** The pack's checkpoint: parsed, signed by the pack's key, of this tenant's log. */
function checkCheckpoint(note: string, publicKey: KeyObject, tenantId: string): Checkpoint {
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(note);
  } catch (error) {
    if (error instanceof CheckpointError) throw new PackBuildError(`the checkpoint is malformed: ${error.message}`);
    throw error;
  }
  if (!checkpoint.origin.endsWith(`/audit/${tenantId}`)) {
    throw new PackBuildError(`the checkpoint is of the log ${checkpoint.origin}, not of tenant ${tenantId}'s`);
  }
  if (!checkpointSignedBy(checkpoint, publicKey)) {
    throw new PackBuildError(`the checkpoint of ${checkpoint.origin} is not signed by the pack's signing key`);
  }
  return checkpoint;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** One entry checked against the checkpoint, the incident and the entry before it; its JSONL line's parts. */
function checkEntry(entry: PackEntry, previous: ProvenLeaf | null, scope: PackScope): ProvenLeaf & { text: string } {
  const { seq } = entry;
  if (!Number.isSafeInteger(seq) || seq <= (previous?.leaf.seq ?? 0)) {
    throw new PackBuildError(
      `audit entry ${seq} comes after entry ${previous?.leaf.seq ?? 0}: entries must be oldest first`,
    );
  }
  let text: string;
  try {
    text = utf8.decode(entry.leaf);
  } catch {
    throw new PackBuildError(`audit entry ${seq}: its leaf is not UTF-8 text`);
  }
  let proven: ProvenLeaf;
  try {
    proven = proveLeaf(seq, text, entry.proof, scope);
  } catch (error) {
    if (error instanceof LeafError) throw new PackBuildError(`audit entry ${seq}: ${error.message}`);
    throw error;
  }
  const problem =
    strangerProblem(proven.leaf, scope) ??
    linkProblem(proven.leaf, previous && { seq: previous.leaf.seq, leafHash: previous.leafHash });
  if (problem) throw new PackBuildError(`audit entry ${seq} ${problem}`);
  return { ...proven, text };
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
  const checkpoint = checkCheckpoint(options.checkpoint, createPublicKey(key.publicKeyPem), tenant.id);
  const checkpointText = Buffer.from(options.checkpoint, "utf8");
  const scope: PackScope = {
    tenantId: tenant.id,
    incidentId: incident.id,
    treeSize: checkpoint.treeSize,
    rootHash: checkpoint.rootHash,
  };

  const readme = Buffer.from(
    readmeText({ tenant, incident, generatedAt, toolVersion, fingerprint: key.fingerprint, checkpoint }),
    "utf8",
  );
  const incidentJson = jsonFile(incidentFile);

  let written = 0;
  let expected =
    readme.length +
    incidentJson.length +
    checkpointText.length +
    options.evidence.reduce((sum, e) => sum + e.size, 0) +
    (options.reportSize ?? 0);
  const progress = (bytes: number, sizeKnownInAdvance: boolean) => {
    written += bytes;
    if (!sizeKnownInAdvance) expected += bytes;
    options.onProgress?.(written, expected);
  };

  const files: ManifestFile[] = [];
  const entrySeqs: number[] = [];
  const leafHashes: string[] = [];
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
    let previous: ProvenLeaf | null = null;
    for await (const entry of options.entries()) {
      const proven = checkEntry(entry, previous, scope);
      previous = proven;
      entrySeqs.push(entry.seq);
      leafHashes.push(proven.leafHash);
      const proof = entry.proof.map((p) => Buffer.from(p).toString("hex"));
      yield `${JSON.stringify({ seq: entry.seq, leaf: proven.text, proof })}\n`;
    }
  }

  async function* entriesCsv(): AsyncGenerator<string> {
    yield stringify([], { ...ENTRY_CSV_OPTIONS, header: true, columns: [...ENTRY_CSV_COLUMNS], bom: true });
    let i = 0;
    for await (const entry of options.entries()) {
      // The same leaf as in entries.jsonl (same position and hash) was proven there: parse it only.
      const leafHash = hashLeaf(entry.leaf).toString("hex");
      if (entry.seq !== entrySeqs[i] || leafHash !== leafHashes[i]) {
        throw new PackBuildError(
          `the audit entries changed between entries.jsonl and entries.csv (entry ${entry.seq}): read them in one snapshot, bounded by the checkpoint's tree size`,
        );
      }
      i++;
      yield stringify([leafCsvRow(parseLeaf(utf8.decode(entry.leaf)), leafHash)], ENTRY_CSV_OPTIONS);
    }
    if (i !== entrySeqs.length) {
      throw new PackBuildError(`entries.csv got ${i} audit entries, entries.jsonl ${entrySeqs.length}`);
    }
  }

  function buildManifest(): Manifest {
    return {
      format: PACK_FORMAT,
      tool: { name: "attest", version: toolVersion },
      generated_at: generatedAt,
      tenant,
      incident,
      files,
      audit: {
        entries: entrySeqs,
        checkpoint: {
          origin: checkpoint.origin,
          tree_size: checkpoint.treeSize,
          root_hash: checkpoint.rootHash.toString("hex"),
        },
      },
      signing_key: { algorithm: "ed25519", fingerprint: key.fingerprint, public_key_pem: key.publicKeyPem },
    };
  }

  const zip = new ZipFile();
  const zipOutput = zip.outputStream as Readable;
  const mtime = options.generatedAt;
  const pending = new Set<AsyncIterable<unknown>>([...options.evidence.map((e) => e.content), options.report]);
  let active: Readable | undefined;
  let failure: unknown;
  const fail = (error: unknown) => {
    failure ??= error;
    active?.destroy();
    zipOutput.destroy(error instanceof Error ? error : new Error(String(error)));
  };
  zip.on("error", fail);

  /** Adds a file whose content is produced only when the ZIP gets to it (yazl adds files one at a time, in order). */
  function addFile(path: string, open: () => AsyncIterable<Uint8Array>, size?: number, compress = true) {
    zip.addReadStreamLazy(path, { mtime, compress, ...(size === undefined ? {} : { size }) }, (callback) => {
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
    addFile(
      path,
      () => {
        pending.delete(e.content);
        return measure(path, e.content, known);
      },
      undefined,
      e.compress ?? true,
    );
  }
  addFile(ENTRIES_JSONL_PATH, () => measure(ENTRIES_JSONL_PATH, entriesJsonl(), { sizeKnownInAdvance: false }));
  addFile(ENTRIES_CSV_PATH, () => measure(ENTRIES_CSV_PATH, entriesCsv(), { sizeKnownInAdvance: false }));
  addFile(
    CHECKPOINT_PATH,
    () => measure(CHECKPOINT_PATH, once(checkpointText), { sizeKnownInAdvance: true }),
    checkpointText.length,
  );
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
      // A Transform gets the ZIP's pieces one by one (an async iteration would join what is buffered).
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          zipSize += chunk.length;
          done(null, chunk);
        },
      }),
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
