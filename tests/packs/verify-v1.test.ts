/**
 * Version 1 evidence packs keep verifying: tests/fixtures/packs/v1.zip was written by the v1
 * writer (before format v2) from the synthetic data below, signed with the throwaway key
 * tests/fixtures/packs/v1-key.pem. verifyPack must accept it and catch every tampering with the
 * right check and a message that names the file or entry, exactly as it did when v1 was written.
 * Tampered packs are made the way an attacker would: unzip, edit, zip again, and re-sign when the
 * attacker holds a key.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditHash } from "../../src/audit/canonical.ts";
import type { AuditDocument } from "../../src/audit/leaf.ts";
import type { ChainLink, EntryLine, ManifestV1 } from "../../src/packs/format.ts";
import { formatFingerprint } from "../../src/packs/format.ts";
import { verifyPack } from "../../src/packs/verify.ts";
import { publicKeyFingerprint } from "../../src/packs/writer.ts";
import {
  Pack as AnyPack,
  EVIDENCE,
  failure,
  INCIDENT_ID,
  key,
  OTHER_INCIDENT_ID,
  readZip,
  seqLine,
  sha256,
  TENANT,
  TITLE,
  tamper as tamperIn,
  unzipTo,
  zipDashR,
} from "./pack-tools.ts";
import { SHAPES, v1Document } from "./synthetic-log.ts";

type Pack = AnyPack<ManifestV1>;

const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/packs");
const validPack = path.join(FIXTURES, "v1.zip");
const privateKey = createPrivateKey(await fs.readFile(path.join(FIXTURES, "v1-key.pem"), "utf8"));
const signingKey = { privateKey, fingerprint: publicKeyFingerprint(createPublicKey(privateKey)) };

/**
 * The data of the v1 fixture: the tenant's chain, seq 1..16 (the first 16 shapes of the synthetic
 * log); ten entries of the incident, the others not.
 */
function v1AuditTrail(): { documents: AuditDocument[]; lines: EntryLine[]; links: ChainLink[] } {
  const documents: AuditDocument[] = [];
  const links: ChainLink[] = [];
  let prev: string | null = null;
  SHAPES.slice(0, 16).forEach((shape, i) => {
    const document = v1Document(i + 1, shape, prev);
    const hash = auditHash(document as unknown as Record<string, unknown>);
    documents.push(document);
    links.push({ seq: document.seq, prev_hash: prev, hash });
    prev = hash;
  });
  const lines = documents
    .filter((d) => d.incident_id === INCIDENT_ID)
    .map((document) => ({ document, hash: links[document.seq - 1].hash }));
  return { documents, lines, links: links.slice(lines[0].document.seq - 1) };
}

let dir: string;
const trail = v1AuditTrail();
const tamper = (source: string, edit: (pack: Pack) => void) => tamperIn<ManifestV1>(dir, source, edit);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-packs-v1-"));
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("the v1 pack fixture", () => {
  it("verifies, and says what it holds and who signed it", async () => {
    const verdict = await verifyPack(validPack, { trustedFingerprints: [formatFingerprint(signingKey.fingerprint)] });
    expect(verdict).toEqual({
      ok: true,
      summary: {
        format: "attest-evidence-pack/1",
        incident: { id: INCIDENT_ID, title: TITLE },
        tenant: TENANT,
        generatedAt: "2026-11-20T10:00:00.000Z",
        entries: 10,
        files: 9,
        evidenceFiles: 3,
        fingerprint: signingKey.fingerprint,
        keyTrusted: true,
        head: { seq: 16, hash: trail.links.at(-1)?.hash },
      },
    });
  });

  it("holds the v1 files, the manifest listing each with its size and SHA-256", async () => {
    const items = await readZip(validPack);
    expect(items.map((i) => i.name)).toEqual([
      "README.txt",
      "incident.json",
      "evidence/a1b2c3d4-mail-headers.txt",
      "evidence/b2c3d4e5-zugangsprotokoll-東京.csv",
      "evidence/c3d4e5f6-proxy.log",
      "audit/entries.jsonl",
      "audit/entries.csv",
      "audit/chain.jsonl",
      "report.pdf",
      "manifest.json",
      "manifest.sig",
    ]);
    const manifest = JSON.parse(items.find((i) => i.name === "manifest.json")?.data.toString() ?? "") as ManifestV1;
    expect(manifest.format).toBe("attest-evidence-pack/1");
    expect(manifest.files).toEqual(
      items.slice(0, -2).map((i) => ({ path: i.name, size: i.data.length, sha256: sha256(i.data) })),
    );
    expect(manifest.audit).toEqual({
      entries: [3, 4, 5, 7, 8, 10, 11, 12, 14, 15],
      chain_from: 3,
      head: { seq: 16, hash: trail.links.at(-1)?.hash },
    });
    // The synthetic data below is the fixture's: its entries are the pack's, byte for byte.
    const jsonl = items.find((i) => i.name === "audit/entries.jsonl")?.data.toString() ?? "";
    expect(jsonl).toBe(trail.lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
  });

  it("re-zipped with folder entries (zip -r), still verifies", async () => {
    const unpacked = await unzipTo(dir, validPack);
    const rezipped = path.join(dir, "v1-rezipped.zip");
    await zipDashR(unpacked, rezipped);
    expect((await readZip(rezipped)).map((i) => i.name)).toContain("evidence/");
    expect(await verifyPack(rezipped)).toMatchObject({ ok: true, summary: { format: "attest-evidence-pack/1" } });
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
    const verdict = failure(await verifyPack(tampered));
    expect(verdict).toMatchObject({ check: "files", file });
    expect(verdict.message).toBe(
      `${file} changed: SHA-256 ${sha256((await readZip(tampered)).find((i) => i.name === file)?.data ?? "")}, expected ${sha256(EVIDENCE[1].bytes)}`,
    );
  });

  it("one byte of entries.csv", async () => {
    const tampered = await tamper(validPack, (p) =>
      p.replace("audit/entries.csv", "api,attest_user", "api,attest_usEr"),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "files",
      file: "audit/entries.csv",
      message: expect.stringMatching(/^audit\/entries\.csv changed: SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}$/),
    });
  });

  it("one byte of entries.jsonl", async () => {
    const tampered = await tamper(validPack, (p) =>
      p.replace("audit/entries.jsonl", '"new":"critical"', '"new":"criticaL"'),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "files",
      file: "audit/entries.jsonl",
      message: expect.stringMatching(/^audit\/entries\.jsonl changed: SHA-256 /),
    });
  });

  it("a removed entry: the file's hash no longer matches, and fixing the manifest breaks the signature", async () => {
    const removeEntry10 = (p: Pack) => {
      p.editLines("audit/entries.jsonl", (lines) => lines.filter((l) => !seqLine(10)(l)));
      p.editLines("audit/entries.csv", (lines) => lines.filter((l) => !seqLine(10)(l)));
    };
    expect(failure(await verifyPack(await tamper(validPack, removeEntry10)))).toMatchObject({
      check: "files",
      file: "audit/entries.jsonl",
    });

    const fixedManifest = await tamper(validPack, (p) => {
      removeEntry10(p);
      p.editManifest((m) => {
        m.files = m.files.map((f) => ({ ...f, size: p.get(f.path).length, sha256: sha256(p.get(f.path)) }));
        m.audit.entries = m.audit.entries.filter((s) => s !== 10);
      });
    });
    expect(failure(await verifyPack(fixedManifest))).toEqual({
      ok: false,
      check: "signature",
      file: "manifest.json",
      message: "manifest.sig does not match manifest.json: the manifest was changed after it was signed",
    });
  });

  it("two swapped entries", async () => {
    const tampered = await tamper(validPack, (p) =>
      p.editLines("audit/entries.jsonl", (lines) => [...lines.slice(0, 3), lines[4], lines[3], ...lines.slice(5)]),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({ check: "files", file: "audit/entries.jsonl" });
  });

  it("a changed hash in the manifest", async () => {
    const tampered = await tamper(validPack, (p) =>
      p.editManifest((m) => {
        m.files[2].sha256 = sha256("something else");
      }),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "signature",
      message: "manifest.sig does not match manifest.json: the manifest was changed after it was signed",
    });
  });

  it("a file added to the ZIP", async () => {
    const tampered = await tamper(validPack, (p) => {
      p.items.splice(5, 0, { name: "evidence/ffffffff-exculpatory.txt", data: Buffer.from("it was not us\n") });
    });
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "files",
      file: "evidence/ffffffff-exculpatory.txt",
      message: "unexpected file in the pack: evidence/ffffffff-exculpatory.txt (manifest.json does not list it)",
    });
  });

  it("a file removed from the ZIP", async () => {
    const tampered = await tamper(validPack, (p) => p.remove("evidence/c3d4e5f6-proxy.log"));
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "files",
      file: "evidence/c3d4e5f6-proxy.log",
      message: "evidence/c3d4e5f6-proxy.log is missing from the pack",
    });
  });

  it("a removed manifest.sig, and a file that is not a ZIP", async () => {
    const unsigned = await tamper(validPack, (p) => p.remove("manifest.sig"));
    expect(failure(await verifyPack(unsigned))).toMatchObject({
      check: "pack",
      message: "the pack has no manifest.sig",
    });
    const notZip = path.join(dir, "not-a-zip.zip");
    await fs.writeFile(notZip, "PK but not really");
    expect(failure(await verifyPack(notZip))).toMatchObject({
      check: "pack",
      message: expect.stringContaining("cannot be read as a ZIP file"),
    });
  });
});

describe("tampering by someone who holds the installation's key and re-signs", () => {
  // Re-signing fixes the manifest's sizes and hashes; what remains are the audit entries' own
  // hashes, which cover their documents and each other (prev_hash), up to the signed head.
  const resignWithSameKey = (edit: (p: Pack) => void, editManifest?: (m: ManifestV1) => void) => (p: Pack) => {
    edit(p);
    p.resign(signingKey.privateKey, editManifest);
  };

  it("an altered entry no longer matches its hash", async () => {
    const tampered = await tamper(
      validPack,
      resignWithSameKey((p) => p.replace("audit/entries.jsonl", '"new":"critical"', '"new":"medium"')),
    );
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "entries",
      file: "audit/entries.jsonl",
      entry: 8,
      message: "entry 8 was altered: its content does not match its hash",
    });
  });

  it("an altered entries.csv no longer matches entries.jsonl", async () => {
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

  it("a removed entry still listed in the manifest is missing", async () => {
    const tampered = await tamper(
      validPack,
      resignWithSameKey((p) => {
        p.editLines("audit/entries.jsonl", (lines) => lines.filter((l) => !seqLine(10)(l)));
        p.editLines("audit/entries.csv", (lines) => lines.filter((l) => !seqLine(10)(l)));
      }),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "entries",
      entry: 10,
      message: "entry 10 is missing",
    });
  });

  it("a removed entry taken out of the manifest and the chain leaves a gap in the chain", async () => {
    const tampered = await tamper(
      validPack,
      resignWithSameKey(
        (p) => {
          p.editLines("audit/entries.jsonl", (lines) => lines.filter((l) => !seqLine(10)(l)));
          p.editLines("audit/entries.csv", (lines) => lines.filter((l) => !seqLine(10)(l)));
          p.editLines("audit/chain.jsonl", (lines) => lines.filter((l) => !seqLine(10)(l)));
        },
        (m) => {
          m.audit.entries = m.audit.entries.filter((s) => s !== 10);
        },
      ),
    );
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "chain",
      file: "audit/chain.jsonl",
      entry: 11,
      message: "audit/chain.jsonl jumps from entry 9 to 11: entries in between were removed from the chain",
    });
  });

  it("a removed entry whose link is cut out and the chain renumbered no longer fits the entries after it", async () => {
    // Closing the gap: drop link 10, renumber the links after it and re-link them. The entries'
    // seqs and prev_hashes are covered by their hashes, so entry 11 no longer matches the chain.
    const tampered = await tamper(
      validPack,
      resignWithSameKey(
        (p) => {
          p.editLines("audit/entries.jsonl", (lines) => lines.filter((l) => !seqLine(10)(l)));
          p.editLines("audit/entries.csv", (lines) => lines.filter((l) => !seqLine(10)(l)));
          p.editLines("audit/chain.jsonl", (lines) => {
            const links = lines.map((l) => JSON.parse(l) as ChainLink).filter((l) => l.seq !== 10);
            return links.map((l, i) =>
              JSON.stringify(l.seq < 10 ? l : { seq: l.seq - 1, prev_hash: links[i - 1].hash, hash: l.hash }),
            );
          });
        },
        (m) => {
          m.audit.entries = m.audit.entries.filter((s) => s !== 10);
          m.audit.head = { seq: 15, hash: trail.links.at(-1)?.hash ?? "" };
        },
      ),
    );
    expect(failure(await verifyPack(tampered))).toEqual({
      ok: false,
      check: "chain",
      file: "audit/chain.jsonl",
      entry: 11,
      message: "entry 11 is not in the signed chain: the chain has another hash there",
    });
  });

  it("a removed entry whose link stays in the chain passes as another incident's entry, but the signed chain still commits to it", async () => {
    // The limit of a single pack: links of other entries show only hashes, so a key holder can
    // leave an entry out and keep its link. What they cannot do is take the entry out of the
    // chain: link 10 still carries its hash, so the genuine entry (from the database, or from an
    // earlier pack) proves it belongs to this incident and was left out.
    const tampered = await tamper(
      validPack,
      resignWithSameKey(
        (p) => {
          p.editLines("audit/entries.jsonl", (lines) => lines.filter((l) => !seqLine(10)(l)));
          p.editLines("audit/entries.csv", (lines) => lines.filter((l) => !seqLine(10)(l)));
        },
        (m) => {
          m.audit.entries = m.audit.entries.filter((s) => s !== 10);
        },
      ),
    );
    const verdict = await verifyPack(tampered);
    expect(verdict).toMatchObject({ ok: true, summary: { entries: 9 } });
    const genuine = trail.documents[9];
    const link = new AnyPack(await readZip(tampered))
      .text("audit/chain.jsonl")
      .split("\n")
      .find((l) => l.startsWith('{"seq":10,'));
    expect(JSON.parse(link ?? "null")).toMatchObject({ seq: 10, hash: auditHash(genuine as never) });
    expect(genuine.incident_id).toBe(INCIDENT_ID);
  });

  it("two swapped entries are out of order", async () => {
    const tampered = await tamper(
      validPack,
      resignWithSameKey((p) => {
        for (const file of ["audit/entries.jsonl", "audit/entries.csv"]) {
          p.editLines(file, (lines) => {
            const header = file.endsWith(".csv") ? 1 : 0;
            const a = lines.findIndex(seqLine(7));
            const b = lines.findIndex(seqLine(8));
            expect([a, b]).toEqual([header + 3, header + 4]);
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

  it("an entry of another incident slipped in", async () => {
    const foreign = { document: trail.documents[8], hash: trail.links[6].hash };
    expect(foreign.document.seq).toBe(9);
    const tampered = await tamper(
      validPack,
      resignWithSameKey(
        (p) =>
          p.editLines("audit/entries.jsonl", (lines) => [
            ...lines.slice(0, 5),
            JSON.stringify(foreign),
            ...lines.slice(5),
          ]),
        (m) => {
          m.audit.entries = [...m.audit.entries, 9].sort((a, b) => a - b);
        },
      ),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "entries",
      entry: 9,
      message: `entry 9 belongs to another incident (${OTHER_INCIDENT_ID}), not to this incident`,
    });
  });

  it("a chain that stops before the signed head", async () => {
    const tampered = await tamper(
      validPack,
      resignWithSameKey((p) => p.editLines("audit/chain.jsonl", (lines) => lines.slice(0, -1))),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "chain",
      message: "audit/chain.jsonl ends at entry 15, but the signed head is entry 16",
    });
  });
});

describe("a pack re-signed with another key", () => {
  const attacker = key();
  const resignWithOtherKey = (p: Pack) => {
    p.set("evidence/c3d4e5f6-proxy.log", "GET http://good.example/ 200\n".repeat(50));
    p.resign(attacker.privateKey, undefined, {
      algorithm: "ed25519",
      fingerprint: attacker.fingerprint,
      public_key_pem: attacker.publicKeyPem,
    });
  };

  it("is caught when the installation's fingerprint is given", async () => {
    const tampered = await tamper(validPack, resignWithOtherKey);
    expect(failure(await verifyPack(tampered, { trustedFingerprints: [signingKey.fingerprint] }))).toEqual({
      ok: false,
      check: "signature",
      file: "manifest.sig",
      message: `the pack is signed by a key that is not the installation's: ${formatFingerprint(attacker.fingerprint)}`,
    });
  });

  it("verifies without a trusted fingerprint, naming the key that signed it so that a reader can compare", async () => {
    const tampered = await tamper(validPack, resignWithOtherKey);
    expect(await verifyPack(tampered)).toMatchObject({
      ok: true,
      summary: { fingerprint: attacker.fingerprint, keyTrusted: false },
    });
  });

  it("is caught when the manifest claims the installation's fingerprint for another key", async () => {
    const tampered = await tamper(validPack, (p) =>
      p.resign(attacker.privateKey, undefined, {
        algorithm: "ed25519",
        fingerprint: signingKey.fingerprint,
        public_key_pem: attacker.publicKeyPem,
      }),
    );
    expect(failure(await verifyPack(tampered))).toMatchObject({
      check: "signature",
      message: `manifest.json names the key ${signingKey.fingerprint}, but its public key's fingerprint is ${formatFingerprint(attacker.fingerprint)}`,
    });
  });
});
