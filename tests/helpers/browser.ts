/**
 * Headless Chromium (Debian's, see prerequisites.ts) driven by playwright-core, with screenshots
 * saved under .test-artifacts/ (git-ignored) so a person can look at what the tests saw.
 * Pages open with a pinned locale and time zone, whatever LANG and TZ the machine has.
 */
import fs from "node:fs";
import path from "node:path";
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core";
import { inject } from "vitest";
import { chromiumPath } from "./prerequisites.ts";

export const ARTIFACTS = path.resolve(import.meta.dirname, "../../.test-artifacts");

/** What every test page gets unless a test asks for something else: a 24-hour English clock in UTC. */
export const PAGE_DEFAULTS: BrowserContextOptions = {
  locale: "en-GB",
  timezoneId: "UTC",
  viewport: { width: 1360, height: 900 },
};

/** False when the run was started with ATTEST_TEST_BROWSER=off: browser tests are skipped. */
export const browserTests = (): boolean => inject("browserTests");

export async function launchBrowser(): Promise<Browser> {
  const executablePath = chromiumPath();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath,
    env: { ...process.env, TZ: "UTC", LANG: "C.UTF-8", LC_ALL: "C.UTF-8", LANGUAGE: "" },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A new page (in its own context) with PAGE_DEFAULTS, overridden by `options`. */
export async function openPage(browser: Browser, options: BrowserContextOptions = {}): Promise<Page> {
  return browser.newPage({ ...PAGE_DEFAULTS, ...options });
}

export async function signInPage(page: Page, baseUrl: string, email: string, next = "/"): Promise<void> {
  await page.goto(`${baseUrl}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("attest-demo");
  await Promise.all([
    page.waitForURL((url) => !url.pathname.startsWith("/login")),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
