// The agent's `--metrics-address HOST:PORT`: an IPv4 address, `[IPv6]` or `localhost`, and a
// port (0: any free one). Pure.
import { ipv4Problem, isIpv6 } from "../spec/ipv4.ts";

export const DEFAULT_METRICS_ADDRESS = "127.0.0.1:9972";

export interface ListenAddress {
  hostname: string;
  port: number;
}

/** The address, or why it is not one. */
export function parseListenAddress(text: string): ListenAddress | { problem: string } {
  const m = text.match(/^(.*):([0-9]{1,5})$/);
  if (!m) return { problem: "must be HOST:PORT" };
  const port = Number(m[2]);
  if (port > 65535) return { problem: `port ${port} out of range (0-65535)` };
  const host = m[1]!;
  if (host.startsWith("[") && host.endsWith("]")) {
    const v6 = host.slice(1, -1);
    return isIpv6(v6) ? { hostname: v6, port } : { problem: "not an IPv6 address in brackets" };
  }
  if (host === "localhost") return { hostname: host, port };
  const problem = ipv4Problem(host);
  if (problem !== undefined) return { problem: `host: ${problem}` };
  return { hostname: host, port };
}

/** HOST:PORT as given back to a user (IPv6 in brackets). */
export function formatListenAddress(a: ListenAddress): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
