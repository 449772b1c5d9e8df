/**
 * The suite's system prerequisites: a missing tool fails with a message naming the Debian package
 * and the one install line of the README, not with whatever the missing program would cause.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { INSTALL_LINE } from "./helpers/prerequisites.ts";

const helper = path.resolve(import.meta.dirname, "helpers/prerequisites.ts");

/** Runs `code` (with the helper imported as `p`) in a Node process with the given environment. */
function inChild(code: string, env: NodeJS.ProcessEnv): { status: number | null; stderr: string } {
  const result = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", `const p = await import(${JSON.stringify(helper)});\n${code}`],
    { env, encoding: "utf8" },
  );
  return { status: result.status, stderr: result.stderr };
}

describe("test prerequisites", () => {
  it("names poppler-utils when pdftotext and pdftoppm are missing", async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), "attest-test-path-"));
    try {
      const run = inChild('p.requireTools("pdftotext", "pdftoppm");', { PATH: empty });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toContain(`pdftotext not found: install poppler-utils (${INSTALL_LINE})`);
      expect(run.stderr).toContain("pdftoppm not found: install poppler-utils");
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });

  it("names chromium when the browser is missing, and says how to skip the browser tests", () => {
    const run = inChild("p.chromiumPath();", { PATH: process.env.PATH, ATTEST_CHROMIUM: "/nonexistent/chromium" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`Chromium (/nonexistent/chromium) not found: install chromium (${INSTALL_LINE})`);
    expect(run.stderr).toContain("ATTEST_TEST_BROWSER=off");
  });
});
