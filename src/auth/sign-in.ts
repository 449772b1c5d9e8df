/**
 * Sign-in and sign-out. The server checks the password (argon2id); the database keeps sessions,
 * the failed-attempt counts used to slow guessing down, and the audit trail of sign-ins.
 * Messages never reveal whether an email has an account.
 */
import { hash, verify } from "@node-rs/argon2";
import type pg from "pg";
import { type ActingContext, withContext } from "../db/context.ts";

export const SESSION_COOKIE = "attest_session";

/**
 * Failed attempts in the last 15 minutes after which answers are delayed, then refused: per
 * email (guessing one account's password), and per IP (trying many accounts; higher, since
 * several people may share an address).
 */
export const SLOW_DOWN_AFTER = 3;
export const REFUSE_AFTER = 10;
export const REFUSE_IP_AFTER = 50;

export type SignInResult =
  | { ok: true; sessionToken: string }
  | { ok: false; reason: "invalid" }
  | { ok: false; reason: "throttled"; retryAfterSeconds: number };

// A real argon2id hash of a random password: verifying against it costs as much as a real check,
// so an unknown email answers as slowly as a wrong password.
const dummyHash = hash(crypto.randomUUID());

/** Seconds to wait before answering after `failures` recent failures. */
export function slowDownSeconds(failures: number): number {
  return failures < SLOW_DOWN_AFTER ? 0 : Math.min(2 ** (failures - SLOW_DOWN_AFTER), 8);
}

export async function signIn(
  pool: pg.Pool,
  context: ActingContext,
  email: string,
  password: string,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<SignInResult> {
  const normalized = email.trim().toLowerCase();
  // Counting the recent failures and recording this attempt as one is a single atomic step in the
  // database (advisory locks per email and IP): concurrent guesses cannot all pass the limit.
  const found = await withContext(pool, context, async (c) => {
    const { rows } = await c.query<{
      attempt_id: string;
      user_id: string | null;
      password_hash: string | null;
      email_failures: number;
      ip_failures: number;
      refused: boolean;
    }>("select * from app_private.sign_in_attempt($1, $2, $3, $4)", [
      normalized,
      context.ip ?? null,
      REFUSE_AFTER,
      REFUSE_IP_AFTER,
    ]);
    return rows[0];
  });
  if (found.refused) return { ok: false, reason: "throttled", retryAfterSeconds: 15 * 60 };
  await sleep(slowDownSeconds(Math.max(found.email_failures, Math.floor(found.ip_failures / 5))) * 1000);
  const valid =
    found.user_id !== null && found.password_hash !== null
      ? await verify(found.password_hash, password).catch(() => false)
      : (await verify(await dummyHash, password).catch(() => false)) && false;
  if (!valid || found.user_id === null) {
    await withContext(pool, context, (c) => c.query("select app_private.sign_in_attempt_failed($1)", [normalized]));
    return { ok: false, reason: "invalid" };
  }
  const userId = found.user_id;
  const sessionToken = await withContext(pool, context, async (c) => {
    const result = await c.query<{ token: string }>("select app_private.sign_in_attempt_succeeded($1, $2) as token", [
      found.attempt_id,
      userId,
    ]);
    return result.rows[0].token;
  });
  return { ok: true, sessionToken };
}

export async function signOut(pool: pg.Pool, context: ActingContext, sessionToken: string): Promise<void> {
  await withContext(pool, context, (c) => c.query("select app_private.sign_out($1)", [sessionToken]));
}
