/**
 * The PDF report of an evidence pack (report.pdf, see format.ts): a cover, the incident summary, the
 * NIS2 milestones, the evidence index, the incident's audit trail as a table, and how to verify the
 * pack. The report is for people; the proof is the ZIP's signed manifest, and the report says so.
 * This file is the report's content, section by section; fonts, line breaking, pages, tables and
 * streaming are the layout engine's (pdf-layout.ts).
 */

import { type AuditUser, changeLine, entryChanges } from "../audit/display.ts";
import type { AuditBody } from "../audit/leaf.ts";
import { formatFingerprint, type IncidentFile, PACK_FORMAT } from "./format.ts";
import {
  ACCENT,
  type Block,
  CONTENT_WIDTH,
  ellipsize,
  graphemes,
  INK,
  type Layout,
  LEFT,
  MUTED,
  PAGE_HEIGHT,
  RULE,
  renderPdf,
  type Style,
  style,
  toLine,
} from "./pdf-layout.ts";

/** One audit entry of the incident as the pack holds it: its position, leaf hash (hex) and body. */
export interface ReportEntry {
  seq: number;
  leafHash: string;
  body: AuditBody;
}

export interface ReportData {
  tenant: { name: string; slug: string };
  incidentFile: IncidentFile;
  /** The incident's audit entries, oldest first. */
  entries: ReportEntry[];
  /** The name of the API token an entry (by seq) was made with, as the log recorded it then. */
  tokenNames?: Record<number, string>;
  /** ISO timestamp. */
  generatedAt: string;
  /** SHA-256 of the raw Ed25519 public key, hex. */
  signingKeyFingerprint: string;
  /** The signed checkpoint of the tenant's log every entry is proven against (root hash in hex). */
  checkpoint: { origin: string; treeSize: number; rootHash: string; time: string | null };
  toolVersion: string;
  /** The users the entries name by id (creators, uploaders, members), to show them by name and email. */
  users?: AuditUser[];
}

// ---------------------------------------------------------------------------------------------
// Styles and headings

const STATUS_COLORS: Record<string, string> = { completed: "#166534", overdue: "#b91c1c", pending: "#92400e" };
const BODY_MUTED = style("text", 9.5, MUTED);
const CELL = style("text", 8);
const CELL_BOLD = style("bold", 8);
const CELL_MUTED = style("text", 6.8, MUTED);
const CELL_CHANGE = style("text", 7);
const CELL_MONO = style("mono", 7);
const CELL_MONO_MUTED = style("mono", 6.5, MUTED);
const SEQ_HASH = style("mono", 6.2, MUTED); // "seq 123456 · 0123456789ab" fits the timestamp column
const LABEL = style("bold", 8.5, MUTED);
const VALUE = style("text", 9);
const VALUE_MONO = style("mono", 8);
const PAGE_FRAME = style("text", 7, MUTED);
const PAGE_FRAME_BOLD = style("bold", 7, MUTED);

const SECTIONS = {
  summary: "1  Incident summary",
  milestones: "2  NIS2 milestones",
  evidence: "3  Evidence index",
  trail: "4  Audit trail",
  verify: "5  Verifying this pack",
} as const;
type SectionKey = keyof typeof SECTIONS;
type ReportLayout = Layout<SectionKey>;

// ---------------------------------------------------------------------------------------------
// Formatting

function utc(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "");
}

function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 100 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const plural = (n: number, one: string, many: string) => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

// ---------------------------------------------------------------------------------------------
// The report

const text = (t: string, s: Style = CELL): Block => ({ text: t, style: s });
const dash = "—";

async function compose(l: ReportLayout, data: ReportData): Promise<void> {
  await l.newPage();
  await cover(l, data);
  await l.newPage();
  await summary(l, data);
  await milestones(l, data);
  await evidence(l, data);
  await l.sectionBreak();
  await trail(l, data);
  await l.sectionBreak();
  await verification(l, data);
}

function entrySpan(entries: ReportEntry[]): string {
  if (entries.length === 0) return "none";
  const first = entries[0].seq;
  const last = entries[entries.length - 1].seq;
  return `${plural(entries.length, "entry", "entries")}, seq ${first} to ${last}`;
}

async function cover(l: ReportLayout, data: ReportData): Promise<void> {
  const { incident, tenant } = data.incidentFile;
  l.y = 90;
  const kicker = style("bold", 9, ACCENT);
  l.drawLine(toLine(graphemes("ATTEST · NIS2 INCIDENT EVIDENCE", kicker)), kicker, LEFT, l.y);
  l.y += 18;
  await l.paragraph("Evidence pack", style("bold", 30, INK), { after: 4 });
  await l.paragraph(incident.title, style("bold", 15, INK), { after: 4 });
  await l.paragraph(`${data.tenant.name} (${data.tenant.slug})`, style("text", 11, MUTED), { after: 18 });
  l.rule(LEFT, LEFT + CONTENT_WIDTH, l.y, 0.8, ACCENT);
  l.y += 10;

  const kv = l.keyValues(125);
  await kv.row([[text("Incident", LABEL)], [text(incident.id, VALUE_MONO)]]);
  await kv.row([
    [text("Tenant", LABEL)],
    [text(`${data.tenant.name} (${data.tenant.slug})`, VALUE), text(tenant.id, CELL_MONO_MUTED)],
  ]);
  await kv.row([[text("Generated", LABEL)], [text(`${utc(data.generatedAt)} UTC`, VALUE)]]);
  await kv.row([[text("Audit entries", LABEL)], [text(entrySpan(data.entries), VALUE)]]);
  const cp = data.checkpoint;
  await kv.row([
    [text("Audit log checkpoint", LABEL)],
    [
      text(`${cp.treeSize.toLocaleString("en-US")} entries${cp.time ? ` · ${utc(cp.time)} UTC` : ""}`, VALUE),
      text(cp.origin, CELL_MONO_MUTED),
      text(cp.rootHash, VALUE_MONO),
      text("Root hash of the tenant's Merkle log at that size; signed by the key below", CELL_MUTED),
    ],
  ]);
  await kv.row([
    [text("Signing key fingerprint", LABEL)],
    [
      text(formatFingerprint(data.signingKeyFingerprint), style("mono", 7.6)),
      text(
        "Ed25519; SHA-256 of the raw public key. Compare it with the fingerprint the installation publishes.",
        CELL_MUTED,
      ),
    ],
  ]);
  await kv.row([[text("Tool", LABEL)], [text(`Attest ${data.toolVersion} (${PACK_FORMAT})`, VALUE)]]);
  l.y += 14;

  await l.subheading("How to rely on this report");
  await l.paragraph(
    "This report is a readable copy of the evidence pack ZIP it came in. The ZIP is the evidence: its manifest lists the SHA-256 of every file, including this report, and is signed by the key above. Verify the ZIP before relying on anything here (section 5).",
    BODY_MUTED,
    { after: 12 },
  );

  await l.subheading("Contents");
  const sections = l.measured?.sections ?? {};
  const toc = l.table({
    columns: [
      { header: "", width: 250 },
      { header: "", width: 70 },
    ],
    header: false,
    zebra: false,
    padX: 0,
    padY: 2,
  });
  for (const key of Object.keys(SECTIONS) as SectionKey[]) {
    const mark = sections[key];
    const pages = !mark ? "" : mark.first === mark.last ? `page ${mark.first}` : `pages ${mark.first}–${mark.last}`;
    await toc.row([[text(SECTIONS[key], VALUE)], [{ ...text(pages, VALUE), align: "right" }]]);
  }
}

async function summary(l: ReportLayout, data: ReportData): Promise<void> {
  const { incident } = data.incidentFile;
  await l.heading("summary");
  const kv = l.keyValues();
  const orNone = (value: string | null) =>
    value?.trim() ? text(value, VALUE) : text("Not recorded", style("text", 9, MUTED));
  await kv.row([[text("Title", LABEL)], [text(incident.title, VALUE)]]);
  await kv.row([[text("Incident ID", LABEL)], [text(incident.id, VALUE_MONO)]]);
  await kv.row([[text("Severity", LABEL)], [text(incident.severity, style("bold", 9))]]);
  await kv.row([[text("Status", LABEL)], [text(incident.status, style("bold", 9))]]);
  await kv.row([
    [text("Created", LABEL)],
    [text(`${utc(incident.created_at)} UTC`, VALUE), text(`by ${incident.created_by ?? "system"}`, VALUE)],
  ]);
  await kv.row([[text("Last updated", LABEL)], [text(`${utc(incident.updated_at)} UTC`, VALUE)]]);
  await kv.row([
    [text("NIS2 reporting", LABEL)],
    [
      text(
        incident.nis2_enabled ? "On: the NIS2 notification deadlines are tracked (section 2)" : "Off",
        style("bold", 9),
      ),
    ],
  ]);
  for (const [label, value] of [
    ["Description", incident.description],
    ["Root cause", incident.root_cause],
    ["Lessons learned", incident.lessons_learned],
  ] as const) {
    await kv.row([[text(label, LABEL)], [orNone(value)]], text(`${label} (continued)`, LABEL));
  }
}

async function milestones(l: ReportLayout, data: ReportData): Promise<void> {
  const { incident, milestones: list } = data.incidentFile;
  await l.heading("milestones");
  if (list.length === 0) {
    await l.paragraph(
      incident.nis2_enabled
        ? "No milestones are recorded for this incident."
        : "NIS2 reporting is off for this incident; it has no milestones.",
      BODY_MUTED,
    );
    return;
  }
  await l.paragraph(
    "The NIS2 notification milestones of this incident and their state when the pack was generated. Deadlines and completion times are UTC.",
    BODY_MUTED,
  );
  const table = l.table({
    columns: [
      { header: "Milestone", width: 120 },
      { header: "Deadline (UTC)", width: 92 },
      { header: "Status", width: 58 },
      { header: "Completed (UTC)", width: 110 },
      { header: "Notes", width: CONTENT_WIDTH - 380 },
    ],
    header: true,
    zebra: true,
    continued: `${SECTIONS.milestones} (continued)`,
    padX: 4,
    padY: 4,
  });
  for (const m of list) {
    await table.row([
      [text(m.name, CELL_BOLD), text(m.kind, CELL_MUTED)],
      [text(utc(m.due_at))],
      [text(m.status, style("bold", 8, STATUS_COLORS[m.status] ?? INK))],
      m.completed_at
        ? [text(utc(m.completed_at)), text(`by ${m.completed_by ?? "system"}`, CELL_MUTED)]
        : [text(dash, CELL_MUTED)],
      [m.notes?.trim() ? text(m.notes) : text(dash, CELL_MUTED)],
    ]);
  }
}

async function evidence(l: ReportLayout, data: ReportData): Promise<void> {
  const files = data.incidentFile.evidence;
  await l.heading("evidence");
  if (files.length === 0) {
    await l.paragraph("No evidence files are attached to this incident.", BODY_MUTED);
    return;
  }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  await l.paragraph(
    `${plural(files.length, "file", "files")}, ${humanSize(total)} in all. Each file is in the ZIP under the path shown; its SHA-256 is repeated in the signed manifest.`,
    BODY_MUTED,
  );
  const table = l.table({
    columns: [
      { header: "File", width: 145 },
      { header: "Size", width: 72 },
      { header: "SHA-256", width: 150 },
      { header: "Uploaded (UTC)", width: CONTENT_WIDTH - 367 },
    ],
    header: true,
    zebra: true,
    continued: `${SECTIONS.evidence} (continued)`,
    padX: 4,
    padY: 4,
  });
  for (const f of files) {
    await table.row([
      [text(f.filename, CELL_BOLD), text(f.content_type, CELL_MUTED), text(f.path, CELL_MONO_MUTED)],
      [text(humanSize(f.size)), text(`${f.size.toLocaleString("en-US")} bytes`, CELL_MUTED)],
      [text(f.sha256, CELL_MONO)],
      [text(utc(f.uploaded_at)), text(`by ${f.uploaded_by ?? "system"}`, CELL_MUTED)],
    ]);
  }
}

/** The longest value the trail shows of a change; the whole value is in audit/entries.jsonl. */
const CHANGE_VALUE_CHARS = 240;
const clip = (s: string) => (s.length > CHANGE_VALUE_CHARS ? `${s.slice(0, CHANGE_VALUE_CHARS - 1)}…` : s);

/** An entry's changes as the Audit Log page shows them, one per line: "Severity: High → Critical". */
function changeLines(body: AuditBody, users: ReadonlyMap<string, AuditUser>): string[] {
  return entryChanges(body, { users }).changes.map((c) =>
    changeLine({
      ...c,
      old: c.old && { ...c.old, text: clip(c.old.text) },
      new: c.new && { ...c.new, text: clip(c.new.text) },
    }),
  );
}

async function trail(l: ReportLayout, data: ReportData): Promise<void> {
  await l.heading("trail");
  if (data.entries.length === 0) {
    await l.paragraph("There are no audit entries for this incident.", BODY_MUTED);
    return;
  }
  await l.paragraph(
    `${entrySpan(data.entries)}, oldest first. Under each time: the entry's position (seq) in the tenant's audit log and the first 12 hex digits of its leaf hash. Under each resource: what changed, old → new (long values are shortened). The full entries (request context, every field) with their inclusion proofs are in audit/entries.jsonl, as a spreadsheet in audit/entries.csv; the signed checkpoint is audit/checkpoint.txt.`,
    BODY_MUTED,
  );
  const table = l.table({
    columns: [
      { header: "Timestamp (UTC)", width: 102 },
      { header: "User", width: 120 },
      { header: "Action", width: 95 },
      { header: "Resource", width: CONTENT_WIDTH - 317 },
    ],
    header: true,
    zebra: true,
    continued: `${SECTIONS.trail} (continued)`,
    padX: 4,
    padY: 3.5,
  });
  const users = new Map((data.users ?? []).map((u) => [u.id, u]));
  for (const { seq, leafHash, body: e } of data.entries) {
    const context = [e.surface, e.ip].filter(Boolean).join(" · ");
    const kind = e.resource_id && !e.resource_label ? `${e.resource_type} ${e.resource_id}` : e.resource_type;
    const changes = changeLines(e, users);
    await table.row(
      [
        [text(utc(e.occurred_at)), text(`seq ${seq} · ${leafHash.slice(0, 12)}`, SEQ_HASH)],
        [
          text(e.actor_label),
          ...(data.tokenNames?.[seq] ? [text(`via token ‘${data.tokenNames[seq]}’`, CELL_MUTED)] : []),
          text(context, CELL_MUTED),
        ],
        [text(e.action, CELL_BOLD)],
        [text(e.resource_label ?? dash), text(kind, CELL_MUTED), ...changes.map((line) => text(line, CELL_CHANGE))],
      ],
      text(`seq ${seq}, continued`, CELL_MUTED),
    );
  }
}

async function verification(l: ReportLayout, data: ReportData): Promise<void> {
  await l.heading("verify");
  await l.paragraph(
    "This report is for reading. The evidence is the ZIP it came in, which holds this report (report.pdf), the incident (incident.json), every evidence file (evidence/), the audit entries with their inclusion proofs (audit/entries.jsonl, and audit/entries.csv for spreadsheets), the signed checkpoint of the tenant's audit log (audit/checkpoint.txt), and manifest.json with its signature manifest.sig.",
  );
  await l.subheading("1. Run the verifier");
  await l.paragraph(
    "From a checkout of Attest (the version on the cover or later), with the pack saved as pack.zip. It needs no network and no database:",
  );
  await l.code("npm run verify -- pack.zip");
  await l.paragraph(
    "It prints one line: VALID with the incident, the number of audit entries and files and the signing key's fingerprint (exit status 0), or INVALID with the name of the check that failed and the file or entry at fault (exit status 1). The checks run in the order below and stop at the first failure. A pack that is not VALID must not be relied on. README.txt in the ZIP explains how to make the same checks with other tools (OpenSSL, jq, any RFC 9162 and C2SP checkpoint implementation).",
  );
  await l.subheading("2. Compare the signing key fingerprint");
  await l.paragraph(
    "A valid signature only shows that the pack was not changed after it was signed by the key it carries. To know that key belongs to the Attest installation that issued the pack, compare its fingerprint with the one the installation publishes at https://<installation>/.well-known/attest-signing-keys.json (retired keys stay listed), or one its administrators give you by another channel. This pack's key:",
  );
  await l.code(formatFingerprint(data.signingKeyFingerprint));
  await l.paragraph(
    "Given the published fingerprint, the verifier makes the comparison itself and fails the signature check on a different key (without it, VALID says the key was not checked):",
  );
  await l.code("npm run verify -- pack.zip --key <published fingerprint>");
  await l.subheading("3. What each check means");
  const checks = l.keyValues(120);
  const row = (name: string, meaning: string) => checks.row([[text(name, style("mono", 9))], [text(meaning, VALUE)]]);
  await row(
    "pack",
    "The ZIP opens and holds a readable manifest.json and manifest.sig, and the files every pack has (README.txt, report.pdf, incident.json, the audit files).",
  );
  await row(
    "signature",
    "manifest.sig is a valid Ed25519 signature of the exact bytes of manifest.json by the public key in the manifest, whose fingerprint is the one the manifest names (and the one given with --key). Nothing the manifest states (files, hashes, entries, checkpoint) was changed after signing.",
  );
  await row(
    "files",
    "Every file the manifest lists is in the ZIP with the same size and SHA-256, and there is no other file (folders that ZIP tools add do not count). The evidence files, this report and the audit files are the ones that were signed.",
  );
  await row(
    "checkpoint",
    `audit/checkpoint.txt is a checkpoint of this tenant's audit log (${data.checkpoint.treeSize.toLocaleString("en-US")} entries, root hash on the cover) signed by the same key, in the C2SP signed-note format that other tools can check too.`,
  );
  await row(
    "entries",
    "Every line of audit/entries.jsonl is the leaf at its position in the log that checkpoint commits to: its RFC 9162 inclusion proof leads to the signed root, so it was not edited or made up, even by whoever holds the key. Each names this incident, and names the incident's previous entry (position and leaf hash), so no entry was taken out, added or reordered between the incident's first entry and the last one in the pack. The entries are the ones the manifest lists, in order.",
  );
  await row(
    "csv",
    "audit/entries.csv has one row per entry with what its leaf says, so the spreadsheet view can be trusted too.",
  );
  l.y += 8;
  await l.paragraph(
    "What no pack can show on its own: entries of the incident after the last one in the pack, and that the signed log is the installation's only one. Compare the checkpoint with checkpoints obtained elsewhere (earlier packs of the tenant, checkpoints the installation published): the installation can prove with a consistency proof that each extends the earlier ones. And the pack proves what was recorded, not that what was recorded is true.",
    BODY_MUTED,
  );
}

// ---------------------------------------------------------------------------------------------
// Entry point

/** The header and footer of every page. */
function frame(l: ReportLayout, data: ReportData): void {
  const right = LEFT + CONTENT_WIDTH;
  const brand = toLine(graphemes("Attest evidence pack", PAGE_FRAME_BOLD));
  l.drawLine(brand, PAGE_FRAME_BOLD, LEFT, 26);
  const title = ellipsize(data.incidentFile.incident.title, PAGE_FRAME, CONTENT_WIDTH - brand.width - 30);
  l.drawLine(title, PAGE_FRAME, right - title.width, 26);
  l.rule(LEFT, right, 40, 0.5, RULE);

  const footerTop = PAGE_HEIGHT - 40;
  l.rule(LEFT, right, footerTop - 5, 0.5, RULE);
  const pageLabel = toLine(graphemes(`Page ${l.page} of ${l.measured?.pages ?? "?"}`, PAGE_FRAME_BOLD));
  l.drawLine(pageLabel, PAGE_FRAME_BOLD, right - pageLabel.width, footerTop);
  const left = `${data.tenant.name} · generated ${utc(data.generatedAt)} UTC · checkpoint at ${data.checkpoint.treeSize} entries`;
  l.drawLine(ellipsize(left, PAGE_FRAME, CONTENT_WIDTH - pageLabel.width - 30), PAGE_FRAME, LEFT, footerTop);
}

/**
 * The report as a PDF stream, written page by page as it is read (pdf-layout.ts renderPdf); the
 * document ends itself after the last page. A failure destroys the stream with the error.
 */
export function renderReportPdf(data: ReportData): NodeJS.ReadableStream {
  const { incident } = data.incidentFile;
  const generated = new Date(data.generatedAt);
  return renderPdf({
    info: {
      Title: `Evidence pack: ${incident.title}`,
      Subject: `Incident ${incident.id}, ${data.tenant.name}`,
      Author: "Attest",
      Creator: `Attest ${data.toolVersion}`,
      CreationDate: Number.isNaN(generated.getTime()) ? new Date() : generated,
    },
    headings: SECTIONS,
    frame: (l) => frame(l, data),
    compose: (l) => compose(l, data),
  });
}
