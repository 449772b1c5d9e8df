/**
 * Sending one webhook event: an HTTP(S) POST of JSON, signed with the webhook's secret
 * (HMAC-SHA256 over "<timestamp>.<body>"), with a timeout and a cap on how much of the answer is
 * read. Addresses in private, loopback and link-local ranges are refused — checked on the
 * resolved address that is actually connected to — unless the operator allows them.
 */
import { createHmac } from "node:crypto";
import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import net from "node:net";

export interface DeliverySettings {
  allowPrivate: boolean;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface DeliveryResult {
  ok: boolean;
  statusCode?: number;
  error?: string;
}

const privateRanges = new net.BlockList();
for (const [address, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const) {
  privateRanges.addSubnet(address, prefix, "ipv4");
}
for (const [address, prefix] of [
  ["::", 96], // unspecified, loopback and IPv4-compatible (::a.b.c.d)
  ["64:ff9b::", 96], // NAT64: reaches an embedded IPv4 address
  ["64:ff9b:1::", 48], // local-use NAT64
  ["2002::", 16], // 6to4: embeds an IPv4 address
  ["2001::", 32], // Teredo
  ["100::", 64], // discard
  ["fec0::", 10], // site-local (deprecated)
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  privateRanges.addSubnet(address, prefix, "ipv6");
}

/** Whether an IP address is private, loopback, link-local or otherwise not on the public internet. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 0) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return privateRanges.check(mapped[1], "ipv4");
  return privateRanges.check(address, family === 4 ? "ipv4" : "ipv6");
}

const BAD_URL = "The webhook URL must start with http:// or https:// and be at most 2000 characters.";

/** Checks a webhook URL before it is saved; returns a message for the user, or null when fine. */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return BAD_URL;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return BAD_URL;
  if (url.username || url.password)
    return "Put no user name or password in the URL; the signature authenticates Attest.";
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.+$/, ""); // "localhost." is localhost
  if (
    !allowPrivate &&
    (host === "localhost" || host.endsWith(".localhost") || (net.isIP(host) && isPrivateAddress(host)))
  ) {
    return "Webhooks may not point at private, loopback or link-local addresses.";
  }
  return null;
}

/** The signature header value a receiver recomputes (see the README). */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export async function postWebhook(
  url: string,
  secret: string,
  event: { id: string; action: string; body: string },
  settings: DeliverySettings,
): Promise<DeliveryResult> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, error: "invalid URL" };
  }
  // An IP literal is connected to without a lookup: check it here; names are checked on resolution.
  const literal = target.hostname.replace(/^\[|\]$/g, "");
  if (!settings.allowPrivate && net.isIP(literal) && isPrivateAddress(literal)) {
    return { ok: false, error: `refused: ${literal} is a private address` };
  }
  const timestamp = String(Math.floor(Date.now() / 1000));
  const lookup: net.LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, "", 4);
      const list = addresses as dns.LookupAddress[];
      const refused = !settings.allowPrivate && list.some((a) => isPrivateAddress(a.address));
      if (refused) {
        return callback(
          Object.assign(new Error(`refused: ${hostname} resolves to a private address`), { code: "EPRIVATE" }),
          "",
          4,
        );
      }
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  };
  const client = target.protocol === "https:" ? https : http;
  return new Promise<DeliveryResult>((resolve) => {
    const request = client.request(
      target,
      {
        method: "POST",
        lookup,
        timeout: settings.timeoutMs,
        signal: AbortSignal.timeout(settings.timeoutMs),
        headers: {
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(event.body),
          "User-Agent": "Attest-Webhooks/1",
          "X-Attest-Event-Id": event.id,
          "X-Attest-Action": event.action,
          "X-Attest-Timestamp": timestamp,
          "X-Attest-Signature": signWebhook(secret, timestamp, event.body),
        },
      },
      (response) => {
        let read = 0;
        response.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read > settings.maxResponseBytes) response.destroy();
        });
        const done = () => {
          const code = response.statusCode ?? 0;
          resolve(
            code >= 200 && code < 300
              ? { ok: true, statusCode: code }
              : { ok: false, statusCode: code, error: `HTTP ${code}` },
          );
        };
        response.on("end", done);
        response.on("close", done);
        response.on("error", done);
      },
    );
    request.on("timeout", () => request.destroy(new Error(`no answer within ${settings.timeoutMs} ms`)));
    request.on("error", (error) => resolve({ ok: false, error: error.message }));
    request.end(event.body);
  });
}
