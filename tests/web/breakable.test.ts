/**
 * breakable (src/web/render.ts): a name as HTML that wraps at its marks on a phone. For any text
 * it is the escaped text with soft breaks (<wbr>) added, only in words longer than 24 characters,
 * each right after a mark and before a character that is not one.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { breakable, eta } from "../../src/web/render.ts";

const MARKS = "/.-_@?&=:";
const escaped = (text: string) => eta.config.escapeFunction(text);

describe("breakable", () => {
  it("breaks a long URL, file name or email after its marks, leaves short words whole, and escapes", () => {
    expect(breakable("https://tickets.example.com/attest")).toBe(
      "https://<wbr>tickets.<wbr>example.<wbr>com/<wbr>attest",
    );
    expect(breakable("evidence-of-the-breach-2026-12-05.pcap")).toBe(
      "evidence-<wbr>of-<wbr>the-<wbr>breach-<wbr>2026-<wbr>12-<wbr>05.<wbr>pcap",
    );
    expect(breakable("capture-12.pcap")).toBe("capture-12.pcap");
    expect(breakable("admin@demo.test")).toBe("admin@demo.test");
    expect(breakable("<script>alert(1)</script> x")).toBe(
      `${escaped("<script>alert(1)</")}<wbr>${escaped("script> x")}`,
    );
    expect(breakable("Überprüfung der Zugriffsprotokolle")).toBe("Überprüfung der Zugriffsprotokolle");
  });

  it("is the escaped text, with breaks only after a mark and before a character that is not one, in long words", () => {
    const text = fc.string({ unit: fc.constantFrom(..."ab <>&\"'é保/.-_@?=:"), maxLength: 80 });
    fc.assert(
      fc.property(text, (t) => {
        const pieces = breakable(t).split("<wbr>");
        // without the breaks, the text escaped as the templates escape it
        expect(pieces.join("")).toBe(escaped(t));
        // a break wherever a mark meets a character that is not a mark within a long word, and nowhere else
        const expected = t
          .split(/\s+/)
          .filter((word) => word.length > 24)
          .flatMap((word) =>
            [...word].filter((c, i, all) => MARKS.includes(c) && i + 1 < all.length && !MARKS.includes(all[i + 1])),
          );
        expect(pieces.length - 1).toBe(expected.length);
        // (each piece before a break ends with its mark, "&" escaped)
        for (const piece of pieces.slice(0, -1)) expect(MARKS).toContain(piece.replace(/&amp;$/, "&").at(-1));
      }),
      { numRuns: 500 },
    );
  });
});
