/**
 * Proof material stays O(log N) per entry: a pack of a 100-entry incident in a tenant log of
 * 2,000,000 entries holds at most 200 KB of inclusion proofs, and verifies.
 *
 * The 2,000,000-leaf tree is sparse: every leaf but the incident's is the same filler leaf, so the
 * hash of a subtree without incident leaves depends only on its size and is computed once per size.
 * Subtree hashes and proofs follow RFC 9162 §2.1 exactly (the same split as src/audit/merkle.ts,
 * whose inclusionProofOf would hash all 2,000,000 leaves for each proof); the verifier checks
 * them with merkle.ts.
 */
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signCheckpoint } from "../../src/audit/checkpoint.ts";
import { hashChildren, hashLeaf, inclusionProofOf, rootOf } from "../../src/audit/merkle.ts";
import type { LeafLine } from "../../src/packs/format.ts";
import { verifyPack } from "../../src/packs/verify.ts";
import { type PackEntry, writePack } from "../../src/packs/writer.ts";
import { chunks, EVIDENCE, INCIDENT_ID, incidentFile, iterate, key, REPORT, readZip, TENANT } from "./pack-tools.ts";
import { leafBytes, ORIGIN, v2Body } from "./synthetic-log.ts";

const TREE_SIZE = 2_000_000;
const INCIDENT_ENTRIES = 100;
const LIMIT = 200 * 1024;

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A tree of `size` leaves: the given ones at their (0-based) index, the filler everywhere else. */
function sparseTree(size: number, leaves: Map<number, Buffer>, filler: Buffer) {
  const fillerRoots = new Map<number, Buffer>();
  const fillerRoot = (n: number): Buffer => {
    if (n === 1) return filler;
    let root = fillerRoots.get(n);
    if (!root) {
      const k = largestPowerOfTwoBelow(n);
      root = hashChildren(fillerRoot(k), fillerRoot(n - k));
      fillerRoots.set(n, root);
    }
    return root;
  };
  const sorted = [...leaves.keys()].sort((a, b) => a - b);
  const hasLeafIn = (from: number, to: number) => sorted.some((i) => i >= from && i < to);
  /** MTH(D[from:to]) */
  const subtree = (from: number, to: number): Buffer => {
    if (!hasLeafIn(from, to)) return fillerRoot(to - from);
    if (to - from === 1) return leaves.get(from) as Buffer;
    const k = largestPowerOfTwoBelow(to - from);
    return hashChildren(subtree(from, from + k), subtree(from + k, to));
  };
  /** PATH(m, D[from:to]), leaf side first. */
  const path = (m: number, from: number, to: number): Buffer[] => {
    if (to - from <= 1) return [];
    const k = largestPowerOfTwoBelow(to - from);
    return m < from + k
      ? [...path(m, from, from + k), subtree(from + k, to)]
      : [...path(m, from + k, to), subtree(from, from + k)];
  };
  return { root: subtree(0, size), proof: (index: number) => path(index, 0, size) };
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-proof-size-"));
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("proof material of a pack", () => {
  it("the sparse tree gives merkle.ts's roots and proofs", () => {
    const filler = hashLeaf(Buffer.from("filler"));
    const own = new Map([3, 17, 18, 36].map((i) => [i, hashLeaf(Buffer.from(`leaf ${i}`))]));
    const all = Array.from({ length: 37 }, (_, i) => own.get(i) ?? filler);
    const tree = sparseTree(all.length, own, filler);
    expect(tree.root).toEqual(rootOf(all));
    for (const i of own.keys()) expect(tree.proof(i)).toEqual(inclusionProofOf(i, all));
  });

  it(`is at most 200 KB for a ${INCIDENT_ENTRIES}-entry incident in a ${TREE_SIZE.toLocaleString("en-US")}-entry log, and verifies`, async () => {
    // The incident's entries, spread over the log, each linked to the one before.
    const leaves: PackEntry[] = [];
    let prev = "none";
    for (let i = 0; i < INCIDENT_ENTRIES; i++) {
      const seq = 7 + i * Math.floor((TREE_SIZE - 7) / INCIDENT_ENTRIES);
      const leaf = leafBytes(seq, prev, v2Body(seq, { changes: { description: { old: `v${i}`, new: `v${i + 1}` } } }));
      leaves.push({ seq, leaf, proof: [] });
      prev = `${seq} ${hashLeaf(leaf).toString("hex")}`;
    }
    const filler = hashLeaf(leafBytes(1, null, v2Body(1, { incident_id: null, action: "session.created" })));
    const tree = sparseTree(TREE_SIZE, new Map(leaves.map((e) => [e.seq - 1, hashLeaf(e.leaf)])), filler);
    const entries = leaves.map((e) => ({ ...e, proof: tree.proof(e.seq - 1) }));
    const signingKey = key();

    const file = path.join(dir, "pack.zip");
    await writePack({
      output: createWriteStream(file),
      incident: incidentFile(),
      signingKey,
      toolVersion: "0.1.0",
      generatedAt: new Date("2026-11-20T10:00:00.000Z"),
      evidence: EVIDENCE.map((e) => ({
        id: e.id,
        filename: e.filename,
        size: e.bytes.length,
        content: chunks(e.bytes),
      })),
      checkpoint: signCheckpoint(
        ORIGIN,
        TREE_SIZE,
        tree.root,
        new Date("2026-11-20T09:59:00.000Z"),
        signingKey.privateKey,
      ),
      entries: () => iterate(entries),
      report: chunks(REPORT, 32),
    });
    expect(await verifyPack(file)).toMatchObject({
      ok: true,
      summary: { tenant: TENANT, entries: INCIDENT_ENTRIES, checkpoint: { treeSize: TREE_SIZE } },
    });

    const jsonl = (await readZip(file)).find((i) => i.name === "audit/entries.jsonl")?.data.toString("utf8") ?? "";
    const lines = jsonl
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as LeafLine);
    expect(lines.map((l) => l.seq)).toEqual(entries.map((e) => e.seq));
    expect(lines.every((l) => l.proof.length <= Math.ceil(Math.log2(TREE_SIZE)))).toBe(true);
    const proofBytes = lines.reduce((sum, l) => sum + Buffer.byteLength(JSON.stringify(l.proof)), 0);
    expect(proofBytes).toBeLessThanOrEqual(LIMIT); // about 141 KB: 100 × 21 hashes × 67 bytes
    expect(proofBytes).toBeGreaterThan(INCIDENT_ENTRIES * 20 * 64); // ~21 hashes each, in hex
    expect(jsonl).toContain(INCIDENT_ID);
  });
});
