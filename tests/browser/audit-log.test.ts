/**
 * The Audit Log page in a real browser: search narrows the table without a full reload, the URL
 * holds the filter, paging and reload keep the page, Back returns; role and plan gates.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTests, launchBrowser, openPage, screenshot, signInPage } from "../helpers/browser.ts";
import { createTestDatabase, mainServer, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

describe.runIf(browserTests())("Audit Log in Chromium", () => {
  let t: TestDatabase;
  let web: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    t = await createTestDatabase(mainServer(), { seed: true });
    web = await startTestServer(t);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await t?.drop();
  });

  async function newPage(email: string, next: string): Promise<Page> {
    const page = await openPage(browser);
    await signInPage(page, web.url, email, next);
    return page;
  }
  const entries = (page: Page) => page.locator("details.log-entry");
  const shown = async (page: Page) =>
    ((await page.locator(".pager .muted").textContent()) ?? "").replace(/\s+/g, " ").trim();

  it("searches as you type without reloading, keeps filters in the URL, pages, reloads and goes back", async () => {
    const page = await newPage("owner@demo.test", "/t/demo/audit");
    expect(new URL(page.url()).pathname).toBe("/t/demo/audit");
    await expect.poll(() => entries(page).count()).toBe(25);
    await screenshot(page, "audit-log-owner");
    const before = await shown(page);

    await page.evaluate(() => {
      (globalThis as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    await page.keyboard.press("/");
    await page.keyboard.type("incident.updated");
    await expect.poll(() => new URL(page.url()).searchParams.get("q")).toBe("incident.updated");
    await expect.poll(() => shown(page)).not.toBe(before);
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    const actions = await page.locator("details.log-entry code.action").allInnerTexts();
    expect(new Set(actions)).toEqual(new Set(["incident.updated"]));
    await screenshot(page, "audit-log-search");

    await page.getByRole("link", { name: "Older →" }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get("page")).toBe("2");
    expect(new URL(page.url()).searchParams.get("q")).toBe("incident.updated");
    await expect.poll(() => shown(page)).toMatch(/^Showing 26–50 of/);

    await page.reload();
    await expect.poll(() => shown(page)).toMatch(/^Showing 26–50 of/);
    expect(await page.locator("#q").inputValue()).toBe("incident.updated");

    await page.goBack();
    await expect.poll(() => new URL(page.url()).searchParams.get("page")).toBe(null);
    await expect.poll(() => shown(page)).toMatch(/^Showing 1–25 of/);
    await page.close();
  });

  it("expands a row to its details", async () => {
    const page = await newPage("admin@demo.test", "/t/demo/audit?action=incident.updated");
    await entries(page).first().locator(":scope > summary").click();
    const detail = entries(page).first().locator(".log-detail");
    await expect.poll(() => detail.isVisible()).toBe(true);
    const text = await detail.textContent();
    for (const label of ["Request id", "IP", "User agent", "Surface", "Database role", "Log position"]) {
      expect(text).toContain(label);
    }
    expect(await detail.locator(".old").count()).toBeGreaterThan(0);
    await screenshot(page, "audit-log-details");
    await page.close();
  });

  it("shows times in the viewer's time zone and clock, with the UTC time on hover", async () => {
    // The page formats times with the browser's locale and time zone: pin both per page.
    const shownAt = async (options: { timezoneId: string; locale: string }) => {
      const page = await openPage(browser, options);
      await signInPage(page, web.url, "owner@demo.test", "/t/demo/audit");
      const time = page.locator("details.log-entry time").first();
      const iso = (await time.getAttribute("datetime")) ?? "";
      await expect.poll(() => time.getAttribute("title")).toBe(`${iso} (UTC)`);
      const text = (await time.textContent()) ?? "";
      await page.close();
      return { iso, text };
    };
    const hour = (iso: string, timeZone: string, hourCycle: "h12" | "h23") =>
      new Intl.DateTimeFormat("en-US", { timeZone, hour: "numeric", hourCycle })
        .formatToParts(new Date(iso))
        .find((p) => p.type === "hour")?.value;

    const tokyo = await shownAt({ timezoneId: "Asia/Tokyo", locale: "en-GB" });
    expect(tokyo.text).toContain(`${hour(tokyo.iso, "Asia/Tokyo", "h23")?.padStart(2, "0")}:`);
    expect(tokyo.text).not.toMatch(/[AP]M/i);

    const newYork = await shownAt({ timezoneId: "America/New_York", locale: "en-US" });
    expect(newYork.text).toMatch(
      new RegExp(`\\b0?${hour(newYork.iso, "America/New_York", "h12")}:\\d\\d:\\d\\d\\s?[AP]M`),
    );
  });

  it("refuses a member with a 403 page", async () => {
    const page = await newPage("member@demo.test", "/t/demo/incidents");
    const response = await page.goto(`${web.url}/t/demo/audit`);
    expect(response?.status()).toBe(403);
    expect(await page.locator("main").textContent()).toContain("Only owners and admins can see the audit log");
    await screenshot(page, "audit-log-member-403");
    await page.close();
  });

  it("shows owner@basic.test the upgrade prompt, from the sidebar link", async () => {
    const page = await newPage("owner@basic.test", "/t/basic/incidents");
    const link = page.locator("nav.sidebar a", { hasText: "Audit Log" });
    expect(await link.textContent()).toContain("Upgrade");
    await link.click();
    await page.waitForURL(/\/t\/basic\/audit$/);
    expect(await page.locator("main h1").textContent()).toContain("not included in the Basic plan");
    await screenshot(page, "audit-log-upgrade");
    await page.close();
  });
});
