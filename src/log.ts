// Logging for a program whose stdout is the CNI result: everything goes to stderr, or to
// the file named by EBPFCNI_LOG_FILE. EBPFCNI_LOG_LEVEL picks the threshold (default warn).

const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 } as const;
export type Level = keyof typeof LEVELS;

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
