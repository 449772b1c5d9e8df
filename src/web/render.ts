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
