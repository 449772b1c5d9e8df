/**
 * src/graphql/index.ts maskError: a database error the client can act on reaches it as a message
 * saying what to do, with a code; anything else stays masked behind a reference.
 */
import { GraphQLError } from "postgraphile/graphql";
import { describe, expect, it, vi } from "vitest";
import { maskError } from "../../src/graphql/index.ts";

const fromDatabase = (code: string, message: string, path: (string | number)[]) =>
  new GraphQLError(message, { path, originalError: Object.assign(new Error(message), { code }) });
const timeout = (path: (string | number)[]) =>
  maskError(fromDatabase("57014", "canceling statement due to statement timeout", path));

describe("maskError", () => {
  it("says how to get a count that took too long: without totalCount or with a narrower condition", () => {
    for (const path of [
      ["auditLogs", "totalCount"],
      ["currentTenant", "auditLogs", "totalCount"],
    ]) {
      const masked = timeout(path);
      expect(masked.extensions?.code).toBe("TIMEOUT");
      expect(masked.path).toEqual(path);
      expect(masked.message).toMatch(/^The request took too long and was cancelled\. Counting the entries/);
      expect(masked.message).toContain("Ask without totalCount");
      expect(masked.message).toContain("occurredAfter and occurredBefore");
    }
  });

  it("says how to verify a log too large to verify within a request", () => {
    const masked = timeout(["verifyCurrentAuditChain"]);
    expect(masked.extensions?.code).toBe("TIMEOUT");
    expect(masked.message).toContain("requestAuditVerification");
  });

  it("gives any other field's timeout as it is", () => {
    const masked = timeout(["auditLogs", "nodes"]);
    expect(masked.extensions?.code).toBe("TIMEOUT");
    expect(masked.message).toBe("The request took too long and was cancelled.");
  });

  it("masks an error it does not know behind a reference", () => {
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const masked = maskError(fromDatabase("XX000", "internal detail", ["auditLogs"]));
      expect(masked.extensions?.code).toBe("INTERNAL");
      expect(masked.message).toMatch(/^An unexpected error occurred \(reference [0-9a-z]+\)\.$/);
      expect(masked.message).not.toContain("internal detail");
      expect(log).toHaveBeenCalledOnce();
    } finally {
      log.mockRestore();
    }
  });
});
