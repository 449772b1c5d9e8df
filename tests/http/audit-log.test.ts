/**
 * The audit log over GraphQL: who may read it, newest-first cursor paging, the filters, and the
 * limits that keep one query from taking the server down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { runJobsOnce } from "../helpers/worker.ts";

interface Page {
  auditLogs: {
    totalCount: number;
    nodes: Array<{ seq: string; action: string; actorLabel: string; resourceLabel: string | null; occurredAt: string }>;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

const PAGE = `query($first: Int, $after: Cursor, $condition: AuditLogCondition) {
  auditLogs(first: $first, after: $after, condition: $condition) {
    totalCount
    nodes { seq action actorLabel resourceLabel occurredAt }
    pageInfo { hasNextPage endCursor }
  }
}`;

describe.each(servers())("the audit log over GraphQL on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let owner: string;
  let demo: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    owner = await web.signIn("owner@demo.test");
    demo = (await ids(t)).tenants.demo;
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const page = (variables: Record<string, unknown>, cookie = owner, tenant?: string) =>
    web.gql<Page>(PAGE, { cookie, variables, tenant });
  const recorded = async () =>
    (await t.superuser.query("select count(*)::int as n from app_public.audit_log where tenant_id = $1", [demo]))
      .rows[0].n as number;

  describe("who may read it", () => {
    it.each([
      ["owner@demo.test", true],
      ["admin@demo.test", true],
      ["member@demo.test", false],
      ["viewer@demo.test", false],
    ])("%s sees entries: %s", async (email, sees) => {
      const cookie = await web.signIn(email);
      const r = await page({ first: 5 }, cookie, "demo");
      expect(r.errors).toBeUndefined();
      if (sees) expect(r.data?.auditLogs.totalCount).toBe(await recorded());
      else expect(r.data?.auditLogs).toMatchObject({ totalCount: 0, nodes: [] });
    });

    it("counts the whole log the same way whether or not a condition is given (pending entries included)", async () => {
      // A change made just now: captured, not sealed yet (no sealer runs here).
      await t.superuser.query(
        "update app_public.incidents set title = title || '!' where id = (select id from app_public.incidents where tenant_id = $1 and deleted_at is null order by id limit 1)",
        [demo],
      );
      const pending = await t.superuser.query(
        `select count(*)::int as n from app_public.audit_log e where e.tenant_id = $1
           and not exists (select 1 from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id)`,
        [demo],
      );
      expect(pending.rows[0].n).toBeGreaterThan(0);
      const total = await recorded();
      const forms: Array<[string, Record<string, unknown>?]> = [
        ["{ auditLogs(first: 1) { totalCount } }"],
        ["{ auditLogs(first: 1, condition: null) { totalCount } }"],
        ["{ auditLogs(first: 1, condition: {}) { totalCount } }"],
        ["query($c: AuditLogCondition) { auditLogs(first: 1, condition: $c) { totalCount } }", {}],
        ["query($c: AuditLogCondition) { auditLogs(first: 1, condition: $c) { totalCount } }", { c: null }],
        ["query($c: AuditLogCondition) { auditLogs(first: 1, condition: $c) { totalCount } }", { c: {} }],
      ];
      for (const [query, variables] of forms) {
        const r = await web.gql<{ auditLogs: { totalCount: number } }>(query, { cookie: owner, variables });
        expect(r.errors, query).toBeUndefined();
        expect(r.data?.auditLogs.totalCount, `${query} ${JSON.stringify(variables)}`).toBe(total);
      }
      // The same operation with a condition in its variables counts the condition (the plan made
      // for an absent condition is not reused).
      const [query] = forms[3];
      const filtered = await web.gql<{ auditLogs: { totalCount: number } }>(query, {
        cookie: owner,
        variables: { c: { action: "evidence.uploaded" } },
      });
      const uploads = await t.superuser.query(
        "select count(*)::int as n from app_public.audit_log where tenant_id = $1 and action = 'evidence.uploaded'",
        [demo],
      );
      expect(filtered.data?.auditLogs.totalCount).toBe(uploads.rows[0].n);
      expect(uploads.rows[0].n).toBeLessThan(total);
    });

    it("refuses searching text longer than what it searches, with a clear error, counted in characters", async () => {
      const tenantCount = `query($c: AuditLogCondition) { currentTenant { auditLogs(first: 1, condition: $c) { totalCount } } }`;
      for (const [field, max] of [
        ["actionPrefix", 100],
        ["actorContains", 320],
        ["resourceLabelContains", 500],
      ] as const) {
        // As long as it may be, in characters: "😀" is one character (two UTF-16 units).
        for (const text of ["x".repeat(max), "😀".repeat(max)]) {
          const r = await page({ first: 1, condition: { [field]: text } });
          expect(r.errors, field).toBeUndefined();
          expect(r.data?.auditLogs).toMatchObject({ totalCount: 0, nodes: [] });
        }
        for (const text of ["x".repeat(max + 1), "😀".repeat(max + 1), "x".repeat(60_000)]) {
          for (const [query, variables] of [
            [PAGE, { first: 1, condition: { [field]: text } }],
            [tenantCount, { c: { [field]: text } }],
          ] as const) {
            const r = await web.gql(query, { cookie: owner, variables });
            expect(r.status).toBe(200);
            expect(r.errors?.[0]?.extensions?.code, field).toBe("BAD_USER_INPUT");
            expect(r.errors?.[0]?.message).toBe(
              `\`${field}\` may be at most ${max} characters long (${
                {
                  actionPrefix: "action names are at most 100 characters",
                  actorContains: "an email address is at most 320 characters",
                  resourceLabelContains: "resource labels are recorded up to 500 characters",
                }[field]
              }); this one has ${[...text].length}.`,
            );
          }
        }
      }
    });

    it("counts a word again as the log holds it now (from where the server's last count left off)", async () => {
      const word = "ransom";
      const truth = async () =>
        (
          await t.superuser.query(
            "select count(*)::int as n from app_public.audit_log where tenant_id = $1 and resource_label ilike $2",
            [demo, `%${word}%`],
          )
        ).rows[0].n as number;
      const count = async (cookie = owner) =>
        (await page({ first: 1, condition: { resourceLabelContains: word } }, cookie, "demo")).data?.auditLogs
          .totalCount;
      await sealAll(t.pools.owner);
      expect(await count()).toBe(await truth());
      // New entries of the word: pending, then sealed and named (the second count starts from the first's).
      for (const step of ["pending", "named"]) {
        await withContext(t.pools.owner, { surface: "sql" }, (c) =>
          c.query(
            "insert into app_public.incidents (tenant_id, title) select $1, 'Ransomware note ' || g from generate_series(1, 3) g",
            [demo],
          ),
        );
        if (step === "named") await sealAll(t.pools.owner);
        expect(await count(), step).toBe(await truth());
      }
      expect(await truth()).toBeGreaterThanOrEqual(6);
      // What the server keeps for the owner's count gives a member nothing.
      expect(await count(await web.signIn("member@demo.test"))).toBe(0);
    });

    it("a tenant without auditLog gets a clear plan error, not an empty list", async () => {
      const cookie = await web.signIn("owner@basic.test");
      const r = await page({ first: 5 }, cookie);
      expect(r.data?.auditLogs).toBeNull();
      expect(r.errors?.[0]).toMatchObject({ extensions: { code: "PLAN_REQUIRED" } });
      expect(r.errors?.[0].message).toMatch(/not in your plan/);
    });

    it("anonymous requests see nothing", async () => {
      const r = await web.gql<Page>(PAGE, { variables: { first: 5 } });
      expect(r.data?.auditLogs.totalCount).toBe(0);
    });

    it("has no mutations: the API cannot write, change or delete entries", async () => {
      const r = await web.gql<{ __schema: { mutationType: { fields: Array<{ name: string }> } } }>(
        "{ __schema { mutationType { fields { name } } } }",
        { cookie: owner },
      );
      const names = r.data?.__schema.mutationType.fields.map((f) => f.name) ?? [];
      expect(names.length).toBeGreaterThan(10);
      // Verifying the chain records a verification; nothing creates, changes or deletes an entry.
      expect(names.filter((n) => /audit/i.test(n)).sort()).toEqual([
        "requestAuditVerification",
        "verifyCurrentAuditChain",
      ]);
      expect(names.filter((n) => /^(create|update|delete|upsert)AuditLog/i.test(n))).toEqual([]);
    });
  });

  describe("verification", () => {
    const REQUEST = "mutation { requestAuditVerification(input: {}) { result } }";
    const LIST =
      "{ auditVerifications(first: 5) { totalCount nodes { checkedAt valid entries lastSeq firstInvalidSeq problem treeSize pending } } }";
    interface List {
      auditVerifications: {
        totalCount: number;
        nodes: Array<{ checkedAt: string; valid: boolean; entries: string; lastSeq: string; treeSize: string }>;
      };
    }
    const jobs = async () =>
      (
        await t.superuser.query(
          "select count(*)::int as n from graphile_worker.jobs where task_identifier = 'verify_audit_chain'",
        )
      ).rows[0].n as number;

    it("an owner or admin asks the worker to verify, and reads what it recorded", async () => {
      await sealAll(t.pools.owner);
      const before = await web.gql<List>(LIST, { cookie: owner, tenant: "demo" });
      expect(before.errors, JSON.stringify(before.errors)).toBeUndefined();
      const seen = before.data?.auditVerifications.totalCount ?? -1;
      const admin = await web.signIn("admin@demo.test");
      for (const cookie of [owner, admin]) {
        const r = await web.gql<{ requestAuditVerification: { result: boolean } }>(REQUEST, { cookie, tenant: "demo" });
        expect(r.errors).toBeUndefined();
        expect(r.data?.requestAuditVerification.result).toBe(true);
      }
      expect(await jobs()).toBe(1); // two requests while it waits: one job
      // The worker runs the job, which records what it found.
      await runJobsOnce(t.pools.owner);
      expect(await jobs()).toBe(0);
      const after = await web.gql<List>(LIST, { cookie: admin, tenant: "demo" });
      expect(after.errors).toBeUndefined();
      expect(after.data?.auditVerifications.totalCount).toBe(seen + 1);
      const latest = after.data?.auditVerifications.nodes[0];
      const sealed = await t.superuser.query(
        "select size::text as size from app_private.audit_trees where tenant_id = $1",
        [demo],
      );
      expect(latest).toMatchObject({ valid: true, lastSeq: sealed.rows[0].size, treeSize: sealed.rows[0].size });
    });

    it("verifyCurrentAuditChain past the API's time limit says to ask the worker instead", async () => {
      // A superuser holds the verifications table: recording waits past the 5 s statement timeout,
      // as verifying a very large log would.
      const holder = await t.superuser.connect();
      try {
        await holder.query("begin");
        await holder.query("lock table app_private.chain_verifications in share mode");
        const r = await web.gql("mutation { verifyCurrentAuditChain(input: {}) { result { valid } } }", {
          cookie: owner,
          tenant: "demo",
        });
        expect(r.errors?.[0]).toMatchObject({ extensions: { code: "TIMEOUT" } });
        expect(r.errors?.[0].message).toContain("requestAuditVerification");
      } finally {
        await holder.query("rollback");
        holder.release();
      }
    });

    it("members, viewers and a plan without the audit log can neither ask nor read", async () => {
      for (const email of ["member@demo.test", "viewer@demo.test"]) {
        const cookie = await web.signIn(email);
        const asked = await web.gql(REQUEST, { cookie, tenant: "demo" });
        expect(asked.errors?.[0]).toMatchObject({ extensions: { code: "FORBIDDEN" } });
        const read = await web.gql<List>(LIST, { cookie, tenant: "demo" });
        expect(read.data?.auditVerifications.totalCount).toBe(0);
      }
      const basic = await web.signIn("owner@basic.test");
      for (const query of [REQUEST, LIST]) {
        const r = await web.gql(query, { cookie: basic });
        expect(r.errors?.[0]).toMatchObject({ extensions: { code: "PLAN_REQUIRED" } });
      }
      expect(await jobs()).toBe(0);
    });
  });

  describe("paging", () => {
    it("walking every page with after returns every entry once, newest first", async () => {
      await sealAll(t.pools.owner); // positions for the entries earlier tests wrote
      const seen: number[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const r = await page({ first: 25, after });
        expect(r.errors).toBeUndefined();
        const data = r.data?.auditLogs;
        if (!data) throw new Error("no data");
        expect(data.nodes.length).toBeLessThanOrEqual(25);
        seen.push(...data.nodes.map((n) => Number(n.seq)));
        pages++;
        if (!data.pageInfo.hasNextPage) break;
        after = data.pageInfo.endCursor;
      }
      const total = await recorded();
      expect(seen.length).toBe(total);
      expect(new Set(seen).size).toBe(total);
      expect(seen).toEqual([...seen].sort((a, b) => b - a));
      expect(seen[0]).toBe(total);
      expect(pages).toBe(Math.ceil(total / 25));
    });

    it("entries written between two pages neither repeat nor skip anything", async () => {
      const first = await page({ first: 10 });
      const before = first.data?.auditLogs.nodes.map((n) => Number(n.seq)) ?? [];
      await withContext(t.pools.owner, { surface: "sql" }, (c) =>
        c.query("insert into app_public.incidents (tenant_id, title) values ($1, 'Written between pages')", [demo]),
      );
      const second = await page({ first: 10, after: first.data?.auditLogs.pageInfo.endCursor });
      const next = second.data?.auditLogs.nodes.map((n) => Number(n.seq)) ?? [];
      expect(next[0]).toBe(before[before.length - 1] - 1);
      expect(next).toEqual(Array.from({ length: 10 }, (_, i) => next[0] - i));
    });

    it("searching conditions page forwards and backwards, in either time order, as plain SQL orders them", async () => {
      const q = `query($first: Int, $last: Int, $after: Cursor, $before: Cursor, $offset: Int, $condition: AuditLogCondition, $orderBy: [AuditLogOrderBy!]) {
        auditLogs(first: $first, last: $last, after: $after, before: $before, offset: $offset, condition: $condition, orderBy: $orderBy) {
          totalCount nodes { rowId } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        }
      }`;
      interface Walk {
        auditLogs: {
          totalCount: number;
          nodes: Array<{ rowId: string }>;
          pageInfo: {
            hasNextPage: boolean;
            hasPreviousPage: boolean;
            startCursor: string | null;
            endCursor: string | null;
          };
        };
      }
      const ask = async (variables: Record<string, unknown>) => {
        const r = await web.gql<Walk>(q, { cookie: owner, variables });
        expect(r.errors, JSON.stringify(variables)).toBeUndefined();
        return r.data?.auditLogs as Walk["auditLogs"];
      };
      const { rows: mid } = await t.superuser.query(
        "select occurred_at from app_public.audit_log where tenant_id = $1 order by occurred_at, id offset 40 limit 1",
        [demo],
      );
      const cut = (mid[0].occurred_at as Date).toISOString();
      const cases: Array<[Record<string, unknown>, string, unknown[]]> = [
        [{ resourceLabelContains: "ransomware" }, "resource_label ilike '%ransomware%'", []],
        [{ actorContains: "@DEMO" }, "actor_label ilike '%@demo%'", []],
        [{ actionPrefix: "incident." }, "action like 'incident.%'", []],
        [
          { actorContains: "admin", actionPrefix: "incident." },
          "actor_label ilike '%admin%' and action like 'incident.%'",
          [],
        ],
        [{ resourceLabelContains: "e", occurredAfter: cut }, "resource_label ilike '%e%' and occurred_at >= $2", [cut]],
        [
          { actorContains: "o", action: "incident.updated" },
          "actor_label ilike '%o%' and action = 'incident.updated'",
          [],
        ],
        [{ actorContains: "nobody-acts-as-this" }, "false", []],
        // An actor with an action (000073): routed too, their entries read on the days they took it.
        [
          { actorLabel: "owner@demo.test", action: "incident.updated" },
          "actor_label = 'owner@demo.test' and action = 'incident.updated'",
          [],
        ],
        [
          { actorLabel: "system", action: "incident.created" },
          "actor_label = 'system' and action = 'incident.created'",
          [],
        ],
        [
          { actorLabel: "owner@demo.test", action: "incident.created", occurredAfter: cut },
          "actor_label = 'owner@demo.test' and action = 'incident.created' and occurred_at >= $2",
          [cut],
        ],
        // A column's condition given as null asks for NULL there (entries about no incident).
        [{ actorContains: "@demo", incidentId: null }, "actor_label ilike '%@demo%' and incident_id is null", []],
        [{ actorContains: "@demo", resourceLabelContains: null }, "actor_label ilike '%@demo%'", []],
      ];
      for (const [condition, where, params] of cases) {
        const { rows } = await t.superuser.query(
          `select e.id::text from app_public.audit_log e where e.tenant_id = $1 and ${where} order by e.occurred_at desc, e.id desc`,
          [demo, ...params],
        );
        const expected = rows.map((r) => r.id as string);
        const label = JSON.stringify(condition);
        if (label.includes("owner@demo.test") && !label.includes("occurredAfter"))
          expect(expected.length, label).toBeGreaterThan(0);
        /** Every page forwards (first/after) or backwards (last/before): the entries in list order. */
        const walk = async (size: number, backwards: boolean, orderBy?: string[]) => {
          const seen: string[] = [];
          for (let cursor: string | null = null, pages = 0; ; pages++) {
            expect(pages, label).toBeLessThan(200);
            const r = await ask(
              backwards
                ? { last: size, before: cursor, condition, orderBy }
                : { first: size, after: cursor, condition, orderBy },
            );
            expect(r.totalCount, label).toBe(expected.length);
            if (backwards) seen.unshift(...r.nodes.map((n) => n.rowId));
            else seen.push(...r.nodes.map((n) => n.rowId));
            if (!(backwards ? r.pageInfo.hasPreviousPage : r.pageInfo.hasNextPage)) return seen;
            cursor = backwards ? r.pageInfo.startCursor : r.pageInfo.endCursor;
          }
        };
        // Forwards, newest first (the default order); backwards from the oldest end; oldest first.
        expect(await walk(7, false), label).toEqual(expected);
        expect(await walk(6, true), label).toEqual(expected);
        const oldest = await walk(9, false, ["OLDEST_FIRST"]);
        expect(oldest, label).toEqual([...expected].reverse());
        // An offset skips that many matches, from the start or from a cursor, in either order.
        for (const [offset, orderBy] of [
          [3, undefined],
          [11, ["OLDEST_FIRST"]],
        ] as const) {
          const list = orderBy ? [...expected].reverse() : expected;
          const skipped = await ask({ first: 4, offset, condition, orderBy });
          expect(
            skipped.nodes.map((n) => n.rowId),
            `${label} offset ${offset}`,
          ).toEqual(list.slice(offset, offset + 4));
          expect(skipped.pageInfo.hasNextPage, `${label} offset ${offset}`).toBe(list.length > offset + 4);
          const first = await ask({ first: 2, condition, orderBy });
          if (first.pageInfo.endCursor) {
            const after = await ask({ first: 4, offset, after: first.pageInfo.endCursor, condition, orderBy });
            expect(
              after.nodes.map((n) => n.rowId),
              `${label} offset ${offset} after 2`,
            ).toEqual(list.slice(2 + offset, 2 + offset + 4));
          }
        }
      }
    });

    it("without first or last, answers one page of 100, not the whole log", async () => {
      const r = await web.gql<Page>("{ auditLogs { totalCount nodes { seq } pageInfo { hasNextPage endCursor } } }", {
        cookie: owner,
      });
      expect(r.errors).toBeUndefined();
      expect(r.data?.auditLogs.nodes).toHaveLength(100);
      expect(r.data?.auditLogs.pageInfo.hasNextPage).toBe(true);
      const last = await web.gql<Page>("{ auditLogs(last: 3) { nodes { seq } } }", { cookie: owner });
      expect(last.data?.auditLogs.nodes.map((n) => Number(n.seq))).toEqual([3, 2, 1]);
    });

    it("refuses pages larger than 100 with a clear error", async () => {
      const r = await page({ first: 101 });
      expect(r.errors?.[0]).toMatchObject({ extensions: { code: "PAGE_SIZE" } });
      const ok = await page({ first: 100 });
      expect(ok.data?.auditLogs.nodes).toHaveLength(100);
    });
  });

  describe("filters", () => {
    const all = async (condition: Record<string, unknown>) => {
      const r = await page({ first: 100, condition });
      expect(r.errors).toBeUndefined();
      return r.data?.auditLogs ?? { totalCount: -1, nodes: [], pageInfo: { hasNextPage: false, endCursor: null } };
    };
    const count = async (where: string, ...params: unknown[]) =>
      (
        await t.superuser.query(
          `select count(*)::int as n from app_public.audit_log where tenant_id = $1 and ${where}`,
          [demo, ...params],
        )
      ).rows[0].n as number;

    it("by exact action", async () => {
      const r = await all({ action: "evidence.uploaded" });
      expect(r.totalCount).toBe(await count("action = 'evidence.uploaded'"));
      expect(r.totalCount).toBeGreaterThan(0);
      expect(new Set(r.nodes.map((n) => n.action))).toEqual(new Set(["evidence.uploaded"]));
    });

    it("by action prefix", async () => {
      const r = await all({ actionPrefix: "milestone." });
      expect(r.totalCount).toBe(await count("action like 'milestone.%'"));
      expect(r.nodes.every((n) => n.action.startsWith("milestone."))).toBe(true);
      expect((await all({ actionPrefix: "%" })).totalCount).toBe(0); // a wildcard is just a character
    });

    it("by actor and by resource label, ignoring case", async () => {
      const byActor = await all({ actorContains: "MEMBER@demo" });
      expect(byActor.totalCount).toBe(await count("actor_label = 'member@demo.test'"));
      const several = await all({ actorContains: "@DEMO.test" });
      expect(several.totalCount).toBe(await count("actor_label ilike '%@demo.test'"));
      expect(new Set(several.nodes.map((n) => n.actorLabel)).size).toBeGreaterThan(1);
      expect(await all({ actorContains: "nobody-acts-as-this" })).toMatchObject({ totalCount: 0, nodes: [] });
      const exact = await all({ actorLabel: "system" });
      expect(exact.totalCount).toBe(await count("actor_label = 'system'"));
      const byResource = await all({ resourceLabelContains: "ransomware" });
      expect(byResource.totalCount).toBe(await count("resource_label ilike '%ransomware%'"));
      expect(byResource.nodes.every((n) => /ransomware/i.test(n.resourceLabel ?? ""))).toBe(true);
      const unicode = await all({ resourceLabelContains: "東京" });
      expect(unicode.totalCount).toBeGreaterThan(0);
    });

    it("by time range", async () => {
      const { rows } = await t.superuser.query(
        "select occurred_at from app_public.audit_log where tenant_id = $1 order by id limit 1 offset 99",
        [demo],
      );
      const cut = (rows[0].occurred_at as Date).toISOString();
      const after = await all({ occurredAfter: cut });
      const before = await all({ occurredBefore: cut });
      expect(after.totalCount).toBe(await count("occurred_at >= $2", cut));
      expect(before.totalCount).toBe(await count("occurred_at < $2", cut));
      expect(after.totalCount + before.totalCount).toBe(await recorded());
    });

    it("counts a tenant's entries under that tenant, and none of another tenant's", async () => {
      const q = `query($condition: AuditLogCondition) {
        currentTenant { auditLogs(condition: $condition) { totalCount } }
        tenants { nodes { slug auditLogs(condition: $condition) { totalCount } } }
      }`;
      interface Counts {
        currentTenant: { auditLogs: { totalCount: number } };
        tenants: { nodes: Array<{ slug: string; auditLogs: { totalCount: number } }> };
      }
      // admin@demo.test is also a viewer of basic: both tenants are listed, demo's log is read.
      const cookie = await web.signIn("admin@demo.test");
      for (const [condition, where] of [
        [{}, "true"],
        [{ actionPrefix: "incident." }, "action like 'incident.%'"],
        [{ actorContains: "admin" }, "actor_label ilike '%admin%'"],
        [{ resourceLabelContains: "ransomware" }, "resource_label ilike '%ransomware%'"],
        [{ tenantId: demo }, "true"],
        [{ tenantId: null }, "false"],
        [{ tenantId: "00000000-0000-0000-0000-000000000001" }, "false"],
      ] as const) {
        const r = await web.gql<Counts>(q, { cookie, tenant: "demo", variables: { condition } });
        expect(r.errors, JSON.stringify(condition)).toBeUndefined();
        const n = await count(where);
        expect(r.data?.currentTenant.auditLogs.totalCount, JSON.stringify(condition)).toBe(n);
        const bySlug = Object.fromEntries((r.data?.tenants.nodes ?? []).map((t) => [t.slug, t.auditLogs.totalCount]));
        expect(bySlug, JSON.stringify(condition)).toEqual({ demo: n, basic: 0 });
      }
    });

    it("combined filters narrow together", async () => {
      const r = await all({ actionPrefix: "incident.", actorContains: "admin@" });
      expect(r.totalCount).toBe(await count("action like 'incident.%' and actor_label = 'admin@demo.test'"));
    });
  });

  describe("limits", () => {
    it("refuses queries nested too deeply", async () => {
      const deep = `{ currentTenant { memberships { nodes { user { memberships { nodes { tenant { memberships { nodes { user { memberships { nodes { tenant { slug } } } } } } } } } } } } } }`;
      const r = await web.gql(deep, { cookie: owner });
      expect(r.errors?.[0].message).toMatch(/depth/i);
    });

    it("refuses GET queries and oversized bodies", async () => {
      const get = await fetch(`${web.url}/graphql?query=${encodeURIComponent("{ currentUser { email } }")}`);
      expect(get.status).toBe(405);
      const huge = await fetch(`${web.url}/graphql`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ query: `{ currentUser { email } } # ${"x".repeat(200_000)}` }),
      });
      expect(huge.status).toBe(413);
    });
  });
});
