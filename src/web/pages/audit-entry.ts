/**
 * One audit entry: its permalink page (/t/:slug/audit/:seq, seq = its position in the tenant's
 * log), the address of an entry that is still pending (/t/:slug/audit/e/:id, by capture number,
 * which redirects to the position once the entry is sealed), its leaf as a download, and the
 * shared pieces the Audit Log list uses to show entries: the columns to read, and the names of
 * the users the entries of a page mention (one query per page, as the viewer: RLS applies).
 * Same access rules as the Audit Log page: owners and admins of a plan with the audit log.
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { type AuditUser, type EntryLike, entryView, type UserDirectory, userIdsOf } from "../../audit/display.ts";
import { UserError } from "../../http/errors.ts";
import { breakable } from "../render.ts";
import { type PageZone, pageZone, zonedTime, zoneQuery } from "./audit-zone.ts";
import { hasFeature, isManager, pageOf, renderPage, wantsFragment } from "./tenant-page.ts";

/**
 * The name the acting API token had when entry `e` was made (from the log's own token entries), as
 * a subquery of the caller's statement: app_public.audit_log_api_token_name(e) as a function would
 * check who may read the log again for every row.
 */
export const API_TOKEN_NAME = `case when e.api_token_id is not null then (
  select t.resource_label from app_public.audit_log t
  where t.tenant_id = e.tenant_id and t.action in ('api_token.created', 'api_token.updated')
    and t.resource_id = e.api_token_id and t.id <= e.id
  order by t.id desc limit 1) end`;

/** The columns of an entry the pages show (`e` = app_public.audit_log, `l` = app_hidden.audit_leaves, left joined). */
export const ENTRY_COLUMNS = `e.id::text as id,
  to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
  e.actor_user_id, e.actor_label, e.api_token_id, e.action, e.resource_type, e.resource_id, e.resource_label,
  e.incident_id, e.changes, e.request_id, host(e.ip) as ip, e.user_agent, e.surface, e.db_role,
  l.seq::text as seq, encode(l.leaf_hash, 'hex') as leaf_hash,
  to_char(l.sealed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as sealed_at`;

export interface EntryRow extends EntryLike {
  /** The capture number (audit_log.id). */
  id: string;
  occurred_at: string;
  actor_user_id: string | null;
  api_token_id: string | null;
  resource_id: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  surface: string;
  db_role: string;
  /** Position in the tenant's log, or null while the entry is pending. */
  seq: string | null;
  leaf_hash: string | null;
  sealed_at: string | null;
}

/**
 * The users the entries mention (actors, creators, members…), in one query, as the viewer sees
 * them: members of the current tenant and the viewer. Others (people who left) stay unnamed.
 */
export async function usersOf(client: pg.ClientBase, entries: Iterable<EntryLike>): Promise<UserDirectory> {
  const ids = userIdsOf(entries);
  if (ids.length === 0) return new Map();
  const { rows } = await client.query<AuditUser>(
    "select u.id, u.name, u.email from app_public.users u where u.id = any($1::uuid[])",
    [ids],
  );
  return new Map(rows.map((u) => [u.id, u]));
}

/** The entry as raw JSON (every column the viewer may read, ids included), for "Show raw JSON". */
export function rawJson(e: EntryRow): string {
  const { seq, leaf_hash, sealed_at, id, ...columns } = e;
  return JSON.stringify(
    { id: Number(id), seq: seq === null ? null : Number(seq), ...columns, leaf_hash, sealed_at },
    null,
    2,
  );
}

/** The permalink of an entry: by position once sealed, by capture number while pending. */
export function entryHref(slug: string, e: Pick<EntryRow, "seq" | "id">): string {
  return e.seq ? `/t/${slug}/audit/${e.seq}` : `/t/${slug}/audit/e/${e.id}`;
}

/**
 * Everything the audit-entry partial needs for one entry, its times in the page's zone (the list's
 * when the entry is opened in the list: its rows and the entry's details agree).
 */
export function entryModel(e: EntryRow, slug: string, users: UserDirectory, zone: PageZone) {
  return {
    e,
    view: entryView(e, { users, slug }),
    raw: rawJson(e),
    href: entryHref(slug, e),
    /** The permalink in the same zone (the zone kept when the address named it). */
    zonedHref: `${entryHref(slug, e)}${zoneQuery(zone)}`,
    zone,
    timeTag: (iso: string, to?: "second" | "minute") => zonedTime(iso, zone.name, to),
  };
}

interface Proof {
  tree_size: string;
  leaf_index: string;
  leaf_hash: string;
  root_hash: string;
  proof: string[];
  checkpoint: string;
  created_at: string;
  key_fingerprint: string;
}

const DIGITS = /^\d{1,18}$/;
const POSITION_HELP = "An entry's address is its position in the log, a whole number such as /audit/42.";

/** A position or capture number from the URL, or a 4xx; `null` means "not ours" (let later routes try). */
function positionParam(raw: string): bigint | null {
  if (/^\d+$/.test(raw)) {
    // Well-formed but beyond any log (more than 18 digits): no such entry.
    if (!DIGITS.test(raw)) throw new UserError(404, `There is no entry ${raw} in this audit log.`, "NOT_FOUND");
    return BigInt(raw);
  }
  return null;
}

/** Answers non-managers and plans without the audit log as the Audit Log page does. */
function gate(ctx: Koa.Context): boolean {
  const { shell } = pageOf(ctx);
  if (!hasFeature(shell, "auditLog")) {
    renderPage(
      ctx,
      "pages/upgrade",
      { feature: "Audit Log", base: `/t/${shell.tenant.slug}/audit` },
      { title: "Audit Log", nav: "audit", status: 403 },
    );
    return false;
  }
  if (!isManager(shell)) {
    renderPage(
      ctx,
      "pages/error",
      {
        heading: "Only owners and admins can see the audit log",
        message: `You are a ${shell.role} of ${shell.tenant.name}. Ask an owner or admin if you need to review its activity.`,
      },
      { title: "Audit Log", nav: "audit", status: 403 },
    );
    return false;
  }
  return true;
}

/** Reads an entry (by position or capture number), its users, and (unless not wanted) its proof when a checkpoint covers it. */
async function readEntry(client: pg.ClientBase, by: { seq: bigint } | { id: bigint }, withProof = true) {
  const where =
    "seq" in by
      ? "l.tenant_id = (select app_public.current_tenant_id()) and l.seq = $1"
      : "e.tenant_id = (select app_public.current_tenant_id()) and e.id = $1";
  const { rows } = await client.query<EntryRow & { leaf: string | null }>(
    `select ${ENTRY_COLUMNS}, app_public.audit_log_leaf(e) as leaf
     from app_public.audit_log e
     ${"seq" in by ? "join" : "left join"} app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
     where ${where}`,
    ["seq" in by ? by.seq.toString() : by.id.toString()],
  );
  const entry = rows[0];
  if (!entry) return null;
  const users = await usersOf(client, [entry]);
  let proof: Proof | null = null;
  if (entry.seq && withProof) {
    // The newest checkpoint covers the entry unless it was sealed a moment ago (then: none yet).
    const covered = await client.query<{ n: string | null }>(
      "select max(tree_size)::text as n from app_public.audit_checkpoints where tenant_id = (select app_public.current_tenant_id())",
    );
    if (covered.rows[0].n !== null && BigInt(covered.rows[0].n) >= BigInt(entry.seq)) {
      const found = await client.query<Proof>(
        `select p.tree_size::text, p.leaf_index::text, p.leaf_hash, p.root_hash, p.proof, p.checkpoint,
                to_char(c.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at, c.key_fingerprint
         from app_public.audit_log e
         cross join lateral app_public.audit_log_inclusion_proof(e) p
         join app_public.audit_checkpoints c on c.tenant_id = e.tenant_id and c.tree_size = p.tree_size
         where e.tenant_id = (select app_public.current_tenant_id()) and e.id = $1`,
        [entry.id],
      );
      proof = found.rows[0] ?? null;
    }
  }
  return { entry, users, proof };
}

export function auditEntryRoutes(router: Router): void {
  const show = async (ctx: Koa.Context, next: Koa.Next, by: "seq" | "id") => {
    const raw = String((ctx.params as Record<string, string>)[by] ?? "");
    const n = positionParam(raw);
    if (n === null) {
      // Not a number: perhaps another route's (e.g. a later /audit/<name>); if none answers, say why.
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new UserError(400, POSITION_HELP, "BAD_USER_INPUT");
      return;
    }
    if (!gate(ctx)) return;
    const page = pageOf(ctx);
    const slug = page.shell.tenant.slug;
    const zone = await pageZone(ctx, page);
    const found = n === 0n ? null : await page.tx((c) => readEntry(c, by === "seq" ? { seq: n } : { id: n }));
    if (!found) {
      throw new UserError(
        404,
        by === "seq"
          ? `There is no entry ${raw} in this audit log (yet): positions run from 1 to the number of sealed entries.`
          : `There is no entry with capture number ${raw} in this audit log.`,
        "NOT_FOUND",
      );
    }
    const { entry, users, proof } = found;
    if (by === "id" && entry.seq) {
      // Sealed since: its address is its position now.
      const location = `/t/${slug}/audit/${entry.seq}${zoneQuery(zone)}`;
      if (wantsFragment(ctx)) {
        ctx.status = 204;
        ctx.set("HX-Location", location);
        return;
      }
      return ctx.redirect(location);
    }
    if (by === "id" && wantsFragment(ctx)) {
      // The pending page asks again every few seconds: nothing changed yet.
      ctx.status = 204;
      return;
    }
    renderPage(
      ctx,
      "pages/audit-entry",
      {
        ...entryModel(entry, slug, users, zone),
        leaf: entry.leaf,
        proof,
        base: `/t/${slug}/audit${zoneQuery(zone)}`,
        breakable,
        // The page in UTC, or in the viewer's zone (the address without ?tz=).
        zoneLinks: { utc: `${ctx.path}?tz=UTC`, local: ctx.path },
      },
      {
        title: entry.seq ? `Audit entry ${entry.seq}` : "Audit entry (pending)",
        nav: "audit",
      },
    );
  };

  router.get("/audit/e/:id", (ctx, next) => show(ctx, next, "id"));

  // An entry's details in the Audit Log list, fetched when its row is first opened (the list
  // itself carries only the rows): by capture number, so pending entries have them too.
  router.get("/audit/e/:id/detail", async (ctx, next) => {
    const raw = String(ctx.params.id ?? "");
    const n = positionParam(raw);
    if (n === null) return next();
    if (!gate(ctx)) return;
    const page = pageOf(ctx);
    const slug = page.shell.tenant.slug;
    const zone = await pageZone(ctx, page);
    const found = n === 0n ? null : await page.tx((c) => readEntry(c, { id: n }, false));
    if (!found)
      throw new UserError(404, `There is no entry with capture number ${raw} in this audit log.`, "NOT_FOUND");
    if (!wantsFragment(ctx)) return ctx.redirect(`${entryHref(slug, found.entry)}${zoneQuery(zone)}`);
    // "All entries of this incident" keeps the list's time zone when the list named one.
    const incident = new URLSearchParams();
    if (found.entry.incident_id) incident.set("incident", found.entry.incident_id);
    if (zone.explicit) incident.set("tz", zone.name);
    renderPage(
      ctx,
      "partials/audit-row-detail",
      {
        ...entryModel(found.entry, slug, found.users, zone),
        incidentHref: found.entry.incident_id ? `/t/${slug}/audit?${incident}` : null,
      },
      { title: "Audit entry", nav: "audit", fragment: "partials/audit-row-detail" },
    );
  });
  router.get("/audit/:seq", (ctx, next) => show(ctx, next, "seq"));

  // The leaf's exact bytes, so `(printf '\0'; cat leaf) | sha256sum` gives the leaf hash.
  router.get("/audit/:seq/leaf", async (ctx, next) => {
    const n = positionParam(String(ctx.params.seq ?? ""));
    if (n === null) return next();
    if (!gate(ctx)) return;
    const page = pageOf(ctx);
    const { rows } = await page.tx((c) =>
      c.query<{ leaf: string | null }>(
        `select app_public.audit_log_leaf(e) as leaf
         from app_hidden.audit_leaves l join app_public.audit_log e on e.tenant_id = l.tenant_id and e.id = l.entry_id
         where l.tenant_id = (select app_public.current_tenant_id()) and l.seq = $1`,
        [n.toString()],
      ),
    );
    const leaf = rows[0]?.leaf;
    if (n === 0n || leaf === undefined || leaf === null) {
      throw new UserError(404, `There is no entry ${n} in this audit log (yet).`, "NOT_FOUND");
    }
    ctx.set("Content-Disposition", `attachment; filename="leaf-${n}.txt"`);
    ctx.set("Content-Security-Policy", "sandbox");
    ctx.type = "application/octet-stream";
    ctx.body = Buffer.from(leaf, "utf8");
  });
}
