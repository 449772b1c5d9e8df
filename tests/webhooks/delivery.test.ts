/**
 * Webhook deliveries against a receiver on 127.0.0.1: one signed event per matching entry, in
 * order, verifiable with the README's snippet; retries after an outage; a webhook that keeps
 * failing is disabled (and that is audited); rolled-back changes and tenants without webhooks
 * send nothing; private addresses are refused unless the operator allows them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPrivateAddress, postWebhook, webhookUrlProblem } from "../../src/webhooks/deliver.ts";
import { asUser, createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { freePort } from "../helpers/net.ts";

const root = path.resolve(import.meta.dirname, "../..");

type SignatureCheck = (secret: string, headers: http.IncomingHttpHeaders, rawBody: string) => boolean;

/** The receiver-side check copied out of the README's "## Webhooks" section and run as written. */
async function readmeSignatureCheck(): Promise<SignatureCheck> {
  const readme = await fs.readFile(path.join(root, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((part) => part.startsWith("Webhooks")) ?? "";
  const snippet = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  if (!snippet) throw new Error('README.md has no ```js snippet under "## Webhooks"');
  const file = path.join(os.tmpdir(), `attest-readme-snippet-${process.pid}-${Date.now()}.mjs`);
  await fs.writeFile(file, `${snippet}\nexport { isFromAttest };\n`);
  try {
    return (await import(file)).isFromAttest as SignatureCheck;
  } finally {
    await fs.rm(file, { force: true });
  }
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

class Receiver {
  received: Received[] = [];
  status = 200;
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      if (this.status === 200) this.received.push({ headers: req.headers, body });
      res.writeHead(this.status);
      res.end("ok");
    });
  });
  port = 0;
  async start(port?: number) {
    this.port = port ?? (await freePort());
    await new Promise<void>((r) => this.server.listen(this.port, "127.0.0.1", () => r()));
  }
  async stop() {
    await new Promise<void>((r) => this.server.close(() => r()));
    this.server = http.createServer(this.server.listeners("request")[0] as http.RequestListener);
  }
  get url() {
    return `http://127.0.0.1:${this.port}/hook`;
  }
}

async function until(check: () => boolean | Promise<boolean>, ms: number, what: () => string) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out: ${what()}`);
}

describe.each(servers())("webhook deliveries on $name", (server) => {
  let t: TestDatabase;
  let worker: ChildProcess;
  let workerOutput = "";
  let demo: string;
  let basic: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    ({ demo, basic } = (await ids(t)).tenants);
    // The seeded demo webhooks point at example.com: turn them off so they do not interfere.
    await t.superuser.query("update app_public.webhooks set active = false");
    worker = spawn(process.execPath, ["tests/helpers/worker-process.ts"], {
      cwd: root,
      env: {
        ...process.env,
        ATTEST_TEST_OWNER_URL: t.db.owner.connectionString,
        ATTEST_TEST_OWNER_ROLE: t.db.owner.options?.match(/role=(\S+)/)?.[1] ?? "",
        ATTEST_WEBHOOKS_ALLOW_PRIVATE: "true",
        ATTEST_WEBHOOK_MAX_FAILURES: "2",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    worker.stdout?.on("data", (d) => {
      workerOutput += d;
    });
    worker.stderr?.on("data", (d) => {
      workerOutput += d;
    });
    await until(
      () => workerOutput.includes("worker ready"),
      30_000,
      () => workerOutput,
    );
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker.once("exit", r));
      worker.kill("SIGTERM");
      await exited;
    }
    await t?.drop();
  });

  const addWebhook = (url: string, actions: string[] = []) =>
    asUser(t, "owner@demo.test", "demo", async (c) => {
      // The receiver is on 127.0.0.1: allowed as with ATTEST_WEBHOOKS_ALLOW_PRIVATE=true.
      await c.query("select set_config('attest.webhooks_allow_private', 'true', true)");
      const { rows } = await c.query<{ id: string; secret: string }>(
        "select id, secret from app_public.create_webhook($1, 'test', $2::text[])",
        [url, actions],
      );
      return rows[0];
    });
  const newIncident = (title: string) =>
    asUser(t, "member@demo.test", "demo", async (c) => {
      const { rows } = await c.query("insert into app_public.incidents (title) values ($1) returning id", [title]);
      return rows[0].id as string;
    });

  it("delivers one signed event per matching entry, in order", async () => {
    const receiver = new Receiver();
    await receiver.start();
    const hook = await addWebhook(receiver.url, ["incident.*"]);
    const isFromAttest = await readmeSignatureCheck();
    const id = await newIncident("Webhook order 1");
    for (const status of ["in_progress", "resolved", "closed"]) {
      await asUser(t, "member@demo.test", "demo", (c) =>
        c.query("update app_public.incidents set status = $2 where id = $1", [id, status]),
      );
    }
    // An action the webhook does not want.
    await asUser(t, "owner@demo.test", "demo", (c) =>
      c.query("select app_public.create_api_token('not for the hook')"),
    );
    await until(
      () => receiver.received.length >= 4,
      30_000,
      () => `${receiver.received.length} received\n${workerOutput}`,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(4);
    const events = receiver.received.map((r) => ({ ...r, json: JSON.parse(r.body) }));
    expect(events.map((e) => e.json.type)).toEqual([
      "incident.created",
      "incident.updated",
      "incident.updated",
      "incident.updated",
    ]);
    expect(events.map((e) => e.json.entry.diff.status?.new ?? "open")).toEqual([
      "open",
      "in_progress",
      "resolved",
      "closed",
    ]);
    // Delivered in the order they were captured (capture numbers; positions may still be pending).
    const captured = events.map((e) => e.json.entry.id as number);
    expect(captured).toEqual([...captured].sort((a, b) => a - b));
    for (const e of events) {
      expect(e.headers["x-attest-event-id"]).toBe(e.json.id);
      expect(e.headers["x-attest-action"]).toBe(e.json.type);
      expect(isFromAttest(hook.secret, e.headers, e.body)).toBe(true);
      expect(isFromAttest(hook.secret, e.headers, `${e.body} `)).toBe(false);
      expect(isFromAttest("wrong-secret", e.headers, e.body)).toBe(false);
      expect(e.json.entry).toMatchObject({
        actor: "member@demo.test",
        resource: { type: "incident", label: "Webhook order 1" },
      });
      expect(e.json.entry.id).toEqual(expect.any(Number));
      // Position and leaf hash once sealed; delivery does not wait for the sealer.
      if (e.json.entry.seq !== null) expect(e.json.entry.leaf_hash).toMatch(/^[0-9a-f]{64}$/);
      else expect(e.json.entry.leaf_hash).toBeNull();
    }
    expect(JSON.stringify(events)).not.toContain(hook.secret);
    await t.superuser.query("update app_public.webhooks set active = false where id = $1", [hook.id]);
    await receiver.stop();
  });

  it("retries while the receiver is down and delivers once it is back", async () => {
    const port = await freePort();
    const receiver = new Receiver();
    const hook = await addWebhook(`http://127.0.0.1:${port}/hook`, ["incident.created"]);
    await newIncident("Sent during an outage");
    await until(
      async () =>
        (
          await t.superuser.query("select attempts from app_private.webhook_deliveries where webhook_id = $1", [
            hook.id,
          ])
        ).rows[0]?.attempts >= 1,
      30_000,
      () => workerOutput,
    );
    const failed = (
      await t.superuser.query(
        "select status, last_error, next_attempt_at from app_private.webhook_deliveries where webhook_id = $1",
        [hook.id],
      )
    ).rows[0];
    expect(failed.status).toBe("pending");
    expect(failed.last_error).toMatch(/ECONNREFUSED/);
    expect(failed.next_attempt_at).not.toBeNull();
    await receiver.start(port);
    const delivery = async () =>
      (
        await t.superuser.query("select status, attempts from app_private.webhook_deliveries where webhook_id = $1", [
          hook.id,
        ])
      ).rows[0];
    // The receiver sees the event before the worker, having read the answer, records the delivery.
    await until(
      async () => receiver.received.length >= 1 && (await delivery()).status !== "pending",
      30_000,
      () => workerOutput,
    );
    expect(receiver.received).toHaveLength(1);
    expect(await delivery()).toEqual({ status: "delivered", attempts: 2 });
    await t.superuser.query("update app_public.webhooks set active = false where id = $1", [hook.id]);
    await receiver.stop();
  });

  it("disables a webhook that keeps failing, and records that in the audit log", async () => {
    const receiver = new Receiver();
    receiver.status = 500;
    await receiver.start();
    const hook = await addWebhook(receiver.url, ["incident.created"]);
    await newIncident("Never accepted");
    await until(
      async () =>
        (await t.superuser.query("select active from app_public.webhooks where id = $1", [hook.id])).rows[0].active ===
        false,
      30_000,
      () => workerOutput,
    );
    const { rows } = await t.superuser.query(
      "select action, actor_label, surface, changes from app_public.audit_log where tenant_id = $1 and resource_id = $2 order by id",
      [demo, hook.id],
    );
    expect(rows.map((r) => r.action)).toEqual(["webhook.created", "webhook.disabled"]);
    expect(rows[1]).toMatchObject({ actor_label: "system", surface: "worker" });
    expect(rows[1].changes.disabled_reason.new).toMatch(
      /Disabled after 2 failed deliveries in a row \(last: HTTP 500\)/,
    );
    const deliveries = await t.superuser.query(
      "select status, last_status_code from app_private.webhook_deliveries where webhook_id = $1",
      [hook.id],
    );
    expect(deliveries.rows).toEqual([{ status: "failed", last_status_code: 500 }]);
    await receiver.stop();
  });

  it("announces nothing for a rolled-back change, and queues nothing for a tenant without webhooks", async () => {
    const receiver = new Receiver();
    await receiver.start();
    await addWebhook(receiver.url);
    const count = async (tenant: string) =>
      (
        await t.superuser.query("select count(*)::int as n from app_private.webhook_deliveries where tenant_id = $1", [
          tenant,
        ])
      ).rows[0].n as number;
    const jobs = async () =>
      (
        await t.superuser.query(
          "select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id where k.identifier = 'deliver_webhook' and j.payload->>'tenantId' = $1",
          [basic],
        )
      ).rows[0].n as number;
    const before = await count(demo);
    await expect(
      asUser(t, "member@demo.test", "demo", async (c) => {
        await c.query("insert into app_public.incidents (title) values ('Rolled back')");
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await count(demo)).toBe(before);

    await asUser(t, "owner@basic.test", "basic", (c) =>
      c.query("insert into app_public.incidents (title) values ('No hooks here')"),
    );
    expect(await count(basic)).toBe(0);
    expect(await jobs()).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received.map((r) => JSON.parse(r.body).entry?.resource?.label)).not.toContain("Rolled back");
    await receiver.stop();
  });
});

describe("webhook address safety", () => {
  it("recognises private, loopback and link-local addresses", () => {
    for (const address of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "::1",
      "fe80::1",
      "fd00::1",
      "::ffff:127.0.0.1",
      "0.0.0.0",
    ]) {
      expect(isPrivateAddress(address), address).toBe(true);
    }
    for (const address of ["93.184.216.34", "2606:4700:4700::1111", "8.8.8.8"])
      expect(isPrivateAddress(address), address).toBe(false);
  });

  it("refuses such URLs unless the operator allows them", () => {
    expect(webhookUrlProblem("http://127.0.0.1:9999/hook", false)).toMatch(/private, loopback or link-local/);
    expect(webhookUrlProblem("http://localhost/hook", false)).toMatch(/private/);
    expect(webhookUrlProblem("http://[::1]/hook", false)).toMatch(/private/);
    expect(webhookUrlProblem("https://siem.example.com/hook", false)).toBeNull();
    expect(webhookUrlProblem("http://127.0.0.1:9999/hook", true)).toBeNull();
    expect(webhookUrlProblem("ftp://example.com", false)).toMatch(/must start with http/);
  });

  it("refuses to connect to a private address at delivery time, even when the name looks public", async () => {
    const receiver = new Receiver();
    await receiver.start();
    const settings = { allowPrivate: false, timeoutMs: 2000, maxResponseBytes: 1024 };
    const refused = await postWebhook(receiver.url, "s", { id: "1", action: "webhook.test", body: "{}" }, settings);
    expect(refused).toMatchObject({ ok: false, error: expect.stringMatching(/private address/) });
    // "localhost" resolves to a loopback address: refused by the resolved address, not the name.
    const byName = await postWebhook(
      `http://localhost:${receiver.port}/hook`,
      "s",
      { id: "2", action: "webhook.test", body: "{}" },
      settings,
    );
    expect(byName).toMatchObject({ ok: false, error: expect.stringMatching(/private address/) });
    expect(receiver.received).toEqual([]);
    const allowed = await postWebhook(
      receiver.url,
      "s",
      { id: "3", action: "webhook.test", body: "{}" },
      { ...settings, allowPrivate: true },
    );
    expect(allowed).toEqual({ ok: true, statusCode: 200 });
    await receiver.stop();
  });
});
