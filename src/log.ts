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

export function createLogger(level: Level = "info", scope = "attest"): Logger {
  const emit = (at: Level, message: string, fields?: Record<string, unknown>) => {
    if (order[at] < order[level]) return;
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
    const line = `${new Date().toISOString()} ${at.padEnd(5)} [${scope}] ${message}${extra}\n`;
    (at === "error" || at === "warn" ? process.stderr : process.stdout).write(line);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}
