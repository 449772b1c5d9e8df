/**
 * A realistic audit history of any size, loaded through the bulk path (as a restore would load
 * it), for `npm run bench:pages` and for tests that need a large tenant.
 *
 * The bulk path, run as a superuser on a migrated database:
 *   1. `set session_replication_role = replica`: no trigger fires, so the tenants, users,
 *      incidents and log entries are written as they are (this is how pg_restore loads data,
 *      and why only a superuser may do it);
 *   2. the log's secondary indexes are dropped before and rebuilt after the load;
 *   3. every entry gets its capture number from `app_private.audit_entry_id_seq` and this
 *      transaction's id, so the real sealer then seals all of them: positions, leaves, Merkle
 *      trees, signed checkpoints and the per-hour activity are the product's own.
 *
 * The history: `spec.tenants` tenants, each with `entries` entries spread over `days` days up to
 * now, 8 members (owner, admin, six others), an incident per 20 entries whose titles draw from a
 * small vocabulary ("ransomware" is in one title of 12), and in the first tenant one incident
 * titled "… Zanzibar …" with about 20 entries (a rare word). Actions are those the product
 * records, in proportions like a busy workspace's.
 */
import { createHash, randomBytes } from "node:crypto";
import type pg from "pg";

export interface HistoryTenant {
  slug: string;
  name: string;
  entries: number;
}

export interface HistorySpec {
  tenants: HistoryTenant[];
  /** The history covers this many days up to now (default 365). */
  days?: number;
}

export interface LoadedTenant extends HistoryTenant {
  id: string;
  /** Session token of the tenant's admin (admin@<slug>.test), for the `attest_session` cookie. */
  adminSession: string;
  /** An API token of the admin, for `Authorization: Bearer`. */
  apiToken: string;
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Loads the history (see the header). `db` is a superuser connection to a migrated database. */
export async function loadHistory(
  db: pg.ClientBase,
  spec: HistorySpec,
  log: (line: string) => void = () => {},
): Promise<LoadedTenant[]> {
  const days = spec.days ?? 365;
  const loaded: LoadedTenant[] = [];
  await db.query("begin");
  await db.query("set local session_replication_role = replica");
  const { rows: indexes } = await db.query<{ name: string; def: string }>(
    `select indexname as name, indexdef as def from pg_indexes
     where schemaname = 'app_public' and tablename = 'audit_log'
       and indexname not in ('audit_log_pkey', 'audit_log_seal_order_idx')`,
  );
  for (const index of indexes) await db.query(`drop index app_public.${index.name}`);
  for (const tenant of spec.tenants) {
    const adminSession = randomBytes(24).toString("base64url");
    const apiToken = `attest_${randomBytes(24).toString("base64url")}`;
    const { rows } = await db.query<{ id: string }>(
      "insert into app_public.tenants (slug, name, plan_id) values ($1, $2, 'business') returning id",
      [tenant.slug, tenant.name],
    );
    const tenantId = rows[0].id;
    await db.query(
      `insert into app_public.users (email, name)
       select r || '@' || $1 || '.test', initcap(r) || ' ' || (array['Ito','Novak','Okafor','Silva','Larsen','Meyer','Haddad','Kowalski'])[g]
       from unnest(array['owner','admin','ana','ben','chen','dora','emil','fatima']) with ordinality as u(r, g)`,
      [tenant.slug],
    );
    await db.query(
      `insert into app_public.memberships (tenant_id, user_id, role)
       select $1, u.id, case split_part(u.email, '@', 1) when 'owner' then 'owner' when 'admin' then 'admin' else 'member' end
       from app_public.users u where u.email like '%@' || $2 || '.test'`,
      [tenantId, tenant.slug],
    );
    await db.query(
      `insert into app_private.sessions (token_hash, user_id, expires_at)
       select $1, id, now() + interval '30 days' from app_public.users where email = 'admin@' || $2 || '.test'`,
      [sha256(adminSession), tenant.slug],
    );
    await db.query(
      `with t as (
         insert into app_public.api_tokens (tenant_id, user_id, name, token_prefix)
         select $1, id, 'SIEM export', left($3, 12) from app_public.users where email = 'admin@' || $2 || '.test'
         returning tenant_id, id)
       insert into app_private.api_token_secrets (tenant_id, token_id, token_hash) select tenant_id, id, $4 from t`,
      [tenantId, tenant.slug, apiToken, sha256(apiToken)],
    );
    const incidents = Math.max(1, Math.ceil(tenant.entries / 20));
    await db.query(
      `insert into app_public.incidents (tenant_id, title, severity, status, created_at, updated_at)
       select $1,
              case when $3 and g = greatest(1, $2 / 3) then 'Payment gateway outage after Zanzibar vendor update'
                   else (array['Phishing wave','Ransomware on file server','Database outage','DDoS on API',
                               'Credential stuffing','Data leak via bucket','Malware on laptop','Firewall misconfiguration',
                               'VPN certificate expired','Vendor breach notice','Lost laptop','Insider access review'])[1 + g % 12]
                        || ' #' || g end,
              (array['low','medium','high','critical'])[1 + g % 4],
              (array['open','in_progress','resolved','closed'])[1 + g % 4],
              now() - make_interval(days => $4), now()
       from generate_series(1, $2) g`,
      [tenantId, incidents, loaded.length === 0, days],
    );
    // Entry g of n: time spread evenly over the days, newest last; an incident per 20 entries.
    await db.query(
      `with people as (
         select array_agg(u.id order by u.email) as ids, array_agg(u.email order by u.email) as emails
         from app_public.memberships m join app_public.users u on u.id = m.user_id where m.tenant_id = $1
       ), incs as (
         select row_number() over (order by i.title) as k, i.id, i.title
         from app_public.incidents i where i.tenant_id = $1
       ), g as (
         select g, g % 20 as kind, 1 + ((g / 20) + (g % 20) * 7) % $3 as inc, 1 + (g * 31 / 7) % 8 as who
         from generate_series(1, $2) g
       )
       insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_user_id, actor_label, db_role, action,
         resource_type, resource_id, resource_label, incident_id, changes, request_id, ip, user_agent, surface, api_token_id)
       select $1, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint,
              now() - make_interval(days => $4) + (g.g::float8 / $2) * make_interval(days => $4),
              case when g.kind = 16 then null else p.ids[g.who] end,
              case when g.kind = 16 then 'system' else p.emails[g.who] end,
              case when g.kind = 16 then 'sealer' else 'visitor' end,
              a.action, a.rtype,
              case when a.rtype = 'incident' then i.id else gen_random_uuid() end,
              case a.rtype when 'incident' then i.title when 'evidence' then 'capture-' || g.g || '.pcap'
                           when 'milestone' then 'Early warning: ' || i.title when 'session' then p.emails[g.who]
                           else i.title end,
              case when a.rtype = 'session' then null else i.id end,
              a.changes,
              md5(g.g::text), ('10.' || (g.g % 200) || '.' || (g.g / 200 % 250) || '.' || (1 + g.g % 250))::inet,
              'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0', a.surface,
              null
       from g cross join people p join incs i on i.k = g.inc
       cross join lateral (
         select case g.kind when 0 then 'incident.created' when 14 then 'evidence.uploaded' when 15 then 'milestone.completed'
                            when 16 then 'export.requested' when 17 then 'session.signed_in' when 18 then 'evidence.deleted'
                            else 'incident.updated' end as action,
                case g.kind when 14 then 'evidence' when 18 then 'evidence' when 15 then 'milestone' when 16 then 'export'
                            when 17 then 'session' else 'incident' end as rtype,
                case g.kind
                  when 0 then jsonb_build_object('title', jsonb_build_object('new', i.title), 'severity', jsonb_build_object('new', 'medium'))
                  when 14 then jsonb_build_object('filename', jsonb_build_object('new', 'capture-' || g.g || '.pcap'), 'size_bytes', jsonb_build_object('new', 1000 + g.g % 900000))
                  when 15 then jsonb_build_object('completed_at', jsonb_build_object('old', null, 'new', now()))
                  when 16 then jsonb_build_object('status', jsonb_build_object('new', 'ready'))
                  when 17 then '{}'::jsonb
                  when 18 then jsonb_build_object('filename', jsonb_build_object('old', 'capture-' || g.g || '.pcap'))
                  else jsonb_build_object('severity', jsonb_build_object('old', (array['low','medium','high','critical'])[1 + g.g % 4],
                                                                         'new', (array['low','medium','high','critical'])[1 + (g.g + 1) % 4]))
                end as changes,
                (array['web','graphql','api','web','web'])[1 + g.g % 5] as surface
       ) a`,
      [tenantId, tenant.entries, incidents, days],
    );
    log(`  loaded ${tenant.slug}: ${tenant.entries.toLocaleString("en-US")} entries`);
    loaded.push({ ...tenant, id: tenantId, adminSession, apiToken });
  }
  log(`  rebuilding ${indexes.length} indexes of the log`);
  for (const index of indexes) await db.query(index.def);
  await db.query("commit");
  return loaded;
}
