/**
 * Offline verification of an evidence pack (src/packs/format.ts): the same code runs in
 * `npm run verify` and in the app. It needs the ZIP only (no network, no database) and says which
 * check failed, naming the file or entry, in words a person understands.
 *
 * Checks, in order, stopping at the first failure:
 *   pack       the ZIP opens and has a readable manifest.json (of format version 1 or 2) and manifest.sig
 *   signature  manifest.sig verifies with the manifest's public key, whose fingerprint is the one the
 *              manifest names (and one of the trusted fingerprints, when given)
 *   files      every file the manifest lists is there with its size and SHA-256, and nothing else is
 *              (ZIP directory entries, names ending in "/", are not files: `zip -r` adds them)
 * then the audit checks of the pack's version:
 *   version 2 (verify-v2.ts)  checkpoint, entries (inclusion proofs, incident links), csv
 *   version 1 (verify-v1.ts)  entries (hashes of canonical documents), csv, chain
 *
 * File contents are streamed (hashing a 200 MB evidence file does not load it). What is kept in
 * memory is bounded by the incident: the manifest and the position and hash of each of its entries.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import { type Entry, openPromise, type ZipFile } from "yauzl";
import {
  type AnyManifest,
  formatFingerprint,
  MANIFEST_PATH,
  PACK_FORMAT,
  PACK_FORMAT_V1,
  SIGNATURE_PATH,
} from "./format.ts";
import { Failure, isHash, isObject, isString, openEntry, readSmallEntry, type VerifyCheck } from "./verify-shared.ts";
import { auditProblemV1, checkAuditV1, REQUIRED_FILES_V1 } from "./verify-v1.ts";
import { auditProblemV2, type CheckpointSummary, checkAuditV2, REQUIRED_FILES_V2 } from "./verify-v2.ts";
import { publicKeyFingerprint } from "./writer.ts";

export type { VerifyCheck } from "./verify-shared.ts";
export type { CheckpointSummary } from "./verify-v2.ts";

export interface VerifySummary {
  format: typeof PACK_FORMAT | typeof PACK_FORMAT_V1;
  incident: { id: string; title: string };
  tenant: { id: string; slug: string; name: string };
  generatedAt: string;
  /** Audit entries of the incident. */
  entries: number;
  /** Files the manifest covers (every file but manifest.json and manifest.sig). */
  files: number;
  evidenceFiles: number;
  /** Fingerprint of the signing key, 64 hex digits. */
  fingerprint: string;
  /** Whether the key was checked against trusted fingerprints (false when none were given). */
  keyTrusted: boolean;
  /** Version 2: the signed checkpoint every entry is proven against. */
  checkpoint?: CheckpointSummary;
  /** Version 1: the chain head the manifest signs. */
  head?: { seq: number; hash: string };
}

export type Verdict =
  | { ok: true; summary: VerifySummary }
  | { ok: false; check: VerifyCheck; file?: string; entry?: number; message: string };

export interface VerifyOptions {
  /** Fingerprints of the installation's keys (hex, colons allowed). When given, the pack must be signed by one. */
  trustedFingerprints?: string[];
}

/** A fingerprint as typed by a person (colons, spaces, upper case) as 64 lower-case hex digits, or null. */
export function normalizeFingerprint(value: string): string | null {
  const hex = value.replace(/[\s:]/g, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
const MAX_SIGNATURE_BYTES = 1024;

/** What differs between the format versions; everything else is shared. */
const VERSIONS = {
  [PACK_FORMAT]: { requiredFiles: REQUIRED_FILES_V2, auditProblem: auditProblemV2 },
  [PACK_FORMAT_V1]: { requiredFiles: REQUIRED_FILES_V1, auditProblem: auditProblemV1 },
} as const;

/** Verifies the pack at zipPath. Never throws for a bad pack: the verdict says what is wrong. */
export async function verifyPack(zipPath: string, options: VerifyOptions = {}): Promise<Verdict> {
  let zip: ZipFile | undefined;
  try {
    zip = await openZip(zipPath);
    const entries = await listEntries(zip);
    const { manifest, manifestBytes, signatureText } = await readManifest(zip, entries);
    const { fingerprint, keyTrusted, key } = checkSignature(manifest, manifestBytes, signatureText, options);
    await checkFiles(zip, entries, manifest);
    const audit =
      manifest.format === PACK_FORMAT
        ? await checkAuditV2(zip, entries, manifest, key)
        : await checkAuditV1(zip, entries, manifest);
    return {
      ok: true,
      summary: {
        format: manifest.format,
        incident: { id: manifest.incident.id, title: manifest.incident.title },
        tenant: { id: manifest.tenant.id, slug: manifest.tenant.slug, name: manifest.tenant.name },
        generatedAt: manifest.generated_at,
        entries: manifest.audit.entries.length,
        files: manifest.files.length,
        evidenceFiles: manifest.files.filter((f) => f.path.startsWith("evidence/")).length,
        fingerprint,
        keyTrusted,
        ...audit,
      },
    };
  } catch (error) {
    if (error instanceof Failure) return { ok: false, check: error.check, ...error.where, message: error.message };
    throw error;
  } finally {
    zip?.close();
  }
}

// ---- pack ------------------------------------------------------------------------------------

async function openZip(zipPath: string): Promise<ZipFile> {
  try {
    // Names are decoded by zipEntryName: yauzl would read a name without the UTF-8 flag as CP437.
    return await openPromise(zipPath, { lazyEntries: true, autoClose: false, decodeStrings: false });
  } catch (error) {
    throw new Failure("pack", `${zipPath} cannot be read as a ZIP file: ${(error as Error).message}`);
  }
}

const UNICODE_PATH_EXTRA_FIELD = 0x7075;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The name of a ZIP entry. Attest writes UTF-8 names with the UTF-8 flag; `zip -r` (Info-ZIP 3.0
 * as Debian ships it) writes the UTF-8 bytes of the extracted names without the flag, and some
 * tools add the name as UTF-8 in an Info-ZIP Unicode Path extra field. Names that are not UTF-8
 * are read as Latin-1: they are no file of the pack's, and will be reported as unexpected.
 */
function zipEntryName(entry: Entry): string {
  const raw = entry.fileName as unknown as Buffer;
  const unicodePath = entry.extraFields.find((f) => f.id === UNICODE_PATH_EXTRA_FIELD);
  const bytes =
    unicodePath && unicodePath.data.length > 5 && unicodePath.data[0] === 1 ? unicodePath.data.subarray(5) : raw;
  try {
    return utf8.decode(bytes);
  } catch {
    return Buffer.from(bytes).toString("latin1");
  }
}

/**
 * The ZIP's files by name. Directory entries (names ending in "/", which `zip -r` adds) are left
 * out: they hold nothing.
 */
async function listEntries(zip: ZipFile): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  try {
    for await (const entry of zip.eachEntry()) {
      const name = zipEntryName(entry);
      if (name.endsWith("/")) continue;
      if (entries.has(name)) throw new Failure("pack", `the ZIP holds two files named ${name}`, { file: name });
      entry.fileName = name;
      entries.set(name, entry);
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure("pack", `the ZIP is damaged: ${(error as Error).message}`);
  }
  return entries;
}

async function readManifest(zip: ZipFile, entries: Map<string, Entry>) {
  const manifestEntry = entries.get(MANIFEST_PATH);
  const signatureEntry = entries.get(SIGNATURE_PATH);
  if (!manifestEntry) throw new Failure("pack", `the pack has no ${MANIFEST_PATH}`, { file: MANIFEST_PATH });
  if (!signatureEntry) throw new Failure("pack", `the pack has no ${SIGNATURE_PATH}`, { file: SIGNATURE_PATH });
  const manifestBytes = await readSmallEntry(zip, manifestEntry, MAX_MANIFEST_BYTES, "pack");
  const signatureText = (await readSmallEntry(zip, signatureEntry, MAX_SIGNATURE_BYTES, "pack"))
    .toString("latin1")
    .trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(manifestBytes));
  } catch (error) {
    throw new Failure("pack", `${MANIFEST_PATH} is not valid JSON: ${(error as Error).message}`, {
      file: MANIFEST_PATH,
    });
  }
  const problem = manifestProblem(parsed);
  if (problem) {
    throw new Failure("pack", `${MANIFEST_PATH} is not an evidence pack manifest: ${problem}`, {
      file: MANIFEST_PATH,
    });
  }
  return { manifest: parsed as AnyManifest, manifestBytes, signatureText };
}

/** What is wrong with the shape of a parsed manifest, or null. */
function manifestProblem(m: unknown): string | null {
  if (!isObject(m)) return "it is not a JSON object";
  if (m.format !== PACK_FORMAT && m.format !== PACK_FORMAT_V1) {
    return `its format is ${JSON.stringify(m.format)}, not ${PACK_FORMAT} or ${PACK_FORMAT_V1}`;
  }
  const { tool, tenant, incident, files, signing_key: key } = m;
  if (!isObject(tool) || !isString(tool.version)) return "tool is missing";
  if (!isString(m.generated_at)) return "generated_at is missing";
  if (!isObject(tenant) || !isString(tenant.id) || !isString(tenant.slug) || !isString(tenant.name)) {
    return "tenant is missing";
  }
  if (!isObject(incident) || !isString(incident.id) || !isString(incident.title)) return "incident is missing";
  if (!isObject(key) || key.algorithm !== "ed25519" || !isString(key.fingerprint) || !isString(key.public_key_pem)) {
    return "signing_key is missing or not an Ed25519 key";
  }
  if (!Array.isArray(files)) return "files is missing";
  for (const f of files) {
    if (!isObject(f) || !isString(f.path) || !Number.isSafeInteger(f.size) || !isHash(f.sha256)) {
      return `files holds a malformed item ${JSON.stringify(f)}`;
    }
  }
  return VERSIONS[m.format].auditProblem(m.audit);
}

// ---- signature -------------------------------------------------------------------------------

function checkSignature(
  manifest: AnyManifest,
  manifestBytes: Buffer,
  signatureText: string,
  options: VerifyOptions,
): { fingerprint: string; keyTrusted: boolean; key: KeyObject } {
  const signature = Buffer.from(signatureText, "base64");
  if (signature.length !== 64 || signature.toString("base64") !== signatureText) {
    throw new Failure("signature", `${SIGNATURE_PATH} is not a base64 Ed25519 signature`, { file: SIGNATURE_PATH });
  }
  let key: KeyObject;
  try {
    key = createPublicKey(manifest.signing_key.public_key_pem);
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`it is a ${key.asymmetricKeyType} key`);
  } catch (error) {
    throw new Failure(
      "signature",
      `the public key in ${MANIFEST_PATH} is not an Ed25519 key: ${(error as Error).message}`,
      {
        file: MANIFEST_PATH,
      },
    );
  }
  if (!verify(null, manifestBytes, key, signature)) {
    throw new Failure(
      "signature",
      `${SIGNATURE_PATH} does not match ${MANIFEST_PATH}: the manifest was changed after it was signed`,
      { file: MANIFEST_PATH },
    );
  }
  const fingerprint = publicKeyFingerprint(key);
  if (manifest.signing_key.fingerprint !== fingerprint) {
    throw new Failure(
      "signature",
      `${MANIFEST_PATH} names the key ${manifest.signing_key.fingerprint}, but its public key's fingerprint is ${formatFingerprint(fingerprint)}`,
      { file: MANIFEST_PATH },
    );
  }
  if (options.trustedFingerprints === undefined) return { fingerprint, keyTrusted: false, key };
  const trusted = options.trustedFingerprints.map(normalizeFingerprint);
  if (!trusted.includes(fingerprint)) {
    throw new Failure(
      "signature",
      `the pack is signed by a key that is not the installation's: ${formatFingerprint(fingerprint)}`,
      { file: SIGNATURE_PATH },
    );
  }
  return { fingerprint, keyTrusted: true, key };
}

// ---- files -----------------------------------------------------------------------------------

async function checkFiles(zip: ZipFile, entries: Map<string, Entry>, manifest: AnyManifest): Promise<void> {
  const listed = new Set<string>();
  for (const file of manifest.files) {
    if (listed.has(file.path) || file.path === MANIFEST_PATH || file.path === SIGNATURE_PATH) {
      throw new Failure("files", `${MANIFEST_PATH} lists ${file.path} twice`, { file: file.path });
    }
    listed.add(file.path);
    if (!entries.has(file.path))
      throw new Failure("files", `${file.path} is missing from the pack`, { file: file.path });
  }
  for (const required of VERSIONS[manifest.format].requiredFiles) {
    if (!listed.has(required)) {
      throw new Failure("files", `${MANIFEST_PATH} does not list ${required}, which every pack has`, {
        file: required,
      });
    }
  }
  for (const name of entries.keys()) {
    if (!listed.has(name) && name !== MANIFEST_PATH && name !== SIGNATURE_PATH) {
      throw new Failure("files", `unexpected file in the pack: ${name} (${MANIFEST_PATH} does not list it)`, {
        file: name,
      });
    }
  }
  for (const file of manifest.files) {
    const entry = entries.get(file.path) as Entry;
    const hash = createHash("sha256");
    let size = 0;
    try {
      for await (const chunk of await openEntry(zip, entry, "files")) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    } catch (error) {
      if (error instanceof Failure) throw error;
      throw new Failure("files", `${file.path} cannot be read: ${(error as Error).message}`, { file: file.path });
    }
    const sha256 = hash.digest("hex");
    if (size !== file.size) {
      throw new Failure("files", `${file.path} changed: ${size} bytes, expected ${file.size}`, { file: file.path });
    }
    if (sha256 !== file.sha256) {
      throw new Failure("files", `${file.path} changed: SHA-256 ${sha256}, expected ${file.sha256}`, {
        file: file.path,
      });
    }
  }
}
