/**
 * GET /.well-known/attest-signing-keys.json: the public keys that sign this installation's
 * evidence packs (retired ones included), so an auditor can check a pack's fingerprint against a
 * source other than the pack itself.
 */
import Router from "@koa/router";
import type pg from "pg";
import { withContext } from "../../db/context.ts";
import { formatFingerprint } from "../../packs/format.ts";

export const SIGNING_KEYS_PATH = "/.well-known/attest-signing-keys.json";

export function signingKeyRoutes(options: { authPool: pg.Pool; visitorRole: string }): Router {
  const router = new Router();
  router.get(SIGNING_KEYS_PATH, async (ctx) => {
    const { rows } = await withContext(options.authPool, { role: options.visitorRole, surface: "web" }, (c) =>
      c.query<{ fingerprint: string; public_key_pem: string; created_at: Date; retired_at: Date | null }>(
        "select * from app_public.signing_keys()",
      ),
    );
    ctx.set("Cache-Control", "public, max-age=300");
    ctx.body = {
      algorithm: "ed25519",
      fingerprint: "SHA-256 of the raw 32-byte public key, hex",
      keys: rows.map((k) => ({
        fingerprint: k.fingerprint,
        fingerprint_grouped: formatFingerprint(k.fingerprint),
        public_key_pem: k.public_key_pem,
        created_at: k.created_at.toISOString(),
        retired_at: k.retired_at?.toISOString() ?? null,
        active: k.retired_at === null,
      })),
    };
  });
  return router;
}
