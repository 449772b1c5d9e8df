/**
 * The evidence endpoints over HTTP: multipart upload (several files per request, one transaction,
 * one evidence.uploaded entry per file), streaming download with the stored SHA-256, the size
 * limit, roles, tenants, CSRF and filenames.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

interface UploadedFile {
  id: string;
  filename: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

interface UploadResponse {
  status: number;
  requestId: string | null;
  contentType: string | null;
  body: { evidence?: UploadedFile[]; error?: { code: string; message: string; requestId: string } };
}

interface Auth {
  cookie?: string;
  token?: string;
  /** The Origin header sent with a cookie (defaults to the server's own origin). */
  origin?: string;
  tenant?: string;
}

interface FileToSend {
  name: string;
  data: Buffer;
  type?: string;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe.each(servers())("evidence over HTTP on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let demo: string;
  let incidentId: string;
  const cookies: Record<string, string> = {};
  let adminToken: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    demo = (await ids(t)).tenants.demo;
    const { rows } = await t.superuser.query<{ id: string }>(
      "select id from app_public.incidents where tenant_id = $1 and deleted_at is null order by created_at limit 1",
      [demo],
    );
    incidentId = rows[0].id;
    // Sign-ins record session entries: all of them happen before any measurement.
    for (const email of ["member@demo.test", "admin@demo.test", "viewer@demo.test", "owner@basic.test"]) {
      cookies[email] = await web.signIn(email);
    }
    const created = await web.gql<{ createApiToken: { result: { token: string } } }>(
      `mutation { createApiToken(input: { name: "Evidence uploader" }) { result { token } } }`,
      { cookie: cookies["admin@demo.test"], tenant: "demo" },
    );
    expect(created.errors).toBeUndefined();
    adminToken = created.data?.createApiToken.result.token ?? "";
    expect(adminToken).toMatch(/^att_/);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  function headersFor(auth: Auth): Record<string, string> {
    const headers: Record<string, string> = {};
    if (auth.cookie) {
      headers.Cookie = auth.cookie;
      headers.Origin = auth.origin ?? web.url;
    }
    if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
    if (auth.tenant) headers["X-Tenant"] = auth.tenant;
    return headers;
  }

  async function upload(files: FileToSend[], auth: Auth, incident = incidentId): Promise<UploadResponse> {
    const form = new FormData();
    for (const file of files) {
      form.append(
        "file",
        new Blob([new Uint8Array(file.data)], { type: file.type ?? "application/octet-stream" }),
        file.name,
      );
    }
    const response = await fetch(`${web.url}/api/incidents/${incident}/evidence`, {
      method: "POST",
      headers: headersFor(auth),
      body: form,
    });
    return {
      status: response.status,
      requestId: response.headers.get("x-request-id"),
      contentType: response.headers.get("content-type"),
      body: (await response.json()) as UploadResponse["body"],
    };
  }

  async function download(id: string, auth: Auth) {
    const response = await fetch(`${web.url}/api/evidence/${id}/download`, { headers: headersFor(auth) });
    return { response, bytes: Buffer.from(await response.arrayBuffer()) };
  }

  const asMember = (): Auth => ({ cookie: cookies["member@demo.test"], tenant: "demo" });

  /** What is stored: evidence rows, blobs, blob chunks, and the last audit entry of tenant demo. */
  async function stored() {
    const { rows } = await t.superuser.query(
      `select (select count(*)::int from app_public.evidence) as evidence,
              (select count(*)::int from app_private.blobs) as blobs,
              (select count(*)::int from app_private.blob_chunks) as chunks,
              (select coalesce(max(id), 0)::int from app_public.audit_log where tenant_id = $1) as last_id`,
      [demo],
    );
    return rows[0] as { evidence: number; blobs: number; chunks: number; last_id: number };
  }

  async function entriesAfter(lastId: number) {
    const { rows } = await t.superuser.query(
      `select action, actor_label, db_role, resource_type, resource_id, resource_label, incident_id, request_id, surface
       from app_public.audit_log where tenant_id = $1 and id > $2 order by id`,
      [demo, lastId],
    );
    return rows;
  }

  it("uploads several files in one request: 201 with their ids, sizes and SHA-256, one evidence.uploaded entry each", async () => {
    const files: FileToSend[] = [
      { name: "firewall.log", data: Buffer.from("Jan 12 03:14:15 DROP src=203.0.113.9\n"), type: "text/plain" },
      { name: "memory.dmp", data: randomBytes(300 * 1024), type: "application/octet-stream" },
      { name: "screenshot.png", data: randomBytes(2048), type: "image/png" },
    ];
    const before = await stored();
    const result = await upload(files, asMember());
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.contentType).toMatch(/^application\/json/);
    expect(result.body.evidence).toHaveLength(3);
    const evidence = result.body.evidence ?? [];
    files.forEach((file, i) => {
      expect(evidence[i]).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        filename: file.name,
        contentType: file.type,
        sizeBytes: file.data.length,
        sha256: sha256(file.data),
      });
    });

    const { rows } = await t.superuser.query(
      "select id, filename, size_bytes::int as size, encode(sha256, 'hex') as sha, incident_id from app_public.evidence where id = any($1::uuid[]) order by filename collate \"C\"",
      [evidence.map((e) => e.id)],
    );
    expect(rows.map((r) => [r.filename, r.size, r.sha, r.incident_id])).toEqual(
      [...files]
        .sort((a, b) => (a.name < b.name ? -1 : 1))
        .map((f) => [f.name, f.data.length, sha256(f.data), incidentId]),
    );
    const after = await stored();
    expect(after.evidence - before.evidence).toBe(3);
    expect(after.blobs - before.blobs).toBe(3);

    expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const entries = await entriesAfter(before.last_id);
    expect(entries.map((e) => [e.action, e.resource_label, e.resource_id])).toEqual(
      files.map((f, i) => ["evidence.uploaded", f.name, evidence[i].id]),
    );
    for (const entry of entries) {
      expect(entry).toMatchObject({
        actor_label: "member@demo.test",
        db_role: t.db.roles.visitor,
        resource_type: "evidence",
        incident_id: incidentId,
        request_id: result.requestId,
        surface: "web",
      });
    }
  });

  it("uploads with an API token (no Origin needed) and records the api surface and the token's user", async () => {
    const data = Buffer.from("token upload contents");
    const before = await stored();
    const result = await upload([{ name: "siem-export.csv", data, type: "text/csv" }], { token: adminToken });
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.body.evidence?.[0]).toMatchObject({
      filename: "siem-export.csv",
      sizeBytes: data.length,
      sha256: sha256(data),
    });
    expect(result.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const entries = await entriesAfter(before.last_id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      action: "evidence.uploaded",
      resource_label: "siem-export.csv",
      actor_label: "admin@demo.test",
      db_role: t.db.roles.visitor,
      request_id: result.requestId,
      surface: "api",
    });
  });

  it("downloads the exact bytes with the filename, type and SHA-256 in the headers", async () => {
    const data = randomBytes(1024 * 1024 - 17); // just under the limit: several network chunks
    const result = await upload([{ name: "disk-image.bin", data, type: "application/x-raw-disk-image" }], asMember());
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    const id = result.body.evidence?.[0].id ?? "";

    const { response, bytes } = await download(id, asMember());
    expect(response.status).toBe(200);
    expect(bytes.length).toBe(data.length);
    expect(bytes.equals(data)).toBe(true);
    expect(response.headers.get("content-disposition")).toBe(
      `attachment; filename="disk-image.bin"; filename*=UTF-8''disk-image.bin`,
    );
    // Served inert (never as its own type from this origin); the stored type travels alongside.
    expect(response.headers.get("content-type")).toBe("application/octet-stream");
    expect(response.headers.get("x-content-type")).toBe("application/x-raw-disk-image");
    expect(response.headers.get("content-security-policy")).toBe("sandbox; default-src 'none'");
    expect(response.headers.get("content-length")).toBe(String(data.length));
    expect(response.headers.get("x-content-sha256")).toBe(sha256(data));
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");

    const viaToken = await download(id, { token: adminToken });
    expect(viaToken.response.status).toBe(200);
    expect(viaToken.bytes.equals(data)).toBe(true);
  });

  it("refuses a file over the size limit with 413 and saves nothing", async () => {
    const before = await stored();
    const result = await upload([{ name: "huge.pcap", data: randomBytes(1.5 * 1024 * 1024) }], asMember());
    expect(result.status).toBe(413);
    expect(result.contentType).toMatch(/^application\/json/);
    expect(result.body.error?.code).toBe("TOO_LARGE");
    expect(result.body.error?.message).toMatch(/huge\.pcap/);
    expect(result.body.error?.message).toMatch(/1 MB limit/);
    expect(result.body.error?.message).toMatch(/nothing was saved/);
    expect(await stored()).toEqual(before);
  });

  it("saves none of the files of a request when one of them is over the limit", async () => {
    const before = await stored();
    const result = await upload(
      [
        { name: "small-first.txt", data: Buffer.from("fits") },
        { name: "too-big.bin", data: randomBytes(1.5 * 1024 * 1024) },
      ],
      asMember(),
    );
    expect(result.status).toBe(413);
    expect(result.body.error?.message).toMatch(/too-big\.bin.*1 MB limit/);
    expect(await stored()).toEqual(before);
  });

  it("refuses a viewer's upload with 403 and saves nothing", async () => {
    const before = await stored();
    const result = await upload([{ name: "viewer.txt", data: Buffer.from("not allowed") }], {
      cookie: cookies["viewer@demo.test"],
      tenant: "demo",
    });
    expect(result.status).toBe(403);
    expect(result.body.error?.code).toBe("FORBIDDEN");
    expect(result.body.error?.message).toBeTruthy();
    expect(await stored()).toEqual(before);
  });

  it("answers 404 to a user of another tenant downloading this tenant's evidence", async () => {
    const data = Buffer.from("demo only");
    const result = await upload([{ name: "demo-only.txt", data }], asMember());
    expect(result.status).toBe(201);
    const id = result.body.evidence?.[0].id ?? "";

    const other = await download(id, { cookie: cookies["owner@basic.test"] });
    expect(other.response.status).toBe(404);
    expect(other.bytes.toString()).not.toContain("demo only");
    expect(JSON.parse(other.bytes.toString()).error.code).toBe("NOT_FOUND");

    const naming = await download(id, { cookie: cookies["owner@basic.test"], tenant: "demo" });
    expect(naming.response.status).toBe(404);
    expect(naming.bytes.toString()).not.toContain("demo only");

    const mine = await download(id, asMember());
    expect(mine.response.status).toBe(200);
    expect(mine.bytes.equals(data)).toBe(true);
  });

  it("answers 404 to a user of another tenant uploading to this tenant's incident, and saves nothing", async () => {
    const before = await stored();
    const result = await upload([{ name: "intruder.txt", data: Buffer.from("x") }], {
      cookie: cookies["owner@basic.test"],
    });
    expect(result.status).toBe(404);
    expect(result.body.error?.code).toBe("NOT_FOUND");
    expect(await stored()).toEqual(before);
  });

  it("refuses a cross-site cookie-authenticated upload with 403 CSRF and saves nothing", async () => {
    const before = await stored();
    const result = await upload([{ name: "forged.txt", data: Buffer.from("forged") }], {
      ...asMember(),
      origin: "https://evil.example",
    });
    expect(result.status).toBe(403);
    expect(result.body.error?.code).toBe("CSRF");
    expect(await stored()).toEqual(before);
  });

  it("refuses a body that is not multipart/form-data with 415", async () => {
    const before = await stored();
    const response = await fetch(`${web.url}/api/incidents/${incidentId}/evidence`, {
      method: "POST",
      headers: { ...headersFor(asMember()), "Content-Type": "application/json" },
      body: JSON.stringify({ filename: "a.txt", data: "aGVsbG8=" }),
    });
    expect(response.status).toBe(415);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/multipart\/form-data/);
    expect(await stored()).toEqual(before);
  });

  it("stores a filename with a path as its last component", async () => {
    const before = await stored();
    const result = await upload([{ name: "../../etc/passwd", data: Buffer.from("root:x:0:0") }], asMember());
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.body.evidence?.[0].filename).toBe("passwd");
    const { rows } = await t.superuser.query("select filename from app_public.evidence where id = $1", [
      result.body.evidence?.[0].id,
    ]);
    expect(rows[0].filename).toBe("passwd");
    const entries = await entriesAfter(before.last_id);
    expect(entries.map((e) => [e.action, e.resource_label])).toEqual([["evidence.uploaded", "passwd"]]);
    const { response } = await download(result.body.evidence?.[0].id ?? "", asMember());
    expect(response.headers.get("content-disposition")).toBe(`attachment; filename="passwd"; filename*=UTF-8''passwd`);
  });

  it("keeps non-Latin filenames intact from upload to download", async () => {
    const name = "報告書-Übersicht.pdf";
    const data = Buffer.from("%PDF-1.7 minimal");
    const before = await stored();
    const result = await upload([{ name, data, type: "application/pdf" }], asMember());
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.body.evidence?.[0].filename).toBe(name);
    const id = result.body.evidence?.[0].id ?? "";
    const { rows } = await t.superuser.query("select filename from app_public.evidence where id = $1", [id]);
    expect(rows[0].filename).toBe(name);
    const entries = await entriesAfter(before.last_id);
    expect(entries.map((e) => e.resource_label)).toEqual([name]);

    const { response, bytes } = await download(id, asMember());
    expect(response.status).toBe(200);
    expect(bytes.equals(data)).toBe(true);
    const disposition = response.headers.get("content-disposition") ?? "";
    expect(disposition).toBe(`attachment; filename="___-_bersicht.pdf"; filename*=UTF-8''${encodeURIComponent(name)}`);
    expect(decodeURIComponent(disposition.replace(/^.*; filename\*=UTF-8''/, ""))).toBe(name);
  });

  it("keeps accented Latin filenames intact (no mojibake)", async () => {
    const name = "Bericht-März-café.txt";
    const result = await upload([{ name, data: Buffer.from("accents") }], asMember());
    expect(result.status, JSON.stringify(result.body)).toBe(201);
    expect(result.body.evidence?.[0].filename).toBe(name);
    const { rows } = await t.superuser.query("select filename from app_public.evidence where id = $1", [
      result.body.evidence?.[0].id,
    ]);
    expect(rows[0].filename).toBe(name);
  });
});
