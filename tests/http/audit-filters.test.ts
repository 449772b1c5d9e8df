/**
 * The Audit Log page's filters, positions, counts and time zone against a generated tenant of a
 * few thousand entries (bench/history.ts, the bulk path bench:pages uses at 10M): for random
 * combinations of every filter, the entries shown and the pages after them are exactly those a
 * plain SQL query over the log gives, in the same order; counts are exact or honestly capped.
 * Also: the SQL functions behind the page answer nobody but the tenant's owners and admins, and
 * "new entries" counts what was recorded since the page was shown.
 */
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoadedTenant, loadHistory } from "../../bench/history.ts";
import { withContext } from "../../src/db/context.ts";
import { filterJson } from "../../src/web/pages/audit-query.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const ENTRIES = 3000;

describe.each(servers())("Audit Log filters on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let gen: LoadedTenant;
  let other: LoadedTenant;
  let cookie: string;
  let incidentId: string;
  let someIp: string;

  beforeAll(async () => {
    t = await createTestDatabase(server);
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      [gen, other] = await loadHistory(client, {
        tenants: [
          { slug: "gen", name: "Generated", entries: ENTRIES },
          { slug: "other", name: "Other", entries: 500 },
        ],
        days: 60,
      });
    } finally {
      await client.end();
    }
    await sealAll(t.pools.owner);
    web = await startTestServer(t);
    cookie = `attest_session=${gen.adminSession}`;
    const { rows } = await t.superuser.query(
      `select incident_id::text, host(ip) as ip from app_public.audit_log
       where tenant_id = $1 and incident_id is not null order by id limit 1 offset 100`,
      [gen.id],
    );
    incidentId = rows[0].incident_id;
    someIp = rows[0].ip;
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const page = async (query: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${web.url}/t/gen/audit${query ? `?${query}` : ""}`, {
      headers: { Cookie: cookie, ...headers },
    });
    expect(response.status, query).toBe(200);
    return response.text();
  };
  const idsOf = (html: string) => [...html.matchAll(/data-entry="(\d+)"/g)].map((m) => m[1]);
  const link = (html: string, label: string) => {
    const m = new RegExp(`<a href="([^"]+)"[^>]*>${label}</a>`).exec(html);
    return m ? m[1].replaceAll("&amp;", "&").replace(/^\/t\/gen\/audit\??/, "") : null;
  };
  const countOf = (html: string) => {
    const m = /<strong>(?:([\d,]+|more than [\d,]+) (?:entry|entries)|(Matches not counted))<\/strong>/.exec(html);
    return m ? (m[1] ?? m[2]) : undefined;
  };

  interface Combo {
    q: string;
    actions: string[];
    actor: string;
    incident: boolean;
    surface: string;
    ip: boolean;
    window: "" | "range" | "dates";
  }

  /** The same filter as plain SQL over the log (superuser), in page order. */
  async function reference(c: Combo): Promise<string[]> {
    const where = ["tenant_id = $1"];
    const params: unknown[] = [gen.id];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replaceAll("$?", `$${params.length}`));
    };
    if (c.q) {
      add(
        `(action ilike $? or actor_label ilike $? or resource_label ilike $?
          or actor_label in (select u.email from app_public.memberships m join app_public.users u on u.id = m.user_id
                             where m.tenant_id = $1 and u.name ilike $?)
          or incident_id in (select i.id from app_public.incidents i where i.tenant_id = $1 and i.title ilike $?
                             and (select count(*) from app_public.incidents j where j.tenant_id = $1 and j.title ilike $?) <= 50))`,
        `%${c.q}%`,
      );
    }
    if (c.actions.length > 0) add("action = any ($?)", c.actions);
    if (c.actor) add("actor_label = $?", c.actor);
    if (c.incident) add("incident_id = $?", incidentId);
    if (c.surface) add("surface = $?", c.surface);
    if (c.ip) add("ip = $?::inet", someIp);
    if (c.window === "range") where.push("occurred_at >= now() - interval '7 days'");
    if (c.window === "dates") {
      add("occurred_at >= $?::date", new Date(Date.now() - 20 * 86_400_000).toISOString().slice(0, 10));
      add("occurred_at < $?::date + 1", new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10));
    }
    const { rows } = await t.superuser.query(
      `select id::text from app_public.audit_log where ${where.join(" and ")} order by occurred_at desc, id desc`,
      params,
    );
    return rows.map((r) => r.id as string);
  }

  function queryOf(c: Combo): string {
    const p = new URLSearchParams();
    if (c.q) p.set("q", c.q);
    for (const a of c.actions) p.append("action", a);
    if (c.actor) p.set("actor", c.actor);
    if (c.incident) p.set("incident", incidentId);
    if (c.surface) p.set("surface", c.surface);
    if (c.ip) p.set("ip", someIp);
    if (c.window === "range") p.set("range", "7d");
    if (c.window === "dates") {
      p.set("from", new Date(Date.now() - 20 * 86_400_000).toISOString().slice(0, 10));
      p.set("to", new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10));
    }
    p.set("tz", "UTC");
    return p.toString();
  }

  const combo = fc.record({
    q: fc.constantFrom(
      "",
      "",
      "zanzibar",
      "ransomware",
      "RANSOM",
      "laptop",
      "io",
      "early warning",
      "ana@",
      "Larsen",
      "capture-1",
      "updated",
      "nothing-matches-this",
    ),
    actions: fc.subarray(["incident.updated", "evidence.uploaded", "evidence.deleted", "session.signed_in"], {
      maxLength: 2,
    }),
    actor: fc.constantFrom("", "", "chen@gen.test", "system"),
    incident: fc.constantFrom(false, false, true),
    surface: fc.constantFrom("", "", "api", "web"),
    ip: fc.constantFrom(false, false, false, true),
    window: fc.constantFrom<Combo["window"]>("", "", "range", "dates"),
  });

  it("shows exactly the matching entries, newest first, page after page, for any combination of filters", async () => {
    await fc.assert(
      fc.asyncProperty(combo, async (c) => {
        const expected = await reference(c);
        const query = queryOf(c);
        const first = await page(query);
        expect(idsOf(first), query).toEqual(expected.slice(0, 25));
        const count = countOf(first);
        if (count === undefined) throw new Error(`no count on ${query}`);
        if (/^[\d,]+$/.test(count)) expect(Number(count.replaceAll(",", "")), query).toBe(expected.length);
        else if (count.startsWith("more than")) expect(expected.length).toBeGreaterThan(10_000);
        // The next page, and back.
        const older = link(first, "Older →");
        expect(older !== null, query).toBe(expected.length > 25);
        if (older) {
          const second = await page(older);
          expect(idsOf(second), older).toEqual(expected.slice(25, 50));
          expect(idsOf(await page(link(second, "← Newer") as string)), older).toEqual(expected.slice(0, 25));
        }
        // The oldest page.
        if (expected.length > 25) {
          const oldest = await page(link(first, "Oldest »") as string);
          expect(idsOf(oldest), query).toEqual(expected.slice(-25));
        }
      }),
      { numRuns: 40, seed: 11 },
    );
  });

  it("counts from the kept activity agree with the log, and the chart adds up to the count", async () => {
    const all = await page("tz=UTC");
    const { rows } = await t.superuser.query(
      "select count(*)::int as n from app_public.audit_log where tenant_id = $1",
      [gen.id],
    );
    expect(countOf(all)).toBe(rows[0].n.toLocaleString("en-US"));
    // The last 30 days in the chart: each bar's title is "<day>: <n> entries".
    const month = await page("tz=UTC&range=30d&action=incident.updated");
    const bars = [...month.matchAll(/<title>(\d{4}-\d{2}-\d{2}): ([\d,]+) entr/g)].map((m) => [
      m[1],
      Number(m[2].replaceAll(",", "")),
    ]);
    const { rows: perDay } = await t.superuser.query(
      `select to_char((occurred_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day, count(*)::int as n
       from app_public.audit_log where tenant_id = $1 and action = 'incident.updated'
         and (occurred_at at time zone 'UTC')::date > (now() at time zone 'UTC')::date - 30
       group by 1 order by 1`,
      [gen.id],
    );
    for (const { day, n } of perDay) expect(bars.find((b) => b[0] === day)?.[1], day).toBe(n);
  });

  it("counts a user's and actions' entries in any From/To window exactly, from the kept counts and the log", async () => {
    // Changes not sealed yet (the count reads those from the log).
    const changed = await t.superuser.query(
      `update app_public.incidents set severity = case severity when 'low' then 'high' else 'low' end
       where tenant_id = $1 and id in (select id from app_public.incidents where tenant_id = $1 and deleted_at is null order by id desc limit 2)`,
      [gen.id],
    );
    expect(changed.rowCount).toBe(2);
    const minute = 60_000;
    const now = Math.floor(Date.now() / minute) * minute;
    // A local time (UTC here) a whole number of minutes from now: mostly not on a whole hour or day.
    const at = fc.option(
      fc.integer({ min: -60 * 24 * 70, max: 60 * 24 }).map((m) => new Date(now + m * minute)),
      {
        nil: null,
      },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(["incident.updated", "evidence.uploaded", "evidence.deleted", "session.signed_in", "no.such"], {
          maxLength: 3,
        }),
        fc.constantFrom("", "chen@gen.test", "system", "nobody@nowhere.test"),
        at,
        at,
        async (actions, actor, from, to) => {
          const p = new URLSearchParams({ tz: "UTC" });
          for (const a of actions) p.append("action", a);
          if (actor) p.set("actor", actor);
          const local = (d: Date) => d.toISOString().slice(0, 16);
          if (from) p.set("from", local(from));
          if (to) p.set("to", local(to));
          const { rows } = await t.superuser.query<{ n: number }>(
            `select count(*)::int as n from app_public.audit_log
             where tenant_id = $1 and ($2::text[] is null or action = any ($2)) and ($3::text is null or actor_label = $3)
               and ($4::timestamptz is null or occurred_at >= $4)
               and ($5::timestamptz is null or occurred_at < $5::timestamptz + interval '1 minute')`,
            [gen.id, actions.length > 0 ? actions : null, actor || null, from, to],
          );
          expect(countOf(await page(p.toString())), p.toString()).toBe(rows[0].n.toLocaleString("en-US"));
        },
      ),
      { numRuns: 60, seed: 17 },
    );
  });

  it("shows every time, the From/To range and the chart in one time zone, with a UTC switch", async () => {
    const { rows } = await t.superuser.query(
      `select id::text, to_char(occurred_at at time zone 'Asia/Kolkata', 'YYYY-MM-DD HH24:MI:SS') as kolkata,
              to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') as utc
       from app_public.audit_log where tenant_id = $1 order by occurred_at desc, id desc limit 1`,
      [gen.id],
    );
    const kolkata = await page("tz=Asia/Kolkata");
    expect(kolkata).toContain("Asia/Kolkata (UTC+05:30)");
    expect(idsOf(kolkata)[0]).toBe(rows[0].id);
    expect(kolkata).toContain(`>${rows[0].kolkata}</time>`);
    expect(kolkata).toContain('href="/t/gen/audit?tz=UTC"');
    // The browser's zone, from the cookie attest.js sets, when the URL names none.
    const byCookie = await page("", { Cookie: `${cookie}; attest_tz=Asia%2FKolkata` });
    expect(byCookie).toContain(`>${rows[0].kolkata}</time>`);
    expect(await page("tz=UTC")).toContain(`>${rows[0].utc}</time>`);
    // An unknown zone is UTC, not an error.
    expect(await page("tz=Mars%2FOlympus")).toContain(`>${rows[0].utc}</time>`);
    // A day in the page's zone: entries from its midnight to the next.
    const day = new Date(Date.now() - 5 * 86_400_000).toISOString().slice(0, 10);
    const { rows: inDay } = await t.superuser.query(
      `select id::text from app_public.audit_log where tenant_id = $1
         and occurred_at >= ($2::date)::timestamp at time zone 'Asia/Kolkata'
         and occurred_at < ($2::date + 1)::timestamp at time zone 'Asia/Kolkata'
       order by occurred_at desc, id desc`,
      [gen.id, day],
    );
    const html = await page(`tz=Asia/Kolkata&from=${day}&to=${day}`);
    expect(idsOf(html)).toEqual(inDay.slice(0, 25).map((r) => r.id));
    expect(countOf(html)).toBe(inDay.length.toLocaleString("en-US"));
  });

  it("tells how many entries were recorded since the page was shown", async () => {
    const first = await page("tz=UTC");
    const updates = /hx-get="([^"]*\/audit\/updates[^"]*)"/.exec(first)?.[1].replaceAll("&amp;", "&") as string;
    expect(updates).toMatch(/since=\d+/);
    const poll = async () =>
      (await fetch(`${web.url}${updates}`, { headers: { Cookie: cookie, "HX-Request": "true" } })).text();
    expect(await poll()).toBe("");
    await withContext(t.pools.owner, { surface: "sql" }, (c) =>
      c.query("insert into app_public.incidents (tenant_id, title) values ($1, 'New one'), ($1, 'New two')", [gen.id]),
    );
    expect(await poll()).toContain("2 new entries");
    const junk = await fetch(`${web.url}/t/gen/audit/updates?since=abc`, { headers: { Cookie: cookie } });
    expect(junk.status).toBe(400);
  });

  it("finds every matching entry in order when each call may read only a short stretch (scan_end cursors)", async () => {
    // audit_find reads at most p_scan entries a call; where it stops short it says so (scan_end),
    // and going on from there, newest first or oldest first, yields exactly the matches.
    const find = (filter: Record<string, unknown>, cursor: { at: string; id: string } | null, ascending: boolean) =>
      withContext(
        t.pools.auth,
        { role: t.db.roles.visitor, sessionToken: gen.adminSession, tenant: "gen", surface: "sql" },
        async (c) =>
          (
            await c.query<{ at: string; id: string; scan_end: boolean }>(
              "select occurred_at::text as at, id::text, scan_end from app_hidden.audit_find($1, $2::timestamptz, $3::bigint, $4, 25, 37)",
              [filter, cursor?.at ?? null, cursor?.id ?? null, ascending],
            )
          ).rows,
      );
    await fc.assert(
      fc.asyncProperty(combo, fc.boolean(), async (drawn, ascending) => {
        const c = { ...drawn, window: "" as const };
        const filter = filterJson(
          {
            q: c.q,
            actions: c.actions,
            actor: c.actor,
            incident: c.incident ? incidentId : "",
            surface: c.surface,
            ip: c.ip ? someIp : "",
            range: "",
            from: "",
            to: "",
          },
          { from: null, to: null },
        );
        const expected = await reference(c);
        if (ascending) expected.reverse();
        const found: string[] = [];
        let cursor: { at: string; id: string } | null = null;
        for (let calls = 0; ; calls++) {
          expect(calls, JSON.stringify(filter)).toBeLessThan(2 + ENTRIES / 10);
          const rows = await find(filter, cursor, ascending);
          found.push(...rows.filter((r) => !r.scan_end).map((r) => r.id));
          const last = rows[rows.length - 1];
          if (!last || (!last.scan_end && rows.length < 25)) break;
          // Going on moves on: the next call starts past this one's last row.
          if (cursor)
            expect([last.at, Number(last.id)], JSON.stringify(filter)).not.toEqual([cursor.at, Number(cursor.id)]);
          cursor = { at: last.at, id: last.id };
        }
        expect(found, JSON.stringify(filter)).toEqual(expected);
      }),
      { numRuns: 40, seed: 7 },
    );
  });

  it("answers the page's SQL functions for the tenant's owners and admins only", async () => {
    const as = (session: string | undefined, tenant: string | undefined, sql: string, params: unknown[] = []) =>
      withContext(
        t.pools.auth,
        { role: t.db.roles.visitor, sessionToken: session, tenant, surface: "sql" },
        async (c) => (await c.query(sql, params)).rows,
      );
    const calls: Array<[string, unknown[]]> = [
      ["select count(*)::int as n from app_hidden.audit_find('{}', null, null, false, 100000)", []],
      ["select app_hidden.audit_count('{}', 100000)::int as n", []],
      ["select coalesce(sum(entries), 0)::int as n from app_hidden.audit_activity(null, null, null)", []],
      ["select app_hidden.audit_activity_total(null, null, null)::int as n", []],
      ["select coalesce(sum(entries), 0)::int as n from app_hidden.audit_activity_days(null, null, null, 'UTC')", []],
      ["select app_hidden.audit_entry_count()::int as n", []],
      ["select cardinality(app_hidden.audit_actors_matching('%'))::int as n", []],
      ["select count(*)::int as n from app_hidden.audit_label_matches('%')", []],
    ];
    for (const [sql] of calls) {
      const [mine] = await as(gen.adminSession, "gen", sql);
      expect(mine.n, sql).toBeGreaterThan(0);
      // Another tenant's admin, asking for their own tenant, gets only theirs; for this one, nothing.
      const [theirs] = await as(other.adminSession, "other", sql);
      const [cross] = await as(other.adminSession, "gen", sql);
      expect(cross.n, sql).toBe(0);
      if (!sql.includes("actors_matching")) expect(theirs.n, sql).not.toBe(mine.n);
      const [anonymous] = await as(undefined, "gen", sql);
      expect(anonymous.n, sql).toBe(0);
    }
    // A member of the tenant (not owner/admin) sees nothing either.
    const { rows } = await t.superuser.query(
      "insert into app_private.sessions (token_hash, user_id) select sha256('member-session'), id from app_public.users where email = 'ana@gen.test' returning id",
    );
    expect(rows).toHaveLength(1);
    for (const [sql] of calls) {
      const [member] = await as("member-session", "gen", sql);
      expect(member.n, sql).toBe(0);
    }
  });

  it("adds up the kept activity exactly as the log counts it, for any actions, whole-hour window and time zone", async () => {
    // Fresh changes, captured and not yet sealed, so that the functions' live part counts too.
    const changed = await t.superuser.query(
      `update app_public.incidents set title = title || '.'
       where tenant_id = $1 and id in (select id from app_public.incidents where tenant_id = $1 and deleted_at is null order by id limit 3)`,
      [gen.id],
    );
    expect(changed.rowCount).toBe(3);
    const [pending] = (
      await t.superuser.query(
        `select count(*)::int as n from app_public.audit_log e
         where e.tenant_id = $1 and not exists (select 1 from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id)`,
        [gen.id],
      )
    ).rows;
    expect(pending.n).toBeGreaterThanOrEqual(3);
    const as = <T>(sql: string, params: unknown[]) =>
      withContext(
        t.pools.auth,
        { role: t.db.roles.visitor, sessionToken: gen.adminSession, tenant: "gen", surface: "sql" },
        async (c) => (await c.query(sql, params)).rows as T[],
      );
    const hour = 3_600_000;
    const now = Math.floor(Date.now() / hour) * hour;
    const at = fc.option(fc.integer({ min: -24 * 120, max: 24 }).map((h) => new Date(now + h * hour).toISOString()));
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(["incident.updated", "evidence.uploaded", "evidence.deleted", "session.signed_in", "no.such"]),
        at,
        at,
        fc.constantFrom("UTC", "Europe/Berlin", "Asia/Tokyo", "America/New_York", "Asia/Kolkata"),
        async (actions, from, to, zone) => {
          const params = [from, to, actions.length > 0 ? actions : null];
          const [truth] = await as<{ n: number; days: Array<{ day: string; n: number }> | null }>(
            `select count(*)::int as n,
                    (select json_agg(json_build_object('day', d.day, 'n', d.n) order by d.day) from (
                       select to_char((date_trunc('hour', e.occurred_at, 'UTC') at time zone $4)::date, 'YYYY-MM-DD') as day, count(*)::int as n
                       from app_public.audit_log e
                       where ($1::timestamptz is null or e.occurred_at >= $1) and ($2::timestamptz is null or e.occurred_at < $2)
                         and ($3::text[] is null or e.action = any ($3))
                       group by 1) d) as days
             from app_public.audit_log e
             where ($1::timestamptz is null or e.occurred_at >= $1) and ($2::timestamptz is null or e.occurred_at < $2)
               and ($3::text[] is null or e.action = any ($3))`,
            [...params, zone],
          );
          const [total] = await as<{ n: number }>(
            "select app_hidden.audit_activity_total($1, $2, $3)::int as n",
            params,
          );
          expect(total.n, JSON.stringify(params)).toBe(truth.n);
          const days = await as<{ day: string; n: number }>(
            "select to_char(day, 'YYYY-MM-DD') as day, entries::int as n from app_hidden.audit_activity_days($1, $2, $3, $4) order by day",
            [...params, zone],
          );
          expect(days, JSON.stringify([...params, zone])).toEqual(truth.days ?? []);
        },
      ),
      { numRuns: 60, seed: 11 },
    );
  });
});
