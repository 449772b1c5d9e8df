/**
 * Shared by the evidence pack tests: the synthetic incident (tenant, evidence files, report) and
 * the attacker's tools: unzip a pack, edit it, zip it again, and re-sign it when the attacker
 * holds a key.
 */
import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { expect } from "vitest";
import { openPromise } from "yauzl";
import { ZipFile } from "yazl";
import type { AnyManifest, IncidentFile } from "../../src/packs/format.ts";
import type { Verdict } from "../../src/packs/verify.ts";
import { evidencePath, type PackSigningKey, publicKeyFingerprint } from "../../src/packs/writer.ts";

export const TENANT = { id: "0b6f3a5e-4d1c-4f7a-9a51-1c2d3e4f5a6b", slug: "nordwind", name: "Nordwind Logistik GmbH" };
export const INCIDENT_ID = "5e0c8f1a-2b3d-4c5e-8f90-a1b2c3d4e5f6";
export const OTHER_INCIDENT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
export const TITLE = "Credential phishing against the finance team";
export const USER = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";

export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function key(): PackSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    fingerprint: publicKeyFingerprint(publicKey),
  };
}

export const EVIDENCE = [
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

export const REPORT = Buffer.from("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");

export function incidentFile(): IncidentFile {
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

export async function* chunks(data: Buffer, size = 16): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

export function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

// ---- the attacker's tools: unzip, edit, zip again, re-sign ------------------------------------

export interface ZipItem {
  name: string;
  data: Buffer;
}

export class Pack<M extends AnyManifest = AnyManifest> {
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
  manifest(): M {
    return JSON.parse(this.text("manifest.json")) as M;
  }
  /** Rewrites manifest.json without being able to sign it: manifest.sig stays as it was. */
  editManifest(edit: (m: M) => void): void {
    const m = this.manifest();
    edit(m);
    this.set("manifest.json", `${JSON.stringify(m, null, 2)}\n`);
  }
  /** What an attacker holding a private key does: fix every file's size and hash, and sign again. */
  resign(privateKey: KeyObject, edit: (m: M) => void = () => {}, signingKey?: M["signing_key"]): void {
    this.editManifest((m) => {
      m.files = m.files.map((f) => ({ path: f.path, size: this.get(f.path).length, sha256: sha256(this.get(f.path)) }));
      if (signingKey) m.signing_key = signingKey;
      edit(m);
    });
    this.set("manifest.sig", sign(null, this.get("manifest.json"), privateKey).toString("base64"));
  }
}

export async function readZip(file: string): Promise<ZipItem[]> {
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

export async function writeZip(file: string, items: ZipItem[]): Promise<void> {
  const zip = new ZipFile();
  for (const item of items) zip.addBuffer(item.data, item.name);
  zip.end();
  await fs.writeFile(file, zip.outputStream);
}

let counter = 0;

/** A copy of the pack at `source`, edited by `edit`, in `dir`. */
export async function tamper<M extends AnyManifest>(
  dir: string,
  source: string,
  edit: (pack: Pack<M>) => void,
): Promise<string> {
  const pack = new Pack<M>(await readZip(source));
  edit(pack);
  const file = path.join(dir, `tampered-${++counter}.zip`);
  await writeZip(file, pack.items);
  return file;
}

export function failure(verdict: Verdict) {
  expect(verdict.ok, JSON.stringify(verdict)).toBe(false);
  return verdict as Extract<Verdict, { ok: false }>;
}

/** Whether a line of entries.jsonl (either version), entries.csv or chain.jsonl is the one of entry `seq`. */
export const seqLine = (seq: number) => (line: string) => line.includes(`"seq":${seq},`) || line.startsWith(`${seq},`);

/**
 * Zips the directory `from` into `to` the way people re-zip an extracted pack: `zip -r` (Info-ZIP,
 * as Debian ships it), which adds an entry for every folder; without it, yazl with the same
 * folder entries.
 */
export async function zipDashR(from: string, to: string): Promise<void> {
  const files = (await fs.readdir(from, { recursive: true, withFileTypes: true }))
    .map((d) => ({ name: path.relative(from, path.join(d.parentPath, d.name)), folder: d.isDirectory() }))
    .sort((a, b) => a.name.localeCompare(b.name));
  try {
    await promisify(execFile)("zip", ["-q", "-r", to, "."], { cwd: from });
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  const zip = new ZipFile();
  for (const f of files) {
    if (f.folder) zip.addEmptyDirectory(f.name);
    else zip.addBuffer(await fs.readFile(path.join(from, f.name)), f.name);
  }
  zip.end();
  await fs.writeFile(to, zip.outputStream);
}

/** Writes the files of a pack into a new directory under `dir`, as unzip would. */
export async function unzipTo(dir: string, zipPath: string): Promise<string> {
  const target = await fs.mkdtemp(path.join(dir, "unzipped-"));
  for (const item of await readZip(zipPath)) {
    if (item.name.endsWith("/")) continue;
    await fs.mkdir(path.dirname(path.join(target, item.name)), { recursive: true });
    await fs.writeFile(path.join(target, item.name), item.data);
  }
  return target;
}
