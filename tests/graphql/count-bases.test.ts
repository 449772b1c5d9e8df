/**
 * src/graphql/audit-log.ts CountBases: what the GraphQL server keeps between counts of a word
 * (migration 000058) stays small whatever is asked: the most recent conditions, a few tenants
 * each, and no condition longer than it is worth keeping.
 */
import { describe, expect, it } from "vitest";
import { CountBases } from "../../src/graphql/audit-log.ts";

const base = (tenant: string, kept: number) => ({ [tenant]: { xid: 10, id: 20, kept } });

describe("CountBases", () => {
  it("gives back what a count returned, merged by tenant, the newest base of each tenant winning", () => {
    const bases = new CountBases();
    expect(bases.get("a")).toBeNull();
    bases.keep("a", base("t1", 1));
    bases.keep("a", base("t2", 2));
    bases.keep("a", base("t1", 3));
    expect(bases.get("a")).toEqual({ ...base("t1", 3), ...base("t2", 2) });
    bases.keep("b", undefined); // a count that returned no base keeps nothing
    bases.keep("b", null);
    bases.keep("b", "not an object");
    expect(bases.get("b")).toBeNull();
  });

  it("keeps the 1,000 conditions used last, and 16 tenants of each", () => {
    const bases = new CountBases();
    for (let i = 0; i < 1000; i++) bases.keep(`c${i}`, base("t", i));
    expect(bases.get("c0")).not.toBeNull(); // used: now the newest
    bases.keep("c1000", base("t", 1000));
    expect(bases.get("c1")).toBeNull(); // the oldest unused one went
    expect(bases.get("c0")).not.toBeNull();
    expect(bases.get("c1000")).not.toBeNull();
    for (let t = 0; t < 20; t++) bases.keep("many", base(`t${t}`, t));
    expect(Object.keys(bases.get("many") ?? {})).toEqual(Array.from({ length: 16 }, (_, i) => `t${i + 4}`));
    // A tenant counted again is the newest: the oldest other one goes first.
    bases.keep("many", base("t4", 44));
    bases.keep("many", base("t20", 20));
    const kept = bases.get("many") ?? {};
    expect(Object.keys(kept)).toContain("t4");
    expect(Object.keys(kept)).not.toContain("t5");
    expect(kept.t4).toEqual({ xid: 10, id: 20, kept: 44 });
  });

  it("keeps nothing for a condition longer than 1,000 characters", () => {
    const bases = new CountBases();
    const long = JSON.stringify({ resourceLabelContains: "x".repeat(1000) });
    bases.keep(long, base("t", 1));
    expect(bases.get(long)).toBeNull();
  });
});
