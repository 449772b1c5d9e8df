/**
 * Server-rendered HTML: Eta templates from views/, escaped by default (`<%= %>`).
 * Owns template loading and the page shell; routes pass plain data.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Eta } from "eta";

const viewsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../views");

export const eta = new Eta({ views: viewsDir, autoEscape: true, cache: process.env.NODE_ENV !== "development" });

export function render(template: string, data: Record<string, unknown>): string {
  return eta.render(template, data);
}

/** Words up to this long fit a 390 px phone's row (a card's value column) and are left whole. */
const LONG_WORD = 24;
const MARKS = /(?<=[/.\-_@?&=:])(?=[^/.\-_@?&=:])/;

/**
 * A text as HTML with a soft line break (`<wbr>`), in each word longer than LONG_WORD, after each
 * "/", ".", "-", "_", "@", "?", "&", "=" and ":" (or run of them, as "://") that has more of the word
 * after it: a long URL, file name or email then wraps at those marks on a narrow screen, not in
 * the middle of a word (with `overflow-wrap: break-word`, a piece is broken only when it is wider
 * than the line by itself). Escaped as `<%= %>` escapes.
 */
export function breakable(text: string): string {
  const escaped = (piece: string) => eta.config.escapeFunction(piece);
  return text
    .split(/(\s+)/)
    .map((word) => (word.length > LONG_WORD ? word.split(MARKS).map(escaped).join("<wbr>") : escaped(word)))
    .join("");
}
