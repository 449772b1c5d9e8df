/**
 * Worker liveness. graphile-worker unlocks a job whose worker vanished only after 4 hours; a
 * killed Attest (kill -9, a crash, a lost machine) must not leave a requested evidence pack
 * hanging that long. Each worker of this process beats in app_private.worker_heartbeats; jobs
 * locked by a worker that stopped beating — or whose process on this host no longer exists —
 * are unlocked so that another worker retries them.
 */
import { EventEmitter } from "node:events";
import os from "node:os";
import { makeWorkerUtils, type WorkerEvents } from "graphile-worker";
import type pg from "pg";
import type { Logger } from "../src/log.ts";

const BEAT_MS = 10_000;
const STALE_SECONDS = 60;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

export function workerLiveness(pool: pg.Pool, log: Logger) {
  const events = new EventEmitter() as WorkerEvents;
  const ours = new Set<string>();
  const hostname = os.hostname();
  // graphile-worker locks jobs in the name of the worker *pool* (jobs.locked_by = pool id), not of
  // the individual worker: both beat, or a running job would look orphaned and run twice.
  events.on("pool:create", ({ workerPool }) => {
    ours.add(workerPool.id);
  });
  events.on("pool:release", ({ workerPool }) => {
    ours.delete(workerPool.id);
    pool.query("delete from app_private.worker_heartbeats where worker_id = $1", [workerPool.id]).catch(() => {});
  });
  events.on("worker:create", ({ worker }) => {
    ours.add(worker.workerId);
  });
  events.on("worker:release", ({ worker }) => {
    ours.delete(worker.workerId);
    pool.query("delete from app_private.worker_heartbeats where worker_id = $1", [worker.workerId]).catch(() => {});
  });

  const beat = async () => {
    if (ours.size === 0) return;
    await pool.query(
      `insert into app_private.worker_heartbeats (worker_id, hostname, pid)
       select unnest($1::text[]), $2, $3
       on conflict (worker_id) do update set seen_at = now(), hostname = excluded.hostname, pid = excluded.pid`,
      [[...ours], hostname, process.pid],
    );
  };

  /** Unlocks jobs whose worker is gone; returns how many workers were declared dead. */
  const recover = async (): Promise<number> => {
    const { rows } = await pool.query<{
      locked_by: string;
      hostname: string | null;
      pid: number | null;
      stale: boolean | null;
    }>(
      `select j.locked_by, h.hostname, h.pid, h.seen_at < now() - make_interval(secs => $1) as stale
       from (select distinct locked_by from graphile_worker.jobs where locked_by is not null) j
       left join app_private.worker_heartbeats h on h.worker_id = j.locked_by`,
      [STALE_SECONDS],
    );
    const dead = rows
      .filter((r) => !ours.has(r.locked_by))
      .filter((r) => r.stale !== false || (r.hostname === hostname && r.pid !== null && !processAlive(r.pid)))
      .map((r) => r.locked_by);
    if (dead.length === 0) return 0;
    const utils = await makeWorkerUtils({ pgPool: pool });
    try {
      await utils.forceUnlockWorkers(dead);
    } finally {
      await utils.release();
    }
    await pool.query("delete from app_private.worker_heartbeats where worker_id = any($1::text[])", [dead]);
    log.warn(`Unlocked the jobs of ${dead.length} worker(s) that stopped (${dead.join(", ")}); they will be retried`);
    return dead.length;
  };

  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    beat()
      .then(recover)
      .catch((error) => log.warn("worker heartbeat failed", { error: (error as Error).message }));
  };
  return {
    events,
    recover,
    start() {
      tick();
      timer = setInterval(tick, BEAT_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      if (ours.size > 0) {
        await pool.query("delete from app_private.worker_heartbeats where worker_id = any($1::text[])", [[...ours]]);
      }
    },
  };
}
