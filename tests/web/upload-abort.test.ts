/**
 * src/web/routes/evidence.ts receiveEvidence, without a database: a client that goes away while
 * its upload is still being checked (before the body is read), halfway through its body or after
 * sending all of it, gets its request finished off and leaves no temporary files. The events of
 * its leaving come before anyone listens for them.
 */
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { receiveEvidence } from "../../src/web/routes/evidence.ts";

describe("an upload whose client leaves before its body is read", () => {
  let dir: string;
  let server: http.Server;
  let port: number;
  const outcomes: Array<Promise<unknown>> = [];
  const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-upload-abort-"));
    server = http.createServer((req, res) => {
      // The check (a transaction in the server) takes a while; the client leaves meanwhile.
      const outcome = receiveEvidence(
        (fn) => fn(null as unknown as pg.ClientBase),
        req,
        req.headers,
        "00000000-0000-0000-0000-000000000000",
        { maxBytes: 1_000_000, dir },
        async () => {
          await sleep(300);
        },
      );
      outcomes.push(outcome);
      outcome.then(
        () => res.end("stored"),
        () => res.destroy(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("after its whole body was sent: is finished off as well, and leaves no temporary files", async () => {
    const boundary = "xyz";
    const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello\r\n--${boundary}--\r\n`;
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(
      `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    await sleep(50);
    socket.destroy(); // gone, its upload complete, while the upload is checked
    await sleep(100);
    const outcome = outcomes[outcomes.length - 1];
    const settled = await Promise.race([
      outcome.then(
        () => "stored",
        (error: Error) => error.message,
      ),
      sleep(3000).then(() => "still waiting for a body that never comes"),
    ]);
    // (The connection dropped the body with it: nothing can be stored, and the request ends.)
    expect(settled).toBe("The upload was interrupted; nothing was saved.");
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it("is finished off with 'interrupted' and leaves no temporary files", async () => {
    const boundary = "xyz";
    const part = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello`;
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(
      `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: 100000\r\nConnection: close\r\n\r\n${part}`,
    );
    await sleep(50);
    socket.destroy(); // gone while the upload is checked
    await sleep(100);
    const settled = await Promise.race([
      outcomes[outcomes.length - 1].then(
        () => "stored",
        (error: Error) => error.message,
      ),
      sleep(3000).then(() => "still waiting for a body that never comes"),
    ]);
    expect(settled).toBe("The upload was interrupted; nothing was saved.");
    expect(await fs.readdir(dir)).toEqual([]);
  });
});
