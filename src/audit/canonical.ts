/**
 * The canonical JSON of a v1 audit entry and its hash, byte for byte as the database computes
 * them (app_private.canonical_json / audit_document / audit_hash), so that a version 1 evidence
 * pack can be verified offline without the database. (Entries captured before the audit core v2
 * keep this document as the body of their leaf; v2 packs carry the leaf bytes as they are.)
 * Canonical JSON: object keys sorted by code point, no white space, strings escaped as JSON does,
 * integers as digits. Audit documents hold only strings, integers, booleans, null, arrays, objects.
 */
import { createHash } from "node:crypto";

function compareCodePoints(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value)) throw new Error(`canonical JSON only has integers (got ${value})`);
      return String(value);
    case "object": {
      const keys = Object.keys(value as object).sort(compareCodePoints);
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(",")}}`;
    }
    default:
      throw new Error(`canonical JSON cannot hold a ${typeof value}`);
  }
}

/** The SHA-256 (hex) of an audit document: the entry's `hash`. */
export function auditHash(document: Record<string, unknown>): string {
  return createHash("sha256").update(canonicalJson(document), "utf8").digest("hex");
}
