/**
 * The workspace in a real browser, used as a person would (clicking and typing only): the owner
 * does each of the product page's nine audited actions through the pages, and the Audit Log then
 * shows each of them, by that owner, newest first. Viewers and members see only the controls of
 * their role.
 */
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, browserTests, launchBrowser, openPage, screenshot, signInPage } from "../helpers/browser.ts";
import { createTestDatabase, mainServer, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const OWNER = "owner@demo.test";
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

interface Row {
  user: string;
  action: string;
  resource: string;
}

describe.runIf(browserTests())("The workspace in Chromium", () => {
  let t: TestDatabase;
  let web: TestServer;
  let browser: Browser;
  /** The questions the pages asked (confirm dialogs), in order. */
  const asked: string[] = [];

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
    // Deleting asks first (window.confirm): a person says yes.
    page.on("dialog", (dialog) => {
      asked.push(dialog.message());
      void dialog.accept();
    });
    await signInPage(page, web.url, email, next);
    return page;
  }

  const sidebar = (page: Page, name: string) => page.locator("nav.sidebar .links a", { hasText: name });
  const flash = (page: Page) => page.locator("main .alert").first();

  /** The Audit Log's rows as shown, top first. */
  async function auditRows(page: Page, n: number): Promise<Row[]> {
    const rows = page.locator("#audit-results details.log-entry > summary");
    await expect.poll(() => rows.count()).toBeGreaterThanOrEqual(n);
    const shown: Row[] = [];
    for (let i = 0; i < n; i++) {
      const cells = await rows.nth(i).locator('[role="cell"]').allInnerTexts();
      shown.push({ user: cells[1].trim(), action: cells[2].trim(), resource: cells[3].trim() });
    }
    return shown;
  }

  it("lets the owner do every audited action through the pages, and shows each in the Audit Log", async () => {
    const page = await newPage(OWNER, "/t/demo/incidents");
    const title = "Suspicious VPN logins from new countries";
    const renamed = "Credential stuffing against the VPN gateway";

    // incident.created: the New incident form on the list.
    const create = page.locator("#incident-create");
    await create.getByText("New incident", { exact: true }).first().click();
    await create.getByLabel(/^Title/).fill(title);
    await create.getByLabel("Severity").selectOption("high");
    await create.getByLabel(/^Description/).fill("Dozens of failed VPN logins, then two successful ones from abroad.");
    await create.getByRole("button", { name: "Create incident" }).click();
    await page.waitForURL(new RegExp(`/t/demo/incidents/${UUID}$`));
    const incidentUrl = new URL(page.url()).pathname;
    await expect.poll(() => page.locator("h1.inc-title").textContent()).toBe(title);
    expect(await flash(page).textContent()).toContain(`Incident “${title}” created.`);

    // incident.updated: edit the title in place.
    await page.locator("#field-title").getByRole("link", { name: "Edit title" }).click();
    const titleInput = page.locator("#input-title");
    await titleInput.fill(renamed);
    await page.locator("#field-title").getByRole("button", { name: "Save" }).click();
    await expect.poll(() => page.locator("h1.inc-title").textContent()).toBe(renamed);
    await expect.poll(() => page.locator("#crumb-title").textContent()).toBe(renamed);

    // Right after the edit, the Audit Log's top row is that edit, by the owner, naming the new title.
    await sidebar(page, "Audit Log").click();
    await page.waitForURL(/\/t\/demo\/audit$/);
    expect((await auditRows(page, 2))[0]).toEqual({ user: OWNER, action: "incident.updated", resource: renamed });
    const top = page.locator("#audit-results details.log-entry").first();
    await top.locator("summary.log-row").click();
    await expect.poll(() => top.locator(".log-detail .old").first().textContent()).toBe(title);
    // The entry links to its incident by the incident's title.
    await top.locator(".log-detail").getByRole("link", { name: renamed, exact: true }).first().click();
    await page.waitForURL((url) => url.pathname === incidentUrl);

    // milestone.completed: turn on NIS2 reporting, then complete the early warning with a note.
    await page.getByRole("button", { name: "Turn on NIS2 reporting" }).click();
    const nis2 = page.locator("#nis2");
    await expect.poll(() => nis2.locator("li.inc-milestone").count()).toBe(3);
    const early = nis2.locator("li.inc-milestone").filter({ hasText: "Early warning" });
    await early.getByText("Mark complete…").click();
    await early.getByLabel("Notes").fill("Early warning submitted to the national CSIRT, reference CSIRT-2291.");
    await early.getByRole("button", { name: "Complete early warning" }).click();
    await expect.poll(() => nis2.locator("li.inc-milestone").first().locator(".chip").textContent()).toBe("Completed");
    expect(await nis2.textContent()).toContain("Early warning marked complete.");
    expect(await nis2.textContent()).toContain("reference CSIRT-2291");

    // evidence.uploaded ×2: the upload form with two files.
    await page.setInputFiles("#evidence-files", [
      { name: "vpn-auth.log", mimeType: "text/plain", buffer: Buffer.from("2026-11-20 03:12 FAIL user=j.doe\n") },
      { name: "geoip-report.csv", mimeType: "text/csv", buffer: Buffer.from("ip,country\n198.51.100.7,XX\n") },
    ]);
    await page.locator("form.inc-upload").getByRole("button", { name: "Upload" }).click();
    await expect.poll(() => page.locator("#upload-status").textContent()).toBe("Uploaded 2 files.");
    const evidence = page.locator("#evidence-list");
    await expect.poll(() => evidence.locator("tbody tr").count()).toBe(2);
    expect(await evidence.textContent()).toContain("vpn-auth.log");
    expect(await evidence.textContent()).toContain("geoip-report.csv");

    // evidence.deleted: delete one of them (after confirming).
    await evidence.getByRole("button", { name: "Delete geoip-report.csv" }).click();
    await expect.poll(() => evidence.locator("tbody tr").count()).toBe(1);
    await expect.poll(() => evidence.textContent()).toContain("Deleted “geoip-report.csv”.");
    expect(await evidence.textContent()).toContain("vpn-auth.log");

    // export.requested: request an evidence pack.
    await page.getByRole("button", { name: "Request evidence pack" }).click();
    await expect.poll(() => page.locator("#exports").textContent()).toContain("Evidence pack requested.");
    expect(await page.locator("#exports .chip").first().textContent()).toBe("Queued");
    await screenshot(page, "workspace-incident-owner");

    // webhook.created and webhook.deleted on the Webhooks page.
    await sidebar(page, "Webhooks").click();
    await page.waitForURL(/\/t\/demo\/webhooks$/);
    const hook = "https://chat.example.com/hooks/attest-vpn";
    await page.getByLabel("Endpoint URL").fill(hook);
    await page.getByLabel("Description").fill("Security chat channel");
    await page.getByLabel("Actions").fill("incident.*, export.requested");
    await page.getByRole("button", { name: "Add webhook" }).click();
    const secret = page.locator("#webhook-secret");
    await expect.poll(() => secret.isVisible()).toBe(true);
    expect(await secret.inputValue()).toMatch(/^[0-9a-f]{64}$/);
    expect(await page.locator("table.webhooks").textContent()).toContain(hook);
    await screenshot(page, "workspace-webhooks");
    await page.getByRole("button", { name: `Delete webhook ${hook}` }).click();
    await expect.poll(() => page.locator("main").textContent()).toContain(`Webhook ${hook} deleted.`);
    expect(await page.locator("#webhook-secret").count()).toBe(0);
    expect(await page.locator("table.webhooks").textContent()).not.toContain(hook);

    // incident.deleted: back to the incident from the list, and delete it (after confirming).
    await sidebar(page, "Incidents").click();
    await page.waitForURL(/\/t\/demo\/incidents$/);
    await page.getByRole("link", { name: renamed }).click();
    await page.waitForURL((url) => url.pathname === incidentUrl);
    await page.getByRole("button", { name: "Delete incident" }).click();
    await page.waitForURL(/\/t\/demo\/incidents$/);
    await expect.poll(() => flash(page).textContent()).toContain(`Deleted “${renamed}”.`);
    expect(await page.locator("#incident-results").textContent()).not.toContain(renamed);
    await screenshot(page, "workspace-incidents");

    // The Audit Log: every action above, by the owner, newest at the top.
    await sidebar(page, "Audit Log").click();
    await page.waitForURL(/\/t\/demo\/audit$/);
    const rows = await auditRows(page, 14);
    expect(rows).toEqual([
      { user: OWNER, action: "incident.deleted", resource: renamed },
      { user: OWNER, action: "webhook.deleted", resource: hook },
      { user: OWNER, action: "webhook.created", resource: hook },
      { user: OWNER, action: "export.requested", resource: `Evidence pack · ${renamed}` },
      { user: OWNER, action: "evidence.deleted", resource: "geoip-report.csv" },
      { user: OWNER, action: "evidence.uploaded", resource: "geoip-report.csv" },
      { user: OWNER, action: "evidence.uploaded", resource: "vpn-auth.log" },
      { user: OWNER, action: "milestone.completed", resource: `Early Warning · ${renamed}` },
      { user: OWNER, action: "milestone.created", resource: `Final Report · ${renamed}` },
      { user: OWNER, action: "milestone.created", resource: `Full Notification · ${renamed}` },
      { user: OWNER, action: "milestone.created", resource: `Early Warning · ${renamed}` },
      { user: OWNER, action: "incident.updated", resource: renamed },
      { user: OWNER, action: "incident.updated", resource: renamed },
      { user: OWNER, action: "incident.created", resource: title },
    ]);
    await screenshot(page, "workspace-audit-log");
    expect(asked).toEqual([
      "Delete the evidence file “geoip-report.csv”? This cannot be undone.",
      `Delete the webhook ${hook}? It stops receiving events at once.`,
      "Delete this incident? It moves to Deleted incidents, where it can be restored.",
    ]);
    await page.close();
  });

  it("after deleting an incident, opens the list at the top with the confirmation in view", async () => {
    const page = await newPage(OWNER, "/t/demo/incidents");
    const create = page.locator("#incident-create");
    await create.getByText("New incident", { exact: true }).first().click();
    await create.getByLabel(/^Title/).fill("Rogue access point in the warehouse");
    await create.getByRole("button", { name: "Create incident" }).click();
    await page.waitForURL(new RegExp(`/t/demo/incidents/${UUID}$`));
    // The Delete button is at the bottom of the page: a person scrolls down to it.
    const remove = page.getByRole("button", { name: "Delete incident" });
    await remove.scrollIntoViewIfNeeded();
    expect(await page.evaluate(() => (globalThis as unknown as { scrollY: number }).scrollY)).toBeGreaterThan(0);
    await remove.click();
    await page.waitForURL(/\/t\/demo\/incidents$/);
    await expect.poll(() => flash(page).textContent()).toContain("Deleted “Rogue access point in the warehouse”.");
    // What the person sees (the viewport only, not the whole page).
    await page.screenshot({ path: path.join(ARTIFACTS, "workspace-incidents-after-delete-viewport.png") });
    const box = await flash(page).boundingBox();
    expect(box?.y).toBeGreaterThanOrEqual(0);
    expect(await page.evaluate(() => (globalThis as unknown as { scrollY: number }).scrollY)).toBe(0);
    await page.close();
  });

  it("shows a viewer no edit controls on an incident, and a member no owner/admin controls", async () => {
    const viewer = await newPage("viewer@demo.test", "/t/demo/incidents");
    expect(await viewer.getByText("New incident", { exact: true }).count()).toBe(0);
    await viewer.getByRole("link", { name: "Ransomware detected on file server FS-02" }).click();
    await viewer.waitForURL(new RegExp(`/t/demo/incidents/${UUID}$`));
    const main = viewer.locator("main");
    expect(await main.textContent()).toContain("You are a viewer of Demo Energy GmbH");
    expect(await main.locator("form").count()).toBe(0);
    expect(await main.locator("input, textarea, select").count()).toBe(0);
    expect(await main.getByRole("link", { name: /^Edit/ }).count()).toBe(0);
    for (const name of ["Upload", "Delete incident", "Turn off NIS2 reporting", "Request evidence pack"]) {
      expect(await main.getByRole("button", { name }).count(), name).toBe(0);
    }
    expect(await main.getByText("Mark complete…").count()).toBe(0);
    // Reading and downloading still work.
    expect(await main.getByRole("link", { name: "Download edr-alert.json" }).count()).toBe(1);
    await screenshot(viewer, "workspace-incident-viewer");
    await viewer.close();

    const member = await newPage("member@demo.test", "/t/demo/incidents");
    await member.getByRole("link", { name: "Ransomware detected on file server FS-02" }).click();
    await member.waitForURL(new RegExp(`/t/demo/incidents/${UUID}$`));
    const memberMain = member.locator("main");
    expect(await memberMain.getByRole("link", { name: "Edit title" }).count()).toBe(1);
    expect(await memberMain.getByRole("button", { name: "Upload" }).count()).toBe(1);
    expect(await memberMain.getByRole("button", { name: "Delete incident" }).count()).toBe(1);
    expect(await memberMain.getByRole("button", { name: "Request evidence pack" }).count()).toBe(0);
    expect(await memberMain.locator("#timeline").textContent()).toContain("Only owners and admins can read it.");
    await member.close();
  });

  it("shows the owner the members with role controls, and the last owner as such", async () => {
    const page = await newPage(OWNER, "/t/demo/members");
    const table = page.locator("table.members");
    await expect.poll(() => table.locator("tbody tr").count()).toBe(4);
    const ownerRow = table.locator("tbody tr").filter({ hasText: OWNER });
    expect(await ownerRow.textContent()).toContain("the only owner");
    expect(await ownerRow.getByLabel(`Role of ${OWNER}`).inputValue()).toBe("owner");
    expect(await page.getByRole("button", { name: "Invite", exact: true }).count()).toBe(1);
    await screenshot(page, "workspace-members");

    // Demoting the only owner is refused, with the reason on the page.
    await ownerRow.getByLabel(`Role of ${OWNER}`).selectOption("admin");
    await ownerRow.getByRole("button", { name: `Change role of ${OWNER}` }).click();
    await expect
      .poll(() => page.locator("#member-error").textContent())
      .toBe(`Could not change the role of ${OWNER}: a tenant must keep at least one owner.`);
    const { rows } = await t.superuser.query(
      "select m.role from app_public.memberships m join app_public.users u on u.id = m.user_id join app_public.tenants t on t.id = m.tenant_id where u.email = $1 and t.slug = 'demo'",
      [OWNER],
    );
    expect(rows[0].role).toBe("owner");
    await screenshot(page, "workspace-members-last-owner");
    await page.close();
  });
});
