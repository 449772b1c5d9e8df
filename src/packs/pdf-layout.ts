/**
 * The text layout engine of Attest's PDFs, over pdfkit: fonts chosen per grapheme, line breaking,
 * pages, headings, paragraphs and tables, and a two-pass renderer that streams the document page by
 * page. The report's content (src/packs/report-pdf.ts) reads as a document outline on top of it.
 *
 * Streaming: renderPdf returns the pdfkit document at once and writes it page by page while the
 * consumer reads, waiting whenever the stream holds more than its high-water mark, so memory stays
 * about one page however long the document is (pdfkit writes each page out when the next one is
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

export type Family = "text" | "bold" | "mono";
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

export interface Style {
  family: Family;
  size: number;
  color: string;
}

export const INK = "#111827";
export const MUTED = "#5b6472";
export const RULE = "#c9ced6";
const HEAD_FILL = "#e3e7ed";
const ZEBRA_FILL = "#f5f6f8";
const CODE_FILL = "#f0f2f5";
export const ACCENT = "#1f3a5f";

export const style = (family: Family, size: number, color = INK): Style => ({ family, size, color });
const BODY = style("text", 9.5);
const TABLE_HEAD = style("bold", 7.5);

const lineHeight = (s: Style) => s.size * 1.4;
/** From the top of a line box to its baseline. */
const baselineOffset = (s: Style) => s.size * 1.04;

interface Run {
  face: Face;
  text: string;
  width: number;
}
export interface Line {
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

export function graphemes(text: string, s: Style): Grapheme[] {
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

export function toLine(items: Grapheme[]): Line {
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
export function ellipsize(text: string, s: Style, maxWidth: number): Line {
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
// Page geometry and the two-pass layout

const PAGE_WIDTH = 595.28; // A4
export const PAGE_HEIGHT = 841.89;
export const LEFT = 45;
export const CONTENT_WIDTH = PAGE_WIDTH - 2 * LEFT;
const TOP = 60;
const BOTTOM = PAGE_HEIGHT - 58;

/** What the measuring pass learns for the drawing pass. */
export interface Plan<K extends string = string> {
  pages: number;
  sections: Partial<Record<K, { first: number; last: number }>>;
}

interface Output {
  doc: PDFKit.PDFDocument;
  /** Called after each page is begun: waits while the consumer has not read what is written. */
  pace: () => Promise<void>;
}

export interface Block {
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

/** What a document is made of, for renderPdf. */
export interface DocumentSpec<K extends string> {
  /** The document's metadata (title, author, creation date, …). */
  info: PDFKit.DocumentInfo;
  /** The section headings, by key (Layout.heading). */
  headings: Record<K, string>;
  /** Draws the header and footer of the page just begun (Layout.page, Layout.measured). */
  frame(l: Layout<K>): void;
  /** Lays the whole document out; runs twice, once measuring and once drawing. */
  compose(l: Layout<K>): Promise<void>;
}

/** Where the next thing goes, and the primitives that put it there. K names the sections. */
export class Layout<K extends string> {
  page = 0;
  y = TOP;
  readonly plan: Plan<K> = { pages: 0, sections: {} };
  private section: K | undefined;
  private readonly spec: DocumentSpec<K>;
  /** null in the measuring pass. */
  private readonly out: Output | null;
  /** The measuring pass's plan, in the drawing pass. */
  readonly measured: Plan<K> | null;

  constructor(spec: DocumentSpec<K>, out: Output | null, measured: Plan<K> | null) {
    this.spec = spec;
    this.out = out;
    this.measured = measured;
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
      this.spec.frame(this);
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

  async heading(key: K): Promise<void> {
    const s = style("bold", 13, ACCENT);
    await this.ensure(lineHeight(s) + 70); // never a heading alone at the foot of a page
    if (this.page > 1 && this.y > TOP) this.y += 10;
    this.section = key;
    this.plan.sections[key] = { first: this.page, last: this.page };
    this.out?.doc.outline.addItem(this.spec.headings[key].replace(/^\d+\s+/, ""));
    this.drawLine(toLine(graphemes(this.spec.headings[key], s)), s, LEFT, this.y);
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

  table(spec: TableSpec): Table<K> {
    return new Table(this, spec);
  }

  /** Label / value pairs without a header, as on the cover and in the summary. */
  keyValues(labelWidth = 125): Table<K> {
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

export class Table<K extends string> {
  private rows = 0;
  private started = false;
  private readonly layout: Layout<K>;
  private readonly spec: TableSpec;

  constructor(layout: Layout<K>, spec: TableSpec) {
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
// Rendering

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
 * A document as a PDF stream. Pages are produced as the stream is read; the document ends itself
 * after the last page. A failure destroys the stream with the error.
 */
export function renderPdf<K extends string>(spec: DocumentSpec<K>): NodeJS.ReadableStream {
  const loaded = faces(); // fails here, synchronously, when a font file is missing
  const doc = new PDFDocument({
    autoFirstPage: false,
    bufferPages: false,
    pdfVersion: "1.7",
    lang: "en",
    displayTitle: true,
    info: spec.info,
  });
  for (const face of Object.keys(loaded) as Face[]) doc.registerFont(face, loaded[face].data);
  const pace = pacer(doc);
  (async () => {
    const measuring = new Layout(spec, null, null);
    await spec.compose(measuring);
    const plan: Plan<K> = { ...measuring.plan, pages: measuring.page };
    const drawing = new Layout(spec, { doc, pace }, plan);
    await spec.compose(drawing);
    if (drawing.page !== plan.pages) {
      throw new Error(`PDF layout drew ${drawing.page} pages but measured ${plan.pages}`);
    }
    doc.end();
  })().catch((error: unknown) => {
    if (!(error instanceof Aborted)) doc.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  return doc;
}
