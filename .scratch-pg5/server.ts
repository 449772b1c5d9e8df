import http from "node:http";
import Koa from "koa";
import { postgraphile } from "postgraphile";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/koa/v3";
import { addPgTableCondition } from "postgraphile/utils";
import { TYPES } from "postgraphile/@dataplan/pg";
import { PgSimplifyInflectionPreset } from "@graphile/simplify-inflection";
import { GraphQLError } from "postgraphile/graphql";

const DB = "postgres://postgres@127.0.0.1:5432/pg5_scratch";

// Q3: condition fields
const ActionPrefixCondition = addPgTableCondition(
  { schemaName: "app_public", tableName: "audit_log" },
  "actionPrefix",
  (build) => ({
    description: "Entries whose action starts with this prefix (e.g. `incident.`).",
    type: build.graphql.GraphQLString,
    apply(condition, value) {
      if (value == null) return;
      const { sql } = build;
      const escaped = String(value).replace(/[\\%_]/g, "\\$&");
      condition.where(sql`${condition.alias}.action like ${sql.value(escaped)} || '%'`);
    },
  }),
);
const ResourceLabelContainsCondition = addPgTableCondition(
  { schemaName: "app_public", tableName: "audit_log" },
  "resourceLabelContains",
  (build) => ({
    description: "Case-insensitive substring match on resourceLabel.",
    type: build.graphql.GraphQLString,
    apply(condition, value) {
      if (value == null || value === "") return;
      const { sql, dataplanPg: { sqlValueWithCodec, TYPES } } = build;
      const escaped = String(value).replace(/[\\%_]/g, "\\$&");
      condition.where(sql`${condition.alias}.resource_label ilike '%' || ${sqlValueWithCodec(escaped, TYPES.text)} || '%'`);
    },
  }),
);

export const preset: GraphileConfig.Preset = {
  extends: [PostGraphileAmberPreset, PgSimplifyInflectionPreset],
  pgServices: [makePgService({ connectionString: DB, schemas: ["app_public"] })],
  plugins: [ActionPrefixCondition, ResourceLabelContainsCondition],
  grafserv: {
    graphqlPath: "/graphql",
    graphiqlPath: "/graphiql",
    graphiqlOnGraphQLGET: false,
    graphqlOverGET: false,
    maxRequestLength: 50_000,
    watch: false,
  },
  grafast: {
    context(requestContext, args) {
      const ctx = requestContext.koav3?.ctx;
      const token = ctx?.cookies.get("sid") ?? ctx?.get("x-session-token") ?? undefined;
      return {
        pgSettings: {
          role: "pg5_visitor",
          "attest.session_token": token || undefined,
          statement_timeout: ctx?.state.stmtTimeout ?? "2s",
          "attest.from_state": ctx?.state.who,
        },
      };
    },
  },
  schema: { exportSchemaSDLPath: "/tmp/pg5-scratch/schema.graphql", sortExport: true },
};

export async function start(extraPreset: GraphileConfig.Preset = {}) {
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.state.who = "set-by-earlier-middleware";
    if (ctx.get("x-stmt-timeout")) ctx.state.stmtTimeout = ctx.get("x-stmt-timeout");
    await next();
  });
  const server = http.createServer();
  const pgl = postgraphile({ extends: [preset, extraPreset] });
  const serv = pgl.createServ(grafserv);
  await serv.addTo(app, server);
  server.on("request", app.callback()); // AFTER addTo: app.callback() snapshots the middleware list
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as any).port;
  const url = `http://127.0.0.1:${port}`;
  async function gql(query: string, variables?: any, headers: Record<string, string> = {}) {
    const res = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ query, variables }),
    });
    const t = await res.text(); let body; try { body = JSON.parse(t) } catch { body = t } return { status: res.status, body };
  }
  async function stop() {
    server.close();
    await pgl.release();
  }
  return { url, gql, stop, pgl };
}
