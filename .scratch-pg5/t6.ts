import { makeSchema } from "postgraphile";
import { printSchema } from "postgraphile/graphql";
import { makePgService } from "postgraphile/adaptors/pg";
import { preset } from "./server.ts";
for (const role of [undefined, "pg5_visitor"]) {
  const svc = makePgService({ connectionString: "postgres://postgres@127.0.0.1:5432/pg5_scratch", schemas: ["app_public"], pgSettingsForIntrospection: role ? { role } : undefined });
  const { schema } = await makeSchema({ extends: [preset], pgServices: [svc], schema: { exportSchemaSDLPath: undefined } });
  const sdl = printSchema(schema);
  console.log(role, ["createTenant", "updateThingById", "createThing", "hiddenFn", "createAuditLog", "auditLogs("].map((f) => `${f}:${sdl.includes(`  ${f}`)}`).join(" "));
  await svc.release?.();
}
