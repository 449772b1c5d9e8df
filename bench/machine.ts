/**
 * What the machine was like while a benchmark ran, printed with its figures: the same code measures
 * up to twice as fast on one 2-core VM as on another, and a VM whose host is busy loses CPU time
 * to it ("steal") in bursts. So each benchmark starts with a fixed CPU task (its time is the scale
 * to compare runs on different machines by) and ends with how the CPUs' time went meanwhile
 * (from /proc/stat; Linux only, otherwise left out).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";

/** user, nice, system, idle, iowait, irq, softirq, steal: the machine's CPU time so far, in ticks. */
function cpuTicks(): number[] | null {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
    if (!line.startsWith("cpu ")) return null;
    return line.trim().split(/\s+/).slice(1, 9).map(Number);
  } catch {
    return null;
  }
}

/** Milliseconds for 200,000 chained SHA-256 digests of 32 bytes in this process (one core). */
function cpuReferenceMs(): number {
  let digest = Buffer.alloc(32);
  const t0 = performance.now();
  for (let i = 0; i < 200_000; i++) digest = createHash("sha256").update(digest).digest();
  return performance.now() - t0;
}

/** Call at the start of a benchmark: prints the reference; the function it returns prints the CPU time's split. */
export function machineReport(out: (line: string) => void): () => void {
  const reference = Math.min(cpuReferenceMs(), cpuReferenceMs());
  out(`machine: reference task ${reference.toFixed(0)} ms (200,000 SHA-256 in Node; lower is faster)`);
  const start = cpuTicks();
  return () => {
    const end = cpuTicks();
    if (!start || !end) return;
    const d = end.map((x, i) => x - start[i]);
    const total = d.reduce((a, b) => a + b, 0);
    if (total <= 0) return;
    const pct = (x: number) => `${((100 * x) / total).toFixed(0)}%`;
    out(
      `machine: CPU time during the run: busy ${pct(d[0] + d[1] + d[2] + d[5] + d[6])}, idle ${pct(d[3])}, I/O wait ${pct(d[4])}, taken by the host (steal) ${pct(d[7])}`,
    );
  };
}
