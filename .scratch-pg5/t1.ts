import { start } from "./server.ts";
const { url, gql, stop } = await start();
const show = (x: any) => console.log(JSON.stringify(x, null, 1));
show(await gql(`{ currentSettings }`, undefined, { cookie: "sid=abc123", "x-stmt-timeout": "1234ms" }));
show(await gql(`{ currentSettings }`, undefined, { "x-session-token": "hdr" }));
for (const [m, p] of [["GET", "/graphql?query=%7B__typename%7D"], ["GET", "/graphiql"], ["GET", "/"], ["GET", "/graphql"]] as const) {
  const r = await fetch(url + p, { method: m, headers: { accept: "text/html" } });
  console.log(m, p, r.status, r.headers.get("content-type"), (await r.text()).slice(0, 80).replace(/\n/g, " "));
}
const big = await fetch(url + "/graphql", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{__typename}", pad: "x".repeat(60000) }) });
console.log("big", big.status, (await big.text()).slice(0, 200));
await stop();
