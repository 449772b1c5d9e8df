import { start } from "./server.ts";
import { AuditLogNewestFirstPlugin } from "./plugins.ts";
import { printSchema } from "postgraphile/graphql";
const show = (...x: any[]) => console.log(...x.map((v) => (typeof v === "string" ? v : JSON.stringify(v))));
const { gql, stop, pgl } = await start({ plugins: [AuditLogNewestFirstPlugin] });
const sdl = printSchema(await pgl.getSchema());
show(sdl.split("\n").filter((l) => /recentAudit\(|orderBy: \[AuditLog|condition: AuditLog/.test(l)).join("\n"));
for (const ob of ["PRIMARY_KEY_DESC", "SEQ_DESC"]) {
  const f1 = await gql(`{ recentAudit(n: 100, first: 3, orderBy: [${ob}]) { nodes { seq } pageInfo { endCursor } } }`);
  if (f1.body.errors) { show(ob, f1.body.errors); continue; }
  show(ob, "fn page1", f1.body.data.recentAudit.nodes, Buffer.from(f1.body.data.recentAudit.pageInfo.endCursor, "base64").toString());
  const f2 = await gql(`query($c: Cursor) { recentAudit(n: 100, first: 3, after: $c, orderBy: [${ob}]) { nodes { seq } } }`, { c: f1.body.data.recentAudit.pageInfo.endCursor });
  show(ob, "fn page2", f2.body);
}
show("tenant relation default order", (await gql(`{ tenants { nodes { auditLogs(first: 2) { nodes { seq } } } } }`)).body);
await stop();
