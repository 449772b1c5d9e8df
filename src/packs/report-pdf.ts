/**
 * The PDF report of an evidence pack (report.pdf, see format.ts): a cover, the incident summary, the
 * NIS2 milestones, the evidence index, the incident's audit trail as a table, and how to verify the
 * pack. The report is for people; the proof is the ZIP's signed manifest, and the report says so.
 *
 * Streaming: renderReportPdf returns the pdfkit document at once and writes it page by page while
 * the consumer reads, waiting whenever the stream holds more than its high-water mark, so memory
 * stays about one page however long the trail is (pdfkit writes each page out when the next one is
 * added; bufferPages is off). "Page n of m" needs m before page 1 is written: the layout runs twice
 * through the same code, first only measuring (no drawing, no output) to count the pages and note
 * where each section starts, then drawing. Every page break is decided here, never by pdfkit.
 *
 * Fonts: Noto, from @expo-google-fonts (OFL; plain TTF files). Noto Sans covers Latin, Greek and
 * Cyrillic but no Japanese; Noto Sans JP covers Japanese but not all of Latin Extended (no Ł, ź) nor
 * all of Cyrillic (no ї, Ђ). So text is split into runs by font: each grapheme goes to Noto Sans when
 * it has the glyphs, else to Noto Sans JP when that has them, else to Noto Sans (which shows its
 * missing-glyph box, so nothing vanishes silently). Hashes and fingerprints use Noto Sans Mono.
 * Right-to-left scripts are not reordered (no bidi); bidi control characters and other control
 * characters in the data are shown as U+FFFD so that they cannot disguise a value.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { setImmediate as nextTurn } from "node:timers/promises";
import * as fontkit from "fontkit";
import PDFDocument from "pdfkit";
import type { AuditBody } from "../audit/leaf.ts";
import { type AuditUser, changeLine, entryChanges } from "../web/audit-format.ts";
import { formatFingerprint, type IncidentFile, PACK_FORMAT } from "./format.ts";

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
// Fonts

const FACE_FILES = {
  sans: "@expo-google-fonts/noto-sans/400Regular/NotoSans_400Regular.ttf",
  sansBold: "@expo-google-fonts/noto-sans/700Bold/NotoSans_700Bold.ttf",
  mono: "@expo-google-fonts/noto-sans-mono/400Regular/NotoSansMono_400Regular.ttf",
  cjk: "@expo-google-fonts/noto-sans-jp/400Regular/NotoSansJP_400Regular.ttf",
  cjkBold: "@expo-google-fonts/noto-sans-jp/700Bold/NotoSansJP_700Bold.ttf",
} as const;
type Face = keyof typeof FACE_FILES;

type Family = "text" | "bold" | "mono";
/** Per family: the font to use when it has the glyphs, then the fallback. */
const FAMILIES: Record<Family, readonly [Face, Face]> = {
  text: ["sans", "cjk"],
  bold: ["sansBold", "cjkBold"],
  mono: ["mono", "cjk"],
};

interface LoadedFace {
  data: Buffer;
  font: fontkit.Font;
}

// Loaded once per process (about 12 MB, mostly the two Japanese faces) and shared by every report.
let loadedFaces: Record<Face, LoadedFace> | undefined;
// Per grapheme: which face draws it, and its width. Capped, since data can hold any number of
// distinct graphemes (a letter with arbitrary combining marks is one).
const faceChoice = new Map<string, Face>();
const unitWidths = new Map<string, number>();
const GRAPHEME_CACHE_LIMIT = 20_000;

function remember<T>(cache: Map<string, T>, key: string, compute: () => T): T {
  let value = cache.get(key);
  if (value === undefined) {
    if (cache.size >= GRAPHEME_CACHE_LIMIT) cache.clear();
    value = compute();
    cache.set(key, value);
  }
  return value;
}

function faces(): Record<Face, LoadedFace> {
  if (loadedFaces) return loadedFaces;
  const require = createRequire(import.meta.url);
  const loaded = {} as Record<Face, LoadedFace>;
  for (const [face, file] of Object.entries(FACE_FILES) as Array<[Face, string]>) {
    const data = readFileSync(require.resolve(file));
    const font = fontkit.create(data);
    if ("fonts" in font) throw new Error(`${file} is a font collection, not a font`);
    loaded[face] = { data, font };
  }
  loadedFaces = loaded;
  return loaded;
}

/** Zero-width joiners and variation selectors: a font need not have glyphs for them. */
function isIgnorable(codePoint: number): boolean {
  return codePoint === 0x200d || (codePoint >= 0xfe00 && codePoint <= 0xfe0f) || codePoint >= 0xe0100;
}

function hasGlyphs(face: Face, grapheme: string): boolean {
  const { font } = faces()[face];
  for (const char of grapheme) {
    const codePoint = char.codePointAt(0) ?? 0;
    if (!isIgnorable(codePoint) && !font.hasGlyphForCodePoint(codePoint)) return false;
  }
  return true;
}

function faceFor(family: Family, grapheme: string): Face {
  return remember(faceChoice, `${family}\u0000${grapheme}`, () => {
    const [primary, fallback] = FAMILIES[family];
    return hasGlyphs(primary, grapheme) || !hasGlyphs(fallback, grapheme) ? primary : fallback;
  });
}

/** Advance width of a grapheme at font size 1. */
function unitWidth(face: Face, grapheme: string): number {
  return remember(unitWidths, `${face}\u0000${grapheme}`, () => {
    const { font } = faces()[face];
    return font.layout(grapheme).advanceWidth / font.unitsPerEm;
  });
}

// ---------------------------------------------------------------------------------------------
// Text: styles, line breaking, runs

interface Style {
  family: Family;
  size: number;
  color: string;
}

const INK = "#111827";
const MUTED = "#5b6472";
const RULE = "#c9ced6";
const HEAD_FILL = "#e3e7ed";
const ZEBRA_FILL = "#f5f6f8";
const CODE_FILL = "#f0f2f5";
const ACCENT = "#1f3a5f";
const STATUS_COLORS: Record<string, string> = { completed: "#166534", overdue: "#b91c1c", pending: "#92400e" };

const style = (family: Family, size: number, color = INK): Style => ({ family, size, color });
const BODY = style("text", 9.5);
const BODY_MUTED = style("text", 9.5, MUTED);
const CELL = style("text", 8);
const CELL_BOLD = style("bold", 8);
const CELL_MUTED = style("text", 6.8, MUTED);
const CELL_CHANGE = style("text", 7);
const CELL_MONO = style("mono", 7);
const CELL_MONO_MUTED = style("mono", 6.5, MUTED);
const SEQ_HASH = style("mono", 6.2, MUTED); // "seq 123456 · 0123456789ab" fits the timestamp column
const TABLE_HEAD = style("bold", 7.5);
const LABEL = style("bold", 8.5, MUTED);
const VALUE = style("text", 9);
const VALUE_MONO = style("mono", 8);
const PAGE_FRAME = style("text", 7, MUTED);
const PAGE_FRAME_BOLD = style("bold", 7, MUTED);

const lineHeight = (s: Style) => s.size * 1.4;
/** From the top of a line box to its baseline. */
const baselineOffset = (s: Style) => s.size * 1.04;

interface Run {
  face: Face;
  text: string;
  width: number;
}
interface Line {
  runs: Run[];
  width: number;
}
interface Grapheme {
  text: string;
  face: Face;
  width: number;
  space: boolean;
}

const graphemeSegmenter = new Intl.Segmenter("en", { granularity: "grapheme" });
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3000-\u303f\uff00-\uffef]/u;
// Where a line may end after this character (paths, URLs, e-mail addresses, identifiers, prose).
const BREAK_AFTER = new Set([..."-/\\_.,;:?!&=+|)]}>、。，．：；？！）」』】〕"]);
// Characters that must not start a line (closing punctuation, small kana, the prolonged sound mark).
const NO_BREAK_BEFORE = new Set([
  ..."、。，．・：；？！ー）」』】〕ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ,.;:!?)]}",
]);

/**
 * Data as it will be drawn: line breaks normalised, tabs as spaces, and control, bidi-override and
 * lone-surrogate characters as U+FFFD (visible, so a label cannot hide or reorder text).
 */
function clean(text: string): string {
  return text
    .replace(/\r\n?|[\u2028\u2029]/g, "\n")
    .replace(/\t/g, "  ")
    .replace(/[\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069]/gu, (c) => (c === "\n" ? c : "\ufffd"));
}

function graphemes(text: string, s: Style): Grapheme[] {
  const out: Grapheme[] = [];
  for (const { segment } of graphemeSegmenter.segment(text)) {
    const face = faceFor(s.family, segment);
    out.push({
      text: segment,
      face,
      width: unitWidth(face, segment) * s.size,
      space: segment === " " || segment === "\u3000",
    });
  }
  return out;
}

const isDigit = (item: Grapheme | undefined) => item !== undefined && /^[0-9]$/.test(item.text);

/**
 * 0: no break after items[i]; 1: a break only if the line has no better place (inside a number, a
 * date or a time: 2025-03-10, 06:12:45; or before a short tail: "example.", "de"); 2: a good place.
 * rest: how many graphemes follow items[i] before the next space.
 */
function breakAfter(items: Grapheme[], i: number, rest: number): 0 | 1 | 2 {
  const here = items[i];
  const next = items[i + 1];
  if (here.space) return 2;
  if (!next || next.space) return 0;
  if (NO_BREAK_BEFORE.has(next.text)) return 0;
  if (next.text === "@") return 2;
  if (BREAK_AFTER.has(here.text)) return (isDigit(items[i - 1]) && isDigit(next)) || rest <= 4 ? 1 : 2;
  return CJK.test(here.text) || CJK.test(next.text) ? 2 : 0;
}

function toLine(items: Grapheme[]): Line {
  let end = items.length;
  while (end > 0 && items[end - 1].space) end--;
  const runs: Run[] = [];
  let width = 0;
  for (let i = 0; i < end; i++) {
    const item = items[i];
    const last = runs[runs.length - 1];
    // A space stays in the run it follows, so that a space alone never starts a font switch.
    if (last && (last.face === item.face || item.space)) {
      last.text += item.text;
      last.width += item.width;
    } else {
      runs.push({ face: item.face, text: item.text, width: item.width });
    }
    width += item.width;
  }
  return { runs, width };
}

/**
 * Breaks text into lines no wider than maxWidth: at spaces, after the punctuation of paths, URLs and
 * e-mail addresses, before "@", between CJK characters; then inside numbers; a word with no such
 * place is broken between graphemes.
 */
function wrap(text: string, s: Style, maxWidth: number): Line[] {
  const lines: Line[] = [];
  for (const paragraph of clean(text).split("\n")) {
    const items = graphemes(paragraph, s);
    if (items.length === 0) {
      lines.push({ runs: [], width: 0 });
      continue;
    }
    const rest = new Array<number>(items.length);
    for (let k = items.length - 1, count = 0; k >= 0; k--) {
      rest[k] = count;
      count = items[k].space ? 0 : count + 1;
    }
    let start = 0;
    while (start < items.length) {
      let width = 0;
      let good = -1;
      let poor = -1;
      let i = start;
      for (; i < items.length; i++) {
        const item = items[i];
        if (i > start && !item.space && width + item.width > maxWidth) break;
        width += item.width;
        const quality = breakAfter(items, i, rest[i]);
        if (quality === 2) good = i + 1;
        else if (quality === 1) poor = i + 1;
      }
      const end = i >= items.length ? items.length : good > start ? good : poor > start ? poor : i;
      lines.push(toLine(items.slice(start, end)));
      start = end;
      while (start < items.length && items[start].space) start++;
    }
  }
  return lines;
}

/** One line, cut with an ellipsis when wider than maxWidth. */
function ellipsize(text: string, s: Style, maxWidth: number): Line {
  const items = graphemes(clean(text).replace(/\n+/g, " "), s);
  const line = toLine(items);
  if (line.width <= maxWidth) return line;
  const ellipsis = graphemes("…", s);
  const room = maxWidth - ellipsis[0].width;
  let width = 0;
  let end = 0;
  while (end < items.length && width + items[end].width <= room) width += items[end++].width;
  return toLine([...items.slice(0, end), ...ellipsis]);
}

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
// Page geometry and the two-pass layout

const PAGE_WIDTH = 595.28; // A4
const PAGE_HEIGHT = 841.89;
const LEFT = 45;
const CONTENT_WIDTH = PAGE_WIDTH - 2 * LEFT;
const TOP = 60;
const BOTTOM = PAGE_HEIGHT - 58;

const SECTIONS = {
  summary: "1  Incident summary",
  milestones: "2  NIS2 milestones",
  evidence: "3  Evidence index",
  trail: "4  Audit trail",
  verify: "5  Verifying this pack",
} as const;
type SectionKey = keyof typeof SECTIONS;

/** What the measuring pass learns for the drawing pass. */
interface Plan {
  pages: number;
  sections: Partial<Record<SectionKey, { first: number; last: number }>>;
}

interface Output {
  doc: PDFKit.PDFDocument;
  /** Called after each page is begun: waits while the consumer has not read what is written. */
  pace: () => Promise<void>;
}

interface Block {
  text: string;
  style: Style;
  align?: "left" | "right";
}
interface Column {
  header: string;
  width: number;
}
interface TableSpec {
  columns: Column[];
  /** Header row, repeated on every page the table runs onto. */
  header: boolean;
  zebra: boolean;
  /** Shown above the repeated header on continuation pages. */
  continued?: string;
  padX: number;
  padY: number;
}
interface LaidCell {
  /** Down from the cell's top to its first line. */
  shift: number;
  lines: Array<{ line: Line; style: Style; align: "left" | "right" }>;
}

class Layout {
  page = 0;
  y = TOP;
  readonly plan: Plan = { pages: 0, sections: {} };
  private section: SectionKey | undefined;
  private readonly data: ReportData;
  /** null in the measuring pass. */
  private readonly out: Output | null;
  /** The measuring pass's plan, in the drawing pass. */
  readonly measured: Plan | null;

  constructor(data: ReportData, out: Output | null, measured: Plan | null) {
    this.data = data;
    this.out = out;
    this.measured = measured;
  }

  get title(): string {
    return this.data.incidentFile.incident.title;
  }

  async newPage(): Promise<void> {
    this.page++;
    this.y = TOP;
    if (this.section) {
      const mark = this.plan.sections[this.section];
      if (mark) mark.last = this.page;
    }
    if (this.out) {
      forgetLayouts(this.out.doc);
      this.out.doc.addPage({ size: [PAGE_WIDTH, PAGE_HEIGHT], margin: 0 });
      this.drawFrame();
      await this.out.pace();
    } else if (this.page % 16 === 0) {
      await nextTurn(); // the measuring pass of a long trail: let other work run
    }
  }

  /** Ends the current section and starts the next one on a new page. */
  async sectionBreak(): Promise<void> {
    this.section = undefined;
    await this.newPage();
  }

  async ensure(height: number): Promise<void> {
    if (this.y + height > BOTTOM) await this.newPage();
  }

  private drawFrame(): void {
    const doc = this.out?.doc;
    if (!doc) return;
    const right = LEFT + CONTENT_WIDTH;
    const brand = toLine(graphemes("Attest evidence pack", PAGE_FRAME_BOLD));
    this.drawLine(brand, PAGE_FRAME_BOLD, LEFT, 26);
    const title = ellipsize(this.title, PAGE_FRAME, CONTENT_WIDTH - brand.width - 30);
    this.drawLine(title, PAGE_FRAME, right - title.width, 26);
    this.rule(LEFT, right, 40, 0.5, RULE);

    const footerTop = PAGE_HEIGHT - 40;
    this.rule(LEFT, right, footerTop - 5, 0.5, RULE);
    const pageLabel = toLine(graphemes(`Page ${this.page} of ${this.measured?.pages ?? "?"}`, PAGE_FRAME_BOLD));
    this.drawLine(pageLabel, PAGE_FRAME_BOLD, right - pageLabel.width, footerTop);
    const left = `${this.data.tenant.name} · generated ${utc(this.data.generatedAt)} UTC · checkpoint at ${this.data.checkpoint.treeSize} entries`;
    this.drawLine(ellipsize(left, PAGE_FRAME, CONTENT_WIDTH - pageLabel.width - 30), PAGE_FRAME, LEFT, footerTop);
  }

  // --- drawing primitives (no-ops in the measuring pass)

  drawLine(line: Line, s: Style, x: number, top: number): void {
    const doc = this.out?.doc;
    if (!doc) return;
    const baseline = top + baselineOffset(s);
    let cx = x;
    for (const run of line.runs) {
      doc.fillColor(s.color).font(run.face).fontSize(s.size);
      doc.text(run.text, cx, baseline, { lineBreak: false, baseline: "alphabetic" });
      cx += run.width;
    }
  }

  rule(x1: number, x2: number, y: number, width: number, color: string): void {
    const doc = this.out?.doc;
    if (!doc) return;
    doc.save().moveTo(x1, y).lineTo(x2, y).lineWidth(width).strokeColor(color).stroke().restore();
  }

  fill(x: number, y: number, w: number, h: number, color: string): void {
    const doc = this.out?.doc;
    if (!doc) return;
    doc.save().rect(x, y, w, h).fill(color).restore();
  }

  // --- flowing content

  async paragraph(text: string, s: Style = BODY, options: { indent?: number; after?: number } = {}): Promise<void> {
    const indent = options.indent ?? 0;
    for (const line of wrap(text, s, CONTENT_WIDTH - indent)) {
      await this.ensure(lineHeight(s));
      this.drawLine(line, s, LEFT + indent, this.y);
      this.y += lineHeight(s);
    }
    this.y += options.after ?? 6;
  }

  /** A command or value to copy, monospace on a tinted band. */
  async code(text: string): Promise<void> {
    const s = style("mono", 8.5);
    const lines = wrap(text, s, CONTENT_WIDTH - 20);
    const height = lines.length * lineHeight(s) + 10;
    await this.ensure(height);
    this.fill(LEFT, this.y, CONTENT_WIDTH, height, CODE_FILL);
    this.fill(LEFT, this.y, 2, height, ACCENT);
    let top = this.y + 5;
    for (const line of lines) {
      this.drawLine(line, s, LEFT + 10, top);
      top += lineHeight(s);
    }
    this.y += height + 8;
  }

  async heading(key: SectionKey): Promise<void> {
    const s = style("bold", 13, ACCENT);
    await this.ensure(lineHeight(s) + 70); // never a heading alone at the foot of a page
    if (this.page > 1 && this.y > TOP) this.y += 10;
    this.section = key;
    this.plan.sections[key] = { first: this.page, last: this.page };
    this.out?.doc.outline.addItem(SECTIONS[key].replace(/^\d+\s+/, ""));
    this.drawLine(toLine(graphemes(SECTIONS[key], s)), s, LEFT, this.y);
    this.y += lineHeight(s) + 2;
    this.rule(LEFT, LEFT + CONTENT_WIDTH, this.y, 0.8, ACCENT);
    this.y += 8;
  }

  async subheading(text: string): Promise<void> {
    const s = style("bold", 10);
    await this.ensure(lineHeight(s) + 40);
    this.y += 4;
    this.drawLine(toLine(graphemes(text, s)), s, LEFT, this.y);
    this.y += lineHeight(s) + 3;
  }

  // --- tables

  table(spec: TableSpec): Table {
    return new Table(this, spec);
  }

  /** Label / value pairs without a header, as on the cover and in the summary. */
  keyValues(labelWidth = 125): Table {
    return this.table({
      columns: [
        { header: "", width: labelWidth },
        { header: "", width: CONTENT_WIDTH - labelWidth },
      ],
      header: false,
      zebra: false,
      padX: 0,
      padY: 3,
    });
  }
}

class Table {
  private rows = 0;
  private started = false;
  private readonly layout: Layout;
  private readonly spec: TableSpec;

  constructor(layout: Layout, spec: TableSpec) {
    this.layout = layout;
    this.spec = spec;
  }

  /** Wraps every cell; cells whose first line is smaller move down so all first lines share a baseline. */
  private laidOut(cells: Block[][]): LaidCell[] {
    const laid = cells.map((blocks, i) => {
      const width = this.spec.columns[i].width - 2 * this.spec.padX;
      return blocks.flatMap((b) =>
        wrap(b.text, b.style, width).map((line) => ({ line, style: b.style, align: b.align ?? "left" })),
      );
    });
    const baseline = Math.max(0, ...laid.map((lines) => (lines.length ? baselineOffset(lines[0].style) : 0)));
    return laid.map((lines) => ({ shift: lines.length ? baseline - baselineOffset(lines[0].style) : 0, lines }));
  }

  private height(cells: LaidCell[]): number {
    const content = (c: LaidCell) => c.lines.reduce((h, l) => h + lineHeight(l.style), c.shift);
    return Math.max(0, ...cells.map(content)) + 2 * this.spec.padY;
  }

  private headerCells(): LaidCell[] {
    return this.laidOut(this.spec.columns.map((c) => [{ text: c.header, style: TABLE_HEAD }]));
  }

  private headerHeight(): number {
    return this.spec.header ? this.height(this.headerCells()) : 0;
  }

  private draw(cells: LaidCell[], height: number, fill: string | null, ruleColor: string | null): void {
    const l = this.layout;
    const width = this.spec.columns.reduce((w, c) => w + c.width, 0);
    if (fill) l.fill(LEFT, l.y, width, height, fill);
    let x = LEFT;
    cells.forEach((cell, i) => {
      const inner = this.spec.columns[i].width - 2 * this.spec.padX;
      let top = l.y + this.spec.padY + cell.shift;
      for (const { line, style: s, align } of cell.lines) {
        l.drawLine(line, s, x + this.spec.padX + (align === "right" ? inner - line.width : 0), top);
        top += lineHeight(s);
      }
      x += this.spec.columns[i].width;
    });
    if (ruleColor) l.rule(LEFT, LEFT + width, l.y + height, 0.4, ruleColor);
    l.y += height;
  }

  private drawHeader(): void {
    if (!this.spec.header) return;
    const cells = this.headerCells();
    this.draw(cells, this.height(cells), HEAD_FILL, "#9aa3af");
  }

  private async continueOnNewPage(): Promise<void> {
    await this.layout.newPage();
    if (this.spec.continued) {
      const s = style("bold", 8, MUTED);
      this.layout.drawLine(toLine(graphemes(this.spec.continued, s)), s, LEFT, this.layout.y);
      this.layout.y += lineHeight(s) + 3;
    }
    this.drawHeader();
  }

  /** A row; carry is shown in the first column when a row taller than a page continues on the next. */
  async row(cells: Block[][], carry?: Block): Promise<void> {
    const l = this.layout;
    let rest = this.laidOut(cells);
    if (!this.started) {
      this.started = true;
      // The header together with at least the first row (or the part of it that fits a page).
      await l.ensure(this.headerHeight() + Math.min(this.height(rest), 60));
      this.drawHeader();
    }
    const fill = this.spec.zebra && this.rows % 2 === 1 ? ZEBRA_FILL : null;
    const ruleColor = this.spec.header ? RULE : null;
    this.rows++;
    for (;;) {
      const height = this.height(rest);
      const room = BOTTOM - l.y;
      if (height <= room) {
        this.draw(rest, height, fill, ruleColor);
        return;
      }
      const freshRoom = BOTTOM - TOP - this.headerHeight() - 20;
      if (height <= freshRoom || room < 60) {
        await this.continueOnNewPage();
        continue;
      }
      // Taller than a page: draw what fits here and carry the rest of every cell over.
      const budget = room - 2 * this.spec.padY;
      const head = rest.map((cell) => {
        let used = cell.shift;
        let n = 0;
        while (n < cell.lines.length && used + lineHeight(cell.lines[n].style) <= budget) {
          used += lineHeight(cell.lines[n++].style);
        }
        return { shift: cell.shift, lines: cell.lines.slice(0, n) };
      });
      this.draw(head, room, fill, null);
      rest = rest.map((cell, i) => ({ shift: 0, lines: cell.lines.slice(head[i].lines.length) }));
      if (carry && rest[0].lines.length === 0) rest[0] = this.laidOut([[carry]])[0];
      await this.continueOnNewPage();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The report

const text = (t: string, s: Style = CELL): Block => ({ text: t, style: s });
const dash = "—";

async function compose(l: Layout, data: ReportData): Promise<void> {
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

async function cover(l: Layout, data: ReportData): Promise<void> {
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

async function summary(l: Layout, data: ReportData): Promise<void> {
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

async function milestones(l: Layout, data: ReportData): Promise<void> {
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

async function evidence(l: Layout, data: ReportData): Promise<void> {
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

async function trail(l: Layout, data: ReportData): Promise<void> {
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

async function verification(l: Layout, data: ReportData): Promise<void> {
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

class Aborted extends Error {}

/**
 * pdfkit caches the shaping of every distinct word, per font, for the whole document. A trail has a
 * distinct timestamp and hash in every row, so that cache would grow with the trail (about 5 MB per
 * thousand entries); it is emptied at each page instead. This is pdfkit's internal state: if a later
 * pdfkit has no such field, nothing happens here but that growth. (Turning the cache off instead makes
 * rendering about five times slower.)
 */
function forgetLayouts(doc: PDFKit.PDFDocument): void {
  const families = (doc as unknown as { _fontFamilies?: Record<string, { layoutCache?: object }> })._fontFamilies;
  for (const font of Object.values(families ?? {})) {
    if (font.layoutCache) font.layoutCache = Object.create(null);
  }
}

/** pace() for a document: waits, after a page, while the stream holds more than its high-water mark. */
function pacer(doc: PDFKit.PDFDocument): () => Promise<void> {
  let wake: (() => void) | undefined;
  const resume = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  doc._read = resume; // pdfkit's own _read does nothing; the consumer asking for more wakes the layout
  doc.once("close", resume);
  return async () => {
    if (doc.destroyed) throw new Aborted();
    if (doc.readableLength >= doc.readableHighWaterMark) await new Promise<void>((resolve) => (wake = resolve));
    else await nextTurn();
    if (doc.destroyed) throw new Aborted();
  };
}

/**
 * The report as a PDF stream. Pages are produced as the stream is read; the document ends itself
 * after the last page. A failure destroys the stream with the error.
 */
export function renderReportPdf(data: ReportData): NodeJS.ReadableStream {
  const loaded = faces(); // fails here, synchronously, when a font file is missing
  const { incident } = data.incidentFile;
  const generated = new Date(data.generatedAt);
  const doc = new PDFDocument({
    autoFirstPage: false,
    bufferPages: false,
    pdfVersion: "1.7",
    lang: "en",
    displayTitle: true,
    info: {
      Title: `Evidence pack: ${incident.title}`,
      Subject: `Incident ${incident.id}, ${data.tenant.name}`,
      Author: "Attest",
      Creator: `Attest ${data.toolVersion}`,
      CreationDate: Number.isNaN(generated.getTime()) ? new Date() : generated,
    },
  });
  for (const face of Object.keys(loaded) as Face[]) doc.registerFont(face, loaded[face].data);
  const pace = pacer(doc);
  (async () => {
    const measuring = new Layout(data, null, null);
    await compose(measuring, data);
    const plan: Plan = { ...measuring.plan, pages: measuring.page };
    const drawing = new Layout(data, { doc, pace }, plan);
    await compose(drawing, data);
    if (drawing.page !== plan.pages) {
      throw new Error(`report layout drew ${drawing.page} pages but measured ${plan.pages}`);
    }
    doc.end();
  })().catch((error: unknown) => {
    if (!(error instanceof Aborted)) doc.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  return doc;
}
