/**
 * The evidence pack's PDF report, rendered from synthetic data with long values and non-Latin text,
 * read back with poppler (pdftotext, pdftoppm): every audit entry is there in order, the audit
 * table's header repeats on every page it runs onto, nothing crosses a column or the margin, pages are
 * numbered "Page n of m", and the document streams with bounded memory. The pages are also rendered
 * to PNG under .test-artifacts/report-pdf/ for people to look at.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditBodyV2 } from "../../src/audit/leaf.ts";
import { formatFingerprint, type IncidentFile } from "../../src/packs/format.ts";
import { type ReportData, type ReportEntry, renderReportPdf } from "../../src/packs/report-pdf.ts";
import { requireTools } from "../helpers/prerequisites.ts";

const run = promisify(execFile);
const ARTIFACTS = path.resolve(import.meta.dirname, "../../.test-artifacts/report-pdf");

const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

const LONG_TITLE =
  `Kompromittiertes VPN-Konto: Ransomware auf den Dateiservern der Außenstellen Düsseldorf, Łódź und 東京オフィス, Datenabfluss über einen Cloud-Speicher, ${"Ermittlung läuft ".repeat(5)}`
    .slice(0, 250)
    .padEnd(250, ".");
const LONG_EMAIL =
  "very.long.firstname.with-several-parts.and.a.middle.name@security-operations.subsidiary.example-holding-company.co.uk";
const LONG_URL =
  "https://hooks.example.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX?token=4f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a0ff&channel=%23incident-response-eu-central&retry=exponential";
const JAPANESE_FILE = "東京オフィス_ネットワーク構成図.pdf";

const USERS = [
  "anna.müller@example.de",
  "łukasz.wiśniewski@przykład.pl",
  "сергей.иванов@пример.рф",
  "田中太郎@example.jp",
  "νίκος.παπαδόπουλος@example.gr",
  LONG_EMAIL,
  "system",
];
const EVIDENCE_NAMES = [
  JAPANESE_FILE,
  "Prüfbericht_Außenstelle_Düsseldorf_Łódź.xlsx",
  "Отчёт об инциденте — журнал.docx",
];

function incidentFile(): IncidentFile {
  const tenant = {
    id: "6d1f2c4e-0000-4000-8000-000000000001",
    slug: "mueller-lukasiewicz",
    name: "Müller & Łukasiewicz GmbH",
  };
  return {
    incident: {
      id: "0b7e5a10-1111-4111-8111-111111111111",
      title: "Ransomware auf Dateiserver Łódź / 東京オフィス",
      severity: "critical",
      status: "investigating",
      description:
        "Am Montagmorgen meldeten Nutzer der Außenstelle Łódź verschlüsselte Dateien. Kurz darauf fiel der Dateiserver des 東京オフィス aus.\nDer Zugriff erfolgte über ein VPN-Konto, dessen Passwort in einem Leak auftauchte (Сергей Иванов hat es gemeldet).",
      root_cause: null,
      lessons_learned: "MFA für alle VPN-Konten erzwingen; Offline-Backups wöchentlich prüfen.",
      nis2_enabled: true,
      created_at: "2025-03-10T06:12:45.120Z",
      created_by: "anna.müller@example.de",
      updated_at: "2025-03-14T16:40:02.004Z",
    },
    tenant,
    milestones: [
      {
        kind: "early_warning",
        name: "Early warning (24 h)",
        due_at: "2025-03-11T06:12:45.120Z",
        status: "completed",
        completed_at: "2025-03-10T18:03:11.000Z",
        completed_by: "łukasz.wiśniewski@przykład.pl",
        notes: "An das BSI über das Meldeportal; Aktenzeichen 2025-0310-4471.",
      },
      {
        kind: "notification",
        name: "Incident notification (72 h)",
        due_at: "2025-03-13T06:12:45.120Z",
        status: "overdue",
        completed_at: null,
        completed_by: null,
        notes: null,
      },
      {
        kind: "final_report",
        name: "Final report (1 month)",
        due_at: "2025-04-10T06:12:45.120Z",
        status: "pending",
        completed_at: null,
        completed_by: null,
        notes: `Entwurf: ${LONG_URL}`,
      },
    ],
    evidence: EVIDENCE_NAMES.map((filename, i) => ({
      id: `e0000000-0000-4000-8000-00000000000${i + 1}`,
      filename,
      path: `evidence/e0000000-0000-4000-8000-00000000000${i + 1}/${filename}`,
      content_type: [
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/msword",
      ][i],
      size: [2_483_211, 734, 91_337_408][i],
      sha256: sha256(filename),
      uploaded_at: `2025-03-1${i + 1}T09:0${i}:00.000Z`,
      uploaded_by: USERS[i],
    })),
  };
}

const ACTIONS = [
  "incident.updated",
  "evidence.uploaded",
  "milestone.completed",
  "webhook.created",
  "export.requested",
  "evidence.deleted",
  "membership.updated",
  "webhook.deleted",
];

function entries(count: number, file: IncidentFile): ReportEntry[] {
  const out: ReportEntry[] = [];
  let seq = 99_900;
  for (let i = 0; i < count; i++) {
    seq += 1 + (i % 7 === 3 ? 4 : 0); // gaps: entries of other incidents
    const action = i === 0 ? "incident.created" : ACTIONS[i % ACTIONS.length];
    const [resourceType, resourceLabel] = ((): [string, string | null] => {
      switch (action.split(".")[0]) {
        case "incident":
          return ["incident", i % 3 === 0 ? LONG_TITLE : `${file.incident.title} (${i})`];
        case "evidence":
          return ["evidence", i % 2 ? EVIDENCE_NAMES[i % 3] : `Αναφορά_συμβάντος_${i}.pdf`];
        case "milestone":
          return ["milestone", `${file.milestones[i % 3].name} — Łódź ${i}`];
        case "webhook":
          return ["webhook", i % 2 ? LONG_URL : `https://hooks.example.jp/東京/${i}`];
        case "membership":
          return ["membership", null];
        default:
          return ["export", `Evidence pack ${i}`];
      }
    })();
    const body: AuditBodyV2 = {
      v: 2,
      tenant_id: file.tenant.id,
      id: 500_000 + i,
      occurred_at: new Date(Date.UTC(2025, 2, 10, 6, 12, 45) + i * 61_000).toISOString(),
      actor_user_id: null,
      api_token_id: null,
      actor_label: USERS[i % USERS.length],
      db_role: "attest_user",
      action,
      resource_type: resourceType,
      resource_id: `r-${i}`,
      resource_label: resourceLabel,
      incident_id: file.incident.id,
      changes: action.endsWith(".updated")
        ? { title: { old: "a", new: "b" }, severity: { old: "high", new: "critical" } }
        : {},
      request_id: `req-${i}`,
      ip: i % 5 ? "203.0.113.7" : null,
      user_agent: "Mozilla/5.0",
      surface: i % 4 ? "web" : "graphql",
    };
    out.push({ seq, leafHash: sha256(`${seq} ${JSON.stringify(body)}`), body });
  }
  return out;
}

function reportData(entryCount: number): ReportData {
  const file = incidentFile();
  const list = entries(entryCount, file);
  const last = list[list.length - 1];
  return {
    tenant: { name: file.tenant.name, slug: file.tenant.slug },
    incidentFile: file,
    entries: list,
    generatedAt: "2025-03-14T17:05:09.512Z",
    signingKeyFingerprint: sha256("the installation's public key"),
    checkpoint: {
      origin: `attest.example/audit/${file.tenant.id}`,
      treeSize: last.seq + 12,
      rootHash: sha256("root"),
      time: "2025-03-14T17:05:01.250Z",
    },
    toolVersion: "0.1.0",
  };
}

/** Strips all white space: wrapped values come back from pdftotext with line breaks inside them. */
const squash = (s: string) => s.replace(/\s+/g, "");

/** toContain without printing the whole report when it fails. */
function expectText(haystack: string, needle: string, where = "the report"): void {
  expect(haystack.includes(squash(needle)), `${where} should contain ${JSON.stringify(needle)}`).toBe(true);
}

async function pdfText(file: string): Promise<string[]> {
  const { stdout } = await run("pdftotext", ["-raw", "-enc", "UTF-8", file, "-"], { maxBuffer: 64 << 20 });
  return stdout.split("\f").slice(0, -1);
}

interface Word {
  page: number;
  xMin: number;
  xMax: number;
  yMin: number;
  text: string;
}

/** Every word with its box, from pdftotext -bbox (XHTML: <page> and <word xMin=…> elements). */
function parseWords(bbox: string): Word[] {
  const words: Word[] = [];
  let page = 0;
  for (const match of bbox.matchAll(
    /<page\b|<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)<\/word>/g,
  )) {
    if (match[0] === "<page") page++;
    else words.push({ page, xMin: Number(match[1]), yMin: Number(match[2]), xMax: Number(match[3]), text: match[4] });
  }
  return words;
}

describe("the evidence pack PDF report", () => {
  const data = reportData(300);
  let dir: string;
  let pdf: string;
  let pages: string[]; // pdftotext -raw, one string per page

  beforeAll(async () => {
    requireTools("pdftotext", "pdftoppm");
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-report-"));
    pdf = path.join(dir, "report.pdf");
    await pipeline(renderReportPdf(data), createWriteStream(pdf));
    pages = await pdfText(pdf);
  });

  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("is a PDF that poppler reads, numbered Page n of m with the title and product on every page", async () => {
    const head = await fs.readFile(pdf);
    expect(head.subarray(0, 5).toString()).toBe("%PDF-");
    expect(pages.length).toBeGreaterThan(5);
    pages.forEach((page, i) => {
      expectText(squash(page), `Page ${i + 1} of ${pages.length}`, `page ${i + 1}`);
      expectText(squash(page), "Attest evidence pack", `page ${i + 1}`);
      expectText(squash(page), data.incidentFile.incident.title, `page ${i + 1}`);
    });
    expect(pages[0]).toContain("Page 1 of");
  });

  it("has the cover facts: title, tenant, generation time, fingerprint, checkpoint and tool version", () => {
    const cover = squash(pages[0]);
    for (const fact of [
      "Evidence pack",
      data.incidentFile.incident.title,
      data.tenant.name,
      "2025-03-14 17:05:09 UTC",
      formatFingerprint(data.signingKeyFingerprint),
      `${data.checkpoint.treeSize.toLocaleString("en-US")} entries · 2025-03-14 17:05:01 UTC`,
      data.checkpoint.origin,
      data.checkpoint.rootHash,
      "Attest 0.1.0 (attest-evidence-pack/2)",
    ]) {
      expectText(cover, fact, "the cover");
    }
  });

  it("has the summary, the milestones with their status and the evidence index with full hashes", () => {
    const all = squash(pages.join("\n"));
    const { incident } = data.incidentFile;
    for (const value of [incident.severity, incident.status, incident.description, "Root cause Not recorded"]) {
      expectText(all, value);
    }
    expectText(all, `Lessons learned ${incident.lessons_learned}`);
    expectText(all, "NIS2 reporting On");
    for (const m of data.incidentFile.milestones) {
      expectText(all, `${m.name} ${m.kind} ${m.due_at.slice(0, 10)}`);
      expectText(all, m.status);
    }
    expectText(all, `completed 2025-03-10 18:03:11 by ${data.incidentFile.milestones[0].completed_by}`);
    for (const f of data.incidentFile.evidence) {
      expectText(all, `${f.filename} ${f.content_type} ${f.path}`);
      expectText(all, `${f.sha256}`);
      expectText(all, `${f.size.toLocaleString("en-US")} bytes`);
    }
    expectText(all, JAPANESE_FILE);
    expectText(all, "2.4 MiB 2,483,211 bytes");
  });

  it("lists every audit entry in order: seq, short leaf hash, user, action and resource label", () => {
    const all = squash(pages.join("\n"));
    let from = all.indexOf("Timestamp(UTC)");
    expect(from).toBeGreaterThan(0);
    for (const { seq, leafHash, body: e } of data.entries) {
      for (const part of [
        `seq${seq}·${leafHash.slice(0, 12)}`,
        e.actor_label,
        e.action,
        e.resource_label ?? "membership",
      ]) {
        const at = all.indexOf(squash(part), from);
        expect(at, `entry seq ${seq}: ${part}`).toBeGreaterThanOrEqual(from);
        from = at + squash(part).length;
      }
    }
    for (const name of ["łukasz.wiśniewski", "東京オフィス", "сергей.иванов", "νίκος", "anna.müller", "Łódź"]) {
      expectText(all, name);
    }
  });

  it("repeats the audit table's header on every page the table runs onto", () => {
    const trailPages = pages.filter((p) => squash(p).includes("Timestamp(UTC)UserActionResource"));
    expect(trailPages.length).toBeGreaterThan(1);
    const continued = pages.filter((p) => squash(p).includes("Audittrail(continued)"));
    expect(continued.length).toBe(trailPages.length - 1);
    for (const page of continued) expectText(squash(page), "Timestamp (UTC) User Action Resource");
  });

  it("wraps long values inside their columns and the page margins", async () => {
    const { stdout } = await run("pdftotext", ["-bbox", pdf, "-"], { maxBuffer: 64 << 20 });
    const words = parseWords(stdout);
    expect(words.length).toBeGreaterThan(1000);
    const outside = words.filter((w) => w.xMin < 44 || w.xMax > 595.28 - 44);
    expect(outside).toEqual([]);
    // On the audit table's pages, below its header row, no word crosses a column boundary.
    const boundaries = [45 + 102, 45 + 222, 45 + 317];
    const headers = words.filter((w) => w.text === "Timestamp" && w.xMin < 50);
    expect(headers.length).toBeGreaterThan(1);
    let checked = 0;
    for (const header of headers) {
      const cells = words.filter((w) => w.page === header.page && w.yMin > header.yMin + 8 && w.yMin < 841.89 - 58);
      checked += cells.length;
      const crossing = cells.filter((w) => boundaries.some((b) => w.xMin < b - 0.5 && w.xMax > b + 0.5));
      expect(crossing, `page ${header.page}`).toEqual([]);
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it("explains how to verify the pack", () => {
    // The last section, from its heading (the cover's table of contents names it too) to the end.
    const from = pages.findLastIndex((p) => p.includes("Verifying this pack"));
    expect(from).toBeGreaterThan(0);
    const section = pages.slice(from).join("\n");
    const text = squash(section);
    expectText(text, "npm run verify -- pack.zip", "the last section");
    expectText(text, formatFingerprint(data.signingKeyFingerprint), "the last section");
    expectText(text, "/.well-known/attest-signing-keys.json", "the last section");
    expectText(text, "npm run verify -- pack.zip --key", "the last section");
    expectText(text, "inclusion proof", "the last section");
    expectText(text, "consistency proof", "the last section");
    // The verifier's check names (src/packs/verify.ts), each explained.
    for (const check of ["pack", "signature", "files", "checkpoint", "entries", "csv"]) {
      expect(section, "the last section").toMatch(new RegExp(`^${check} \\S`, "m"));
    }
  });

  it("renders pages to PNG for people to look at (.test-artifacts/report-pdf)", async () => {
    await fs.rm(ARTIFACTS, { recursive: true, force: true });
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await fs.copyFile(pdf, path.join(ARTIFACTS, "report.pdf"));
    await run("pdftoppm", ["-png", "-r", "60", pdf, path.join(ARTIFACTS, "page")]);
    const pngs = (await fs.readdir(ARTIFACTS)).filter((f) => f.endsWith(".png"));
    expect(pngs.length).toBe(pages.length);
    for (const png of pngs) expect((await fs.stat(path.join(ARTIFACTS, png))).size).toBeGreaterThan(2000);
  });
});

describe("a report with a 250-character incident title", () => {
  it("prints the title in full on the cover and cut with an ellipsis in the page header", async () => {
    requireTools("pdftotext", "pdftoppm");
    const data = reportData(40);
    data.incidentFile.incident.title = LONG_TITLE;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-report-"));
    try {
      const pdf = path.join(dir, "report.pdf");
      await pipeline(renderReportPdf(data), createWriteStream(pdf));
      const pages = await pdfText(pdf);
      expect(LONG_TITLE).toHaveLength(250);
      expectText(squash(pages[0]), LONG_TITLE, "the cover");
      const header = pages[1].split("\n").slice(0, 2).join(" ");
      expect(header).toContain("Attest evidence pack");
      expect(header).toMatch(/Kompromittiertes VPN-Konto.*…/);
      await fs.mkdir(ARTIFACTS, { recursive: true });
      await run("pdftoppm", ["-png", "-r", "60", "-f", "1", "-l", "2", pdf, path.join(ARTIFACTS, "long-title")]);
      expect((await fs.readdir(ARTIFACTS)).filter((f) => f.startsWith("long-title"))).toHaveLength(2);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("unusual reports", () => {
  async function render(data: ReportData): Promise<string[]> {
    requireTools("pdftotext", "pdftoppm");
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-report-"));
    try {
      const pdf = path.join(dir, "report.pdf");
      await pipeline(renderReportPdf(data), createWriteStream(pdf));
      return await pdfText(pdf);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  it("numbers pages correctly when a single value is longer than a page", async () => {
    const data = reportData(5);
    data.incidentFile.incident.description = `${"Ein sehr langer Absatz über Łódź und 東京オフィス. ".repeat(400)}ENDE-DER-BESCHREIBUNG`;
    data.entries[2].body.resource_label = `${"https://example.com/a/very/long/path/".repeat(150)}ENDE-DES-LABELS`;
    const pages = await render(data);
    expect(pages.length).toBeGreaterThan(8);
    for (const [i, page] of pages.entries())
      expectText(squash(page), `Page ${i + 1} of ${pages.length}`, `page ${i + 1}`);
    const all = squash(pages.join("\n"));
    expectText(all, "ENDE-DER-BESCHREIBUNG");
    expectText(all, "ENDE-DES-LABELS");
    expectText(all, `${data.entries[3].body.action}`);
  });

  it("says so when there are no milestones, evidence files or entries", async () => {
    const data = reportData(1);
    data.incidentFile.incident.nis2_enabled = false;
    data.incidentFile.milestones = [];
    data.incidentFile.evidence = [];
    data.entries = [];
    const all = squash((await render(data)).join("\n"));
    expectText(all, "NIS2 reporting Off");
    expectText(all, "NIS2 reporting is off for this incident; it has no milestones.");
    expectText(all, "No evidence files are attached to this incident.");
    expectText(all, "There are no audit entries for this incident.");
    expectText(all, "Audit entries none");
  });

  it("shows control and bidi-override characters as U+FFFD instead of letting them hide text", async () => {
    const data = reportData(2);
    data.entries[1].body.resource_label = "invoice\u202Efdp.exe\u0007done";
    const all = squash((await render(data)).join("\n"));
    expectText(all, "invoice\uFFFDfdp.exe\uFFFDdone");
  });
});

describe("streaming the report", () => {
  it("writes pages only as they are read, so an unread stream stays small", async () => {
    const stream = renderReportPdf(reportData(3000)) as Readable;
    // Nobody reads: once the stream holds its high-water mark, the layout must stop and wait.
    let waiting = -1;
    for (let i = 0; i < 200 && (waiting <= 0 || waiting !== stream.readableLength); i++) {
      waiting = stream.readableLength;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    let total = 0;
    for await (const chunk of stream) total += (chunk as Uint8Array).length;
    expect(total).toBeGreaterThan(400_000);
    expect(waiting).toBeGreaterThan(0);
    expect(waiting).toBeLessThan(stream.readableHighWaterMark + 64_000);
    expect(waiting * 5).toBeLessThan(total);
  });

  it("stops rendering, without errors, when the consumer goes away", async () => {
    const stream = renderReportPdf(reportData(3000)) as Readable;
    let received = 0;
    for await (const chunk of stream) {
      received += (chunk as Uint8Array).length;
      if (received > 100_000) break; // destroys the stream
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stream.destroyed).toBe(true);
    expect(stream.readableLength).toBe(0);
  });

  it("fails the stream, not the process, when the data cannot be drawn", async () => {
    const broken = reportData(3);
    (broken.entries[1].body as { action: unknown }).action = undefined;
    const stream = renderReportPdf(broken) as Readable;
    await expect(async () => {
      for await (const _ of stream);
    }).rejects.toThrow();
  });
});

describe("the audit trail's changes", () => {
  const OWNER = { id: "0b7a7f3e-6a11-4d0f-9c57-1d2f3e4a5b6c", name: "Olivia Owner", email: "owner@demo.test" };
  const LONG_NOTE = `Submitted to the CSIRT portal. ${"Details follow in the final report. ".repeat(12)}END-OF-NOTE`;

  function trailData(): ReportData {
    const data = reportData(4);
    const [created, updated, uploaded, completed] = data.entries.map((e) => e.body as AuditBodyV2);
    Object.assign(created, {
      action: "incident.created",
      resource_type: "incident",
      changes: {
        title: { new: "Ransomware on FS-02" },
        severity: { new: "high" },
        nis2_enabled: { new: true },
        created_by: { new: OWNER.id },
        created_at: { new: "2025-03-10T06:12:45.000+00:00" },
      },
    });
    Object.assign(updated, {
      action: "incident.updated",
      resource_type: "incident",
      changes: { severity: { old: "high", new: "critical" }, status: { old: "open", new: "in_progress" } },
    });
    Object.assign(uploaded, {
      action: "evidence.uploaded",
      resource_type: "evidence",
      changes: {
        filename: { new: "capture.pcap" },
        size_bytes: { new: 2_516_582 },
        sha256: { new: `\\x${sha256("capture")}` },
        blob_id: { new: "9d3c1f7e-2b4a-4c6d-8e9f-0a1b2c3d4e5f" },
        uploaded_by: { new: OWNER.id },
      },
    });
    Object.assign(completed, {
      action: "milestone.completed",
      resource_type: "milestone",
      changes: {
        completed_at: { old: null, new: "2025-03-11T08:00:00.000+00:00" },
        notes: { old: null, new: LONG_NOTE },
      },
    });
    data.users = [OWNER];
    return data;
  }

  it("shows old → new values as the Audit Log page does, with names, sizes and dates (.test-artifacts/report-pdf-trail)", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-trail-"));
    try {
      const file = path.join(dir, "report.pdf");
      await pipeline(renderReportPdf(trailData()), createWriteStream(file));
      const text = (await pdfText(file)).join("\n");
      const all = squash(text);
      for (const line of [
        "Severity: High → Critical",
        "Status: Open → In progress",
        "Title: Ransomware on FS-02",
        "NIS2 reporting: On",
        "Created by: Olivia Owner (owner@demo.test)",
        "File name: capture.pcap",
        "Size: 2.4 MB",
        `SHA-256: ${sha256("capture")}`,
        "Uploaded by: Olivia Owner (owner@demo.test)",
        "Completed: — → 2025-03-11 08:00 UTC",
      ]) {
        expectText(all, line);
      }
      // Ids and bookkeeping stay in entries.jsonl; long values are shortened.
      expect(text).not.toContain(OWNER.id);
      expect(all).not.toContain(squash("9d3c1f7e-2b4a-4c6d-8e9f-0a1b2c3d4e5f"));
      expect(all).not.toContain("Createdat");
      expectText(all, "Notes: — → Submitted to the CSIRT portal.");
      expect(all).not.toContain("END-OF-NOTE");
      // Look at it: the trail page as PNG.
      const out = path.resolve(import.meta.dirname, "../../.test-artifacts/report-pdf-trail");
      await fs.rm(out, { recursive: true, force: true });
      await fs.mkdir(out, { recursive: true });
      await run("pdftoppm", ["-png", "-r", "110", file, path.join(out, "page")]);
      expect((await fs.readdir(out)).filter((f) => f.endsWith(".png")).length).toBeGreaterThan(1);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
