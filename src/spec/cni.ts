// The CNI spec's shapes and errors: the result types (1.x shape; src/cni/result.ts converts to
// older ones) and CniError, which maps to the spec's error JSON. Part of the leaf layer: it
// imports nothing of ours.

/** Where the plugin keeps its per-attachment records unless the config's "stateDir" says
 * otherwise (the policy agent reads them from there too). */
export const DEFAULT_STATE_DIR = "/var/lib/cni/ebpfcni";

/** Error codes reserved by the CNI spec (SPEC.md, "Error"). */
export const ErrCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
  // Plugin-specific codes (the spec leaves 100 and above to plugins).
  AddressExhausted: 100,
  AddressUnavailable: 101,
  MapFull: 102,
  Internal: 999,
} as const;
export type ErrCode = typeof ErrCode[keyof typeof ErrCode];

/** An error the plugin reports to the runtime as the spec's error JSON. */
export class CniError extends Error {
  override name = "CniError";
  constructor(
    readonly code: number,
    msg: string,
    readonly details = "",
    options?: ErrorOptions,
  ) {
    super(msg, options);
  }

  /** The spec's error object, in the requested version's shape. */
  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

/** Joins an error's message with the messages of its causes. */
export function causeChain(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (cur instanceof Error) {
      // Wrappers often repeat their cause's words: keep each piece once.
      if (!parts.some((p) => p.includes(cur instanceof Error ? cur.message : ""))) {
        parts.push(cur.message);
      }
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(": ");
}

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface IpConfig {
  /** CIDR notation, e.g. "10.13.0.2/24". */
  address: string;
  gateway?: string;
  /** Index into Result.interfaces. */
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** What an IPAM plugin (built-in or delegated) returns. */
export interface IpamResult {
  ips: IpConfig[];
  routes: Route[];
  dns?: Dns;
}
