/**
 * An audit entry's leaf bytes (app_private.audit_leaf_bytes), what the tenant's Merkle tree hashes:
 *
 *   attest-audit-entry/2\n
 *   seq <position>\n
 *   incident-prev <seq> <leaf hash hex>\n     or "incident-prev none"; only entries of an incident have it
 *   \n
 *   <body: one JSON object>
 *
 * The body is a v2 entry's body (AuditBodyV2), or, for an entry captured before the audit core v2,
 * its v1 canonical document (AuditDocument; canonical.ts). Parsing here is shared by the pack
 * writer, the pack verifier and the PDF report, so that all derive the same thing from the same
 * bytes. Hashing and proofs are merkle.ts's.
 */

const LEAF_HEADER = "attest-audit-entry/2";

/** The body of a leaf of an entry captured by the audit core v2 (app_private.audit_entry_body). */
export interface AuditBodyV2 {
  v: 2;
  tenant_id: string;
  /** The capture number (audit_log.id), not the position. */
  id: number;
  occurred_at: string;
  actor_user_id: string | null;
  actor_label: string;
  api_token_id: string | null;
  db_role: string;
  surface: string;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  resource_label: string | null;
  incident_id: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
}

/**
 * The body of a leaf: a v2 entry's body, or, for an entry captured before v2, its v1 canonical
 * document (the one its v1 hash covers).
 */
export type AuditBody = AuditBodyV2 | AuditDocument;

/** The document a v1 audit entry's hash covers (app_private.audit_document in the database). */
export interface AuditDocument {
  v: 1;
  tenant_id: string;
  seq: number;
  occurred_at: string;
  actor_user_id: string | null;
  actor_label: string;
  db_role: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  resource_label: string | null;
  incident_id: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  surface: string;
  prev_hash: string | null;
}

export interface ParsedLeaf {
  seq: number;
  /**
   * The previous entry of the same incident: its position and leaf hash (hex); "none" for the
   * incident's first entry; null when the leaf has no incident-prev line (an entry of no incident).
   */
  incidentPrev: { seq: number; leafHash: string } | "none" | null;
  body: AuditBody;
}

export class LeafError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNullableString = (v: unknown) => v === null || typeof v === "string";
const POSITION = /^[1-9][0-9]*$/;

function parseIncidentPrev(line: string): ParsedLeaf["incidentPrev"] {
  const value = line.slice("incident-prev ".length);
  if (value === "none") return "none";
  const [seq, leafHash, ...rest] = value.split(" ");
  if (rest.length > 0 || !POSITION.test(seq ?? "") || !/^[0-9a-f]{64}$/.test(leafHash ?? "")) {
    throw new LeafError(
      `its incident-prev line "${line}" is not "incident-prev <seq> <leaf hash>" or "incident-prev none"`,
    );
  }
  return { seq: Number(seq), leafHash };
}

/** What is wrong with a body, or null. Checks the fields a pack relies on and shows. */
function bodyProblem(body: unknown): string | null {
  if (!isObject(body)) return "its body is not a JSON object";
  if (body.v !== 1 && body.v !== 2) return `its body has version ${JSON.stringify(body.v)}, not 1 or 2`;
  for (const key of ["tenant_id", "occurred_at", "actor_label", "action", "resource_type", "surface", "db_role"]) {
    if (typeof body[key] !== "string") return `its body has no ${key}`;
  }
  for (const key of ["incident_id", "resource_id", "resource_label", "request_id", "ip", "user_agent"]) {
    if (!isNullableString(body[key])) return `its body's ${key} is not text`;
  }
  if (!isObject(body.changes)) return "its body's changes are not a JSON object";
  return null;
}

/** Parses the text of a leaf; throws LeafError saying what is wrong. */
export function parseLeaf(text: string): ParsedLeaf {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new LeafError("it has no blank line between its header and its body");
  const [format, seqLine, ...rest] = text.slice(0, split).split("\n");
  if (format !== LEAF_HEADER) throw new LeafError(`it does not start with "${LEAF_HEADER}"`);
  if (
    !seqLine?.startsWith("seq ") ||
    !POSITION.test(seqLine.slice(4)) ||
    !Number.isSafeInteger(Number(seqLine.slice(4)))
  ) {
    throw new LeafError(`its second line "${seqLine ?? ""}" is not "seq <position>"`);
  }
  if (rest.length > 1 || (rest.length === 1 && !rest[0].startsWith("incident-prev "))) {
    throw new LeafError("its header has lines other than seq and incident-prev");
  }
  const incidentPrev = rest.length === 1 ? parseIncidentPrev(rest[0]) : null;
  let body: unknown;
  try {
    body = JSON.parse(text.slice(split + 2));
  } catch {
    throw new LeafError("its body is not valid JSON");
  }
  const problem = bodyProblem(body);
  if (problem) throw new LeafError(problem);
  return { seq: Number(seqLine.slice(4)), incidentPrev, body: body as AuditBody };
}
