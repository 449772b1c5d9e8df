/**
 * The audit checks of a version 2 evidence pack (attest-evidence-pack/2, src/packs/format.ts):
 *   checkpoint  audit/checkpoint.txt is a signed note of this workspace's log, signed by the pack's
 *               key under its origin, stating the size and root the manifest states
 *   entries     every line of audit/entries.jsonl is a leaf at its position of that tree (inclusion
 *               proof), of this incident and workspace, linked to the line before it
 *               (incident-prev), and the positions are the manifest's
 *   csv         audit/entries.csv says what the leaves say
 * Hashing and proofs: src/audit/merkle.ts; notes: src/audit/checkpoint.ts; leaves: src/audit/leaf.ts; the checks of an entry: entries.ts.
 * The steps every version shares are in verify.ts.
 */
import type { KeyObject } from "node:crypto";
import type { Entry, ZipFile } from "yauzl";
import { type Checkpoint, CheckpointError, checkpointSignedBy, parseCheckpoint } from "../audit/checkpoint.ts";
import { LeafError, parseLeaf } from "../audit/leaf.ts";
import { hashLeaf } from "../audit/merkle.ts";
import { leafCsvRow, linkProblem, type PackScope, proveLeaf, strangerProblem } from "./entries.ts";
import {
  CHECKPOINT_PATH,
  ENTRIES_CSV_PATH,
  ENTRIES_JSONL_PATH,
  ENTRY_CSV_COLUMNS,
  INCIDENT_PATH,
  type LeafLine,
  MANIFEST_PATH,
  type Manifest,
  README_PATH,
  REPORT_PATH,
} from "./format.ts";
import {
  checkCsvRows,
  compareSeqs,
  eachLine,
  entrySeqsProblem,
  Failure,
  isHash,
  isObject,
  isSeq,
  isString,
  readSmallEntry,
} from "./verify-shared.ts";

export const REQUIRED_FILES_V2 = [
  README_PATH,
  INCIDENT_PATH,
  ENTRIES_JSONL_PATH,
  ENTRIES_CSV_PATH,
  CHECKPOINT_PATH,
  REPORT_PATH,
];

const MAX_CHECKPOINT_BYTES = 64 * 1024;
/** A proof has one hash per level of the tree: 63 for the largest tree a safe integer can count. */
const MAX_PROOF_HASHES = 63;

/** What is wrong with a v2 manifest's audit section, or null. */
export function auditProblemV2(audit: unknown): string | null {
  if (!isObject(audit)) return "audit is missing";
  const cp = audit.checkpoint;
  if (!isObject(cp) || !isString(cp.origin) || !Number.isSafeInteger(cp.tree_size) || !isHash(cp.root_hash)) {
    return "audit.checkpoint is missing";
  }
  return entrySeqsProblem(audit.entries);
}

export interface CheckpointSummary {
  origin: string;
  treeSize: number;
  /** hex */
  rootHash: string;
  time: string | null;
}

/** Runs the v2 audit checks; returns the checkpoint the entries are proven against. */
export async function checkAuditV2(
  zip: ZipFile,
  entries: Map<string, Entry>,
  manifest: Manifest,
  publicKey: KeyObject,
): Promise<{ checkpoint: CheckpointSummary }> {
  const checkpoint = await checkCheckpoint(zip, entries.get(CHECKPOINT_PATH) as Entry, manifest, publicKey);
  const scope: PackScope = {
    tenantId: manifest.tenant.id,
    incidentId: manifest.incident.id,
    treeSize: checkpoint.treeSize,
    rootHash: checkpoint.rootHash,
  };
  const jsonl = entries.get(ENTRIES_JSONL_PATH) as Entry;
  await checkEntries(zip, jsonl, manifest, scope);
  await checkCsvRows(zip, jsonl, entries.get(ENTRIES_CSV_PATH) as Entry, ENTRY_CSV_COLUMNS, (text) => {
    const line = JSON.parse(text) as LeafLine;
    const leafHash = hashLeaf(Buffer.from(line.leaf, "utf8")).toString("hex");
    return { seq: line.seq, cells: leafCsvRow(parseLeaf(line.leaf), leafHash) };
  });
  return {
    checkpoint: {
      origin: checkpoint.origin,
      treeSize: checkpoint.treeSize,
      rootHash: checkpoint.rootHash.toString("hex"),
      time: checkpoint.time,
    },
  };
}

// ---- checkpoint ------------------------------------------------------------------------------

async function checkCheckpoint(
  zip: ZipFile,
  entry: Entry,
  manifest: Manifest,
  publicKey: KeyObject,
): Promise<Checkpoint> {
  const file = CHECKPOINT_PATH;
  const fail = (message: string) => new Failure("checkpoint", message, { file });
  const bytes = await readSmallEntry(zip, entry, MAX_CHECKPOINT_BYTES, "checkpoint");
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    if (error instanceof CheckpointError || error instanceof TypeError) {
      throw fail(`${file} is not a signed checkpoint: ${error.message}`);
    }
    throw error;
  }
  const ownLog = `/audit/${manifest.tenant.id}`;
  if (!checkpoint.origin.endsWith(ownLog)) {
    throw fail(`${file} is the checkpoint of the log ${checkpoint.origin}, not of this workspace's (…${ownLog})`);
  }
  if (!checkpointSignedBy(checkpoint, publicKey)) {
    throw fail(`${file} is not signed by the pack's key under the log's name ${checkpoint.origin}`);
  }
  const stated = manifest.audit.checkpoint;
  const root = checkpoint.rootHash.toString("hex");
  if (stated.origin !== checkpoint.origin || stated.tree_size !== checkpoint.treeSize || stated.root_hash !== root) {
    throw fail(
      `${file} is the checkpoint of ${checkpoint.origin} at size ${checkpoint.treeSize} with root ${root}, but ${MANIFEST_PATH} states ${stated.origin} at size ${stated.tree_size} with root ${stated.root_hash}`,
    );
  }
  return checkpoint;
}

// ---- entries ---------------------------------------------------------------------------------

/** Parses line `n` of entries.jsonl, or says what is wrong with it. */
function parseLeafLine(text: string, n: number): { seq: number; leaf: string; proof: Buffer[] } {
  const where = { file: ENTRIES_JSONL_PATH };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Failure("entries", `${ENTRIES_JSONL_PATH} line ${n} is not valid JSON`, where);
  }
  if (
    !isObject(value) ||
    !isSeq(value.seq) ||
    !isString(value.leaf) ||
    !Array.isArray(value.proof) ||
    value.proof.length > MAX_PROOF_HASHES ||
    !value.proof.every(isHash)
  ) {
    throw new Failure(
      "entries",
      `${ENTRIES_JSONL_PATH} line ${n} is not an audit entry ({"seq": n, "leaf": "...", "proof": ["<hex>", ...]})`,
      where,
    );
  }
  return { seq: value.seq, leaf: value.leaf, proof: value.proof.map((p: string) => Buffer.from(p, "hex")) };
}

async function checkEntries(zip: ZipFile, entry: Entry, manifest: Manifest, scope: PackScope): Promise<void> {
  const file = ENTRIES_JSONL_PATH;
  const order: number[] = [];
  const seen = new Set<number>();
  let previous: { seq: number; leafHash: string } | null = null;
  // Whose an entry is and how it links are reported after the positions: a removed or moved entry
  // is named as such rather than by the broken link it leaves.
  let deferred: Failure | undefined;
  await eachLine(zip, entry, "entries", (text, n) => {
    const line = parseLeafLine(text, n);
    const where = { file, entry: line.seq };
    if (seen.has(line.seq)) throw new Failure("entries", `entry ${line.seq} appears twice`, where);
    seen.add(line.seq);
    order.push(line.seq);
    let proven: ReturnType<typeof proveLeaf>;
    try {
      proven = proveLeaf(line.seq, line.leaf, line.proof, scope);
    } catch (error) {
      if (error instanceof LeafError) throw new Failure("entries", `entry ${line.seq}: ${error.message}`, where);
      throw error;
    }
    const problem = strangerProblem(proven.leaf, scope) ?? linkProblem(proven.leaf, previous);
    if (problem && !deferred) deferred = new Failure("entries", `entry ${line.seq} ${problem}`, where);
    previous = { seq: line.seq, leafHash: proven.leafHash };
  });
  const seqProblem = compareSeqs(order, manifest.audit.entries);
  if (seqProblem) throw seqProblem;
  if (deferred) throw deferred;
}
