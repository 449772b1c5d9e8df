/**
 * Members (/t/:slug/members): everyone in the tenant sees who belongs to it and with which role.
 * The owner can invite an existing Attest user by email (app_public.add_member), change a
 * member's role and remove a member. The database keeps at least one owner ("a tenant must keep
 * at least one owner"); that refusal is shown next to the list. Row-level security decides
 * everything; the role check here only picks the page (read-only list, or 403 for a POST).
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { aRole, type FormProblem, formProblem, formText, idParam, isoUtc } from "./settings-forms.ts";
import { pageOf, type Role, redirectWithNotice, renderPage } from "./tenant-page.ts";

const TITLE = "Members";
const NAV = "members";
export const ROLES: Role[] = ["owner", "admin", "member", "viewer"];

export const ROLE_HINTS: Record<Role, string> = {
  owner: "everything, and manages members",
  admin: "everything except members: audit log, webhooks, API tokens, exports",
  member: "creates and edits incidents, evidence and milestones",
  viewer: "reads incidents and evidence",
};

export interface MemberRow {
  user_id: string;
  email: string;
  name: string;
  role: Role;
  joined_at: string;
}

export interface InviteForm {
  email: string;
  role: string;
}

export async function readMembers(client: pg.ClientBase): Promise<MemberRow[]> {
  const { rows } = await client.query<MemberRow>(
    `select m.user_id, u.email, u.name, m.role, ${isoUtc("m.created_at")} as joined_at
     from app_public.memberships m
     join app_public.users u on u.id = m.user_id
     order by array_position(array['owner', 'admin', 'member', 'viewer'], m.role), u.email`,
  );
  return rows;
}

async function renderMembers(
  ctx: Koa.Context,
  extra: {
    status?: number;
    invite?: InviteForm;
    inviteError?: string;
    /** A refused change to one member (role or removal), shown above the list and on the row. */
    rowError?: { userId: string; message: string };
  } = {},
) {
  const page = pageOf(ctx);
  const members = await page.tx((c) => readMembers(c));
  renderPage(
    ctx,
    "pages/members",
    {
      members,
      roles: ROLES,
      roleHints: ROLE_HINTS,
      owners: members.filter((m) => m.role === "owner").length,
      canManage: page.shell.role === "owner",
      base: `/t/${page.shell.tenant.slug}/members`,
      invite: extra.invite ?? { email: "", role: "member" },
      inviteError: extra.inviteError,
      rowError: extra.rowError,
    },
    { title: TITLE, nav: NAV, status: extra.status },
  );
}

/** Non-owners get the 403 page for member changes (the database would refuse them too). */
function renderedForNonOwner(ctx: Koa.Context): boolean {
  const { shell } = pageOf(ctx);
  if (shell.role === "owner") return false;
  renderPage(
    ctx,
    "pages/error",
    {
      heading: "Only owners can change members",
      message: `You are ${aRole(shell.role)} of ${shell.tenant.name}. Ask an owner to invite, remove or change the role of a member.`,
    },
    { title: TITLE, nav: NAV, status: 403 },
  );
  return true;
}

/** The member's row, read as the signed-in user, or undefined when they are not a member. */
async function memberOf(client: pg.ClientBase, userId: string) {
  const { rows } = await client.query<{ email: string; role: Role }>(
    `select u.email, m.role from app_public.memberships m join app_public.users u on u.id = m.user_id
     where m.user_id = $1`,
    [userId],
  );
  return rows[0];
}

export function memberRoutes(router: Router): void {
  router.get("/members", async (ctx) => {
    await renderMembers(ctx);
  });

  router.post("/members", async (ctx) => {
    if (renderedForNonOwner(ctx)) return;
    const { shell } = pageOf(ctx);
    const invite: InviteForm = { email: formText(ctx, "email", 320), role: formText(ctx, "role", 20) };
    if (!invite.email) {
      return renderMembers(ctx, { status: 400, invite, inviteError: "Enter the email address of an Attest user." });
    }
    let added: { email: string; role: string };
    try {
      added = await pageOf(ctx).tx(async (c) => {
        const { rows } = await c.query<{ role: string }>("select role from app_public.add_member($1, $2)", [
          invite.email,
          invite.role || "member",
        ]);
        return { email: invite.email.toLowerCase(), role: rows[0].role };
      });
    } catch (error) {
      const problem = formProblem(error);
      if (!problem) throw error;
      return renderMembers(ctx, { status: problem.status, invite, inviteError: problem.message });
    }
    redirectWithNotice(
      ctx,
      `/t/${shell.tenant.slug}/members`,
      `${added.email} is now ${aRole(added.role)} of ${shell.tenant.name}.`,
    );
  });

  router.post("/members/:userId/role", async (ctx) => {
    if (renderedForNonOwner(ctx)) return;
    const page = pageOf(ctx);
    const { shell } = page;
    const userId = idParam(ctx, "userId", "member");
    const role = formText(ctx, "role", 20);
    const base = `/t/${shell.tenant.slug}/members`;
    if (!ROLES.includes(role as Role)) {
      return renderMembers(ctx, {
        status: 400,
        rowError: { userId, message: "Choose one of the roles owner, admin, member or viewer." },
      });
    }
    let outcome: { email: string; from: Role } | undefined;
    try {
      outcome = await page.tx(async (c) => {
        const member = await memberOf(c, userId);
        if (!member) return undefined;
        if (member.role !== role) {
          await c.query("update app_public.memberships set role = $2 where user_id = $1", [userId, role]);
        }
        return { email: member.email, from: member.role };
      });
    } catch (error) {
      return refused(ctx, error, userId, "change the role of");
    }
    if (!outcome) return redirectWithNotice(ctx, base, "That person is no longer a member.", "error");
    if (outcome.from === role) return redirectWithNotice(ctx, base, `${outcome.email} already is ${aRole(role)}.`);
    const self = userId === shell.user.id;
    redirectWithNotice(
      ctx,
      base,
      self
        ? `You are now ${aRole(role)} of ${shell.tenant.name}.`
        : `${outcome.email} is now ${aRole(role)} (was ${outcome.from}).`,
    );
  });

  router.post("/members/:userId/remove", async (ctx) => {
    if (renderedForNonOwner(ctx)) return;
    const page = pageOf(ctx);
    const { shell } = page;
    const userId = idParam(ctx, "userId", "member");
    const base = `/t/${shell.tenant.slug}/members`;
    let removed: { email: string } | undefined;
    try {
      removed = await page.tx(async (c) => {
        const member = await memberOf(c, userId);
        if (!member) return undefined;
        await c.query("delete from app_public.memberships where user_id = $1", [userId]);
        return member;
      });
    } catch (error) {
      return refused(ctx, error, userId, "remove");
    }
    if (!removed) return redirectWithNotice(ctx, base, "That person is no longer a member.", "error");
    // Someone who removed themselves can no longer open this tenant.
    if (userId === shell.user.id) return redirectWithNotice(ctx, "/", `You left ${shell.tenant.name}.`);
    redirectWithNotice(ctx, base, `${removed.email} was removed from ${shell.tenant.name}.`);
  });
}

/** Shows a refused change (last owner, bad role) on the members page, or rethrows anything else. */
async function refused(ctx: Koa.Context, error: unknown, userId: string, verb: string) {
  const problem: FormProblem | undefined = formProblem(error);
  if (!problem) throw error;
  const member = await pageOf(ctx).tx((c) => memberOf(c, userId));
  const who = member?.email ?? "this member";
  await renderMembers(ctx, {
    status: problem.status,
    rowError: { userId, message: `Could not ${verb} ${who}: ${problem.message.replace(/\.?$/, ".")}` },
  });
}
