/**
 * Members (/t/:slug/members): everyone in the tenant sees who belongs to it and with which role.
 * Owners and admins invite people by email (app_public.invite_member; only an owner invites an
 * owner): the page shows the invitation's link once, for the inviter to pass on, and lists the
 * tenant's invitations with a Revoke button for pending ones. Nobody becomes a member until they
 * accept. The owner changes roles and removes members; the database keeps at least one owner
 * ("a tenant must keep at least one owner"), and that refusal is shown next to the list.
 * Row-level security decides everything; the role checks here only pick the page.
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { ownOrigin } from "../../http/csrf.ts";
import { aRole, type FormProblem, formProblem, formText, idParam, isoUtc } from "./settings-forms.ts";
import { isManager, pageOf, type Role, redirectWithNotice, renderPage } from "./tenant-page.ts";

const TITLE = "Members";
const NAV = "members";
export const ROLES: Role[] = ["owner", "admin", "member", "viewer"];

export const ROLE_HINTS: Record<Role, string> = {
  owner: "everything, and manages members",
  admin:
    "everything except changing members: audit log, webhooks, API tokens, exports; invites admins, members and viewers",
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

export interface InvitationRow {
  id: string;
  email: string;
  role: Role;
  state: "pending" | "accepted" | "declined" | "revoked" | "expired";
  open: boolean;
  invited_by: string | null;
  created_at: string;
  expires_at: string;
  closed_at: string | null;
}

/** A just-created invitation: its link is shown this once. */
export interface CreatedInvitation {
  email: string;
  role: string;
  link: string;
  expires_at: string;
}

/** The tenant's invitations (owner/admin): open ones first, then the 20 most recent others. */
export async function readInvitations(client: pg.ClientBase, tenantId: string): Promise<InvitationRow[]> {
  const { rows } = await client.query<InvitationRow>(
    `select * from (
       select i.id, i.email, i.role, i.state, app_public.invitations_is_open(i) as open,
              app_public.invitations_invited_by_email(i) as invited_by,
              ${isoUtc("i.created_at")} as created_at, ${isoUtc("i.expires_at")} as expires_at,
              ${isoUtc("i.closed_at")} as closed_at,
              row_number() over (partition by app_public.invitations_is_open(i) order by i.created_at desc) as n
       from app_public.invitations i where i.tenant_id = $1) x
     where x.open or x.n <= 20
     order by x.open desc, x.created_at desc`,
    [tenantId],
  );
  return rows;
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
    created?: CreatedInvitation;
  } = {},
) {
  const page = pageOf(ctx);
  const manager = isManager(page.shell);
  const { members, invitations } = await page.tx(async (c) => ({
    members: await readMembers(c),
    invitations: manager ? await readInvitations(c, page.shell.tenant.id) : [],
  }));
  renderPage(
    ctx,
    "pages/members",
    {
      members,
      roles: ROLES,
      roleHints: ROLE_HINTS,
      owners: members.filter((m) => m.role === "owner").length,
      canManage: page.shell.role === "owner",
      canInvite: manager,
      inviteRoles: page.shell.role === "owner" ? ROLES : ROLES.filter((r) => r !== "owner"),
      invitations,
      created: extra.created,
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
      message: `You are ${aRole(shell.role)} of ${shell.tenant.name}. Ask an owner to remove or change the role of a member.`,
    },
    { title: TITLE, nav: NAV, status: 403 },
  );
  return true;
}

/** Members and viewers get the 403 page for invitations (the database would refuse them too). */
function renderedForNonManager(ctx: Koa.Context): boolean {
  const { shell } = pageOf(ctx);
  if (isManager(shell)) return false;
  renderPage(
    ctx,
    "pages/error",
    {
      heading: "Only owners and admins can invite people",
      message: `You are ${aRole(shell.role)} of ${shell.tenant.name}. Ask an owner or admin to invite someone.`,
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
    if (renderedForNonManager(ctx)) return;
    const page = pageOf(ctx);
    const invite: InviteForm = { email: formText(ctx, "email", 320), role: formText(ctx, "role", 20) };
    if (!invite.email) {
      return renderMembers(ctx, {
        status: 400,
        invite,
        inviteError: "Enter the email address of the person to invite.",
      });
    }
    let created: CreatedInvitation;
    try {
      created = await page.tx(async (c) => {
        const { rows } = await c.query<{ email: string; role: string; token: string; expires_at: string }>(
          `select email, role, token, ${isoUtc("expires_at")} as expires_at from app_public.invite_member($1, $2)`,
          [invite.email, invite.role || "member"],
        );
        const row = rows[0];
        return { email: row.email, role: row.role, expires_at: row.expires_at, link: invitationLink(ctx, row.token) };
      });
    } catch (error) {
      const problem = formProblem(error);
      if (!problem) throw error;
      return renderMembers(ctx, { status: problem.status, invite, inviteError: problem.message });
    }
    // The link is shown this once (only its hash is stored): a page, not a redirect.
    await renderMembers(ctx, { status: 201, created });
  });

  router.post("/members/invitations/:invitationId/revoke", async (ctx) => {
    if (renderedForNonManager(ctx)) return;
    const page = pageOf(ctx);
    const id = idParam(ctx, "invitationId", "invitation");
    const base = `/t/${page.shell.tenant.slug}/members`;
    let revoked: { email: string };
    try {
      revoked = await page.tx(async (c) => {
        const { rows } = await c.query<{ email: string }>("select email from app_public.revoke_invitation($1)", [id]);
        return rows[0];
      });
    } catch (error) {
      const problem = formProblem(error);
      if (!problem) throw error;
      return redirectWithNotice(ctx, base, problem.message, "error");
    }
    redirectWithNotice(ctx, base, `The invitation of ${revoked.email} was revoked; its link no longer works.`);
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

/** The link that accepts an invitation, on this server as the inviter reached it. */
export function invitationLink(ctx: Koa.Context, token: string): string {
  return `${ownOrigin(ctx)}/invitations/${token}`;
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
