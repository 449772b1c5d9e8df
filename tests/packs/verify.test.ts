/**
 * Evidence packs: writePack builds a pack from synthetic data (a fresh key, three evidence files,
 * ten audit entries chained with prev_hash among other entries of the tenant) and verifyPack
 * catches every tampering with the right check and a message that names the file or entry.
 * Tampered packs are made the way an attacker would: unzip, edit, zip again, and re-sign when the
 * attacker holds a key.
 */
import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPromise } from "yauzl";
import { ZipFile } from "yazl";
import { auditHash } from "../../src/packs/canonical.ts";
import type { AuditDocument, ChainLink, EntryLine, IncidentFile, Manifest } from "../../src/packs/format.ts";
import { formatFingerprint } from "../../src/packs/format.ts";
import { type Verdict, verifyPack } from "../../src/packs/verify.ts";
import {
  evidencePath,
  PackBuildError,
  type PackSigningKey,
  publicKeyFingerprint,
  type WritePackOptions,
  writePack,
} from "../../src/packs/writer.ts";

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, "../../src/packs/verify-cli.ts");

const TENANT = { id: "0b6f3a5e-4d1c-4f7a-9a51-1c2d3e4f5a6b", slug: "nordwind", name: "Nordwind Logistik GmbH" };
const INCIDENT_ID = "5e0c8f1a-2b3d-4c5e-8f90-a1b2c3d4e5f6";
const OTHER_INCIDENT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const TITLE = "Credential phishing against the finance team";
const USER = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";

function key(): PackSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    fingerprint: publicKeyFingerprint(publicKey),
  };
}

const EVIDENCE = [
  { id: "a1b2c3d4-0000-4000-8000-000000000001", filename: "mail-headers.txt", content: "Received: from mx1\r\n" },
  {
    id: "b2c3d4e5-0000-4000-8000-000000000002",
    filename: "zugangsprotokoll-東京.csv",
    content: "zeit,benutzer\n09:14,jürgen\n09:15,東京オフィス\n",
  },
  {
    id: "c3d4e5f6-0000-4000-8000-000000000003",
    filename: "proxy.log",
    content: "GET http://evil.example/ 200\n".repeat(50),
  },
].map((e) => ({ ...e, bytes: Buffer.from(e.content, "utf8") }));

/** The tenant's chain, seq 1..16: ten entries of the incident, the others not. */
function auditTrail(): { documents: AuditDocument[]; lines: EntryLine[]; links: ChainLink[] } {
  const base = (seq: number): AuditDocument => ({
    v: 1,
    tenant_id: TENANT.id,
    seq,
    occurred_at: new Date(Date.UTC(2026, 10, 3, 9, seq, 7, 250)).toISOString(),
    actor_user_id: USER,
    actor_label: "anna.berg@nordwind.example",
    db_role: "attest_user",
    action: "incident.updated",
    resource_type: "incident",
    resource_id: INCIDENT_ID,
    resource_label: TITLE,
    incident_id: INCIDENT_ID,
    changes: {},
    request_id: `req-${seq}`,
    ip: "198.51.100.23",
    user_agent: "Mozilla/5.0 (X11; Linux x86_64)",
    surface: "web",
    prev_hash: null,
  });
  const evidence = (i: number) => ({
    action: "evidence.uploaded",
    resource_type: "evidence",
    resource_id: EVIDENCE[i].id,
    resource_label: EVIDENCE[i].filename,
    changes: {
      filename: { new: EVIDENCE[i].filename },
      size_bytes: { new: EVIDENCE[i].bytes.length },
      sha256: { new: `\\x${sha256(EVIDENCE[i].bytes)}` },
    },
  });
  const other = {
    incident_id: null,
    resource_type: "webhook",
    resource_id: null,
    resource_label: "https://hooks.example",
  };
  const shapes: Partial<AuditDocument>[] = [
    { ...other, action: "tenant.created", resource_type: "tenant", resource_label: TENANT.name, actor_user_id: null },
    { ...other, action: "membership.created", resource_type: "membership" },
    { action: "incident.created", changes: { title: { new: TITLE }, severity: { new: "high" } } },
    evidence(0),
    evidence(1),
    { ...other, action: "webhook.updated", changes: { active: { old: true, new: false } } },
    evidence(2),
    { changes: { severity: { old: "high", new: "critical" } } },
    {
      action: "incident.created",
      incident_id: OTHER_INCIDENT_ID,
      resource_id: OTHER_INCIDENT_ID,
      resource_label: "DDoS",
    },
    { changes: { description: { old: "", new: 'Quote " backslash \\ newline \n 東京 — Łódź 🧾' } } },
    { resource_label: '=HYPERLINK("http://evil.example","open")', changes: { title: { old: TITLE, new: "=x" } } },
    { action: "export.requested", resource_type: "export", resource_label: `Evidence pack · ${TITLE}` },
    { ...other, action: "api_token.created", resource_type: "api_token", resource_label: "ci" },
    { action: "milestone.completed", resource_type: "milestone", resource_label: `Early Warning · ${TITLE}` },
    { changes: { status: { old: "open", new: "resolved" } }, ip: null, user_agent: null, surface: "api" },
    { ...other, action: "session.created", resource_type: "session", surface: "sql", db_role: "postgres" },
  ];
  const documents: AuditDocument[] = [];
  const links: ChainLink[] = [];
  let prev: string | null = null;
  shapes.forEach((shape, i) => {
    const document = { ...base(i + 1), ...shape, prev_hash: prev };
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

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function incidentFile(): IncidentFile {
  return {
    incident: {
      id: INCIDENT_ID,
      title: TITLE,
      severity: "critical",
      status: "resolved",
      description: "Three employees entered credentials on a look-alike login page.",
      root_cause: "A look-alike domain not caught by the mail filter.",
      lessons_learned: null,
      nis2_enabled: true,
      created_at: "2026-11-03T09:03:07.250Z",
      created_by: USER,
      updated_at: "2026-11-03T09:15:07.250Z",
    },
    tenant: TENANT,
    milestones: [
      {
        kind: "early_warning",
        name: "Early Warning",
        due_at: "2026-11-04T09:03:07.250Z",
        status: "completed",
        completed_at: "2026-11-03T09:14:07.250Z",
        completed_by: "anna.berg@nordwind.example",
        notes: null,
      },
    ],
    evidence: EVIDENCE.map((e) => ({
      id: e.id,
      filename: e.filename,
      path: evidencePath(e.id, e.filename),
      content_type: "text/plain",
      size: e.bytes.length,
      sha256: sha256(e.bytes),
      uploaded_at: "2026-11-03T09:05:07.250Z",
      uploaded_by: USER,
    })),
  };
}

async function* chunks(data: Buffer, size = 16): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

const REPORT = Buffer.from("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");

let dir: string;
let signingKey: PackSigningKey;
let trail: ReturnType<typeof auditTrail>;
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
    entries: () => iterate(trail.lines),
    chain: iterate(trail.links),
    report: chunks(REPORT, 32),
    ...overrides,
  };
}

async function buildPack(overrides: Partial<WritePackOptions> = {}): Promise<string> {
  const file = path.join(dir, `pack-${++counter}.zip`);
  await writePack(packOptions(createWriteStream(file), overrides));
  return file;
}

// ---- the attacker's tools: unzip, edit, zip again, re-sign ------------------------------------

interface ZipItem {
  name: string;
  data: Buffer;
}

class Pack {
  items: ZipItem[];
  constructor(items: ZipItem[]) {
    this.items = items;
  }
  get(name: string): Buffer {
    const item = this.items.find((i) => i.name === name);
    if (!item) throw new Error(`no ${name} in the pack`);
    return item.data;
  }
  set(name: string, data: Buffer | string): void {
    const item = this.items.find((i) => i.name === name);
    if (!item) throw new Error(`no ${name} in the pack`);
    item.data = Buffer.from(data);
  }
  text(name: string): string {
    return this.get(name).toString("utf8");
  }
  /** Replaces the only occurrence of `from` in a text file. */
  replace(name: string, from: string, to: string): void {
    const text = this.text(name);
    expect(text.split(from).length, `${from} occurs once in ${name}`).toBe(2);
    this.set(name, text.replace(from, to));
  }
  /** Edits the lines of a text file (entries.jsonl, entries.csv, chain.jsonl). */
  editLines(name: string, edit: (lines: string[]) => string[]): void {
    const text = this.text(name);
    const eol = name.endsWith(".csv") ? "\r\n" : "\n";
    const lines = text.split(eol).slice(0, -1);
    this.set(name, `${edit(lines).join(eol)}${eol}`);
  }
  remove(name: string): void {
    this.items = this.items.filter((i) => i.name !== name);
  }
  manifest(): Manifest {
    return JSON.parse(this.text("manifest.json")) as Manifest;
  }
  /** Rewrites manifest.json without being able to sign it: manifest.sig stays as it was. */
  editManifest(edit: (m: Manifest) => void): void {
    const m = this.manifest();
    edit(m);
    this.set("manifest.json", `${JSON.stringify(m, null, 2)}\n`);
  }
  /** What an attacker holding a private key does: fix every file's size and hash, and sign again. */
  resign(privateKey: KeyObject, edit: (m: Manifest) => void = () => {}, signingKey?: Manifest["signing_key"]): void {
    this.editManifest((m) => {
      m.files = m.files.map((f) => ({ path: f.path, size: this.get(f.path).length, sha256: sha256(this.get(f.path)) }));
      if (signingKey) m.signing_key = signingKey;
      edit(m);
    });
    this.set("manifest.sig", sign(null, this.get("manifest.json"), privateKey).toString("base64"));
  }
}

async function readZip(file: string): Promise<ZipItem[]> {
  const zip = await openPromise(file, { lazyEntries: true, autoClose: false });
  const items: ZipItem[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const parts: Buffer[] = [];
      for await (const chunk of await zip.openReadStreamPromise(entry)) parts.push(chunk as Buffer);
      items.push({ name: entry.fileName, data: Buffer.concat(parts) });
    }
  } finally {
    zip.close();
  }
  return items;
}

async function writeZip(file: string, items: ZipItem[]): Promise<void> {
  const zip = new ZipFile();
  for (const item of items) zip.addBuffer(item.data, item.name);
  zip.end();
  await fs.writeFile(file, zip.outputStream);
}

async function tamper(source: string, edit: (pack: Pack) => void): Promise<string> {
  const pack = new Pack(await readZip(source));
  edit(pack);
  const file = path.join(dir, `tampered-${++counter}.zip`);
  await writeZip(file, pack.items);
  return file;
}

function failure(verdict: Verdict) {
  expect(verdict.ok, JSON.stringify(verdict)).toBe(false);
  return verdict as Extract<Verdict, { ok: false }>;
}

const seqLine = (seq: number) => (line: string) => line.includes(`"seq":${seq},`) || line.startsWith(`${seq},`);

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-packs-"));
  signingKey = key();
  trail = auditTrail();
  validPack = await buildPack();
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("a pack as writePack builds it", () => {
  it("verifies, and says what it holds and who signed it", async () => {
    const verdict = await verifyPack(validPack, { trustedFingerprints: [formatFingerprint(signingKey.fingerprint)] });
    expect(verdict).toEqual({
      ok: true,
      summary: {
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
      "audit/chain.jsonl",
      "report.pdf",
      "manifest.json",
      "manifest.sig",
    ]);
    const pack = new Pack(items);
    const manifest = pack.manifest();
    expect(manifest.files).toEqual(
      items.slice(0, -2).map((i) => ({ path: i.name, size: i.data.length, sha256: sha256(i.data) })),
    );
    expect(pack.get("evidence/b2c3d4e5-zugangsprotokoll-東京.csv")).toEqual(EVIDENCE[1].bytes);
    expect(manifest.audit).toEqual({
      entries: [3, 4, 5, 7, 8, 10, 11, 12, 14, 15],
      chain_from: 3,
      head: { seq: 16, hash: trail.links.at(-1)?.hash },
    });
    expect(pack.text("README.txt")).toContain(formatFingerprint(signingKey.fingerprint));
    expect(pack.text("README.txt")).toContain("npm run verify -- pack.zip");
    // A title that starts like a formula reaches the spreadsheet as text.
    expect(pack.text("audit/entries.csv")).toContain(`"'=HYPERLINK(""http://evil.example"",""open"")"`);
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
});

function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

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
  const resignWithSameKey = (edit: (p: Pack) => void, editManifest?: (m: Manifest) => void) => (p: Pack) => {
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
    const link = new Pack(await readZip(tampered))
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

describe("writePack refuses input that would make a false pack", () => {
  it("an entry whose hash does not match its document", async () => {
    const lines = trail.lines.map((l, i) => (i === 4 ? { ...l, hash: sha256("forged") } : l));
    await expect(writePack(packOptions(discard(), { entries: () => iterate(lines) }))).rejects.toThrow(
      new PackBuildError("audit entry 8: its hash does not match its document (is the tenant's audit chain intact?)"),
    );
  });

  it("a chain with a gap", async () => {
    const links = trail.links.filter((l) => l.seq !== 13);
    await expect(writePack(packOptions(discard(), { chain: iterate(links) }))).rejects.toThrow(
      "the chain jumps from 12 to 14",
    );
  });

  it("evidence bytes that are not the ones incident.json lists", async () => {
    const evidence = EVIDENCE.map((e, i) => ({
      id: e.id,
      filename: e.filename,
      size: e.bytes.length,
      content: chunks(i === 2 ? Buffer.alloc(e.bytes.length, 0x41) : e.bytes),
    }));
    await expect(writePack(packOptions(discard(), { evidence }))).rejects.toThrow(
      /^evidence\/c3d4e5f6-proxy\.log: its SHA-256 is [0-9a-f]{64}, incident\.json lists [0-9a-f]{64}$/,
    );
  });

  it("a fingerprint that is not the key's", async () => {
    const other = key();
    await expect(
      writePack(packOptions(discard(), { signingKey: { ...signingKey, fingerprint: other.fingerprint } })),
    ).rejects.toThrow(`the signing key's fingerprint is ${signingKey.fingerprint}, not ${other.fingerprint}`);
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
    const big = Buffer.alloc(4 * 1024 * 1024, 0x20);
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

    const failing = new Writable({
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
