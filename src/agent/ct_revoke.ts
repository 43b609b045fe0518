// Revocation: after a reconcile wrote a change, the tracked connections it no longer allows
// end (deleted from the conntrack, so their next packet is judged), within that reconcile.
// Connections whose ends changed identity end whatever the setting (their entries name
// identities the addresses no longer have); with --keep-established, connections a policy
// change denies go on until they close. The decision is netpol/revoke_plan.ts's.
import type { Compiled } from "../netpol/compile.ts";
import { connectionsToEnd, type EndReason } from "../netpol/revoke_plan.ts";
import type { Datapath } from "../datapath/loader.ts";
import { endConnections, trackedConnections } from "../datapath/tracked.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import { protocolName } from "../spec/rule_key.ts";
import type { AgentLog } from "../log.ts";

export interface RevocationStatus {
  /** "revoke" (the default) or "keep-established". */
  mode: "revoke" | "keep-established";
  /** Connections ended since the agent started, by reason. */
  ended: Record<EndReason, number>;
  /** The last pass over the tracked connections. */
  last: { at: string; ms: number; checked: number; ended: number } | null;
}

export interface SweepInput {
  compiled: Compiled;
  addresses: ReadonlyMap<number, number>;
  hosts: ReadonlySet<number>;
}

/** How many connections a pass names in the log. */
const LOGGED = 10;

export class Revoker {
  readonly #dp: Pick<Datapath, "maps" | "fd">;
  readonly #keep: boolean;
  readonly #log: AgentLog;
  readonly #ended: Record<EndReason, number> = { "identity-changed": 0, denied: 0 };
  #last: RevocationStatus["last"] = null;

  constructor(
    dp: Pick<Datapath, "maps" | "fd">,
    opts: { keepEstablished: boolean; log: AgentLog },
  ) {
    this.#dp = dp;
    this.#keep = opts.keepEstablished;
    this.#log = opts.log;
  }

  /** Ends what the entries just written no longer allow; returns how many. */
  sweep(input: SweepInput): number {
    const started = performance.now();
    const tracked = trackedConnections(this.#dp);
    const ending = connectionsToEnd(tracked, { ...input, revokeDenied: !this.#keep });
    endConnections(this.#dp, ending.map((e) => e.connection));
    const ms = performance.now() - started;
    for (const e of ending) this.#ended[e.reason]++;
    this.#last = {
      at: new Date().toISOString(),
      ms,
      checked: tracked.length,
      ended: ending.length,
    };
    if (ending.length > 0) {
      this.#log.info("tracked connections ended", {
        count: ending.length,
        checked: tracked.length,
        ms: Math.round(ms * 100) / 100,
        connections: ending.slice(0, LOGGED).map(({ connection: { key: k }, reason }) =>
          `${protocolName(k.proto)} ${formatIpv4(k.saddr)}:${k.sport} -> ${
            formatIpv4(k.daddr)
          }:${k.dport} (${reason})`
        ),
      });
    }
    return ending.length;
  }

  status(): RevocationStatus {
    return {
      mode: this.#keep ? "keep-established" : "revoke",
      ended: { ...this.#ended },
      last: this.#last,
    };
  }
}
