// What config_map must hold for a network, and whether a pin directory can give it: the mode
// and conntrack flag cannot change under attached pods (they would switch semantics under a
// live flow); service ranges and lifetimes follow the latest config. Pure.
import {
  CFG_CONNTRACK,
  type DatapathConfig,
  MODE_IDENTITY,
  MODE_KUBERNETES,
} from "../spec/bpf_layout.ts";
import { type Cidr, formatCidr, prefixMask } from "../spec/ipv4.ts";

export interface WantedConfig {
  mode: "identity" | "kubernetes";
  conntrack: boolean;
  serviceCidrs: readonly Cidr[];
  conntrackTimeouts: {
    tcpSyn?: number;
    tcpEstablished?: number;
    tcpClose?: number;
    udp?: number;
    other?: number;
  };
}

export function modeName(mode: number): string {
  return mode === MODE_KUBERNETES ? "kubernetes" : mode === MODE_IDENTITY ? "identity" : `${mode}`;
}

export function configFor(w: WantedConfig, current: DatapathConfig): DatapathConfig {
  const t = w.conntrackTimeouts;
  return {
    mode: w.mode === "kubernetes" ? MODE_KUBERNETES : MODE_IDENTITY,
    flags: w.conntrack ? CFG_CONNTRACK : 0,
    ctTcpSyn: t.tcpSyn ?? 0,
    ctTcpEstablished: t.tcpEstablished ?? 0,
    ctTcpClose: t.tcpClose ?? 0,
    ctUdp: t.udp ?? 0,
    ctOther: t.other ?? 0,
    eventsRate: current.eventsRate,
    eventsBurst: current.eventsBurst,
    serviceCidrs: w.serviceCidrs.map((c) => ({ addr: c.network, mask: prefixMask(c.prefix) })),
  };
}

export type ConfigPlan =
  | { kind: "same" }
  | { kind: "write"; config: DatapathConfig }
  | { kind: "conflict"; message: string };

/** What to do with config_map holding `current` when a network wants `w` and `attached`
 * veths are registered under the pin directory. */
export function planConfig(
  current: DatapathConfig,
  w: WantedConfig,
  attached: number,
  pinDir: string,
): ConfigPlan {
  const next = configFor(w, current);
  const semantic = current.mode !== next.mode ||
    (current.flags & CFG_CONNTRACK) !== (next.flags & CFG_CONNTRACK);
  if (semantic && attached > 0) {
    const have = `${modeName(current.mode)} mode, conntrack ${
      current.flags & CFG_CONNTRACK ? "on" : "off"
    }`;
    const want = `${w.mode} mode, conntrack ${w.conntrack ? "on" : "off"}`;
    return {
      kind: "conflict",
      message: `Pin directory "${pinDir}" runs in ${have} with ${attached} pod(s) attached; ` +
        `this network asks for ${want}: give it another "pinDir", or change it once no pod ` +
        "is attached",
    };
  }
  return JSON.stringify(current) === JSON.stringify(next)
    ? { kind: "same" }
    : { kind: "write", config: next };
}

export function describeServiceCidrs(c: DatapathConfig): string[] {
  return c.serviceCidrs.map((r) => {
    let prefix = 0;
    while (prefix < 32 && prefixMask(prefix) !== r.mask) prefix++;
    return formatCidr({ network: r.addr, prefix });
  });
}
