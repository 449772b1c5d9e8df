import { readFile } from "node:fs/promises";
import { makeSchema } from "postgraphile";
import { printSchema, lexicographicSortSchema } from "postgraphile/graphql";
import { preset } from "./server.ts";
// 1) let PostGraphile write the file (awaited by makeSchema)
const r1 = await makeSchema(preset);
// 2) build it yourself
const { schema, resolvedPreset } = await makeSchema({ extends: [preset], schema: { exportSchemaSDLPath: undefined } });
const sdl = printSchema(lexicographicSortSchema(schema)) + "\n";
const exported = await readFile("/tmp/pg5-scratch/schema.graphql", "utf8");
console.log("same as exportSchemaSDLPath+sortExport output:", sdl === exported, sdl.length);
for (const s of resolvedPreset.pgServices ?? []) await s.release?.();
console.log("released");
