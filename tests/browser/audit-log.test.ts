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
  const firstId = (page: Page) => entries(page).first().getAttribute("data-entry");
  const count = async (page: Page) => ((await page.locator(".chart-head strong").textContent()) ?? "").trim();

  it("searches as you type without reloading, keeps filters in the URL, pages, reloads and goes back", async () => {
    const page = await newPage("owner@demo.test", "/t/demo/audit");
    expect(new URL(page.url()).pathname).toBe("/t/demo/audit");
    await expect.poll(() => entries(page).count()).toBe(25);
    await screenshot(page, "audit-log-owner");
    const before = await count(page);

    await page.evaluate(() => {
      (globalThis as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    await page.keyboard.press("/");
    await page.keyboard.type("incident.updated");
    await expect.poll(() => new URL(page.url()).searchParams.get("q")).toBe("incident.updated");
    await expect.poll(() => count(page)).not.toBe(before);
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    const actions = await page.locator("details.log-entry code.action").allInnerTexts();
    expect(new Set(actions)).toEqual(new Set(["incident.updated"]));
    await screenshot(page, "audit-log-search");

    const top = await firstId(page);
    await page.getByRole("link", { name: "Older →" }).click();
    await expect.poll(() => new URL(page.url()).searchParams.get("before")).toMatch(/^\d+\.\d+$/);
    expect(new URL(page.url()).searchParams.get("q")).toBe("incident.updated");
    await expect.poll(() => firstId(page)).not.toBe(top);
    const second = await firstId(page);
    // The reader starts at the top of the new entries.
    await expect
      .poll(() => page.evaluate<boolean>("document.activeElement?.classList.contains('log') ?? false"))
      .toBe(true);

    await page.reload();
    await expect.poll(() => firstId(page)).toBe(second);
    expect(await page.locator("#q").inputValue()).toBe("incident.updated");

    await page.goBack();
    await expect.poll(() => new URL(page.url()).searchParams.get("before")).toBe(null);
    await expect.poll(() => firstId(page)).toBe(top);
    await page.close();
  });

  it("filters by several actions, a preset window and a user, all kept in the URL", async () => {
    const page = await newPage("owner@demo.test", "/t/demo/audit");
    await page.locator("details.multi summary").click();
    await page.getByLabel("evidence.uploaded").check();
    await expect.poll(() => new URL(page.url()).searchParams.getAll("action")).toEqual(["evidence.uploaded"]);
    await page.getByLabel("incident.created").check();
    await expect
      .poll(() => new URL(page.url()).searchParams.getAll("action").sort())
      .toEqual(["evidence.uploaded", "incident.created"]);
    await page.locator("details.multi summary").click();
    await page.locator("#range").selectOption("7d");
    await expect.poll(() => new URL(page.url()).searchParams.get("range")).toBe("7d");
    await expect
      .poll(async () => new Set(await page.locator("details.log-entry code.action").allInnerTexts()))
      .toEqual(new Set(["evidence.uploaded", "incident.created"]));
    await page.locator("#actor").fill("admin@demo.test");
    await expect.poll(() => new URL(page.url()).searchParams.get("actor")).toBe("admin@demo.test");
    const users = await page.locator('details.log-entry [data-label="User"]').allInnerTexts();
    expect(users.length).toBeGreaterThan(0);
    expect(new Set(users.map((u) => u.trim()))).toEqual(new Set(["admin@demo.test"]));
    await screenshot(page, "audit-log-filters");
    await page.close();
  });

  it("goes from an entry to all entries of its incident, says so in the filters, and back to every incident", async () => {
    const page = await newPage("admin@demo.test", "/t/demo/audit?action=incident.updated");
    const row = entries(page).first();
    const title = ((await row.locator('[data-label="Resource"]').textContent()) ?? "").trim();
    await row.locator(":scope > summary").click();
    await row.getByRole("link", { name: "All entries of this incident" }).click();
    await page.waitForURL(/\/t\/demo\/audit\?incident=[0-9a-f-]{36}$/);
    // The view is narrowed to that incident, and the form says which (its current title, linked).
    const chip = page.locator("#incident-filter");
    expect(await chip.isVisible()).toBe(true);
    expect(await chip.getByRole("link").textContent()).toBe(title);
    const box = page.getByLabel("Only the entries of the incident");
    expect(await box.isChecked()).toBe(true);
    const resources = await page.locator('details.log-entry [data-label="Resource"]').allInnerTexts();
    // (its own entries, and its evidence's and milestones')
    expect(resources.map((r) => r.trim())).toContain(title);
    await screenshot(page, "audit-log-incident");
    const narrowed = await count(page);
    // Other filters are added to it; unticked, the view shows every incident's entries again.
    await page.locator("#q").fill("admin");
    await expect.poll(() => new URL(page.url()).searchParams.get("q")).toBe("admin");
    expect(new URL(page.url()).searchParams.get("incident")).toMatch(/^[0-9a-f-]{36}$/);
    await box.uncheck();
    await expect.poll(() => new URL(page.url()).searchParams.get("incident")).toBe(null);
    expect(new URL(page.url()).searchParams.get("q")).toBe("admin");
    await expect.poll(() => count(page)).not.toBe(narrowed);
    await page.close();
  });

  it("shows new entries without a reload, and without moving what the reader is looking at", async () => {
    const page = await newPage("owner@demo.test", "/t/demo/audit");
    const top = await firstId(page);
    await page.evaluate(() => {
      (globalThis as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    const { rows } = await t.superuser.query("select id from app_public.tenants where slug = 'demo'");
    await t.pools.owner.query(
      "insert into app_public.incidents (tenant_id, title) values ($1, 'Live one'), ($1, 'Live two'), ($1, 'Live three')",
      [rows[0].id],
    );
    const banner = page.locator("a.new-entries");
    await expect.poll(() => banner.textContent(), { timeout: 20_000 }).toContain("3 new entries");
    expect(await firstId(page)).toBe(top);
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await screenshot(page, "audit-log-new-entries");
    await banner.click();
    await expect.poll(() => entries(page).first().locator(".resource").textContent()).toBe("Live three");
    await page.close();
  });

  it("reads as labelled cards on a 390 px phone, the first entry in view", async () => {
    const page = await openPage(browser, { viewport: { width: 390, height: 844 } });
    await signInPage(page, web.url, "owner@demo.test", "/t/demo/audit");
    const first = entries(page).first();
    await expect.poll(() => first.isVisible()).toBe(true);
    const card = first.locator("summary.log-row");
    const label = await card
      .locator('[data-label="User"]')
      .evaluate(
        (el: unknown) =>
          (globalThis as unknown as { getComputedStyle(e: unknown, p: string): { content: string } }).getComputedStyle(
            el,
            "::before",
          ).content,
      );
    expect(label).toBe('"User"');
    // The first entry is on the first screen: the filters not in use start folded.
    const box = await first.boundingBox();
    await page.screenshot({ path: ".test-artifacts/audit-log-phone-first-screen.png" });
    expect(box && box.y + 40).toBeLessThan(844);
    expect(await page.locator("details.more-filters").getAttribute("open")).toBeNull();
    // Nothing is wider than the screen.
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    // The links' row scrolls sideways; the current page's link is wholly in view, the page not scrolled.
    const current = await page.locator('nav.sidebar .links a[aria-current="page"]').boundingBox();
    expect(current?.x).toBeGreaterThanOrEqual(0);
    expect((current?.x ?? 0) + (current?.width ?? 0)).toBeLessThanOrEqual(390);
    expect(await page.evaluate<number>("window.scrollY")).toBe(0);
    await screenshot(page, "audit-log-phone");

    // With filters set, they fold too: the summary says what is set, and the first match is in view.
    await page.goto(
      `${web.url}/t/demo/audit?action=incident.updated&action=incident.created&range=30d&actor=admin%40demo.test`,
    );
    const firstMatch = entries(page).first();
    await expect.poll(() => firstMatch.isVisible()).toBe(true);
    expect(await firstMatch.locator("code.action").textContent()).toMatch(/^incident\.(updated|created)$/);
    expect(await page.locator("details.more-filters").getAttribute("open")).toBeNull();
    const summary = page.locator("details.more-filters > summary");
    expect(await summary.textContent()).toMatch(/\(3 set\)\s+2 actions · user “admin@demo\.test” · Last 30 days/);
    const matchBox = await firstMatch.boundingBox();
    expect(matchBox && matchBox.y + 40).toBeLessThan(844);
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await screenshot(page, "audit-log-phone-filtered");
    // Opened, the summary shows the fields as set.
    await summary.click();
    await expect.poll(() => page.locator("#actor").inputValue()).toBe("admin@demo.test");
    expect(await page.locator("#range").inputValue()).toBe("30d");
    await page.close();
  });

  it("expands a row to its details, fetched when first opened", async () => {
    const page = await newPage("admin@demo.test", "/t/demo/audit?action=incident.updated");
    let fetched = 0;
    page.on("request", (r) => {
      if (/\/audit\/e\/\d+\/detail$/.test(new URL(r.url()).pathname)) fetched++;
    });
    await entries(page).first().locator(":scope > summary").click();
    const detail = entries(page).first().locator(".log-detail");
    await expect.poll(() => detail.locator(".entry-detail").isVisible()).toBe(true);
    const text = await detail.textContent();
    for (const label of ["Request id", "IP", "User agent", "Surface", "Database role", "Log position"]) {
      expect(text).toContain(label);
    }
    expect(await detail.locator(".old").count()).toBeGreaterThan(0);
    await screenshot(page, "audit-log-details");
    // Closed and opened again, the row keeps its details: fetched once.
    await entries(page).first().locator(":scope > summary").click();
    await entries(page).first().locator(":scope > summary").click();
    await expect.poll(() => detail.locator(".entry-detail").isVisible()).toBe(true);
    expect(fetched).toBe(1);
    await page.close();
  });

  it("shows every time in the viewer's time zone (labelled), with the UTC time on hover and a UTC switch, an entry's details and page too", async () => {
    // The browser's zone reaches the server in a cookie; locale and zone are pinned per page.
    const shownAt = async (options: { timezoneId: string; locale: string }) => {
      const page = await openPage(browser, options);
      await signInPage(page, web.url, "owner@demo.test", "/t/demo/audit");
      await expect.poll(() => page.locator("#zone-line").getAttribute("data-zone")).toBe(options.timezoneId);
      const time = page.locator("details.log-entry time").first();
      const iso = (await time.getAttribute("datetime")) ?? "";
      expect(await time.getAttribute("title")).toBe(`${iso} (UTC)`);
      const text = (await time.textContent()) ?? "";
      const label = (await page.locator("#zone-line").textContent()) ?? "";
      return { page, iso, text, label };
    };
    const local = (iso: string, timeZone: string) => {
      const p = Object.fromEntries(
        new Intl.DateTimeFormat("en-US", {
          timeZone,
          year: "numeric",
          month: "2-digit",
          day: "2-digit",
          hour: "2-digit",
          minute: "2-digit",
          second: "2-digit",
          hourCycle: "h23",
        })
          .formatToParts(new Date(iso))
          .map((x) => [x.type, x.value]),
      );
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
    };

    /** The first row opened: the time its details give, and where. */
    const opened = async (page: Page) => {
      const row = page.locator("details.log-entry").first();
      await row.locator(":scope > summary").click();
      const when = row.locator(".entry-detail dl.meta time").first();
      await expect.poll(() => when.isVisible()).toBe(true);
      return { row, iso: (await when.getAttribute("datetime")) ?? "", text: (await when.textContent()) ?? "" };
    };

    const tokyo = await shownAt({ timezoneId: "Asia/Tokyo", locale: "en-GB" });
    expect(tokyo.text).toBe(local(tokyo.iso, "Asia/Tokyo"));
    expect(tokyo.label).toContain("Asia/Tokyo (UTC+09:00)");
    // An entry's details say the time its row says.
    const inTokyo = await opened(tokyo.page);
    expect(inTokyo.iso).toBe(tokyo.iso);
    expect(inTokyo.text).toBe(tokyo.text);
    await screenshot(tokyo.page, "audit-log-tokyo");
    await tokyo.page.getByRole("link", { name: "Show in UTC" }).click();
    await expect.poll(() => tokyo.page.locator("#zone-line").getAttribute("data-zone")).toBe("UTC");
    const utcRow = (await tokyo.page.locator("details.log-entry time").first().textContent()) ?? "";
    expect(utcRow).toBe(local(tokyo.iso, "UTC"));
    // In UTC too (not in the browser's zone), and so does the entry's own page, which says so.
    const inUtc = await opened(tokyo.page);
    expect(inUtc.text).toBe(utcRow);
    await inUtc.row.getByRole("link", { name: /^Permalink/ }).click();
    await tokyo.page.waitForURL(/\/t\/demo\/audit\/(e\/)?\d+\?tz=UTC$/); // (pending: by capture number)
    expect(await tokyo.page.locator("#zone-line").getAttribute("data-zone")).toBe("UTC");
    expect(await tokyo.page.locator("#zone-line").textContent()).toContain("Times are in UTC");
    expect(await tokyo.page.locator(".entry-detail dl.meta time").first().textContent()).toBe(utcRow);
    await screenshot(tokyo.page, "audit-entry-utc");
    await tokyo.page.close();

    // A 12-hour locale does not change the page's 24-hour times, in the rows or their details.
    const newYork = await shownAt({ timezoneId: "America/New_York", locale: "en-US" });
    expect(newYork.text).toBe(local(newYork.iso, "America/New_York"));
    expect(newYork.text).not.toMatch(/[AP]M/i);
    const inNewYork = await opened(newYork.page);
    expect(inNewYork.text).toBe(newYork.text);
    await newYork.page.close();
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
