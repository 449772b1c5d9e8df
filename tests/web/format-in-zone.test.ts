/**
 * formatInZone (src/web/pages/audit-zone.ts) formats a time in a zone from an offset it looks up
 * once per quarter hour of UTC: for any instant and zone it says what Intl says, across daylight
 * saving changes, half- and quarter-hour zones and old local mean times.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatInZone } from "../../src/web/pages/audit-zone.ts";

const ZONES = [
  "UTC",
  "Europe/Berlin",
  "Europe/London",
  "America/New_York",
  "America/St_Johns",
  "America/Sao_Paulo",
  "Asia/Kolkata",
  "Asia/Kathmandu",
  "Australia/Lord_Howe",
  "Australia/Adelaide",
  "Pacific/Chatham",
  "Pacific/Apia",
  "Africa/Casablanca",
  "Europe/Amsterdam",
];

const referenceFormats = new Map<string, Intl.DateTimeFormat>();

/** What Intl says, field by field (the reference). */
function reference(ms: number, zone: string): string {
  let format = referenceFormats.get(zone);
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
    referenceFormats.set(zone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

describe("formatInZone", () => {
  it("says what Intl says for any instant (1900–2100) in any of these zones", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2100, 0, 1) }),
        fc.constantFrom(...ZONES),
        (ms, zone) => {
          expect(formatInZone(new Date(ms).toISOString(), zone)).toBe(reference(ms, zone));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("says what Intl says around every offset change of 2026, to the second", () => {
    let changes = 0;
    for (const zone of ZONES) {
      // Every quarter hour of the year, and the seconds on both sides of each change.
      let previous: string | null = null;
      for (let ms = Date.UTC(2026, 0, 1); ms < Date.UTC(2027, 0, 1); ms += 900_000) {
        const offset = Date.parse(`${reference(ms, zone).replace(" ", "T")}Z`) - ms;
        const key = `${offset}`;
        if (previous !== null && previous !== key) {
          changes++;
          for (let s = ms - 901_000; s <= ms + 1_000; s += 1_000) {
            expect(formatInZone(new Date(s).toISOString(), zone)).toBe(reference(s, zone));
          }
        }
        previous = key;
      }
    }
    expect(changes).toBeGreaterThan(10);
  });

  it("keeps the milliseconds out and pads the year", () => {
    expect(formatInZone("2026-03-29T00:59:59.999Z", "Europe/Berlin")).toBe("2026-03-29 01:59:59");
    expect(formatInZone("2026-03-29T01:00:00.000Z", "Europe/Berlin")).toBe("2026-03-29 03:00:00");
    expect(formatInZone("2026-10-25T00:59:59.500Z", "Europe/Berlin")).toBe("2026-10-25 02:59:59");
    expect(formatInZone("2026-10-25T01:00:00.000Z", "Europe/Berlin")).toBe("2026-10-25 02:00:00");
    expect(formatInZone("2026-06-01T12:00:00.000Z", "Asia/Kathmandu")).toBe("2026-06-01 17:45:00");
  });
});
