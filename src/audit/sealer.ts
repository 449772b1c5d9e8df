/**
 * The sealer: moves committed audit entries into their tenants' Merkle logs and signs a
 * checkpoint of every log it changed, in one transaction (app_private.seal_audit_entries does
 * the ordering and hashing in SQL; this module holds the signing key and the loop).
 * Any number of sealers may run: the database lets one seal at a time, and a killed sealer's
 * transaction leaves nothing behind. Owns nothing else: it never reads entries' contents.
 */
import type pg from "pg";
import type { Logger } from "../log.ts";
import { originOf, signCheckpoint } from "./checkpoint.ts";
import { readActiveSigningKey, type SigningKey } from "./keys.ts";

export interface SealResult {
  /** Entries sealed in this round. */
  sealed: number;
  /** Checkpoints signed in this round. */
  checkpoints: number;
  /** The round's transaction time (the sealed_at of its leaves). */
  sealedAt: Date | null;
}

interface Head {
  tenant_id: string;
  tree_size: string;
  root_hash: Buffer;
}

async function signHeads(client: pg.ClientBase, heads: Head[], key: SigningKey, originPrefix: string) {
  const now = new Date();
  for (const head of heads) {
    const origin = originOf(originPrefix, head.tenant_id);
    const note = signCheckpoint(origin, Number(head.tree_size), head.root_hash, now, key.privateKey);
    await client.query("select app_private.add_audit_checkpoint($1, $2, $3, $4, $5, $6)", [
      head.tenant_id,
      head.tree_size,
      head.root_hash,
      origin,
      note,
      key.fingerprint,
    ]);
  }
}

/**
 * When a sealer signs: at most one checkpoint per tenant every `everyMs` (heads sealed meanwhile
 * are signed in a later round, at the latest `everyMs` after the previous checkpoint). Kept by the
 * caller across rounds; without it every new head is signed at once.
 */
export interface CheckpointPacing {
  everyMs: number;
  /** When each tenant's last checkpoint was signed by this sealer. */
  lastSigned: Map<string, number>;
  /** Tenants whose newest head is not signed yet. */
  deferred: Set<string>;
  /** Whether heads left unsigned by an earlier process have been looked for. */
  swept: boolean;
}

export function checkpointPacing(everyMs: number): CheckpointPacing {
  return { everyMs, lastSigned: new Map(), deferred: new Set(), swept: false };
}

/**
 * One round: seals up to `maxEntries` entries and signs the new heads (paced, when `pacing` is
 * given), and any head left unsigned, e.g. by the migration that sealed the v1 entries or by a
 * sealer that stopped with heads it had deferred.
 */
export async function sealOnce(
  pool: pg.Pool,
  options: { key: SigningKey; originPrefix: string; maxEntries?: number; pacing?: CheckpointPacing },
): Promise<SealResult> {
  const pacing = options.pacing;
  const client = await pool.connect();
  try {
    await client.query("begin isolation level read committed");
    const { rows: started } = await client.query<{ now: Date }>("select now()");
    const { rows } = await client.query<Head & { sealed: string }>(
      "select tenant_id, tree_size, root_hash, sealed from app_private.seal_audit_entries($1)",
      [options.maxEntries ?? 50_000],
    );
    const heads = new Map<string, Head>();
    if (!pacing?.swept) {
      const unsigned = await client.query<Head>(
        "select tenant_id, tree_size, root_hash from app_private.unsigned_audit_heads()",
      );
      for (const head of unsigned.rows) heads.set(head.tenant_id, head);
    }
    const now = Date.now();
    if (pacing) {
      for (const head of rows) pacing.deferred.add(head.tenant_id);
      const due = [...pacing.deferred].filter((t) => now - (pacing.lastSigned.get(t) ?? 0) >= pacing.everyMs);
      if (due.length > 0) {
        const current = await client.query<Head>(
          "select tenant_id, tree_size, root_hash from app_private.audit_heads($1::uuid[])",
          [due],
        );
        for (const head of current.rows) heads.set(head.tenant_id, head);
        for (const tenant of due) pacing.deferred.delete(tenant);
      }
    } else {
      for (const head of rows) heads.set(head.tenant_id, head);
    }
    await signHeads(client, [...heads.values()], options.key, options.originPrefix);
    await client.query("commit");
    if (pacing) {
      pacing.swept = true;
      for (const tenant of heads.keys()) pacing.lastSigned.set(tenant, now);
    }
    return {
      sealed: rows.reduce((n, r) => n + Number(r.sealed), 0),
      checkpoints: heads.size,
      sealedAt: started[0].now,
    };
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Keeps the resource names of up to `maxEntries` sealed entries for the Audit Log's search
 * (app_private.name_audit_entries, migration 000029), in a transaction of its own after sealing:
 * sealing never waits for it. Returns how many entries it read (0: the names are up to date).
 */
export async function nameOnce(pool: pg.Pool, maxEntries = 50_000): Promise<number> {
  const { rows } = await pool.query<{ n: string }>("select app_private.name_audit_entries($1) as n", [maxEntries]);
  return Number(rows[0].n);
}

export interface RunningSealer {
  /** Stops after the running round and signs the heads it had deferred. */
  stop(): Promise<void>;
}

/**
 * Seals in a loop: a full batch is followed at once by the next, otherwise it waits
 * `intervalMs`. Errors are logged and retried after a pause; stop() waits for the running round.
 */
export function startSealer(options: {
  pool: pg.Pool;
  log: Logger;
  originPrefix: string;
  intervalMs?: number;
  maxEntries?: number;
  /** At most one checkpoint per tenant this often (ms); 0 signs every new head at once. */
  checkpointEveryMs?: number;
}): RunningSealer {
  const interval = options.intervalMs ?? 200;
  const pacing = checkpointPacing(options.checkpointEveryMs ?? 1000);
  const maxEntries = options.maxEntries ?? 50_000;
  let stopped = false;
  let wake: (() => void) | null = null;
  let key: SigningKey | null = null;
  let keyReadAt = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
    });

  const loop = (async () => {
    while (!stopped) {
      let pause = interval;
      try {
        // Re-read the key now and then: `npm run keys:rotate` runs in another process.
        if (!key || Date.now() - keyReadAt > 30_000) {
          key = await readActiveSigningKey(options.pool);
          keyReadAt = Date.now();
        }
        const result = await sealOnce(options.pool, { key, originPrefix: options.originPrefix, maxEntries, pacing });
        const named = await nameOnce(options.pool, maxEntries);
        if (result.sealed >= maxEntries || named >= maxEntries) pause = 0;
      } catch (error) {
        key = null;
        if (!stopped) options.log.warn("Sealing audit entries failed; retrying", { error: (error as Error).message });
        pause = Math.max(interval, 1000);
      }
      if (pause > 0 && !stopped) await sleep(pause);
    }
  })();

  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      // Sign what was deferred, so that a stopped installation leaves no head unsigned.
      if (key && pacing.deferred.size > 0) {
        pacing.everyMs = 0;
        await sealOnce(options.pool, { key, originPrefix: options.originPrefix, maxEntries, pacing }).catch((error) =>
          options.log.warn("Could not sign the last checkpoints", { error: (error as Error).message }),
        );
      }
    },
  };
}
