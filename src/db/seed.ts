/**
 * The demo workspace: tenant `demo` (Business plan, every feature) with an owner, admin, member
 * and viewer, and tenant `basic` (Basic plan, no audit log). Users act through the same role,
 * settings and triggers as the server will, so every change lands in the audit log as it would
 * in real use (surface "seed"). Runs once: it does nothing when the `demo` tenant exists.
 */
import { createHash, randomBytes } from "node:crypto";
import { hash } from "@node-rs/argon2";
import type pg from "pg";
import { writeBlob } from "./blobs.ts";
import { withContext } from "./context.ts";

export const DEMO_PASSWORD = "attest-demo";
export const DEMO_LOGINS = [
  { email: "owner@demo.test", role: "owner", tenant: "demo" },
  { email: "admin@demo.test", role: "admin", tenant: "demo" },
  { email: "member@demo.test", role: "member", tenant: "demo" },
  { email: "viewer@demo.test", role: "viewer", tenant: "demo" },
  { email: "owner@basic.test", role: "owner", tenant: "basic" },
] as const;

const NAMES: Record<string, string> = {
  "owner@demo.test": "Olivia Owner",
  "admin@demo.test": "Adam Admin",
  "member@demo.test": "Mia Member",
  "viewer@demo.test": "Victor Viewer",
  "owner@basic.test": "Bea Basic",
};

interface IncidentPlan {
  title: string;
  severity: "low" | "medium" | "high" | "critical";
  daysAgo: number;
  description: string;
  nis2?: boolean;
  /** Milestones to complete, in order. */
  complete?: Array<"early_warning" | "full_notification" | "final_report">;
  statuses: Array<"in_progress" | "resolved" | "closed">;
  rootCause?: string;
  lessons?: string;
  evidence: Array<{ filename: string; contentType: string; text: string }>;
  deleteEvidence?: boolean;
  deleted?: boolean;
}

const INCIDENTS: IncidentPlan[] = [
  {
    title: "Phishing campaign targeting the finance team",
    severity: "high",
    daysAgo: 5,
    description:
      "Several finance staff received invoices with a credential-harvesting link. Two users entered credentials.",
    nis2: true,
    complete: ["early_warning"],
    statuses: ["in_progress"],
    evidence: [
      {
        filename: "phishing-email.eml",
        contentType: "message/rfc822",
        text: "From: billing@examp1e-invoices.test\nSubject: Overdue invoice 4471\n\nPlease review the attached invoice.",
      },
      {
        filename: "proxy-log-extract.csv",
        contentType: "text/csv",
        text: "time,user,url\n2026-11-20T08:14:03Z,j.doe,http://examp1e-invoices.test/login\n",
      },
    ],
  },
  {
    title: "Ransomware detected on file server FS-02",
    severity: "critical",
    daysAgo: 2,
    description: "EDR flagged mass file renames on FS-02. Host isolated within 12 minutes.",
    nis2: true,
    complete: ["early_warning"],
    statuses: ["in_progress"],
    rootCause: "Exposed RDP on a forgotten jump host.",
    evidence: [
      {
        filename: "edr-alert.json",
        contentType: "application/json",
        text: '{"host":"FS-02","rule":"mass-rename","severity":"critical"}',
      },
      {
        filename: "ransom-note.txt",
        contentType: "text/plain",
        text: "Your files are encrypted. (sample kept for evidence)",
      },
      {
        filename: "isolation-screenshot.txt",
        contentType: "text/plain",
        text: "Host FS-02 isolated at 09:41 UTC by on-call.",
      },
    ],
    deleteEvidence: true,
  },
  {
    title: "DDoS against the customer portal",
    severity: "high",
    daysAgo: 40,
    description: "Volumetric attack saturated the portal's upstream link for 3 hours.",
    nis2: true,
    complete: ["early_warning", "full_notification", "final_report"],
    statuses: ["in_progress", "resolved", "closed"],
    rootCause: "No upstream scrubbing contract for the portal's address range.",
    lessons: "Scrubbing service contracted; runbook updated with provider contacts.",
    evidence: [
      { filename: "traffic-graph.csv", contentType: "text/csv", text: "minute,gbps\n0,0.4\n1,38.2\n2,41.7\n" },
    ],
  },
  {
    title: "Lost laptop with unencrypted backups",
    severity: "medium",
    daysAgo: 3,
    description: "A consultant reported a laptop stolen from a car; it held a local backup folder.",
    nis2: true,
    statuses: ["in_progress"],
    evidence: [
      { filename: "police-report.txt", contentType: "text/plain", text: "Report no. 2026-118842, filed 23 Nov 2026." },
    ],
  },
  {
    title: "Misconfigured storage bucket exposed access logs",
    severity: "medium",
    daysAgo: 12,
    description: "A storage bucket holding load-balancer access logs allowed public listing.",
    statuses: ["in_progress", "resolved"],
    rootCause: "Terraform module default changed in an upgrade.",
    lessons: "Policy-as-code check added to CI for public buckets.",
    evidence: [
      {
        filename: "bucket-policy.json",
        contentType: "application/json",
        text: '{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket"}',
      },
    ],
  },
  {
    title: "Credential stuffing against SSO",
    severity: "high",
    daysAgo: 1,
    description: "Spike of failed logins from residential proxies; 3 accounts without MFA were accessed.",
    statuses: ["in_progress"],
    evidence: [
      {
        filename: "sso-failed-logins.csv",
        contentType: "text/csv",
        text: "hour,failures\n00,120\n01,9840\n02,12011\n",
      },
    ],
  },
  {
    title: "Vendor breach notification: payroll provider",
    severity: "low",
    daysAgo: 8,
    description:
      "Payroll provider reported unauthorised access to a reporting database. Our data scope is being confirmed.",
    statuses: [],
    evidence: [],
  },
  {
    title: "Suspicious admin login from a new country",
    severity: "low",
    daysAgo: 20,
    description: "Admin sign-in from an unusual location; confirmed as the admin travelling.",
    statuses: ["resolved", "closed"],
    rootCause: "False positive: legitimate travel.",
    evidence: [],
  },
  {
    title: "Expired TLS certificate on the API gateway",
    severity: "low",
    daysAgo: 15,
    description: "Certificate expired at 02:00; API clients failed for 47 minutes.",
    statuses: ["in_progress", "resolved", "closed"],
    rootCause: "Renewal job failed silently after a DNS provider change.",
    lessons: "Expiry monitoring with 21-day warning added.",
    evidence: [
      {
        filename: "cert-chain.pem",
        contentType: "application/x-pem-file",
        text: "-----BEGIN CERTIFICATE-----\nMIIB...demo...\n-----END CERTIFICATE-----\n",
      },
    ],
  },
  {
    title: "Malware on a developer workstation",
    severity: "medium",
    daysAgo: 6,
    description: "A malicious npm package postinstall script was flagged on one workstation.",
    statuses: ["in_progress"],
    evidence: [{ filename: "package-lock-diff.txt", contentType: "text/plain", text: '+ "left-pad-utils": "9.9.9"' }],
  },
  {
    title: "Überprüfung der Zugriffsprotokolle — 東京オフィス",
    severity: "medium",
    daysAgo: 4,
    description: "Review of door access logs at the Tokyo office after a tailgating report. Łódź team assisting.",
    statuses: ["in_progress"],
    evidence: [
      {
        filename: "zugangsprotokoll-東京.csv",
        contentType: "text/csv",
        text: "Zeit,Tür,Karte\n08:02,Haupteingang,4471\n",
      },
    ],
  },
  {
    title: "Duplicate report: phishing email",
    severity: "low",
    daysAgo: 5,
    description: "Duplicate of the finance phishing incident.",
    statuses: [],
    evidence: [],
    deleted: true,
  },
];

interface Actor {
  email: string;
  token: string;
}

const USER_AGENTS = [
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0 Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0",
];

export async function isSeeded(owner: pg.Pool): Promise<boolean> {
  const { rows } = await owner.query("select exists (select 1 from app_public.tenants where slug = 'demo') as seeded");
  return rows[0].seeded as boolean;
}

/**
 * Seeds the demo workspace. `owner` acts as the owner role; `auth` logs in as the
 * authenticator and switches to `visitorRole` for every user action.
 */
export async function seedDemoWorkspace(options: {
  owner: pg.Pool;
  auth: pg.Pool;
  visitorRole: string;
  log: (message: string) => void;
}): Promise<boolean> {
  const { owner, auth, visitorRole } = options;
  // One seed at a time per database; a second process waits and then finds it done.
  const lock = await owner.connect();
  try {
    await lock.query("select pg_advisory_lock(hashtext('attest:seed'))");
    if (await isSeeded(owner)) return false;
    options.log("Seeding the demo workspace (tenants demo and basic)");

    const passwordHash = await hash(DEMO_PASSWORD);
    const userIds = new Map<string, string>();
    const actors = new Map<string, Actor>();
    const tenants = new Map<string, string>();
    const seedSessions: string[] = [];

    // Tenants, users and memberships are set up by the system (no user signed in).
    await withContext(owner, { surface: "seed" }, async (client) => {
      for (const [slug, name, plan] of [
        ["demo", "Demo Energy GmbH", "business"],
        ["basic", "Basic Logistics Ltd", "basic"],
      ]) {
        const { rows } = await client.query(
          "insert into app_public.tenants (slug, name, plan_id) values ($1, $2, $3) returning id",
          [slug, name, plan],
        );
        tenants.set(slug, rows[0].id);
      }
      for (const login of DEMO_LOGINS) {
        const { rows } = await client.query("insert into app_public.users (email, name) values ($1, $2) returning id", [
          login.email,
          NAMES[login.email],
        ]);
        userIds.set(login.email, rows[0].id);
        await client.query("insert into app_private.user_secrets (user_id, password_hash) values ($1, $2)", [
          rows[0].id,
          passwordHash,
        ]);
        await client.query("insert into app_public.memberships (tenant_id, user_id, role) values ($1, $2, $3)", [
          tenants.get(login.tenant),
          rows[0].id,
          login.role,
        ]);
        // A short-lived session per demo user so their seeded actions are attributed to them.
        const token = randomBytes(24).toString("base64url");
        const session = await client.query(
          "insert into app_private.sessions (token_hash, user_id, expires_at) values ($1, $2, now() + interval '1 hour') returning id",
          [createHash("sha256").update(token).digest(), rows[0].id],
        );
        seedSessions.push(session.rows[0].id);
        actors.set(login.email, { email: login.email, token });
      }
    });

    let requestNo = 0;
    const as = <T>(email: string, tenant: string, fn: (client: pg.PoolClient) => Promise<T>) => {
      const actor = actors.get(email);
      if (!actor) throw new Error(`unknown demo user ${email}`);
      requestNo++;
      return withContext(
        auth,
        {
          role: visitorRole,
          sessionToken: actor.token,
          tenant: tenants.get(tenant),
          requestId: `seed-${String(requestNo).padStart(4, "0")}`,
          ip: `192.0.2.${10 + (requestNo % 5)}`,
          userAgent: USER_AGENTS[requestNo % USER_AGENTS.length],
          surface: "seed",
        },
        fn,
      );
    };
    const demoTenant = tenants.get("demo") as string;
    const editors = ["owner@demo.test", "admin@demo.test", "member@demo.test"];
    const pick = (i: number) => editors[i % editors.length];

    // The owner invites the admin of demo into basic as a viewer, who accepts (a user in two tenants).
    const invitation = await as("owner@basic.test", "basic", async (c) => {
      const { rows } = await c.query("select id from app_public.invite_member($1, 'viewer')", ["admin@demo.test"]);
      return rows[0].id as string;
    });
    await as("admin@demo.test", "demo", (c) => c.query("select app_public.accept_invitation(id => $1)", [invitation]));

    for (const [i, plan] of INCIDENTS.entries()) {
      const author = pick(i);
      // Incidents that started in the past are recorded as created then (by the system clock of
      // the import): the owner role inserts them with their original creation time.
      const id = await withContext(
        owner,
        {
          sessionToken: actors.get(author)?.token,
          tenant: demoTenant,
          surface: "seed",
          requestId: `seed-import-${i}`,
        },
        async (c) => {
          const { rows } = await c.query(
            `insert into app_public.incidents (tenant_id, title, severity, description, created_by, created_at)
             values ($1, $2, $3, $4, $5, now() - make_interval(days => $6::int, hours => $7::int)) returning id`,
            [demoTenant, plan.title, plan.severity, plan.description, userIds.get(author), plan.daysAgo, i % 7],
          );
          return rows[0].id as string;
        },
      );

      if (plan.nis2) {
        await as(pick(i + 1), "demo", (c) =>
          c.query("update app_public.incidents set nis2_enabled = true where id = $1", [id]),
        );
      }
      const evidenceIds: string[] = [];
      for (const [j, file] of plan.evidence.entries()) {
        const uploader = pick(i + j);
        const blob = await withContext(owner, { surface: "seed" }, (c) =>
          writeBlob(c, demoTenant, [Buffer.from(file.text, "utf8")]),
        );
        const { rows } = await as(uploader, "demo", (c) =>
          c.query(
            "insert into app_public.evidence (incident_id, filename, content_type, blob_id) values ($1, $2, $3, $4) returning id",
            [id, file.filename, file.contentType, blob.id],
          ),
        );
        evidenceIds.push(rows[0].id);
      }
      await as(pick(i + 2), "demo", (c) =>
        c.query("update app_public.incidents set severity = $2 where id = $1", [
          id,
          plan.severity === "low" ? "medium" : plan.severity,
        ]),
      );
      if (plan.severity === "low") {
        await as(pick(i), "demo", (c) =>
          c.query("update app_public.incidents set severity = 'low' where id = $1", [id]),
        );
      }
      await as(pick(i + 1), "demo", (c) =>
        c.query("update app_public.incidents set description = description || $2 where id = $1", [
          id,
          "\n\nUpdate: scope confirmed with the service owner.",
        ]),
      );
      for (const kind of plan.complete ?? []) {
        await as(pick(i + 2), "demo", (c) =>
          c.query(
            "update app_public.nis2_milestones set completed_at = now(), notes = $3 where incident_id = $1 and kind = $2",
            [id, kind, `Submitted to the national CSIRT portal (${kind.replace("_", " ")}).`],
          ),
        );
      }
      for (const [k, status] of plan.statuses.entries()) {
        await as(pick(i + k), "demo", (c) =>
          c.query("update app_public.incidents set status = $2 where id = $1", [id, status]),
        );
      }
      if (plan.rootCause) {
        await as(pick(i + 1), "demo", (c) =>
          c.query("update app_public.incidents set root_cause = $2 where id = $1", [id, plan.rootCause]),
        );
      }
      if (plan.lessons) {
        await as(pick(i + 2), "demo", (c) =>
          c.query("update app_public.incidents set lessons_learned = $2 where id = $1", [id, plan.lessons]),
        );
      }
      if (plan.deleteEvidence && evidenceIds.length > 0) {
        await as("admin@demo.test", "demo", (c) =>
          c.query("delete from app_public.evidence where id = $1", [evidenceIds[evidenceIds.length - 1]]),
        );
      }
      if (plan.deleted) {
        await as("admin@demo.test", "demo", (c) =>
          c.query("update app_public.incidents set deleted_at = now() where id = $1", [id]),
        );
      }
    }

    // Day-to-day triage: severity and description tweaks across open incidents.
    const { rows: open } = await owner.query<{ id: string; title: string }>(
      "select id, title from app_public.incidents where tenant_id = $1 and deleted_at is null and status <> 'closed' order by created_at",
      [demoTenant],
    );
    for (let round = 0; round < 22; round++) {
      for (const [i, incident] of open.entries()) {
        await as(pick(i + round), "demo", (c) =>
          round % 3 === 2
            ? c.query(
                "update app_public.incidents set severity = case severity when 'low' then 'medium' when 'medium' then 'low' else severity end where id = $1",
                [incident.id],
              )
            : c.query("update app_public.incidents set description = $2 where id = $1", [
                incident.id,
                `${incident.title}: triage note ${round + 1}. Owner assigned, next review in ${24 * (round + 1)} h.`,
              ]),
        );
      }
    }

    // Webhooks and API tokens (owner/admin only).
    await as("owner@demo.test", "demo", async (c) => {
      await c.query(
        "insert into app_public.webhooks (url, description, actions, active) values ('https://siem.example.com/hooks/attest', 'SIEM feed (paused until the SIEM accepts events)', '{}', false)",
      );
      const { rows } = await c.query(
        "insert into app_public.webhooks (url, description, actions) values ('https://tickets.example.com/attest', 'Ticketing', '{incident.*}') returning id",
      );
      return rows[0].id;
    });
    await as("admin@demo.test", "demo", (c) =>
      c.query("delete from app_public.webhooks where url = 'https://tickets.example.com/attest'"),
    );
    await withContext(
      owner,
      { sessionToken: actors.get("admin@demo.test")?.token, tenant: demoTenant, surface: "seed" },
      async (c) => {
        const { rows } = await c.query(
          "insert into app_public.api_tokens (tenant_id, user_id, name, token_prefix) values ($1, $2, 'Old SIEM connector', 'att_demo') returning id",
          [demoTenant, userIds.get("admin@demo.test")],
        );
        await c.query(
          "insert into app_private.api_token_secrets (tenant_id, token_id, token_hash) values ($1, $2, $3)",
          [demoTenant, rows[0].id, createHash("sha256").update(randomBytes(32)).digest()],
        );
      },
    );
    await as("owner@demo.test", "demo", (c) =>
      c.query("update app_public.api_tokens set revoked_at = now() where name = 'Old SIEM connector'"),
    );
    await as("owner@demo.test", "demo", (c) =>
      c.query("update app_public.memberships set role = 'admin' where user_id = $1", [userIds.get("member@demo.test")]),
    );
    await as("owner@demo.test", "demo", (c) =>
      c.query("update app_public.memberships set role = 'member' where user_id = $1", [
        userIds.get("member@demo.test"),
      ]),
    );

    // The basic tenant records too, even though its plan cannot show the log.
    for (const title of ["Forklift telematics outage", "Phishing test failed by depot staff"]) {
      await as("owner@basic.test", "basic", (c) =>
        c.query("insert into app_public.incidents (title, severity) values ($1, 'medium')", [title]),
      );
    }

    // The seeding sessions end here.
    await owner.query("update app_private.sessions set revoked_at = now() where id = any($1::uuid[])", [seedSessions]);
    const { rows: counted } = await owner.query(
      "select count(*)::int as n from app_public.audit_log where tenant_id = $1",
      [demoTenant],
    );
    options.log(`Demo workspace ready: ${counted[0].n} audit entries in tenant demo`);
    return true;
  } finally {
    await lock.query("select pg_advisory_unlock(hashtext('attest:seed'))").catch(() => {});
    lock.release();
  }
}
