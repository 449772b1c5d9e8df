/**
 * Audit entries in Chromium, at 1366 px and on a 390 px phone: a row looks expandable and opens to
 * the entry in words, the raw JSON is one click away and copyable, the permalink shows the entry
 * and its proof, and a user of several tenants lands on a tenant picker.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTests, launchBrowser, openPage, screenshot, signInPage } from "../helpers/browser.ts";
import { createTestDatabase, mainServer, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

/** The browser's getComputedStyle (the tests' TypeScript has no DOM library). */
declare function getStyle(el: unknown, pseudo: string): { transform: string; content: string };

const WIDTHS = [
  { name: "desktop", viewport: { width: 1366, height: 900 } },
  { name: "phone", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
] as const;

describe.runIf(browserTests())("Audit entries in Chromium", () => {
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

  /** No element is wider than the page (nothing sticks out sideways on a phone). */
  const overflow = (page: Page) =>
    page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
  /** Elements of the page's main part that reach past the right edge of the window. */
  const sticksOut = (page: Page) =>
    page.evaluate<string[]>(`[...document.querySelectorAll("main *")]
      .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      .map((el) => el.tagName + "." + el.className + "#" + el.id)`);

  for (const size of WIDTHS) {
    it(`opens a row to the entry in words, with raw JSON behind a disclosure (${size.name})`, async () => {
      const page = await openPage(browser, {
        viewport: size.viewport,
        ...("isMobile" in size ? { isMobile: true, hasTouch: true } : {}),
      });
      await signInPage(page, web.url, "owner@demo.test", "/t/demo/audit?action=incident.updated");
      const row = page.locator("details.log-entry").first();
      // The row shows it opens: a chevron before its time, turned when open (on a phone, where
      // the card's first label takes that place, a ▸ in the card's corner that turns to ▾).
      const chevron = async () =>
        size.viewport.width > 600
          ? row
              .locator(":scope > summary [role=cell]")
              .first()
              .evaluate(
                (el) =>
                  (el.ownerDocument.defaultView as unknown as { getComputedStyle: typeof getStyle }).getComputedStyle(
                    el,
                    "::before",
                  ).transform,
              )
          : row
              .locator(":scope > summary")
              .evaluate(
                (el) =>
                  (el.ownerDocument.defaultView as unknown as { getComputedStyle: typeof getStyle }).getComputedStyle(
                    el,
                    "::after",
                  ).content,
              );
      const closed = await chevron();
      expect(closed).not.toBe("none");
      await row.locator(":scope > summary").click();
      await expect.poll(() => row.locator(".entry-detail").isVisible()).toBe(true);
      expect(await chevron()).not.toBe(closed);
      const detail = row.locator(".entry-detail");
      const text = ((await detail.textContent()) ?? "").replace(/\s+/g, " ");
      expect(text).toMatch(/Incident updated/);
      expect(text).toMatch(/→/);
      expect(await detail.locator(".raw-json pre").isVisible()).toBe(false);
      await detail.getByText("Show raw JSON").click();
      const raw = detail.locator(".raw-json pre");
      await expect.poll(() => raw.isVisible()).toBe(true);
      const json = JSON.parse((await raw.textContent()) ?? "");
      expect(json.action).toBe("incident.updated");
      expect(json.actor_user_id).toMatch(/^[0-9a-f-]{36}$/);
      // The copy button appears where a clipboard is available (a secure context: 127.0.0.1 is one).
      expect(await detail.locator(".raw-json button[data-copy]").isVisible()).toBe(true);
      await screenshot(page, `audit-entry-row-${size.name}`);
      expect(await sticksOut(page)).toEqual([]);
      expect(await overflow(page)).toBeLessThanOrEqual(0);
      await page.close();
    });

    it(`shows the permalink with its proof, and checks nothing sticks out (${size.name})`, async () => {
      const { rows } = await t.superuser.query<{ seq: string }>(
        `select l.seq::text from app_public.audit_log e
         join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
         join app_public.tenants t on t.id = e.tenant_id
         where t.slug = 'demo' and e.action = 'evidence.uploaded' order by l.seq desc limit 1`,
      );
      const page = await openPage(browser, { viewport: size.viewport });
      await signInPage(page, web.url, "admin@demo.test", "/t/demo/audit?action=evidence.uploaded");
      const row = page.locator("details.log-entry").first();
      await row.locator(":scope > summary").click();
      await row.getByRole("link", { name: "Permalink and proof →" }).click();
      await page.waitForURL(new RegExp(`/t/demo/audit/${rows[0].seq}$`));
      expect(((await page.locator("h1").textContent()) ?? "").replace(/\s+/g, " ").trim()).toMatch(
        /^Evidence uploaded: /,
      );
      const detail = ((await page.locator(".entry-detail").textContent()) ?? "").replace(/\s+/g, " ");
      expect(detail).toMatch(/Size \d+(\.\d)? (B|KB|MB)/);
      expect(detail).toMatch(/SHA-256 [0-9a-f]{64}/);
      expect(detail).toMatch(/Uploaded by .+ \(.+@demo\.test\)/);
      expect(await page.locator("#proof-root").textContent()).toMatch(/^[0-9a-f]{64}$/);
      expect(await page.locator("#checkpoint-note").textContent()).toContain("attest.test/audit/");
      await page.getByText("How to check this yourself").click();
      await expect.poll(() => page.locator("#check-script").isVisible()).toBe(true);
      await screenshot(page, `audit-entry-permalink-${size.name}`);
      expect(await sticksOut(page)).toEqual([]);
      expect(await overflow(page)).toBeLessThanOrEqual(0);
      await page.close();
    });
  }

  it("lands a user of several tenants on a picker with links to each", async () => {
    const page = await openPage(browser, { viewport: { width: 390, height: 844 } });
    await signInPage(page, web.url, "admin@demo.test", "/");
    expect(new URL(page.url()).pathname).toBe("/");
    const links = page.locator(".tenant-picker a");
    expect(await links.count()).toBe(2);
    const texts = (await links.allTextContents()).map((s) => s.replace(/\s+/g, " "));
    expect(texts.some((s) => s.includes("Admin"))).toBe(true);
    expect(texts.some((s) => s.includes("Viewer"))).toBe(true);
    await screenshot(page, "home-tenant-picker-phone");
    await page.setViewportSize({ width: 1366, height: 900 });
    await screenshot(page, "home-tenant-picker-desktop");
    await links.filter({ hasText: "Viewer" }).click();
    await page.waitForURL(/\/t\/basic\/incidents$/);
    await page.close();
  });
});
