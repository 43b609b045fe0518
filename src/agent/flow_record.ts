// One datapath verdict as operators read it: the line `ebpfcni monitor` prints and the agent's
// flow log writes, from one formatter so that both carry the same fields in the same order.
// Names (pods, deciding policies) come from the agent when one serves the pin directory; a
// record without them carries what the event itself says. Pure.
import {
  type DatapathEvent,
  HOOK_TO_NODE,
  HOOK_TO_POD,
  STAT_NAMES,
  VERDICT_ALLOW,
} from "../spec/bpf_layout.ts";
import { protocolName } from "../spec/rule_key.ts";
import { identityText } from "../spec/bpf_layout.ts";
import { formatIpv4 } from "../spec/ipv4.ts";

/** A pod by name. */
export interface PodName {
  namespace: string;
  pod: string;
}

/** What the agent knows of an event beyond the event. */
export interface FlowNames {
  src?: PodName;
  dst?: PodName;
  /** A drop by policy: the policies that isolate the direction that dropped it (none of their
   * rules allows it). An allow: the policies whose rules allowed it (empty: not isolated).
   * Absent when the engine cannot name them (another reason, a model that changed since). */
  policies?: string[];
}

/** The JSON line's fields, in this order; optional ones are left out when unknown. */
export interface FlowRecord {
  time: string;
  verdict: "drop" | "allow";
  reason: string;
  hook: "from-pod" | "to-pod" | "to-node";
  ifindex: number;
  interface: string;
  proto: string;
  src: string;
  sport: number;
  srcIdentity: string;
  srcNamespace?: string;
  srcPod?: string;
  dst: string;
  dport: number;
  dstIdentity: string;
  dstNamespace?: string;
  dstPod?: string;
  policies?: string[];
}

export function verdictOf(e: DatapathEvent): FlowRecord["verdict"] {
  return e.verdict === VERDICT_ALLOW ? "allow" : "drop";
}

export function reasonOf(e: DatapathEvent): string {
  return STAT_NAMES[e.reason] ?? `reason ${e.reason}`;
}

/** An event in words; `wallMs(ts)` turns its monotonic time into wall-clock milliseconds. */
export function flowRecord(
  e: DatapathEvent,
  wallMs: (ts: bigint) => number,
  ifname: (ifindex: number) => string,
  names: FlowNames = {},
): FlowRecord {
  return {
    time: new Date(wallMs(e.ts)).toISOString(),
    verdict: verdictOf(e),
    reason: reasonOf(e),
    hook: e.hook === HOOK_TO_POD ? "to-pod" : e.hook === HOOK_TO_NODE ? "to-node" : "from-pod",
    ifindex: e.ifindex,
    interface: ifname(e.ifindex),
    proto: protocolName(e.proto),
    src: formatIpv4(e.saddr),
    sport: e.sport,
    srcIdentity: e.srcId === 0 ? "-" : identityText(e.srcId),
    ...(names.src && { srcNamespace: names.src.namespace, srcPod: names.src.pod }),
    dst: formatIpv4(e.daddr),
    dport: e.dport,
    dstIdentity: e.dstId === 0 ? "-" : identityText(e.dstId),
    ...(names.dst && { dstNamespace: names.dst.namespace, dstPod: names.dst.pod }),
    ...(names.policies && { policies: names.policies }),
  };
}

/** The JSON line (with its newline). */
export function flowJson(r: FlowRecord): string {
  return JSON.stringify(r) + "\n";
}

/** The human line: `time VERDICT interface hook proto src (who) -> dst (who) reason [policies]`. */
export function flowText(r: FlowRecord): string {
  const l4 = r.proto === "tcp" || r.proto === "udp" || r.proto === "sctp";
  const port = (p: number) => (l4 ? `:${p}` : "");
  const who = (ns: string | undefined, pod: string | undefined, id: string) =>
    ns !== undefined && pod !== undefined ? `${ns}/${pod} ${id}` : id;
  const policies = r.policies === undefined
    ? ""
    : r.policies.length === 0
    ? (r.verdict === "allow" ? " (not isolated)" : "")
    : ` (${r.verdict === "drop" ? "isolated by" : "allowed by"} ${r.policies.join(", ")})`;
  return `${r.time} ${r.verdict.toUpperCase().padEnd(5)} ${r.interface} ${r.hook} ${r.proto} ` +
    `${r.src}${port(r.sport)} (${who(r.srcNamespace, r.srcPod, r.srcIdentity)}) -> ` +
    `${r.dst}${port(r.dport)} (${who(r.dstNamespace, r.dstPod, r.dstIdentity)}) ` +
    `${r.reason}${policies}\n`;
}
