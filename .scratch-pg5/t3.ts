import { start } from "./server.ts";
import { AuditLogNewestFirstPlugin, MaxPageSizePlugin, DepthLimitPlugin } from "./plugins.ts";
import pg from "pg";
const show = (...x: any[]) => console.log(...x.map((v) => (typeof v === "string" ? v : JSON.stringify(v))));
const pool = new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:5432/pg5_scratch" });
const insert = async (seq: number) => pool.query(`insert into app_public.audit_log(tenant_id, seq, action, resource_label) values ('00000000-0000-0000-0000-000000000001', $1, 'incident.created', 'new')`, [seq]);
const { gql, stop } = await start({ plugins: [AuditLogNewestFirstPlugin, MaxPageSizePlugin, DepthLimitPlugin] });
const nodes = (r: any, f: string) => r.body.errors ?? r.body.data[f].nodes?.map((n: any) => n.seq) ?? r.body.data[f];
// Q3
show("prefix incident.", nodes(await gql(`{ auditLogs(condition: { actionPrefix: "incident." }) { nodes { seq action } } }`), "auditLogs"));
show("prefix inc_ (escaped _)", nodes(await gql(`{ auditLogs(condition: { actionPrefix: "inc_" }) { nodes { seq action } } }`), "auditLogs"));
show("label contains 'foo%b'", nodes(await gql(`{ auditLogs(condition: { resourceLabelContains: "foo%b" }) { nodes { seq resourceLabel } } }`), "auditLogs"));
show("label contains 'label 1'", nodes(await gql(`{ auditLogs(condition: { resourceLabelContains: "LABEL 1" }) { nodes { seq resourceLabel } } }`), "auditLogs"));
// Q4: default order + keyset paging with insert in between
const p1 = await gql(`{ auditLogs(first: 3) { nodes { seq } pageInfo { endCursor } } }`);
show("page1", nodes(p1, "auditLogs"), Buffer.from(p1.body.data.auditLogs.pageInfo.endCursor, "base64").toString());
await insert(11); await insert(12);
const p2 = await gql(`query($c: Cursor) { auditLogs(first: 3, after: $c) { nodes { seq } } }`, { c: p1.body.data.auditLogs.pageInfo.endCursor });
show("page2 after inserting 11,12 (table, keyset)", nodes(p2, "auditLogs"));
// setof function
const f1 = await gql(`{ recentAudit(n: 100, first: 3) { nodes { seq } pageInfo { endCursor } } }`);
show("fn page1", nodes(f1, "recentAudit"), Buffer.from(f1.body.data.recentAudit.pageInfo.endCursor, "base64").toString());
await insert(13); await insert(14);
const f2 = await gql(`query($c: Cursor) { recentAudit(n: 100, first: 3, after: $c) { nodes { seq } } }`, { c: f1.body.data.recentAudit.pageInfo.endCursor });
show("fn page2 after inserting 13,14 (natural/offset cursor)", nodes(f2, "recentAudit"));
// Q5
show("first 101", (await gql(`{ auditLogs(first: 101) { nodes { seq } } }`)).body);
show("first 100", nodes(await gql(`{ auditLogs(first: 100) { totalCount } }`), "auditLogs"));
show("last 500 on fn", (await gql(`{ recentAudit(n: 5, last: 500) { nodes { seq } } }`)).body);
// Q6
show("deep", (await gql(`{ tenants { nodes { auditLogs { nodes { tenant { auditLogs { nodes { tenant { auditLogs { nodes { seq } } } } } } } } } } }`)).body);
show("ok depth", nodes(await gql(`{ tenants { nodes { auditLogs(first: 1) { nodes { seq } } } } }`), "tenants"));
await stop(); await pool.end();
