/**
 * The committed GraphQL schema (schema.graphql) is the one PostGraphile builds from the
 * migrations, as the visitor role sees it. When it drifts, `npm run schema:export` rewrites it.
 */
import fs from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { printGraphQLSchema, schemaFile } from "../../src/graphql/export-schema.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";

describe.each(servers())("committed GraphQL schema on $name", (server) => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("schema.graphql matches the schema built from the migrations", async () => {
    const committed = await fs.readFile(schemaFile, "utf8");
    const built = await printGraphQLSchema(t.pools.auth, t.db.roles.visitor);
    expect(built.length).toBeGreaterThan(1000);
    expect(
      built,
      "schema.graphql is out of date with the migrations: run `GRAPHILE_ENV=development npm run schema:export` and commit the result",
    ).toBe(committed);
  });

  it("the committed schema exposes the audited mutations and no way to write the audit log", async () => {
    const committed = await fs.readFile(schemaFile, "utf8");
    for (const field of [
      "createIncident(",
      "completeMilestone(",
      "createWebhook(",
      "revokeApiToken(",
      "inviteMember(",
      "acceptInvitation(",
    ]) {
      expect(committed).toContain(`  ${field}`);
    }
    expect(committed).not.toMatch(/^\s+(create|update|delete)AuditLog/m);
    // Nobody is added without consent: no addMember, no createMembership, no writing invitations.
    expect(committed).not.toMatch(
      /^\s+(addMember|createMembership|createInvitation|updateInvitation\w*|deleteInvitation\w*)\(/m,
    );
  });
});
