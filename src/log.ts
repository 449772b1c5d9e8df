/**
 * Logging: one line per event on stdout/stderr, with a level filter set once from LOG_LEVEL.
 * Owns formatting only; callers decide what is worth saying and never log secrets.
 */
const order = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type Level = keyof typeof order;

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * Lines for stdout wait for the end of the event loop's turn and go out in one write: a server
 * under load logs a line per request, and one write per line costs more CPU than the request's
 * own response. Warnings and errors go to stderr at once, after what stdout holds (so that the
 * two keep their order); what is held is written when the process exits.
 */
let held: string[] = [];
let flushing = false;
function flushStdout(): void {
  flushing = false;
  if (held.length === 0) return;
  const text = held.join("");
  held = [];
  process.stdout.write(text);
}
process.on("exit", flushStdout);

export function createLogger(level: Level = "info", scope = "attest"): Logger {
  const emit = (at: Level, message: string, fields?: Record<string, unknown>) => {
    if (order[at] < order[level]) return;
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
    const line = `${new Date().toISOString()} ${at.padEnd(5)} [${scope}] ${message}${extra}\n`;
    if (at === "error" || at === "warn") {
      flushStdout();
      process.stderr.write(line);
      return;
    }
    held.push(line);
    if (!flushing) {
      flushing = true;
      setImmediate(flushStdout);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}
