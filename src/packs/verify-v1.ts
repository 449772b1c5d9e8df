/**
 * The audit checks of a version 1 evidence pack (attest-evidence-pack/1, written before the audit
 * core v2), unchanged in what they check: entries (each entry's hash is its canonical document's,
 * the seqs are the manifest's, every entry is this incident's), csv (entries.csv has the same rows)
 * and chain (chain.jsonl links without a gap from chain_from to the signed head and holds every
 * entry). The steps every version shares are in verify.ts.
 */
import type { Entry, ZipFile } from "yauzl";
import { auditHash, canonicalJson } from "../audit/canonical.ts";
import {
  CHAIN_PATH,
  type ChainLink,
  ENTRIES_CSV_PATH,
  ENTRIES_JSONL_PATH,
  ENTRY_CSV_COLUMNS_V1,
  type EntryLine,
  INCIDENT_PATH,
  type ManifestV1,
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
} from "./verify-shared.ts";

export const REQUIRED_FILES_V1 = [
  README_PATH,
  INCIDENT_PATH,
  ENTRIES_JSONL_PATH,
  ENTRIES_CSV_PATH,
  CHAIN_PATH,
  REPORT_PATH,
];

/** What is wrong with a v1 manifest's audit section, or null. */
export function auditProblemV1(audit: unknown): string | null {
  if (!isObject(audit) || !Array.isArray(audit.entries) || !isSeq(audit.chain_from)) return "audit is missing";
  const head = audit.head;
  if (!isObject(head) || !isSeq(head.seq) || !isHash(head.hash)) return "audit.head is missing";
  if (audit.chain_from > head.seq) return "audit.chain_from is after audit.head";
  return entrySeqsProblem(audit.entries);
}

/** Runs the v1 audit checks; returns the signed head. */
export async function checkAuditV1(
  zip: ZipFile,
  entries: Map<string, Entry>,
  manifest: ManifestV1,
): Promise<{ head: { seq: number; hash: string } }> {
  const jsonl = entries.get(ENTRIES_JSONL_PATH) as Entry;
  const entryLinks = await checkEntries(zip, jsonl, manifest);
  await checkCsvRows(zip, jsonl, entries.get(ENTRIES_CSV_PATH) as Entry, ENTRY_CSV_COLUMNS_V1, (text) => {
    const line = JSON.parse(text) as EntryLine;
    return { seq: line.document.seq, cells: entryCsvRowV1(line) };
  });
  await checkChain(zip, entries.get(CHAIN_PATH) as Entry, manifest, entryLinks);
  return { head: { seq: manifest.audit.head.seq, hash: manifest.audit.head.hash } };
}

/** The cells of an entry's row in a v1 audit/entries.csv (ENTRY_CSV_COLUMNS_V1), before CSV encoding. */
export function entryCsvRowV1(line: EntryLine): string[] {
  const d = line.document;
  const cells: Record<(typeof ENTRY_CSV_COLUMNS_V1)[number], string> = {
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
  return ENTRY_CSV_COLUMNS_V1.map((c) => cells[c]);
}

// ---- entries ---------------------------------------------------------------------------------

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
  manifest: ManifestV1,
): Promise<Map<number, { hash: string; prevHash: unknown }>> {
  const file = ENTRIES_JSONL_PATH;
  const found = new Map<number, { hash: string; prevHash: unknown }>();
  const order: number[] = [];
  let stranger: Failure | undefined;
  await eachLine(zip, entry, "entries", (text, n) => {
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
  });
  const seqProblem = compareSeqs(order, manifest.audit.entries);
  if (seqProblem) throw seqProblem;
  if (stranger) throw stranger;
  return found;
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
  manifest: ManifestV1,
  entries: Map<number, { hash: string; prevHash: unknown }>,
): Promise<void> {
  const file = CHAIN_PATH;
  const { chain_from: chainFrom, head } = manifest.audit;
  let last: ChainLink | undefined;
  await eachLine(zip, entry, "chain", (text, n) => {
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
        { file, entry: link.seq },
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
  });
  if (last === undefined) throw new Failure("chain", `${file} is empty`, { file });
  const end = last as ChainLink;
  if (end.seq !== head.seq || end.hash !== head.hash) {
    throw new Failure(
      "chain",
      `${file} ends at entry ${end.seq}, but the signed head is entry ${head.seq}${end.seq === head.seq ? " with another hash" : ""}`,
      { file, entry: end.seq },
    );
  }
  for (const seq of entries.keys()) {
    throw new Failure("chain", `entry ${seq} is not in the signed chain`, { file, entry: seq });
  }
}
