/**
 * The Audit Log's time zone: one zone for everything its pages show (the list's rows, From/To and
 * chart, an entry's details and its own page). ?tz= when the address names one, else the
 * browser's (the cookie attest.js sets), else UTC; and times formatted in it, 24-hour.
 */
import type Koa from "koa";
import { eta } from "../render.ts";
import type { PageState } from "./tenant-page.ts";

/** Time zone names PostgreSQL knows (read once): the only ones the page accepts. */
let knownZones: Promise<Set<string>> | undefined;

export interface PageZone {
  /** IANA name, or "UTC". */
  name: string;
  /** Chosen in the URL (?tz=), not from the browser's cookie. */
  explicit: boolean;
  /** e.g. "Europe/Berlin (UTC+01:00)". */
  label: string;
}

export const ZONE_COOKIE = "attest_tz";

/** `{ tz: <zone> }` when the address named the page's zone (its links keep it), else nothing. */
export function zoneParams(zone: PageZone): Record<string, string> {
  return zone.explicit ? { tz: zone.name } : {};
}

/** The same as a query string: `?tz=<zone>`, or "". */
export function zoneQuery(zone: PageZone): string {
  const query = new URLSearchParams(zoneParams(zone)).toString();
  return query ? `?${query}` : "";
}

/** The page's time zone: ?tz= if valid, else the browser's (cookie set by attest.js), else UTC. */
export async function pageZone(ctx: Koa.Context, page: PageState): Promise<PageZone> {
  knownZones ??= page
    .tx((c) => c.query<{ name: string }>("select name from pg_timezone_names"))
    .then(({ rows }) => new Set(["UTC", ...rows.map((r) => r.name)]))
    .catch((error) => {
      knownZones = undefined;
      throw error;
    });
  const zones = await knownZones;
  const param = typeof ctx.query.tz === "string" ? ctx.query.tz : "";
  const cookie = (() => {
    try {
      return decodeURIComponent(ctx.cookies.get(ZONE_COOKIE) ?? "");
    } catch {
      return "";
    }
  })();
  const valid = (z: string) => z.length > 0 && z.length <= 64 && zones.has(z) && isIntlZone(z);
  const name = valid(param) ? param : valid(cookie) ? cookie : "UTC";
  return { name, explicit: valid(param), label: zoneLabel(name) };
}

function isIntlZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function zoneLabel(zone: string, at = new Date()): string {
  if (zone === "UTC") return "UTC";
  const offset =
    new Intl.DateTimeFormat("en", { timeZone: zone, timeZoneName: "longOffset" })
      .formatToParts(at)
      .find((p) => p.type === "timeZoneName")
      ?.value.replace("GMT", "UTC") ?? "";
  return `${zone} (${offset === "UTC" ? "UTC+00:00" : offset})`;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The zone's wall-clock time at `ms` as if it were UTC (ms), from Intl (slow: ~15 µs). */
function wallClock(ms: number, zone: string): number {
  let format = formats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
    formats.set(zone, format);
  }
  const p = Object.fromEntries(format.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) + (((ms % 1000) + 1000) % 1000);
}

const QUARTER_HOUR = 900_000;
/** The zone's offset (ms) through a quarter hour of UTC, or null when it changes within it. */
const offsets = new Map<string, number | null>();

/** "2026-05-01 14:03:22" in the zone (24-hour, whatever the locale). */
export function formatInZone(iso: string, zone: string): string {
  const ms = Date.parse(iso);
  // The offset is looked up once per zone and quarter hour of UTC (zones change their offset on
  // a quarter hour of UTC, at least since the 1970s; a quarter hour where it changes, or an older
  // offset like +00:19:32, is formatted by Intl each time).
  const quarter = Math.floor(ms / QUARTER_HOUR);
  const key = `${zone} ${quarter}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    const start = quarter * QUARTER_HOUR;
    const atStart = wallClock(start, zone) - start;
    const atEnd = wallClock(start + QUARTER_HOUR - 1, zone) - (start + QUARTER_HOUR - 1);
    offset = atStart === atEnd ? atStart : null;
    if (offsets.size >= 10_000) offsets.clear();
    offsets.set(key, offset);
  }
  const local = new Date(offset === null ? wallClock(ms, zone) : ms + offset);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${String(local.getUTCFullYear()).padStart(4, "0")}-${two(local.getUTCMonth() + 1)}-${two(local.getUTCDate())} ${two(local.getUTCHours())}:${two(local.getUTCMinutes())}:${two(local.getUTCSeconds())}`;
}

/**
 * A time as the Audit Log's pages show it: in the zone, to the second (or the minute), with its
 * UTC time as its title; `data-local` tells attest.js to leave it as it is.
 */
export function zonedTime(iso: string, zone: string, to: "second" | "minute" = "second"): string {
  const text = formatInZone(iso, zone);
  const html = (s: string) => eta.config.escapeFunction(s);
  return `<time datetime="${html(iso)}" data-local="1" title="${html(iso)} (UTC)">${html(to === "minute" ? text.slice(0, 16) : text)}</time>`;
}
