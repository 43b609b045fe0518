// The agent's log: one JSON object per line on stderr ({"time","level","msg", fields...}), so
// a DaemonSet's log collector can read it as it is. Lines under the threshold are dropped.
export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

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
