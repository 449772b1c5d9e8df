/**
 * npm run bench:pack — writes an evidence pack with 200 MB of generated evidence (streamed from
 * generators, never held in memory) to the temporary directory, verifies it, and prints the peak
 * RSS and the duration of each. The point is that memory stays flat: the peak should not grow with
 * the evidence size (try EVIDENCE_MB=1000).
 *
 * RSS also holds garbage V8 has not collected yet (chunks already written), so the peak drifts up
 * with long runs without that memory being live. BENCH_GC=1 forces a collection at every sample
 * (10 ms; slow): the peak is then the working set, which is what must stay flat.
 *
 * Evidence: half incompressible (AES-CTR keystream, like images or archives), half log lines.
 * Audit: 10,000 incident entries (leaves with inclusion proofs) in a tenant log of 100,000 entries
 * (BENCH_ENTRIES sets the first; the log is ten times that). The target: verified in ≤ 2 s.
 */
import { execFile } from "node:child_process";
import { createCipheriv, createHash, generateKeyPairSync } from "node:crypto";
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { originOf, signCheckpoint } from "../src/audit/checkpoint.ts";
import { hashChildren, hashLeaf } from "../src/audit/merkle.ts";
import type { AuditBodyV2, IncidentFile } from "../src/packs/format.ts";
import { verifyPack } from "../src/packs/verify.ts";
import { evidencePath, type PackEntry, publicKeyFingerprint, writePack } from "../src/packs/writer.ts";

const run = promisify(execFile);
const MB = 1024 * 1024;
const EVIDENCE_MB = Number(process.env.EVIDENCE_MB ?? 200);
const FILES = 4;
const CHUNK = 64 * 1024;
const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 10_000);
const LINKS = ENTRIES * 10;
const TENANT = { id: "0b6f3a5e-4d1c-4f7a-9a51-1c2d3e4f5a6b", slug: "bench", name: "Bench GmbH" };
const INCIDENT_ID = "5e0c8f1a-2b3d-4c5e-8f90-a1b2c3d4e5f6";

/** Deterministic content of evidence file `i`, `size` bytes, in fresh 64 KiB chunks. */
async function* evidenceContent(i: number, size: number): AsyncGenerator<Buffer> {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, i), Buffer.alloc(16, 0));
  let line = 0;
  for (let done = 0; done < size; done += CHUNK) {
    const n = Math.min(CHUNK, size - done);
    if (i % 2 === 0) {
      yield cipher.update(Buffer.alloc(n));
    } else {
      let text = "";
      while (text.length < n) {
        line++;
        text += `2026-11-03T09:${String(line % 60).padStart(2, "0")}:00.000Z host-${line % 97} sshd[${line}]: Failed password for invalid user admin${line % 13} from 10.0.${line % 256}.${line % 199} port ${1024 + (line % 60000)} ssh2\n`;
      }
      yield Buffer.from(text.slice(0, n), "latin1");
    }
  }
}

async function sha256Of(source: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of source) hash.update(chunk);
  return hash.digest("hex");
}

function body(seq: number, ours: boolean): string {
  const b: AuditBodyV2 = {
    v: 2,
    tenant_id: TENANT.id,
    id: seq,
    occurred_at: new Date(Date.UTC(2026, 10, 3, 9, 0, seq)).toISOString(),
    actor_user_id: null,
    actor_label: "analyst@bench.example",
    api_token_id: null,
    db_role: "attest_user",
    surface: "web",
    request_id: `req-${seq}`,
    ip: "198.51.100.23",
    user_agent: "Mozilla/5.0",
    action: ours ? "incident.updated" : "webhook.updated",
    resource_type: ours ? "incident" : "webhook",
    resource_id: ours ? INCIDENT_ID : null,
    resource_label: ours ? "Bench incident" : "https://hooks.example",
    incident_id: ours ? INCIDENT_ID : null,
    changes: { description: { old: `revision ${seq - 1}`, new: `revision ${seq}` } },
  };
  return JSON.stringify(b);
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 9162 inclusion proofs of a whole tree, with every subtree hash computed once. */
function proofsOf(leafHashes: Buffer[]) {
  const memo = new Map<string, Buffer>();
  const subtree = (from: number, to: number): Buffer => {
    if (to - from === 1) return leafHashes[from];
    const key = `${from}:${to}`;
    let hash = memo.get(key);
    if (!hash) {
      const k = largestPowerOfTwoBelow(to - from);
      hash = hashChildren(subtree(from, from + k), subtree(from + k, to));
      memo.set(key, hash);
    }
    return hash;
  };
  const proof = (m: number, from: number, to: number): Buffer[] => {
    if (to - from <= 1) return [];
    const k = largestPowerOfTwoBelow(to - from);
    return m < from + k
      ? [...proof(m, from, from + k), subtree(from + k, to)]
      : [...proof(m, from + k, to), subtree(from, from + k)];
  };
  return { root: subtree(0, leafHashes.length), proof: (index: number) => proof(index, 0, leafHashes.length) };
}

function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

/** Samples RSS every 10 ms while fn runs; returns fn's result, the peak and the duration. */
async function measure<T>(fn: () => Promise<T>): Promise<{ result: T; peakRss: number; ms: number }> {
  let peakRss = process.memoryUsage.rss();
  const timer = setInterval(() => {
    if (process.env.BENCH_GC) (globalThis as { gc?: () => void }).gc?.();
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 10);
  const start = performance.now();
  try {
    const result = await fn();
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    return { result, peakRss, ms: performance.now() - start };
  } finally {
    clearInterval(timer);
  }
}

// incident.json lists each file's SHA-256, so the content is generated once beforehand to hash it,
// in a child process: the garbage of that pass would otherwise stay in this process's RSS.
if (process.argv[2] === "--sha256") {
  process.stdout.write(await sha256Of(evidenceContent(Number(process.argv[3]), Number(process.argv[4]))));
  process.exit(0);
}
const sizes = Array.from({ length: FILES }, (_, i) => Math.floor((EVIDENCE_MB * MB) / FILES) + i);
const evidence = await Promise.all(
  sizes.map(async (size, i) => ({
    id: `e${i}000000-0000-4000-8000-00000000000${i}`,
    filename: i % 2 === 0 ? `disk-image-${i}.bin` : `auth-${i}.log`,
    size,
    sha256: (await run(process.execPath, [import.meta.filename, "--sha256", String(i), String(size)])).stdout,
  })),
);

// The tenant log: every tenth entry is one of the incident's, linked to the one before.
const leaves: Buffer[] = [];
const ours: number[] = [];
let incidentPrev = "none";
for (let seq = 1; seq <= LINKS; seq++) {
  const isOurs = seq % (LINKS / ENTRIES) === 1;
  const link = isOurs ? `incident-prev ${incidentPrev}\n` : "";
  const leaf = Buffer.from(`attest-audit-entry/2\nseq ${seq}\n${link}\n${body(seq, isOurs)}`, "utf8");
  leaves.push(leaf);
  if (isOurs) {
    ours.push(seq);
    incidentPrev = `${seq} ${hashLeaf(leaf).toString("hex")}`;
  }
}
const tree = proofsOf(leaves.map((l) => hashLeaf(l)));
const entries: PackEntry[] = ours.map((seq) => ({ seq, leaf: leaves[seq - 1], proof: tree.proof(seq - 1) }));

const incident: IncidentFile = {
  incident: {
    id: INCIDENT_ID,
    title: "Bench incident",
    severity: "high",
    status: "open",
    description: "",
    root_cause: null,
    lessons_learned: null,
    nis2_enabled: true,
    created_at: "2026-11-03T09:00:01.000Z",
    created_by: null,
    updated_at: "2026-11-03T09:00:01.000Z",
  },
  tenant: TENANT,
  milestones: [],
  evidence: evidence.map((e) => ({
    id: e.id,
    filename: e.filename,
    path: evidencePath(e.id, e.filename),
    content_type: "application/octet-stream",
    size: e.size,
    sha256: e.sha256,
    uploaded_at: "2026-11-03T09:00:02.000Z",
    uploaded_by: null,
  })),
};

async function* report(): AsyncGenerator<Buffer> {
  yield Buffer.from("%PDF-1.7\n");
  for (let i = 0; i < 32; i++) yield Buffer.alloc(CHUNK, 0x20);
  yield Buffer.from("%%EOF\n");
}

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const zipPath = path.join(os.tmpdir(), `attest-pack-bench-${process.pid}.zip`);
(globalThis as { gc?: () => void }).gc?.(); // npm run bench:pack runs node --expose-gc
const baseline = process.memoryUsage.rss();

const write = await measure(() =>
  writePack({
    output: createWriteStream(zipPath),
    incident,
    signingKey: {
      privateKey,
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
      fingerprint: publicKeyFingerprint(publicKey),
    },
    toolVersion: "bench",
    generatedAt: new Date(),
    evidence: evidence.map((e, i) => ({ ...e, content: evidenceContent(i, e.size) })),
    checkpoint: signCheckpoint(originOf("bench.example", TENANT.id), LINKS, tree.root, new Date(), privateKey),
    entries: async function* () {
      yield* entries;
    },
    report: report(),
  }),
);
const verify = await measure(() => verifyPack(zipPath));
const maxRss = process.resourceUsage().maxRSS * 1024;
await fs.rm(zipPath, { force: true });

if (!verify.result.ok) {
  console.error(`the bench pack does not verify: ${verify.result.check}: ${verify.result.message}`);
  process.exit(1);
}
console.log(
  `evidence        ${mb(sizes.reduce((a, b) => a + b, 0))} in ${FILES} files (streamed), ${ENTRIES} entries with proofs in a log of ${LINKS}`,
);
console.log(`pack            ${mb(write.result.zipSize)} at ${zipPath} (removed)`);
console.log(`RSS before      ${mb(baseline)} (test data: the log's leaves and proofs)`);
console.log(
  `writePack       ${(write.ms / 1000).toFixed(1)} s, peak RSS ${mb(write.peakRss)} (+${mb(write.peakRss - baseline)})`,
);
console.log(
  `verifyPack      ${(verify.ms / 1000).toFixed(1)} s, peak RSS ${mb(verify.peakRss)} (+${mb(verify.peakRss - baseline)})`,
);
console.log(`process maxRSS  ${mb(maxRss)} (resourceUsage)`);
