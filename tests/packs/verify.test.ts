/**
 * Evidence packs, format version 2: writePack builds a pack from a synthetic tenant log (a fresh
 * key, three evidence files, ten entries of the incident among other entries of the tenant, a
 * signed checkpoint; tests/packs/synthetic-log.ts) and verifyPack catches every tampering with the
 * right check and a message that names the file or entry, including tampering by whoever holds
 * the signing key, except the documented one (the incident's last entries left out).
 * Tampered packs are made the way an attacker would: unzip, edit, zip again, and re-sign when the
 * attacker holds a key. Version 1 packs: verify-v1.test.ts.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Writable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ZipFile } from "yazl";
import { signCheckpoint } from "../../src/audit/checkpoint.ts";
import { verifyConsistency } from "../../src/audit/merkle.ts";
import { formatFingerprint, type LeafLine, type Manifest } from "../../src/packs/format.ts";
import { verifyPack } from "../../src/packs/verify.ts";
import {
  looksCompressible,
  PackBuildError,
  type PackEntry,
  type PackSigningKey,
  type WritePackOptions,
  writePack,
} from "../../src/packs/writer.ts";
import {
  Pack as AnyPack,
  chunks,
  discard,
  EVIDENCE,
  failure,
  INCIDENT_ID,
  incidentFile,
  iterate,
  key,
  OTHER_INCIDENT_ID,
  REPORT,
  readZip,
  seqLine,
  sha256,
  TENANT,
  TITLE,
  tamper as tamperIn,
  unzipTo,
  zipDashR,
} from "./pack-tools.ts";
import { CHECKPOINT_TIME, leafBytes, ORIGIN, ORIGIN_PREFIX, SHAPES, syntheticLog, v2Body } from "./synthetic-log.ts";

type Pack = AnyPack<Manifest>;

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, "../../src/packs/verify-cli.ts");
const V1_FIXTURE = path.resolve(import.meta.dirname, "../fixtures/packs/v1.zip");

const INCIDENT_SEQS = [3, 4, 5, 7, 8, 10, 11, 12, 14, 15];
const log = syntheticLog();

let dir: string;
let signingKey: PackSigningKey;
let checkpoint: string;
let entries: PackEntry[];
let validPack: string;
let counter = 0;

function packOptions(output: Writable, overrides: Partial<WritePackOptions> = {}): WritePackOptions {
  return {
    output,
    incident: incidentFile(),
    signingKey,
    toolVersion: "0.1.0",
    generatedAt: new Date("2026-11-20T10:00:00.000Z"),
    evidence: EVIDENCE.map((e) => ({ id: e.id, filename: e.filename, size: e.bytes.length, content: chunks(e.bytes) })),
    checkpoint,
    entries: () => iterate(entries),
    report: chunks(REPORT, 32),
    ...overrides,
  };
}

async function buildPack(overrides: Partial<WritePackOptions> = {}): Promise<string> {
  const file = path.join(dir, `pack-${++counter}.zip`);
  await writePack(packOptions(createWriteStream(file), overrides));
  return file;
}

const tamper = (source: string, edit: (pack: Pack) => void) => tamperIn<Manifest>(dir, source, edit);

/** The JSONL line of a log entry as a pack holds it (for adding one). */
const lineOf = (entry: PackEntry) =>
  JSON.stringify({
    seq: entry.seq,
    leaf: Buffer.from(entry.leaf).toString("utf8"),
    proof: entry.proof.map((p) => Buffer.from(p).toString("hex")),
  });

/** Edits the JSONL line of entry `seq`. */
function editEntry(p: Pack, seq: number, edit: (line: LeafLine) => LeafLine): void {
  p.editLines("audit/entries.jsonl", (lines) =>
    lines.map((l) => {
      const line = JSON.parse(l) as LeafLine;
      return line.seq === seq ? JSON.stringify(edit(line)) : l;
    }),
  );
}

/** Takes entry `seq` out of entries.jsonl, entries.csv and the manifest's list. */
const withoutEntry = (seq: number) => ({
  files(p: Pack) {
    p.editLines("audit/entries.jsonl", (lines) => lines.filter((l) => !seqLine(seq)(l)));
    p.editLines("audit/entries.csv", (lines) => lines.filter((l) => !seqLine(seq)(l)));
  },
  manifest(m: Manifest) {
    m.audit.entries = m.audit.entries.filter((s) => s !== seq);
  },
});

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-packs-"));
  signingKey = key();
  checkpoint = log.checkpoint(signingKey.privateKey);
  entries = log.entriesOf(INCIDENT_ID);
  validPack = await buildPack();
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("a pack as writePack builds it", () => {
  it("verifies, and says what it holds, who signed it and the checkpoint", async () => {
    const verdict = await verifyPack(validPack, { trustedFingerprints: [formatFingerprint(signingKey.fingerprint)] });
    expect(verdict).toEqual({
      ok: true,
      summary: {
        format: "attest-evidence-pack/2",
        incident: { id: INCIDENT_ID, title: TITLE },
        tenant: TENANT,
        generatedAt: "2026-11-20T10:00:00.000Z",
        entries: 10,
        files: 9,
        evidenceFiles: 3,
        fingerprint: signingKey.fingerprint,
        keyTrusted: true,
        checkpoint: {
          origin: ORIGIN,
          treeSize: 21,
          rootHash: log.root.toString("hex"),
          time: CHECKPOINT_TIME.toISOString(),
        },
      },
    });
  });

  it("holds the files in the format's order, the manifest listing each with its size and SHA-256", async () => {
    const items = await readZip(validPack);
    expect(items.map((i) => i.name)).toEqual([
      "README.txt",
      "incident.json",
      "evidence/a1b2c3d4-mail-headers.txt",
      "evidence/b2c3d4e5-zugangsprotokoll-東京.csv",
      "evidence/c3d4e5f6-proxy.log",
      "audit/entries.jsonl",
      "audit/entries.csv",
      "audit/checkpoint.txt",
      "report.pdf",
      "manifest.json",
      "manifest.sig",
    ]);
    const pack = new AnyPack<Manifest>(items);
    const manifest = pack.manifest();
    expect(manifest.format).toBe("attest-evidence-pack/2");
    expect(manifest.files).toEqual(
      items.slice(0, -2).map((i) => ({ path: i.name, size: i.data.length, sha256: sha256(i.data) })),
    );
    expect(pack.get("evidence/b2c3d4e5-zugangsprotokoll-東京.csv")).toEqual(EVIDENCE[1].bytes);
    expect(manifest.audit).toEqual({
      entries: INCIDENT_SEQS,
      checkpoint: { origin: ORIGIN, tree_size: 21, root_hash: log.root.toString("hex") },
    });
    expect(pack.text("audit/checkpoint.txt")).toBe(checkpoint);
    expect(pack.text("README.txt")).toContain(formatFingerprint(signingKey.fingerprint));
    expect(pack.text("README.txt")).toContain("npm run verify -- pack.zip");
    expect(pack.text("README.txt")).toContain(`root ${log.root.toString("hex")}`);
    // A title that starts like a formula reaches the spreadsheet as text.
    expect(pack.text("audit/entries.csv")).toContain(`"'=HYPERLINK(""http://evil.example"",""open"")"`);
    expect(pack.text("audit/entries.csv").split("\r\n")[0]).toBe(
      "\uFEFFseq,occurred_at,actor,action,resource_type,resource_id,resource_label,incident_id,request_id,ip,user_agent,surface,db_role,changes,leaf_hash",
    );
  });

  it("holds each entry's exact leaf with its O(log N) inclusion proof, and nothing of other incidents but hashes", async () => {
    const pack = new AnyPack<Manifest>(await readZip(validPack));
    const lines = pack
      .text("audit/entries.jsonl")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as LeafLine);
    expect(lines.map((l) => l.seq)).toEqual(INCIDENT_SEQS);
    for (const line of lines) {
      expect(Buffer.from(line.leaf, "utf8")).toEqual(log.leaves[line.seq - 1]);
      expect(line.proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(21)));
    }
    expect(lines[0].leaf).toContain("\nincident-prev none\n");
    expect(lines[1].leaf).toContain(`\nincident-prev 3 ${log.leafHashes[2].toString("hex")}\n`);
    // Entry 3 was captured before v2: its body is its v1 document.
    expect(JSON.parse(lines[0].leaf.split("\n\n")[1])).toMatchObject({ v: 1, seq: 3, incident_id: INCIDENT_ID });
    for (const file of ["audit/entries.jsonl", "audit/entries.csv", "report.pdf", "manifest.json"]) {
      expect(pack.text(file)).not.toContain(OTHER_INCIDENT_ID);
      expect(pack.text(file)).not.toContain("webhook.updated");
    }
  });

  it("reports progress up to the whole content", async () => {
    const calls: Array<[number, number]> = [];
    await writePack(packOptions(discard(), { onProgress: (written, total) => calls.push([written, total]) }));
    const [written, total] = calls.at(-1) ?? [0, 0];
    expect(written).toBe(total);
    expect(calls.every(([w, t], i) => w <= t && (i === 0 || w >= calls[i - 1][0]))).toBe(true);
    const items = await readZip(validPack);
    expect(written).toBe(items.slice(0, -2).reduce((sum, i) => sum + i.data.length, 0));
  });

  it("still verifies when re-zipped by zip -r, or by a tool that adds folder entries", async () => {
    const unpacked = await unzipTo(dir, validPack);
    const rezipped = path.join(dir, "rezipped.zip");
    await zipDashR(unpacked, rezipped);
    const names = (await readZip(rezipped)).map((i) => i.name);
    expect(names).toEqual(expect.arrayContaining(["audit/", "evidence/", "audit/checkpoint.txt"]));
    expect(await verifyPack(rezipped)).toMatchObject({ ok: true, summary: { entries: 10 } });

    const withFolders = path.join(dir, "folders.zip");
    const zip = new ZipFile();
    zip.addEmptyDirectory("audit");
    zip.addEmptyDirectory("evidence");
    for (const item of await readZip(validPack)) zip.addBuffer(item.data, item.name);
    zip.end();
    await fs.writeFile(withFolders, zip.outputStream);
    expect(await verifyPack(withFolders)).toMatchObject({ ok: true });
  });
});

describe("how evidence goes into the ZIP", () => {
  it("looksCompressible: random bytes do not compress, text does; a tiny sample counts as compressible", () => {
    const random = [randomBytes(32 * 1024), randomBytes(32 * 1024), randomBytes(32 * 1024)];
    expect(looksCompressible(random)).toBe(false);
    const text = Buffer.from(
      "2026-11-03T09:00:00Z host-1 sshd[4711]: Failed password for root from 10.0.0.1\n".repeat(500),
    );
    expect(looksCompressible([text])).toBe(true);
    expect(looksCompressible([randomBytes(100)])).toBe(true);
    expect(looksCompressible([])).toBe(true);
    // Mostly incompressible with a compressible start (an archive with a text header) is sampled as a whole.
    expect(looksCompressible([text.subarray(0, 4096), randomBytes(32 * 1024), randomBytes(32 * 1024)])).toBe(false);
  });

  it("evidence marked not to compress is stored, the rest deflated; CRCs are right (unzip -t) and the pack verifies, also re-zipped", async () => {
    const evidence = EVIDENCE.map((e, i) => ({
      id: e.id,
      filename: e.filename,
      size: e.bytes.length,
      content: chunks(e.bytes, 7),
      compress: i !== 2,
    }));
    const file = await buildPack({ evidence });
    const listing = (await run("unzip", ["-v", file])).stdout;
    const method = (name: string) =>
      listing
        .split("\n")
        .find((l) => l.trimEnd().endsWith(name))
        ?.trim()
        .split(/\s+/)[1];
    expect(method("evidence/c3d4e5f6-proxy.log")).toBe("Stored");
    expect(method("evidence/a1b2c3d4-mail-headers.txt")).toMatch(/^Defl/);
    expect(method("audit/entries.jsonl")).toMatch(/^Defl/);
    expect((await run("unzip", ["-tq", file])).stdout).toMatch(/^No errors detected/);
    expect(await verifyPack(file)).toMatchObject({ ok: true, summary: { entries: 10, files: 9 } });
    const rezipped = path.join(dir, "stored-rezipped.zip");
    await zipDashR(await unzipTo(dir, file), rezipped);
    expect(await verifyPack(rezipped)).toMatchObject({ ok: true });
  });
});

describe("tampering an attacker cannot hide without the signing key", () => {
  it("one byte of an evidence file", async () => {
    const file = "evidence/b2c3d4e5-zugangsprotokoll-東京.csv";
    const tampered = await tamper(validPack, (p) => {
      const data = Buffer.from(p.get(file));
      data[20] ^= 0x01;
      p.set(file, data);
    });
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "files",
      file,
      message: expect.stringMatching(/changed: SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}$/),
    });
  });

  it("one byte of entries.jsonl or of the checkpoint", async () => {
    for (const file of ["audit/entries.jsonl", "audit/checkpoint.txt"]) {
      const tampered = await tamper(validPack, (p) => {
        const data = Buffer.from(p.get(file));
        data[5] ^= 0x01;
        p.set(file, data);
      });
      expect(failure(await verifyPack(tampered))).toMatchObject({ check: "files", file });
    }
  });

  it("a manifest changed after signing, a file added, a file removed", async () => {
    const edited = await tamper(validPack, (p) =>
      p.editManifest((m) => {
        m.audit.entries = m.audit.entries.slice(0, -1);
      }),
    );
    expect(failure(await verifyPack(edited))).toMatchObject({
      check: "signature",
      message: "manifest.sig does not match manifest.json: the manifest was changed after it was signed",
    });
    const added = await tamper(validPack, (p) => {
      p.items.splice(5, 0, { name: "evidence/ffffffff-exculpatory.txt", data: Buffer.from("it was not us\n") });
    });
    expect(failure(await verifyPack(added))).toEqual({
      ok: false,
      check: "files",
      file: "evidence/ffffffff-exculpatory.txt",
      message: "unexpected file in the pack: evidence/ffffffff-exculpatory.txt (manifest.json does not list it)",
    });
    const removed = await tamper(validPack, (p) => p.remove("audit/checkpoint.txt"));
    expect(failure(await verifyPack(removed))).toEqual({
      ok: false,
      check: "files",
      file: "audit/checkpoint.txt",
      message: "audit/checkpoint.txt is missing from the pack",
    });
  });

  it("a pack re-signed with another key is caught when the installation's fingerprint is given", async () => {
    const attacker = key();
    const tampered = await tamper(validPack, (p) =>
      p.resign(attacker.privateKey, undefined, {
        algorithm: "ed25519",
        fingerprint: attacker.fingerprint,
        public_key_pem: attacker.publicKeyPem,
      }),
    );
    expect(failure(await verifyPack(tampered, { trustedFingerprints: [signingKey.fingerprint] }))).toEqual({
      ok: false,
      check: "signature",
      file: "manifest.sig",
      message: `the pack is signed by a key that is not the installation's: ${formatFingerprint(attacker.fingerprint)}`,
    });
    // Without the fingerprint, the checkpoint gives it away: it is not signed by the pack's key.
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "checkpoint",
      file: "audit/checkpoint.txt",
      message: `audit/checkpoint.txt is not signed by the pack's key under the log's name ${ORIGIN}`,
    });
  });
});

describe("tampering by someone who holds the installation's key and re-signs", () => {
  // Re-signing fixes the manifest's sizes and hashes and its list of entries; what remains are the
  // inclusion proofs against the signed checkpoint and the incident links inside the leaves.
  const resignWithSameKey = (edit: (p: Pack) => void, editManifest?: (m: Manifest) => void) => (p: Pack) => {
    edit(p);
    p.resign(signingKey.privateKey, editManifest);
  };

  it("every entry removed in turn is detected, except the incident's last one (the documented limit)", async () => {
    for (const [i, seq] of INCIDENT_SEQS.entries()) {
      const removal = withoutEntry(seq);
      const tampered = await tamper(validPack, resignWithSameKey(removal.files, removal.manifest));
      const verdict = await verifyPack(tampered);
      const next = INCIDENT_SEQS[i + 1];
      if (next === undefined) {
        // The last entry: nothing after it in the pack links to it. format.ts and README.txt say so.
        expect(verdict).toMatchObject({ ok: true, summary: { entries: INCIDENT_SEQS.length - 1 } });
        continue;
      }
      const before = INCIDENT_SEQS[i - 1];
      expect(failure(verdict)).toEqual({
        ok: false,
        check: "entries",
        file: "audit/entries.jsonl",
        entry: next,
        message:
          before === undefined
            ? `entry ${next} links to entry ${seq} as the incident's previous entry, which the pack does not hold: the incident's earlier entries were removed`
            : `entry ${next} links to entry ${seq} as the incident's previous entry, but the entry before it in the pack is ${before}: an entry was removed, added or moved`,
      });
    }
  });

  it("an entry removed but still listed in the manifest is missing", async () => {
    const tampered = await tamper(validPack, resignWithSameKey(withoutEntry(10).files));
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "entries",
      entry: 10,
      message: "entry 10 is missing",
    });
  });

  it("an entry of another incident added (its proof is genuine)", async () => {
    const foreign = log.entriesOf(OTHER_INCIDENT_ID)[0];
    expect(foreign.seq).toBe(9);
    const tampered = await tamper(
      validPack,
      resignWithSameKey(
        (p) =>
          p.editLines("audit/entries.jsonl", (lines) => [...lines.slice(0, 5), lineOf(foreign), ...lines.slice(5)]),
        (m) => {
          m.audit.entries = [...m.audit.entries, 9].sort((a, b) => a - b);
        },
      ),
    );
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "entries",
      file: "audit/entries.jsonl",
      entry: 9,
      message: `entry 9 belongs to another incident (${OTHER_INCIDENT_ID}), not to this incident`,
    });
  });

  it("a fabricated entry added, linked correctly, with a borrowed proof", async () => {
    // An entry the log never held, claiming position 17 and linking to the incident's entry 15.
    const leaf = leafBytes(
      17,
      `15 ${log.leafHashes[14].toString("hex")}`,
      v2Body(17, { changes: { status: { old: "resolved", new: "closed" } } }),
    );
    const fabricated = { seq: 17, leaf, proof: log.entriesOf(INCIDENT_ID)[9].proof };
    const tampered = await tamper(
      validPack,
      resignWithSameKey(
        (p) => p.editLines("audit/entries.jsonl", (lines) => [...lines, lineOf(fabricated)]),
        (m) => {
          m.audit.entries = [...m.audit.entries, 17];
        },
      ),
    );
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "entries",
      file: "audit/entries.jsonl",
      entry: 17,
      message:
        "entry 17: its inclusion proof does not lead to the checkpoint's root: the entry was altered, or it is not in the signed log",
    });
    // Or placed after the end of the signed tree.
    const beyond = { ...fabricated, seq: 22, leaf: Buffer.from(leaf.toString().replace("seq 17", "seq 22")) };
    const later = await tamper(
      validPack,
      resignWithSameKey(
        (p) => p.editLines("audit/entries.jsonl", (lines) => [...lines, lineOf(beyond)]),
        (m) => {
          m.audit.entries = [...m.audit.entries, 22];
        },
      ),
    );
    expect(failure(await verifyPack(later))).toMatchObject({
      check: "entries",
      entry: 22,
      message: "entry 22: it is after the end of the checkpoint's tree of 21 entries",
    });
  });

  it("two entries reordered", async () => {
    const tampered = await tamper(
      validPack,
      resignWithSameKey((p) => {
        for (const file of ["audit/entries.jsonl", "audit/entries.csv"]) {
          p.editLines(file, (lines) => {
            const a = lines.findIndex(seqLine(7));
            const b = lines.findIndex(seqLine(8));
            return [...lines.slice(0, a), lines[b], lines[a], ...lines.slice(b + 1)];
          });
        }
      }),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "entries",
      entry: 7,
      message: "entries 7 and 8 are out of order",
    });
  });

  it("an entry altered: one byte of its body, or its incident link", async () => {
    const body = await tamper(
      validPack,
      resignWithSameKey((p) =>
        editEntry(p, 8, (l) => ({ ...l, leaf: l.leaf.replace('"new":"critical"', '"new":"medium"') })),
      ),
    );
    expect(failure(await verifyPack(body))).toEqual({
      ok: false,
      check: "entries",
      file: "audit/entries.jsonl",
      entry: 8,
      message:
        "entry 8: its inclusion proof does not lead to the checkpoint's root: the entry was altered, or it is not in the signed log",
    });
    const link = await tamper(
      validPack,
      resignWithSameKey((p) =>
        editEntry(p, 4, (l) => ({ ...l, leaf: l.leaf.replace(/incident-prev [^\n]*/, "incident-prev none") })),
      ),
    );
    expect(failure(await verifyPack(link))).toMatchObject({ check: "entries", entry: 4 });
  });

  it("an entry's proof altered: a flipped bit, a hash left out", async () => {
    const flipped = await tamper(
      validPack,
      resignWithSameKey((p) =>
        editEntry(p, 10, (l) => ({
          ...l,
          proof: l.proof.map((h, i) => (i === 1 ? `${h.slice(0, 63)}${h[63] === "0" ? "1" : "0"}` : h)),
        })),
      ),
    );
    expect(failure(await verifyPack(flipped))).toMatchObject({
      check: "entries",
      entry: 10,
      message: expect.stringContaining("entry 10: its inclusion proof does not lead to the checkpoint's root"),
    });
    const short = await tamper(
      validPack,
      resignWithSameKey((p) => editEntry(p, 10, (l) => ({ ...l, proof: l.proof.slice(0, -1) }))),
    );
    expect(failure(await verifyPack(short))).toMatchObject({ check: "entries", entry: 10 });
  });

  it("the checkpoint altered: another root not signed, a re-signed other tree, another tenant's log, a size the manifest does not state", async () => {
    const otherRoot = Buffer.alloc(32, 7);
    const unsigned = await tamper(
      validPack,
      resignWithSameKey(
        (p) =>
          p.set("audit/checkpoint.txt", checkpoint.replace(log.root.toString("base64"), otherRoot.toString("base64"))),
        (m) => {
          m.audit.checkpoint.root_hash = otherRoot.toString("hex");
        },
      ),
    );
    expect(failure(await verifyPack(unsigned))).toEqual({
      ok: false,
      check: "checkpoint",
      file: "audit/checkpoint.txt",
      message: `audit/checkpoint.txt is not signed by the pack's key under the log's name ${ORIGIN}`,
    });

    const resigned = await tamper(
      validPack,
      resignWithSameKey(
        (p) =>
          p.set("audit/checkpoint.txt", signCheckpoint(ORIGIN, 21, otherRoot, CHECKPOINT_TIME, signingKey.privateKey)),
        (m) => {
          m.audit.checkpoint.root_hash = otherRoot.toString("hex");
        },
      ),
    );
    expect(failure(await verifyPack(resigned))).toMatchObject({
      check: "entries",
      entry: 3,
      message: expect.stringContaining("its inclusion proof does not lead to the checkpoint's root"),
    });

    const otherTenant = `${ORIGIN_PREFIX}/audit/${OTHER_INCIDENT_ID}`;
    const foreignLog = await tamper(
      validPack,
      resignWithSameKey(
        (p) => p.set("audit/checkpoint.txt", log.checkpoint(signingKey.privateKey, otherTenant)),
        (m) => {
          m.audit.checkpoint.origin = otherTenant;
        },
      ),
    );
    expect(failure(await verifyPack(foreignLog))).toMatchObject({
      check: "checkpoint",
      message: `audit/checkpoint.txt is the checkpoint of the log ${otherTenant}, not of this workspace's (…/audit/${TENANT.id})`,
    });

    const misstated = await tamper(
      validPack,
      resignWithSameKey(
        () => {},
        (m) => {
          m.audit.checkpoint.tree_size = 15;
        },
      ),
    );
    expect(failure(await verifyPack(misstated))).toMatchObject({
      check: "checkpoint",
      message: `audit/checkpoint.txt is the checkpoint of ${ORIGIN} at size 21 with root ${log.root.toString("hex")}, but manifest.json states ${ORIGIN} at size 15 with root ${log.root.toString("hex")}`,
    });
  });

  it("entries.csv altered", async () => {
    const tampered = await tamper(
      validPack,
      resignWithSameKey((p) => p.replace("audit/entries.csv", "api,attest_user", "api,attest_usEr")),
    );
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "csv",
      file: "audit/entries.csv",
      entry: 15,
      message:
        'audit/entries.csv differs from audit/entries.jsonl for entry 15: db_role is "attest_usEr" in the CSV, "attest_user" in the entry',
    });
  });

  it("entries.csv missing a row, or with one too many", async () => {
    const short = await tamper(
      validPack,
      resignWithSameKey((p) => p.editLines("audit/entries.csv", (lines) => lines.slice(0, -1))),
    );
    expect(failure(await verifyPack(short))).toEqual({
      ok: false,
      check: "csv",
      file: "audit/entries.csv",
      entry: 15,
      message: "audit/entries.csv has no row for entry 15",
    });
    const long = await tamper(
      validPack,
      resignWithSameKey((p) => p.editLines("audit/entries.csv", (lines) => [...lines, lines[lines.length - 1]])),
    );
    expect(failure(await verifyPack(long))).toEqual({
      ok: false,
      check: "csv",
      file: "audit/entries.csv",
      message: 'audit/entries.csv has a row (seq "15") that audit/entries.jsonl does not',
    });
  });

  it("entries.csv is compared row by row past its first batch of rows (a pack of some 570 entries)", async () => {
    // (the verifier writes and parses back the rows it expects 500 at a time)
    const big = syntheticLog(Array.from({ length: 1_200 }, (_, i) => SHAPES[i % SHAPES.length]));
    const bigEntries = big.entriesOf(INCIDENT_ID);
    expect(bigEntries.length).toBeGreaterThan(500);
    const pack = await buildPack({
      checkpoint: big.checkpoint(signingKey.privateKey),
      entries: () => iterate(bigEntries),
    });
    expect(await verifyPack(pack)).toMatchObject({ ok: true });
    for (const row of [501, bigEntries.length]) {
      const seq = bigEntries[row - 1].seq;
      const tampered = await tamper(
        pack,
        resignWithSameKey((p) =>
          p.editLines("audit/entries.csv", (lines) =>
            lines.map((line, i) => (i === row ? line.replace(",attest_user,", ",attest_usEr,") : line)),
          ),
        ),
      );
      expect(failure(await verifyPack(tampered)), `row ${row}`).toEqual({
        ok: false,
        check: "csv",
        file: "audit/entries.csv",
        entry: seq,
        message: `audit/entries.csv differs from audit/entries.jsonl for entry ${seq}: db_role is "attest_usEr" in the CSV, "attest_user" in the entry`,
      });
    }
  });

  it("an entirely different log signed by the key holder verifies on its own, but is not consistent with a checkpoint obtained elsewhere", async () => {
    // The documented limit: the key holder rewrites entry 8 and signs a new tree. The pack alone
    // cannot tell; the genuine checkpoint (from /.well-known or an earlier pack) can.
    const rewritten = syntheticLog(
      SHAPES.map((s, i) => (i === 7 ? { changes: { severity: { old: "high", new: "low" } } } : s)),
    );
    const forged = await buildPack({
      checkpoint: rewritten.checkpoint(signingKey.privateKey),
      entries: () => iterate(rewritten.entriesOf(INCIDENT_ID)),
    });
    expect(await verifyPack(forged)).toMatchObject({ ok: true });
    expect(rewritten.root.equals(log.root)).toBe(false);
    // Same size, different roots: no consistency proof can exist.
    expect(verifyConsistency(21, 21, [], log.root, rewritten.root)).toBe(false);
  });
});

describe("writePack refuses input that would make a false pack", () => {
  const refuses = (overrides: Partial<WritePackOptions>) => writePack(packOptions(discard(), overrides));
  const withEntries = (list: PackEntry[]) => ({ entries: () => iterate(list) });

  it("a leaf that is not the one the checkpoint's tree holds at its position", async () => {
    const list = entries.map((e) =>
      e.seq === 8 ? { ...e, leaf: Buffer.from(Buffer.from(e.leaf).toString().replace('"critical"', '"medium"')) } : e,
    );
    await expect(refuses(withEntries(list))).rejects.toThrow(
      new PackBuildError(
        "audit entry 8: its inclusion proof does not lead to the checkpoint's root: the entry was altered, or it is not in the signed log",
      ),
    );
  });

  it("a proof that does not lead to the root", async () => {
    const list = entries.map((e) => (e.seq === 11 ? { ...e, proof: e.proof.slice(1) } : e));
    await expect(refuses(withEntries(list))).rejects.toThrow("audit entry 11: its inclusion proof does not lead");
  });

  it("positions that do not increase: an entry twice, two entries swapped", async () => {
    const twice = [...entries.slice(0, 5), entries[4], ...entries.slice(5)];
    await expect(refuses(withEntries(twice))).rejects.toThrow(
      "audit entry 8 comes after entry 8: entries must be oldest first",
    );
    const swapped = [...entries];
    [swapped[3], swapped[4]] = [swapped[4], swapped[3]];
    // Entry 8 comes first now, and links to 7, which the pack has not had yet.
    await expect(refuses(withEntries(swapped))).rejects.toThrow(
      "audit entry 8 links to entry 7 as the incident's previous entry, but the entry before it in the pack is 5",
    );
  });

  it("a broken incident link (an entry left out)", async () => {
    await expect(refuses(withEntries(entries.filter((e) => e.seq !== 10)))).rejects.toThrow(
      "audit entry 11 links to entry 10 as the incident's previous entry, but the entry before it in the pack is 8: an entry was removed, added or moved",
    );
  });

  it("an entry of another incident, or of another tenant", async () => {
    const foreign = log.entriesOf(OTHER_INCIDENT_ID)[0];
    const list = [...entries.filter((e) => e.seq < 9), foreign, ...entries.filter((e) => e.seq > 9)];
    await expect(refuses(withEntries(list))).rejects.toThrow(
      `audit entry 9 belongs to another incident (${OTHER_INCIDENT_ID}), not to this incident`,
    );
    const otherTenant = "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a";
    const listed = incidentFile();
    listed.tenant = { ...listed.tenant, id: otherTenant };
    await expect(
      refuses({
        incident: listed,
        checkpoint: log.checkpoint(signingKey.privateKey, `${ORIGIN_PREFIX}/audit/${otherTenant}`),
      }),
    ).rejects.toThrow(`audit entry 3 belongs to another workspace (${TENANT.id}), not to this incident`);
  });

  it("a checkpoint not signed by the pack's key, or of another tenant's log", async () => {
    await expect(refuses({ checkpoint: log.checkpoint(key().privateKey) })).rejects.toThrow(
      new PackBuildError(`the checkpoint of ${ORIGIN} is not signed by the pack's signing key`),
    );
    const other = `${ORIGIN_PREFIX}/audit/${OTHER_INCIDENT_ID}`;
    await expect(refuses({ checkpoint: log.checkpoint(signingKey.privateKey, other) })).rejects.toThrow(
      `the checkpoint is of the log ${other}, not of tenant ${TENANT.id}'s`,
    );
    await expect(refuses({ checkpoint: "not a checkpoint\n" })).rejects.toThrow("the checkpoint is malformed");
  });

  it("evidence bytes that are not the ones incident.json lists", async () => {
    const evidence = EVIDENCE.map((e, i) => ({
      id: e.id,
      filename: e.filename,
      size: e.bytes.length,
      content: chunks(i === 2 ? Buffer.alloc(e.bytes.length, 0x41) : e.bytes),
    }));
    await expect(refuses({ evidence })).rejects.toThrow(
      /^evidence\/c3d4e5f6-proxy\.log: its SHA-256 is [0-9a-f]{64}, incident\.json lists [0-9a-f]{64}$/,
    );
  });

  it("a fingerprint that is not the key's", async () => {
    const other = key();
    await expect(refuses({ signingKey: { ...signingKey, fingerprint: other.fingerprint } })).rejects.toThrow(
      `the signing key's fingerprint is ${signingKey.fingerprint}, not ${other.fingerprint}`,
    );
  });

  it("a source that fails: the output is destroyed and the error reaches the caller", async () => {
    const output = discard();
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.from("%PDF-1.7\n");
      throw new Error("the report renderer crashed");
    }
    await expect(writePack(packOptions(output, { report: broken() }))).rejects.toThrow("the report renderer crashed");
    expect(output.destroyed).toBe(true);
  });

  it("an output that fails, or an abort: the source being read is closed (a database cursor is released)", async () => {
    // Incompressible: its bytes reach the output while it is read (spaces would deflate to nothing until the end).
    const big = randomBytes(4 * 1024 * 1024);
    const listed = incidentFile();
    listed.evidence = [{ ...listed.evidence[0], size: big.length, sha256: sha256(big) }];
    let state = "idle";
    async function* tracked(): AsyncGenerator<Buffer> {
      state = "reading";
      try {
        yield* chunks(big, 64 * 1024);
        state = "read to the end";
      } finally {
        if (state === "reading") state = "closed half-way";
      }
    }
    const options = (output: Writable, extra: Partial<WritePackOptions> = {}) =>
      packOptions(output, {
        incident: listed,
        evidence: [{ id: EVIDENCE[0].id, filename: EVIDENCE[0].filename, size: big.length, content: tracked() }],
        ...extra,
      });
    const { Writable: W } = await import("node:stream");
    const failing = new W({
      write: (_chunk, _encoding, callback) => callback(state === "reading" ? new Error("disk full") : null),
    });
    await expect(writePack(options(failing))).rejects.toThrow("disk full");
    expect(state).toBe("closed half-way");

    state = "idle";
    const controller = new AbortController();
    const onProgress = (written: number) => {
      if (written > 1024 * 1024) controller.abort();
    };
    await expect(writePack(options(discard(), { signal: controller.signal, onProgress }))).rejects.toThrow(/abort/i);
    expect(state).toBe("closed half-way");
  });
});

describe("npm run verify", () => {
  const cli = async (args: string[], env: Record<string, string> = {}) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
        env: { ...process.env, ATTEST_TRUSTED_KEYS: "", ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const fp = () => formatFingerprint(signingKey.fingerprint);

  it("prints VALID and exits 0, saying when the key was not checked", async () => {
    expect(await cli([validPack])).toEqual({
      code: 0,
      stdout: `VALID: ${TITLE} — 10 audit entries, 9 files, signed by ${fp()} (key not checked against a trusted fingerprint)\n`,
      stderr: "",
    });
    expect(await cli([validPack, "--key", fp()])).toMatchObject({
      code: 0,
      stdout: `VALID: ${TITLE} — 10 audit entries, 9 files, signed by ${fp()}\n`,
    });
    expect(
      await cli([validPack], { ATTEST_TRUSTED_KEYS: `${"0".repeat(64)},${signingKey.fingerprint}` }),
    ).toMatchObject({ code: 0, stdout: `VALID: ${TITLE} — 10 audit entries, 9 files, signed by ${fp()}\n` });
  });

  it("verifies a v1 pack too", async () => {
    expect(await cli([V1_FIXTURE])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        new RegExp(`^VALID: ${TITLE} — 10 audit entries, 9 files, signed by [0-9a-f:]+ \\(key not checked`),
      ),
    });
  });

  it("prints INVALID with the check and exits 1", async () => {
    const tampered = await tamper(validPack, (p) => p.remove("evidence/c3d4e5f6-proxy.log"));
    expect(await cli([tampered])).toEqual({
      code: 1,
      stdout: "INVALID: files: evidence/c3d4e5f6-proxy.log is missing from the pack\n",
      stderr: "",
    });
    expect(await cli([validPack], { ATTEST_TRUSTED_KEYS: "ab".repeat(32) })).toEqual({
      code: 1,
      stdout: `INVALID: signature: the pack is signed by a key that is not the installation's: ${fp()}\n`,
      stderr: "",
    });
  });

  it("exits 2 on usage errors", async () => {
    const missing = await cli([path.join(dir, "no-such-pack.zip")]);
    expect(missing).toMatchObject({ code: 2, stdout: "", stderr: expect.stringContaining("no such file") });
    expect(await cli([])).toMatchObject({ code: 2, stdout: "", stderr: expect.stringContaining("usage:") });
    expect(await cli([validPack, "--key", "not-a-fingerprint"])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("not a key fingerprint"),
    });
  });
});
