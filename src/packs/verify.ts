/**
 * Offline verification of an evidence pack (src/packs/format.ts): the same code runs in
 * `npm run verify` and in the app. It needs the ZIP only (no network, no database) and says which
 * check failed, naming the file or entry, in words a person understands.
 *
 * Checks, in order, stopping at the first failure:
 *   pack       the ZIP opens and has a readable manifest.json and manifest.sig
 *   signature  manifest.sig verifies with the manifest's public key, whose fingerprint is the one the
 *              manifest names (and one of the trusted fingerprints, when given)
 *   files      every file the manifest lists is there with its size and SHA-256, and nothing else is
 *   entries    audit/entries.jsonl: each entry's hash is its document's, the seqs are the manifest's
 *              in order, every entry is this incident's
 *   csv        audit/entries.csv has the same rows as audit/entries.jsonl
 *   chain      audit/chain.jsonl links without a gap from audit.chain_from to the signed head and
 *              holds every entry with the same hash and prev_hash
 *
 * File contents are streamed (hashing a 200 MB evidence file does not load it). What is kept in
 * memory is bounded by the incident: the manifest and the seq/hash of each of its entries.
 */
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";
import readline from "node:readline";
import type { Readable } from "node:stream";
import { parse } from "csv-parse";
import { parse as parseCsvSync } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { type Entry, openPromise, type ZipFile } from "yauzl";
import { auditHash } from "./canonical.ts";
import {
  CHAIN_PATH,
  type ChainLink,
  ENTRIES_CSV_PATH,
  ENTRIES_JSONL_PATH,
  ENTRY_CSV_COLUMNS,
  type EntryLine,
  formatFingerprint,
  INCIDENT_PATH,
  MANIFEST_PATH,
  type Manifest,
  PACK_FORMAT,
  README_PATH,
  REPORT_PATH,
  SIGNATURE_PATH,
} from "./format.ts";
import { ENTRY_CSV_OPTIONS, entryCsvRow, publicKeyFingerprint } from "./writer.ts";

export type VerifyCheck = "pack" | "signature" | "files" | "entries" | "csv" | "chain";

export interface VerifySummary {
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
  head: { seq: number; hash: string };
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
const MAX_CSV_RECORD_BYTES = 64 * 1024 * 1024;
const REQUIRED_FILES = [README_PATH, INCIDENT_PATH, ENTRIES_JSONL_PATH, ENTRIES_CSV_PATH, CHAIN_PATH, REPORT_PATH];

class Failure extends Error {
  readonly check: VerifyCheck;
  readonly where: { file?: string; entry?: number };
  constructor(check: VerifyCheck, message: string, where: { file?: string; entry?: number } = {}) {
    super(message);
    this.check = check;
    this.where = where;
  }
}

/** Verifies the pack at zipPath. Never throws for a bad pack: the verdict says what is wrong. */
export async function verifyPack(zipPath: string, options: VerifyOptions = {}): Promise<Verdict> {
  let zip: ZipFile | undefined;
  try {
    zip = await openZip(zipPath);
    const entries = await listEntries(zip);
    const { manifest, manifestBytes, signatureText } = await readManifest(zip, entries);
    const { fingerprint, keyTrusted } = checkSignature(manifest, manifestBytes, signatureText, options);
    await checkFiles(zip, entries, manifest);
    const entryLinks = await checkEntries(zip, entries.get(ENTRIES_JSONL_PATH) as Entry, manifest);
    await checkCsv(zip, entries.get(ENTRIES_JSONL_PATH) as Entry, entries.get(ENTRIES_CSV_PATH) as Entry);
    await checkChain(zip, entries.get(CHAIN_PATH) as Entry, manifest, entryLinks);
    return {
      ok: true,
      summary: {
        incident: { id: manifest.incident.id, title: manifest.incident.title },
        tenant: { id: manifest.tenant.id, slug: manifest.tenant.slug, name: manifest.tenant.name },
        generatedAt: manifest.generated_at,
        entries: manifest.audit.entries.length,
        files: manifest.files.length,
        evidenceFiles: manifest.files.filter((f) => f.path.startsWith("evidence/")).length,
        fingerprint,
        keyTrusted,
        head: { seq: manifest.audit.head.seq, hash: manifest.audit.head.hash },
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
    return await openPromise(zipPath, { lazyEntries: true, autoClose: false, strictFileNames: true });
  } catch (error) {
    throw new Failure("pack", `${zipPath} cannot be read as a ZIP file: ${(error as Error).message}`);
  }
}

async function listEntries(zip: ZipFile): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  try {
    for await (const entry of zip.eachEntry()) {
      if (entries.has(entry.fileName)) {
        throw new Failure("pack", `the ZIP holds two files named ${entry.fileName}`, { file: entry.fileName });
      }
      entries.set(entry.fileName, entry);
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure("pack", `the ZIP is damaged: ${(error as Error).message}`);
  }
  return entries;
}

async function openEntry(zip: ZipFile, entry: Entry, check: VerifyCheck): Promise<Readable> {
  try {
    return await zip.openReadStreamPromise(entry);
  } catch (error) {
    throw new Failure(check, `${entry.fileName} cannot be read: ${(error as Error).message}`, { file: entry.fileName });
  }
}

async function readSmallEntry(zip: ZipFile, entry: Entry, limit: number): Promise<Buffer> {
  if (entry.uncompressedSize > limit) {
    throw new Failure("pack", `${entry.fileName} is too large (${entry.uncompressedSize} bytes)`, {
      file: entry.fileName,
    });
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of await openEntry(zip, entry, "pack")) chunks.push(chunk as Buffer);
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure("pack", `${entry.fileName} cannot be read: ${(error as Error).message}`, {
      file: entry.fileName,
    });
  }
  return Buffer.concat(chunks);
}

async function readManifest(zip: ZipFile, entries: Map<string, Entry>) {
  const manifestEntry = entries.get(MANIFEST_PATH);
  const signatureEntry = entries.get(SIGNATURE_PATH);
  if (!manifestEntry) throw new Failure("pack", `the pack has no ${MANIFEST_PATH}`, { file: MANIFEST_PATH });
  if (!signatureEntry) throw new Failure("pack", `the pack has no ${SIGNATURE_PATH}`, { file: SIGNATURE_PATH });
  const manifestBytes = await readSmallEntry(zip, manifestEntry, MAX_MANIFEST_BYTES);
  const signatureText = (await readSmallEntry(zip, signatureEntry, MAX_SIGNATURE_BYTES)).toString("latin1").trim();
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
    throw new Failure("pack", `${MANIFEST_PATH} is not an ${PACK_FORMAT} manifest: ${problem}`, {
      file: MANIFEST_PATH,
    });
  }
  return { manifest: parsed as Manifest, manifestBytes, signatureText };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === "string";
const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isHash = (v: unknown): v is string => isString(v) && /^[0-9a-f]{64}$/.test(v);

/** What is wrong with the shape of a parsed manifest, or null. */
function manifestProblem(m: unknown): string | null {
  if (!isObject(m)) return "it is not a JSON object";
  if (m.format !== PACK_FORMAT) return `its format is ${JSON.stringify(m.format)}`;
  const { tool, tenant, incident, files, audit, signing_key: key } = m;
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
  if (!isObject(audit) || !Array.isArray(audit.entries) || !isSeq(audit.chain_from)) return "audit is missing";
  const head = audit.head;
  if (!isObject(head) || !isSeq(head.seq) || !isHash(head.hash)) return "audit.head is missing";
  if (audit.chain_from > head.seq) return "audit.chain_from is after audit.head";
  let previous = 0;
  for (const seq of audit.entries) {
    if (!isSeq(seq) || seq <= previous) return "audit.entries is not a list of increasing seqs";
    previous = seq;
  }
  return null;
}

// ---- signature -------------------------------------------------------------------------------

function checkSignature(
  manifest: Manifest,
  manifestBytes: Buffer,
  signatureText: string,
  options: VerifyOptions,
): { fingerprint: string; keyTrusted: boolean } {
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
  if (options.trustedFingerprints === undefined) return { fingerprint, keyTrusted: false };
  const trusted = options.trustedFingerprints.map(normalizeFingerprint);
  if (!trusted.includes(fingerprint)) {
    throw new Failure(
      "signature",
      `the pack is signed by a key that is not the installation's: ${formatFingerprint(fingerprint)}`,
      { file: SIGNATURE_PATH },
    );
  }
  return { fingerprint, keyTrusted: true };
}

// ---- files -----------------------------------------------------------------------------------

async function checkFiles(zip: ZipFile, entries: Map<string, Entry>, manifest: Manifest): Promise<void> {
  const listed = new Set<string>();
  for (const file of manifest.files) {
    if (listed.has(file.path) || file.path === MANIFEST_PATH || file.path === SIGNATURE_PATH) {
      throw new Failure("files", `${MANIFEST_PATH} lists ${file.path} twice`, { file: file.path });
    }
    listed.add(file.path);
    if (!entries.has(file.path))
      throw new Failure("files", `${file.path} is missing from the pack`, { file: file.path });
  }
  for (const required of REQUIRED_FILES) {
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

// ---- entries ---------------------------------------------------------------------------------

function lines(stream: Readable): AsyncIterableIterator<string> {
  return readline.createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })[Symbol.asyncIterator]();
}

/** Parses line `n` of entries.jsonl, or says what is wrong with it. */
function parseEntryLine(text: string, n: number): EntryLine {
  const where = { file: ENTRIES_JSONL_PATH };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Failure("entries", `${ENTRIES_JSONL_PATH} line ${n} is not valid JSON`, where);
  }
  if (!isObject(value) || !isObject(value.document) || !isHash(value.hash) || !isSeq(value.document.seq)) {
    throw new Failure("entries", `${ENTRIES_JSONL_PATH} line ${n} is not an audit entry`, where);
  }
  return value as unknown as EntryLine;
}

async function checkEntries(
  zip: ZipFile,
  entry: Entry,
  manifest: Manifest,
): Promise<Map<number, { hash: string; prevHash: unknown }>> {
  const file = ENTRIES_JSONL_PATH;
  const found = new Map<number, { hash: string; prevHash: unknown }>();
  const order: number[] = [];
  let stranger: Failure | undefined;
  let n = 0;
  const stream = await openEntry(zip, entry, "entries");
  try {
    for await (const text of lines(stream)) {
      n++;
      const line = parseEntryLine(text, n);
      const seq = line.document.seq;
      let hash: string;
      try {
        hash = auditHash(line.document as unknown as Record<string, unknown>);
      } catch (error) {
        throw new Failure("entries", `entry ${seq} cannot be hashed: ${(error as Error).message}`, {
          file,
          entry: seq,
        });
      }
      if (hash !== line.hash) {
        throw new Failure("entries", `entry ${seq} was altered: its content does not match its hash`, {
          file,
          entry: seq,
        });
      }
      if (found.has(seq)) throw new Failure("entries", `entry ${seq} appears twice`, { file, entry: seq });
      found.set(seq, { hash, prevHash: line.document.prev_hash });
      order.push(seq);
      const { tenant_id: tenantId, incident_id: incidentId } = line.document;
      if (!stranger && (tenantId !== manifest.tenant.id || incidentId !== manifest.incident.id)) {
        const whose =
          tenantId !== manifest.tenant.id ? `another workspace (${tenantId})` : `another incident (${incidentId})`;
        stranger = new Failure("entries", `entry ${seq} belongs to ${whose}, not to this incident`, {
          file,
          entry: seq,
        });
      }
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure("entries", `${file} cannot be read: ${(error as Error).message}`, { file });
  } finally {
    stream.destroy();
  }
  const seqProblem = compareSeqs(order, manifest.audit.entries);
  if (seqProblem) throw seqProblem;
  if (stranger) throw stranger;
  return found;
}

/** Compares the seqs found in entries.jsonl with the manifest's, naming the first difference. */
function compareSeqs(actual: number[], expected: number[]): Failure | null {
  const file = ENTRIES_JSONL_PATH;
  const inActual = new Set(actual);
  const inExpected = new Set(expected);
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === e) continue;
    if (e !== undefined && !inActual.has(e)) return new Failure("entries", `entry ${e} is missing`, { file, entry: e });
    if (a !== undefined && !inExpected.has(a)) {
      return new Failure("entries", `entry ${a} is not one of the entries ${MANIFEST_PATH} lists`, { file, entry: a });
    }
    const [first, second] = [Math.min(a, e), Math.max(a, e)];
    return new Failure("entries", `entries ${first} and ${second} are out of order`, { file, entry: first });
  }
  return null;
}

// ---- csv -------------------------------------------------------------------------------------

/** The cells a CSV reader gets back for an entry's row: what the writer wrote, read back. */
function expectedCsvCells(line: EntryLine): string[] {
  return parseCsvSync(stringify([entryCsvRow(line)], ENTRY_CSV_OPTIONS))[0] as string[];
}

function shorten(value: string | undefined): string {
  if (value === undefined) return "nothing";
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

async function checkCsv(zip: ZipFile, jsonlEntry: Entry, csvEntry: Entry): Promise<void> {
  const file = ENTRIES_CSV_PATH;
  const csvStream = await openEntry(zip, csvEntry, "csv");
  const parser = parse({ bom: true, max_record_size: MAX_CSV_RECORD_BYTES });
  csvStream.on("error", (error) => parser.destroy(error));
  const rows = csvStream.pipe(parser)[Symbol.asyncIterator]() as AsyncIterator<string[]>;
  const jsonlStream = await openEntry(zip, jsonlEntry, "csv");
  const jsonl = lines(jsonlStream);
  try {
    const header = await rows.next();
    if (header.done || header.value.join(",") !== ENTRY_CSV_COLUMNS.join(",")) {
      throw new Failure("csv", `${file} does not start with the header ${ENTRY_CSV_COLUMNS.join(",")}`, { file });
    }
    for (;;) {
      const [row, text] = await Promise.all([rows.next(), jsonl.next()]);
      if (row.done && text.done) return;
      if (text.done) {
        throw new Failure(
          "csv",
          `${file} has a row (seq ${shorten(row.value?.[0])}) that ${ENTRIES_JSONL_PATH} does not`,
          {
            file,
          },
        );
      }
      const line = JSON.parse(text.value) as EntryLine;
      const seq = line.document.seq;
      if (row.done) {
        throw new Failure("csv", `${file} has no row for entry ${seq}`, { file, entry: seq });
      }
      const expected = expectedCsvCells(line);
      const column = ENTRY_CSV_COLUMNS.findIndex((_, i) => row.value[i] !== expected[i]);
      if (column >= 0 || row.value.length !== expected.length) {
        const name = ENTRY_CSV_COLUMNS[column] ?? "(extra column)";
        throw new Failure(
          "csv",
          `${file} differs from ${ENTRIES_JSONL_PATH} for entry ${seq}: ${name} is ${shorten(row.value[column])} in the CSV, ${shorten(expected[column])} in the entry`,
          { file, entry: seq },
        );
      }
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure("csv", `${file} cannot be read as CSV: ${(error as Error).message}`, { file });
  } finally {
    await rows.return?.();
    await jsonl.return?.();
    csvStream.destroy();
    jsonlStream.destroy();
  }
}

// ---- chain -----------------------------------------------------------------------------------

function parseLink(text: string, n: number): ChainLink {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Failure("chain", `${CHAIN_PATH} line ${n} is not valid JSON`, { file: CHAIN_PATH });
  }
  if (
    !isObject(value) ||
    !isSeq(value.seq) ||
    !isHash(value.hash) ||
    !(value.prev_hash === null || isHash(value.prev_hash))
  ) {
    throw new Failure("chain", `${CHAIN_PATH} line ${n} is not a chain link`, { file: CHAIN_PATH });
  }
  return value as unknown as ChainLink;
}

async function checkChain(
  zip: ZipFile,
  entry: Entry,
  manifest: Manifest,
  entries: Map<number, { hash: string; prevHash: unknown }>,
): Promise<void> {
  const file = CHAIN_PATH;
  const { chain_from: chainFrom, head } = manifest.audit;
  let last: ChainLink | undefined;
  let n = 0;
  const stream = await openEntry(zip, entry, "chain");
  try {
    for await (const text of lines(stream)) {
      n++;
      const link = parseLink(text, n);
      if (last === undefined && link.seq !== chainFrom) {
        throw new Failure("chain", `${file} starts at entry ${link.seq}, the manifest says ${chainFrom}`, {
          file,
          entry: link.seq,
        });
      }
      if (last !== undefined && link.seq !== last.seq + 1) {
        const gap =
          link.seq > last.seq + 1
            ? `jumps from entry ${last.seq} to ${link.seq}: entries in between were removed from the chain`
            : `goes back from entry ${last.seq} to ${link.seq}`;
        throw new Failure("chain", `${file} ${gap}`, { file, entry: link.seq });
      }
      if (last !== undefined && link.prev_hash !== last.hash) {
        throw new Failure(
          "chain",
          `the chain is broken at entry ${link.seq}: its prev_hash is not entry ${last.seq}'s hash`,
          {
            file,
            entry: link.seq,
          },
        );
      }
      if (link.seq > head.seq) {
        throw new Failure("chain", `${file} goes past the signed head (entry ${head.seq})`, { file, entry: link.seq });
      }
      const own = entries.get(link.seq);
      if (own) {
        if (own.hash !== link.hash) {
          throw new Failure("chain", `entry ${link.seq} is not in the signed chain: the chain has another hash there`, {
            file,
            entry: link.seq,
          });
        }
        if (own.prevHash !== link.prev_hash) {
          throw new Failure(
            "chain",
            `entry ${link.seq} is not in the signed chain: its prev_hash is not the hash of the entry before it`,
            { file, entry: link.seq },
          );
        }
        entries.delete(link.seq);
      }
      last = link;
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure("chain", `${file} cannot be read: ${(error as Error).message}`, { file });
  } finally {
    stream.destroy();
  }
  if (last === undefined) throw new Failure("chain", `${file} is empty`, { file });
  if (last.seq !== head.seq || last.hash !== head.hash) {
    throw new Failure(
      "chain",
      `${file} ends at entry ${last.seq}, but the signed head is entry ${head.seq}${last.seq === head.seq ? " with another hash" : ""}`,
      { file, entry: last.seq },
    );
  }
  for (const seq of entries.keys()) {
    throw new Failure("chain", `entry ${seq} is not in the signed chain`, { file, entry: seq });
  }
}
