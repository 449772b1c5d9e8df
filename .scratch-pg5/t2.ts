import { start } from "./server.ts";
import { GraphQLError } from "postgraphile/graphql";
import { defaultMaskError } from "postgraphile/grafserv";
const show = (x: any) => console.log(JSON.stringify(x));
const queries: [string, string][] = [
  ["raise", `mutation { boom(input: { msg: "Custom failure" }) { result } }`],
  //["check", `mutation { createThing(input: { thing: { name: "toolongname" } }) { thing { id } } }`],
  //["unique1", `mutation { createThing(input: { thing: { name: "ab" } }) { thing { id } } }`],
  //["unique2", `mutation { createThing(input: { thing: { name: "ab" } }) { thing { id } } }`],
  //["timeout", `{ sleepy(s: 1) }`],
];
async function run(label: string, extra: GraphileConfig.Preset) {
  const { gql, stop } = await start(extra);
  for (const [k, q] of queries) {
    const r = await gql(q, undefined, { "x-stmt-timeout": "300ms" });
    show({ label, k, status: r.status, errors: r.body.errors });
  }
  await stop();
}
await run("default", {});
const SQLSTATE_MESSAGES: Record<string, [string, string]> = {
  "23505": ["Already exists.", "ALREADY_EXISTS"],
  "23514": ["Invalid value.", "CHECK_VIOLATION"],
  "57014": ["The request took too long.", "TIMEOUT"],
  "42501": ["Not allowed.", "FORBIDDEN"],
};
await run("mapped", {
  grafserv: {
    maskError(error) {
      const orig = error.originalError as (Error & { code?: string; constraint?: string; detail?: string }) | undefined;
      if (orig && typeof orig.code === "string" && /^[0-9A-Z]{5}$/.test(orig.code)) {
        if (orig.code === "P0001") {
          // RAISE EXCEPTION from our own SQL: message is meant for users
          return new GraphQLError(orig.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, originalError: orig, extensions: { code: "APP_ERROR" } });
        }
        const m = SQLSTATE_MESSAGES[orig.code];
        if (m) {
          return new GraphQLError(m[0], { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, originalError: orig, extensions: { code: m[1], constraint: orig.constraint } });
        }
      }
      return defaultMaskError(error);
    },
  },
});
