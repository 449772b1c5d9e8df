/**
 * An invitation in a real browser, clicking and typing only: the demo owner invites Pat (who has
 * an account and no tenant) on the Members page and copies the link it shows; Pat opens the link
 * signed out, is asked to sign in, comes back to the invitation, accepts, and lands in the tenant.
 * Screenshots at 1366 px and 390 px are saved under .test-artifacts/.
 */
import { hash } from "@node-rs/argon2";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserTests, launchBrowser, openPage, screenshot, signInPage } from "../helpers/browser.ts";
import { createTestDatabase, mainServer, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const PAT = "pat@people.test";

describe.runIf(browserTests())("Invitations in Chromium", () => {
  let t: TestDatabase;
  let web: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    t = await createTestDatabase(mainServer(), { seed: true });
    web = await startTestServer(t);
    browser = await launchBrowser();
    const { rows } = await t.superuser.query(
      "insert into app_public.users (email, name) values ($1, 'Pat Invitee') returning id",
      [PAT],
    );
    await t.superuser.query("insert into app_private.user_secrets (user_id, password_hash) values ($1, $2)", [
      rows[0].id,
      await hash("attest-demo"),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await t?.drop();
  });

  it("invite on the Members page, then accept from the link after signing in", async () => {
    const owner = await openPage(browser, { viewport: { width: 1366, height: 900 } });
    await signInPage(owner, web.url, "owner@demo.test", "/t/demo/members");
    await owner.getByLabel("Email", { exact: true }).fill(PAT);
    await owner.locator("#invite-role").selectOption("member");
    await owner.getByRole("button", { name: "Invite", exact: true }).click();
    const linkField = owner.locator("#invitation-link");
    await linkField.waitFor();
    const link = await linkField.inputValue();
    expect(link).toMatch(new RegExp(`^${web.url}/invitations/inv_[0-9a-f]{48}$`));
    await expect.poll(() => owner.locator("table.invitations").textContent()).toContain(PAT);
    await screenshot(owner, "invitation-created-1366");

    for (const width of [390, 1366]) {
      const pat = await openPage(browser, { viewport: { width, height: 844 } });
      await pat.goto(link);
      await expect.poll(() => pat.locator("main").textContent()).toContain("You are invited to Attest");
      if (width === 390) {
        await screenshot(pat, "invitation-signed-out-390");
        await pat.close();
        continue;
      }
      await pat.getByRole("link", { name: "Sign in" }).click();
      await pat.getByLabel("Email").fill(PAT);
      await pat.getByLabel("Password").fill("attest-demo");
      await Promise.all([
        pat.waitForURL((url) => url.pathname.startsWith("/invitations/")),
        pat.getByRole("button", { name: "Sign in" }).click(),
      ]);
      await expect.poll(() => pat.locator("main h2").textContent()).toBe("Join Demo Energy GmbH?");
      await screenshot(pat, "invitation-open-1366");
      await pat.setViewportSize({ width: 390, height: 844 });
      await screenshot(pat, "invitation-open-390");
      await Promise.all([
        pat.waitForURL((url) => url.pathname === "/t/demo/incidents"),
        pat.getByRole("button", { name: "Accept" }).click(),
      ]);
      await expect
        .poll(() => pat.locator("main .alert").first().textContent())
        .toContain("You joined Demo Energy GmbH as a member.");
      await screenshot(pat, "invitation-accepted-390");
      await pat.close();
    }

    await owner.reload();
    const row = owner.locator("table.members tr", { hasText: PAT });
    await expect.poll(() => row.textContent()).toContain("Pat Invitee");
    await expect.poll(() => owner.locator("table.invitations").textContent()).toContain("accepted");
    await screenshot(owner, "invitation-members-after-1366");
    await owner.setViewportSize({ width: 390, height: 844 });
    await screenshot(owner, "invitation-members-after-390");
  });
});
