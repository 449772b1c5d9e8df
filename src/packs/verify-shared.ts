/**
 * What the verifier's steps share, whatever the pack's format version: the failure that carries a
 * verdict, reading ZIP entries, shape checks, comparing the entries' positions with the
 * manifest's, and comparing audit/entries.csv row by row with what audit/entries.jsonl says.
 * No check of its own: src/packs/verify.ts runs the steps, verify-v1.ts and verify-v2.ts hold
 * the audit checks of each version.
 */
import readline from "node:readline";
import type { Readable } from "node:stream";
import { parse } from "csv-parse";
import { parse as parseCsvSync } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import type { Entry, ZipFile } from "yauzl";
import { ENTRY_CSV_OPTIONS } from "./entries.ts";
import { ENTRIES_CSV_PATH, ENTRIES_JSONL_PATH, MANIFEST_PATH } from "./format.ts";

export type VerifyCheck = "pack" | "signature" | "files" | "checkpoint" | "entries" | "csv" | "chain";

export class Failure extends Error {
  readonly check: VerifyCheck;
  readonly where: { file?: string; entry?: number };
  constructor(check: VerifyCheck, message: string, where: { file?: string; entry?: number } = {}) {
    super(message);
    this.check = check;
    this.where = where;
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
export const isString = (v: unknown): v is string => typeof v === "string";
export const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
export const isHash = (v: unknown): v is string => isString(v) && /^[0-9a-f]{64}$/.test(v);

/** What is wrong with a manifest's audit.entries, or null. */
export function entrySeqsProblem(entries: unknown): string | null {
  if (!Array.isArray(entries)) return "audit.entries is missing";
  let previous = 0;
  for (const seq of entries) {
    if (!isSeq(seq) || seq <= previous) return "audit.entries is not a list of increasing seqs";
    previous = seq;
  }
  return null;
}

export async function openEntry(zip: ZipFile, entry: Entry, check: VerifyCheck): Promise<Readable> {
  try {
    return await zip.openReadStreamPromise(entry);
  } catch (error) {
    throw new Failure(check, `${entry.fileName} cannot be read: ${(error as Error).message}`, { file: entry.fileName });
  }
}

export async function readSmallEntry(zip: ZipFile, entry: Entry, limit: number, check: VerifyCheck): Promise<Buffer> {
  if (entry.uncompressedSize > limit) {
    throw new Failure(check, `${entry.fileName} is too large (${entry.uncompressedSize} bytes)`, {
      file: entry.fileName,
    });
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of await openEntry(zip, entry, check)) chunks.push(chunk as Buffer);
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(check, `${entry.fileName} cannot be read: ${(error as Error).message}`, {
      file: entry.fileName,
    });
  }
  return Buffer.concat(chunks);
}

export function lines(stream: Readable): AsyncIterableIterator<string> {
  return readline.createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })[Symbol.asyncIterator]();
}

/**
 * Streams the lines of a JSONL file of the pack to `each` (line text, 1-based line number);
 * failures other than a Failure become one of `check` naming the file.
 */
export async function eachLine(
  zip: ZipFile,
  entry: Entry,
  check: VerifyCheck,
  each: (text: string, n: number) => void,
): Promise<void> {
  const stream = await openEntry(zip, entry, check);
  let n = 0;
  try {
    for await (const text of lines(stream)) each(text, ++n);
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(check, `${entry.fileName} cannot be read: ${(error as Error).message}`, { file: entry.fileName });
  } finally {
    stream.destroy();
  }
}

/** Compares the seqs found in entries.jsonl with the manifest's, naming the first difference. */
export function compareSeqs(actual: number[], expected: number[]): Failure | null {
  const file = ENTRIES_JSONL_PATH;
  const inActual = new Set(actual);
  const inExpected = new Set(expected);
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === e) continue;
    if (e !== undefined && !inActual.has(e)) return new Failure("entries", `entry ${e} is missing`, { file, entry: e });
    if (a !== undefined && !inExpected.has(a)) {
      return new Failure("entries", `entry ${a} is not one of the entries ${MANIFEST_PATH} lists`, { file, entry: a });
    }
    const [first, second] = [Math.min(a, e), Math.max(a, e)];
    return new Failure("entries", `entries ${first} and ${second} are out of order`, { file, entry: first });
  }
  return null;
}

function shorten(value: string | undefined): string {
  if (value === undefined) return "nothing";
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

const MAX_CSV_RECORD_BYTES = 64 * 1024 * 1024;

/** How many rows checkCsvRows writes and parses back at a time. */
const CSV_BATCH = 500;

/**
 * Checks that audit/entries.csv has the header `columns` and, for each line of
 * audit/entries.jsonl in turn, the row `rowOf` derives from it (as a CSV reader gets it back).
 * Runs after the entries check, so every JSONL line is known to be a valid entry.
 */
export async function checkCsvRows(
  zip: ZipFile,
  jsonlEntry: Entry,
  csvEntry: Entry,
  columns: readonly string[],
  rowOf: (jsonlLine: string) => { seq: number; cells: string[] },
): Promise<void> {
  const file = ENTRIES_CSV_PATH;
  const csvStream = await openEntry(zip, csvEntry, "csv");
  const parser = parse({ bom: true, max_record_size: MAX_CSV_RECORD_BYTES });
  csvStream.on("error", (error) => parser.destroy(error));
  const rows = csvStream.pipe(parser)[Symbol.asyncIterator]() as AsyncIterator<string[]>;
  const jsonlStream = await openEntry(zip, jsonlEntry, "csv");
  const jsonl = lines(jsonlStream);
  try {
    const header = await rows.next();
    if (header.done || header.value.join(",") !== columns.join(",")) {
      throw new Failure("csv", `${file} does not start with the header ${columns.join(",")}`, { file });
    }
    for (;;) {
      // The next lines of entries.jsonl, each as its CSV row should read back (written and parsed
      // again, as the CSV was), a batch at a time: a parser per row took ~35 µs, a third of the
      // whole verification of a 10,000-entry pack.
      const batch: { seq: number; cells: string[] }[] = [];
      let ended = false;
      while (batch.length < CSV_BATCH) {
        const text = await jsonl.next();
        if (text.done) {
          ended = true;
          break;
        }
        batch.push(rowOf(text.value));
      }
      const expectedRows =
        batch.length > 0
          ? (parseCsvSync(
              stringify(
                batch.map((b) => b.cells),
                ENTRY_CSV_OPTIONS,
              ),
            ) as string[][])
          : [];
      for (const [i, { seq }] of batch.entries()) {
        const row = await rows.next();
        if (row.done) throw new Failure("csv", `${file} has no row for entry ${seq}`, { file, entry: seq });
        const expected = expectedRows[i];
        const column = columns.findIndex((_, c) => row.value[c] !== expected[c]);
        if (column >= 0 || row.value.length !== expected.length) {
          const name = columns[column] ?? "(extra column)";
          throw new Failure(
            "csv",
            `${file} differs from ${ENTRIES_JSONL_PATH} for entry ${seq}: ${name} is ${shorten(row.value[column])} in the CSV, ${shorten(expected[column])} in the entry`,
            { file, entry: seq },
          );
        }
      }
      if (ended) {
        const row = await rows.next();
        if (row.done) return;
        throw new Failure(
          "csv",
          `${file} has a row (seq ${shorten(row.value?.[0])}) that ${ENTRIES_JSONL_PATH} does not`,
          { file },
        );
      }
    }
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure("csv", `${file} cannot be read as CSV: ${(error as Error).message}`, { file });
  } finally {
    await rows.return?.();
    await jsonl.return?.();
    csvStream.destroy();
    jsonlStream.destroy();
  }
}
