// The one logger, in two forms over the same levels. `log`: the plugin's and the CLI's, for a
// program whose stdout is the CNI result: everything goes to stderr, or to the file named by
// EBPFCNI_LOG_FILE; EBPFCNI_LOG_LEVEL picks the threshold (default warn). `jsonLog()`: the
// policy agent's, one JSON object per line on stderr ({"time","level","msg", fields...}), so a
// DaemonSet's log collector can read it as it is; the agent points `log` at it (`logTo`) for
// the CNI calls it runs.

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 } as const;
export type Level = keyof typeof LEVELS;
export type LogLevel = Level;
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const encoder = new TextEncoder();

export type LogSink = (level: Level, msg: string) => void;
let sink: LogSink | undefined;

/** Hands every line to `to` instead, which applies its own threshold (the agent, which runs
 * CNI calls handed over to it and logs JSON lines); undefined restores stderr. */
export function logTo(to: LogSink | undefined): void {
  sink = to;
}
// Read on first use, not at import: importing a module does no work.
let settings: { threshold: number; file: string | undefined } | undefined;

function write(level: Level, msg: string): void {
  if (sink !== undefined) return sink(level, msg);
  settings ??= {
    threshold: LEVELS[(env("EBPFCNI_LOG_LEVEL") ?? "warn") as Level] ?? LEVELS.warn,
    file: env("EBPFCNI_LOG_FILE"),
  };
  const { threshold, file } = settings;
  if (LEVELS[level] < threshold) return;
  const line = encoder.encode(
    `${new Date().toISOString()} ebpfcni[${Deno.pid}] ${level}: ${msg}\n`,
  );
  try {
    if (file) Deno.writeFileSync(file, line, { append: true, create: true });
    else Deno.stderr.writeSync(line);
  } catch {
    // Logging must never break the command.
  }
}

export const log = {
  debug: (msg: string) => write("debug", msg),
  info: (msg: string) => write("info", msg),
  warn: (msg: string) => write("warn", msg),
  error: (msg: string) => write("error", msg),
};

export type Fields = Record<string, unknown>;

export interface AgentLog {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

export function jsonLog(
  threshold: LogLevel,
  write: (line: string) => void = (line) => {
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(line));
    } catch {
      // a closed stderr must not stop the agent
    }
  },
): AgentLog {
  const min = LOG_LEVELS.indexOf(threshold);
  const at = (level: LogLevel) => (msg: string, fields: Fields = {}) => {
    if (LOG_LEVELS.indexOf(level) < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
