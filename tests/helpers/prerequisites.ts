/**
 * What the test suite needs from the machine besides `npm install`, in one place: Debian's
 * Chromium for the browser tests and poppler-utils (pdftotext, pdftoppm) for the PDF tests.
 * A test that needs a tool calls requireTools()/chromiumPath(), which fail with a message naming
 * the package to install rather than with whatever the missing program would have caused.
 * PostgreSQL is not a prerequisite: the suite brings its own (see global-setup.ts).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";

/** The one line that installs every system prerequisite (Debian/Ubuntu). */
export const INSTALL_LINE = "apt-get install -y chromium poppler-utils";

const PACKAGES = { pdftotext: "poppler-utils", pdftoppm: "poppler-utils" } as const;
export type Tool = keyof typeof PACKAGES;

/** Browser tests run unless ATTEST_TEST_BROWSER is set to off (or 0, false, no). */
export function browserTestsEnabled(): boolean {
  return !/^(off|0|false|no)$/i.test(process.env.ATTEST_TEST_BROWSER ?? "");
}

/** The Chromium the browser tests drive: ATTEST_CHROMIUM, else Debian's /usr/bin/chromium. */
export function chromiumCandidate(): string {
  return process.env.ATTEST_CHROMIUM || "/usr/bin/chromium";
}

function notFound(what: string, pkg: string): string {
  return `${what} not found: install ${pkg} (${INSTALL_LINE})`;
}

/** Why Chromium cannot be used, or null when it can. */
export function chromiumProblem(): string | null {
  const file = chromiumCandidate();
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return null;
  } catch {
    return `${notFound(`Chromium (${file})`, "chromium")}; or set ATTEST_CHROMIUM to another Chromium, or ATTEST_TEST_BROWSER=off to skip the browser tests`;
  }
}

/** Path of the Chromium to drive; throws naming the package when it is missing. */
export function chromiumPath(): string {
  const problem = chromiumProblem();
  if (problem) throw new Error(problem);
  return chromiumCandidate();
}

const found = new Map<Tool, boolean>();
function available(tool: Tool): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    ok = !spawnSync(tool, ["-v"], { stdio: "ignore" }).error;
    found.set(tool, ok);
  }
  return ok;
}

/** Which of `tools` are missing, each with its message. */
export function toolProblems(tools: Tool[] = Object.keys(PACKAGES) as Tool[]): string[] {
  return tools.filter((tool) => !available(tool)).map((tool) => notFound(tool, PACKAGES[tool]));
}

/** Throws (naming the package to install) unless every tool is on the PATH. */
export function requireTools(...tools: Tool[]): void {
  const problems = toolProblems(tools);
  if (problems.length) throw new Error(problems.join("\n"));
}
