/**
 * A name and day's entries per action and actor (app_private.audit_label_days.joint_entries,
 * migrations 000102 and 000103): the namer keeps them across its rounds as the named entries have them, and
 * the count of a word with actions and people (GraphQL's totalCount) takes them from there, as the
 * log counts them: the people given by name, by a pattern most actors hold, and by a pattern that
 * holds and leaves out many, in windows on and off the days' edges.
 */
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoadedTenant, loadHistory } from "../../bench/history.ts";
import { activeSigningKey } from "../../src/audit/keys.ts";
import { nameOnce, sealOnce } from "../../src/audit/sealer.ts";
import { withContext } from "../../src/db/context.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { countLog } from "../helpers/log-count.ts";
import { TEST_ORIGIN } from "../helpers/seal.ts";

/** The named entries' counts per action and actor of each name and day, as the log has them. */
const NAMED = `select coalesce(jsonb_agg(jsonb_build_array(x.tenant_id, x.day, x.label, x.joint) order by x.tenant_id, x.day, x.label), '[]')::text
  from (select y.tenant_id, y.day, y.label,
               case when count(distinct y.action) > 1 and count(distinct y.actor_label) > 1
                    then jsonb_object_agg(y.action || ' ' || y.actor_label, y.n) end as joint
        from (select e.tenant_id, (e.occurred_at at time zone 'UTC')::date as day, e.resource_label as label, e.action,
                     e.actor_label, count(*) as n
              from app_public.audit_log e, app_private.audit_label_state c
              where e.resource_label is not null and (e.xid, e.id) <= (c.last_xid, c.last_id)
              group by 1, 2, 3, 4, 5) y
        group by 1, 2, 3) x`;
const KEPT = `select coalesce(jsonb_agg(jsonb_build_array(l.tenant_id, l.day, l.label, l.joint_entries)
                                order by l.tenant_id, l.day, l.label), '[]')::text
              from app_private.audit_label_days l`;

describe.each(servers())("A name and day's entries per action and actor on $name", (server) => {
  let t: TestDatabase;
  let tenant: LoadedTenant;

  /** Seals every entry, then names them in rounds of `batch` (a name and day is added up across rounds). */
  const sealAndName = async (batch: number) => {
    const key = await activeSigningKey(t.pools.owner);
    while ((await sealOnce(t.pools.owner, { key, originPrefix: TEST_ORIGIN, maxEntries: 10_000 })).sealed > 0);
    while ((await nameOnce(t.pools.owner, batch)) > 0);
  };
  /** Entries written straight into the log (as the bench's bulk path does), by `actor`, one second after each of `from`'s. */
  const copyEntries = async (from: string, actor: string, action: string) => {
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      await client.query("begin");
      await client.query("set local session_replication_role = replica");
      const { rowCount } = await client.query(
        `insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_user_id, actor_label, db_role, action,
           resource_type, resource_id, resource_label, incident_id, changes, request_id, ip, user_agent, surface, api_token_id)
         select e.tenant_id, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint,
                e.occurred_at + interval '1 second', null, ${actor}, e.db_role, ${action}, e.resource_type, e.resource_id,
                e.resource_label, e.incident_id, e.changes, e.request_id, e.ip, e.user_agent, e.surface, null
         from app_public.audit_log e where ${from}`,
        [tenant.id],
      );
      await client.query("commit");
      return rowCount ?? 0;
    } finally {
      await client.end();
    }
  };
  /** GraphQL's totalCount of a condition through the names (as a large log is counted), as the tenant's admin. */
  const countNames = (condition: Record<string, string>) =>
    withContext(
      t.pools.auth,
      { role: t.db.roles.visitor, sessionToken: tenant.adminSession, tenant: "joint", surface: "sql" },
      async (client) =>
        (
          await client.query<{ n: string }>("select app_hidden.audit_connection_count($1, null, 10000, 0)->>'n' as n", [
            JSON.stringify(condition),
          ])
        ).rows[0].n,
    );

  beforeAll(async () => {
    t = await createTestDatabase(server);
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      [tenant] = await loadHistory(client, { tenants: [{ slug: "joint", name: "Joint", entries: 2400 }], days: 5 });
    } finally {
      await client.end();
    }
    // And a crowd: a third of the entries again, by 40 more people ("even-0…" to "odd-39…"), so that
    // a pattern can hold more than 16 of the log's actors and leave more than 16 out.
    await copyEntries(
      "e.tenant_id = $1 and e.id % 3 = 0",
      "case when e.id % 2 = 0 then 'even-' else 'odd-' end || (e.id % 40) || '@crowd.test'",
      "e.action",
    );
    await sealAndName(97);
  }, 120_000);

  afterAll(async () => {
    await t?.drop();
  });

  it("keeps each name and day's entries per action and actor when it has more than one of each, across the namer's rounds (000103)", async () => {
    const compare = async () => {
      const { rows } = await t.superuser.query<{ kept: string; named: string }>(
        `select (${KEPT}) as kept, (${NAMED}) as named`,
      );
      const kept = JSON.parse(rows[0].kept) as Array<[string, string, string, Record<string, number> | null]>;
      expect(kept).toEqual(JSON.parse(rows[0].named));
      return kept;
    };
    const before = await compare();
    expect(before.filter((k) => k[3] !== null).length).toBeGreaterThan(50);
    expect(before.filter((k) => k[3] === null).length).toBeGreaterThan(50);
    // Names and days with one actor, then with one action, and then with both, each given another
    // actor's entries of another action, named one entry a round: each row goes from one of each
    // to more than one (its first entries then counted from its entries by action or by actor).
    const single = (column: "actor_entries" | "action_entries") =>
      `e.tenant_id = $1 and (e.tenant_id, (e.occurred_at at time zone 'UTC')::date, e.resource_label) in (
         select l.tenant_id, l.day, l.label from app_private.audit_label_days l
         where (select count(*) from jsonb_object_keys(l.${column})) = 1 order by l.day, l.label limit 6)`;
    expect(await copyEntries(single("actor_entries"), "'late@crowd.test'", "'evidence.deleted'")).toBeGreaterThan(0);
    expect(await copyEntries(single("action_entries"), "'later@crowd.test'", "'milestone.completed'")).toBeGreaterThan(
      0,
    );
    await sealAndName(1);
    const after = await compare();
    expect(after.filter((k) => k[3] !== null).length).toBeGreaterThan(before.filter((k) => k[3] !== null).length);
  });

  it("adds up a name and day's entries per action and actor as they come, null while it has one action or one actor (000103)", async () => {
    const entry = fc.record({
      action: fc.constantFrom("incident.updated", "incident.created", "evidence.uploaded"),
      actor: fc.constantFrom("ana@x.test", "system", "a b@x.test"),
      n: fc.integer({ min: 1, max: 5 }),
    });
    /** One round's entries of a name and day as the namer writes them (joint only with more than one of each). */
    const sums = (entries: Array<{ action: string; actor: string; n: number }>) => {
      const add = (into: Record<string, number>, key: string, n: number) => {
        into[key] = (into[key] ?? 0) + n;
      };
      const actions: Record<string, number> = {};
      const actors: Record<string, number> = {};
      const joint: Record<string, number> = {};
      for (const e of entries) {
        add(actions, e.action, e.n);
        add(actors, e.actor, e.n);
        add(joint, `${e.action} ${e.actor}`, e.n);
      }
      const many = Object.keys(actions).length > 1 && Object.keys(actors).length > 1;
      return { actions, actors, joint: many ? joint : null };
    };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(entry, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }),
        async (rounds) => {
          let kept = sums(rounds[0]);
          for (let i = 1; i < rounds.length; i++) {
            const next = sums(rounds[i]);
            const { rows } = await t.superuser.query<{ joint: Record<string, number> | null }>(
              `select app_private.audit_add_joint_entries($1, $2, $3, $4, $5, $6) as joint`,
              [kept.actions, kept.actors, kept.joint, next.actions, next.actors, next.joint].map((x) =>
                x === null ? null : JSON.stringify(x),
              ),
            );
            const all = sums(rounds.slice(0, i + 1).flat());
            kept = { actions: all.actions, actors: all.actors, joint: rows[0].joint };
            expect(rows[0].joint).toEqual(all.joint);
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it("counts a word with actions and people from those kept entries as the log does, the window's edge days from the log (000103)", async () => {
    const { rows: edges } = await t.superuser.query<{ first: Date; last: Date }>(
      "select min(occurred_at) as first, max(occurred_at) as last from app_public.audit_log where tenant_id = $1",
      [tenant.id],
    );
    const first = edges[0].first.getTime();
    const length = edges[0].last.getTime() - first;
    const day = (at: number) => `${new Date(at).toISOString().slice(0, 10)}T00:00:00.000Z`;
    const windows: Array<Record<string, string>> = [
      {},
      // off the days' edges, on them, and within one day
      {
        occurredAfter: new Date(first + 0.2 * length + 7 * 3_600_000).toISOString(),
        occurredBefore: new Date(first + 0.7 * length + 5 * 3_600_000).toISOString(),
      },
      { occurredAfter: day(first + 0.3 * length), occurredBefore: day(first + 0.9 * length) },
      { occurredAfter: new Date(first + 0.5 * length).toISOString() },
      { occurredBefore: day(first + 0.6 * length) },
      {
        occurredAfter: day(first + 0.4 * length),
        occurredBefore: new Date(Date.parse(day(first + 0.4 * length)) + 20 * 3_600_000).toISOString(),
      },
    ];
    const people: Array<Record<string, string>> = [
      { action: "incident.updated", actorLabel: "ana@joint.test" },
      { actionPrefix: "incident", actorLabel: "odd-7@crowd.test" },
      { actionPrefix: "e", actorContains: "BEN" },
      // every person but the system (a few left out), and 40 of the log's 49 actors
      { action: "incident.updated", actorContains: "@" },
      { actionPrefix: "incident", actorContains: "crowd" },
      // 20 of them, 29 left out (neither few)
      { actionPrefix: "e", actorContains: "odd-" },
      { action: "export.requested", actorContains: "even-" },
    ];
    let counted = 0;
    for (const word of ["ransomware", "capture-", "LAPTOP", "#1", "e-1", "on f", "early warning: d"]) {
      for (const who of people) {
        for (const window of windows) {
          const condition = { resourceLabelContains: word, ...who, ...window };
          const right = await countLog(t.superuser, tenant.id, condition);
          expect(await countNames(condition), JSON.stringify(condition)).toBe(right);
          counted += Number(right);
        }
      }
    }
    expect(counted).toBeGreaterThan(1000);

    // Over whole days they are read from the names' kept entries alone (per action and actor, or by
    // action or by actor), or from their shapes' (a word without digits, 000105): with every kept
    // number doubled, so is each count.
    const scale = async (by: "* 2" | "/ 2") => {
      for (const table of ["audit_label_days", "audit_shape_days"]) {
        await t.superuser.query(
          `update app_private.${table}
           set entries = entries ${by},
               action_entries = (select jsonb_object_agg(j.key, j.value::bigint ${by}) from jsonb_each_text(action_entries) j),
               actor_entries = (select jsonb_object_agg(j.key, j.value::bigint ${by}) from jsonb_each_text(actor_entries) j),
               joint_entries = (select jsonb_object_agg(j.key, j.value::bigint ${by}) from jsonb_each_text(joint_entries) j)
           where tenant_id = $1`,
          [tenant.id],
        );
      }
    };
    // (Two characters, "#1", are added up from the people's pairs instead, 000104.)
    const probes = ["ransomware", " #1", "capture-"].flatMap((word) =>
      people.map((who) => ({ resourceLabelContains: word, ...who })),
    );
    const rights = await Promise.all(probes.map((c) => countLog(t.superuser, tenant.id, c)));
    expect(rights.filter((n) => n !== "0").length).toBeGreaterThan(10);
    await scale("* 2");
    try {
      for (const [i, c] of probes.entries())
        expect(await countNames(c), JSON.stringify(c)).toBe(String(2 * Number(rights[i])));
    } finally {
      await scale("/ 2");
    }
    for (const [i, c] of probes.entries()) expect(await countNames(c), JSON.stringify(c)).toBe(rights[i]);
  });
});
