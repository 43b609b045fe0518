// Byte layouts of the pinned maps' keys and values: the specs, struct layouts and enums of
// bpf/ebpfcni.h come from src/spec/bpf_abi.gen.ts, generated from the object's BTF; this
// module names them as the rest of the tree uses them and holds the codecs, written by hand
// (a unit test checks each against the generated offsets).
import type { MapSpec } from "./pinned.ts";
import { ENUMS, MAP_SPECS, STRUCTS } from "./bpf_abi.gen.ts";
export type { MapSpec };
export { STRUCTS };
export {
  CFG_CONNTRACK,
  CT_EST_PER_ADDR,
  DIR_EGRESS,
  DIR_INGRESS,
  DIR_PAIR,
  HOOK_FROM_POD,
  HOOK_TO_NODE,
  HOOK_TO_POD,
  IDENTITY_ANY,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  IPCACHE_LOCAL,
  ISOLATE_EGRESS,
  ISOLATE_INGRESS,
  MAX_SERVICE_CIDRS,
  MODE_IDENTITY,
  MODE_KUBERNETES,
  POLICY_ALLOW,
  RULE_PREFIX_ANY_PORT,
  RULE_PREFIX_ANY_PROTO,
  RULE_PREFIX_FULL,
  VERDICT_ALLOW,
  VERDICT_DROP,
  VETH_MAX_IPS,
} from "./bpf_abi.gen.ts";
import {
  CT_AT_DST,
  CT_AT_SRC,
  CT_CHARGED_DST,
  CT_FIN_FWD,
  CT_FIN_REV,
  CT_PENDING,
  CT_RST,
  CT_SEEN_REPLY,
  CT_SERVICE,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  MAX_SERVICE_CIDRS,
  VETH_MAX_IPS,
} from "./bpf_abi.gen.ts";

/** An identity as operators read it: the reserved host and world by name. */
export function identityText(id: number): string {
  return id === IDENTITY_HOST ? "host" : id === IDENTITY_WORLD ? "world" : String(id);
}

// The kernel's UAPI (include/uapi/linux/bpf.h), not ours: the numbers the specs use.
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LRU_HASH = 9;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10;
export const BPF_MAP_TYPE_LPM_TRIE = 11;
export const BPF_MAP_TYPE_RINGBUF = 27;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_F_NO_PREALLOC = 1;

const S = STRUCTS;

// The original project's maps: their names, layouts and sizes are a contract.
/** endpoint_map: __u32 IPv4 address (host byte order) -> __u32 identity. */
export const ENDPOINT_MAP: MapSpec = MAP_SPECS.endpoint_map;
/** policy_map: struct policy_key { __u32 src_id; __u32 dst_id; } -> __u8 action. */
export const POLICY_MAP: MapSpec = MAP_SPECS.policy_map;

// Maps added since (a pin directory of an older build gets them added on upgrade).
/** stats_map: enum ebpfcni_stat -> per-CPU __u64 counter. */
export const STATS_MAP: MapSpec = MAP_SPECS.stats_map;
export const CONFIG_MAP: MapSpec = MAP_SPECS.config_map;
export const VETH_MAP: MapSpec = MAP_SPECS.veth_map;
export const HOST_MAP: MapSpec = MAP_SPECS.host_map;
export const IPCACHE_MAP: MapSpec = MAP_SPECS.ipcache_map;
export const CIDR_MAP: MapSpec = MAP_SPECS.cidr_map;
export const RULE_MAP: MapSpec = MAP_SPECS.rule_map;
export const ISOLATION_MAP: MapSpec = MAP_SPECS.isolation_map;
export const CT_MAP: MapSpec = MAP_SPECS.ct_map;
/** ct_est_map: established connections (ct_map's layout), out of the LRU's reach. */
export const CT_EST_MAP: MapSpec = MAP_SPECS.ct_est_map;
/** ct_quota_map: local pod IPv4 (host order) -> its entries in ct_est_map (signed). */
export const CT_QUOTA_MAP: MapSpec = MAP_SPECS.ct_quota_map;
export const FRAG_MAP: MapSpec = MAP_SPECS.frag_map;
export const PAIR_STATS_MAP: MapSpec = MAP_SPECS.pair_stats_map;
export const EVENTS_MAP: MapSpec = MAP_SPECS.events;
export const RATE_MAP: MapSpec = MAP_SPECS.rate_map;

/** Every map of the object, in the order status lists them (a unit test checks it is all of
 * MAP_SPECS). */
export const MAPS: readonly MapSpec[] = [
  ENDPOINT_MAP,
  POLICY_MAP,
  STATS_MAP,
  CONFIG_MAP,
  VETH_MAP,
  HOST_MAP,
  IPCACHE_MAP,
  CIDR_MAP,
  RULE_MAP,
  ISOLATION_MAP,
  CT_MAP,
  FRAG_MAP,
  PAIR_STATS_MAP,
  EVENTS_MAP,
  RATE_MAP,
  CT_EST_MAP,
  CT_QUOTA_MAP,
];

/** Whether a map's entries come and go (hash, LRU, LPM): arrays have every slot always, a
 * ring buffer holds bytes. */
export function holdsEntries(spec: MapSpec): boolean {
  return ![BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_RINGBUF].includes(spec.type);
}

/** Maps whose contents are not policy and that an upgrade may replace when their layout
 * changed (counters, events, caches). Every other map is kept, whatever it costs. */
export const REPLACEABLE_MAPS: ReadonlySet<string> = new Set([
  STATS_MAP.name,
  FRAG_MAP.name,
  PAIR_STATS_MAP.name,
  EVENTS_MAP.name,
  RATE_MAP.name,
]);

type StatEnumerator = Exclude<keyof typeof ENUMS.ebpfcni_stat, "STAT_MAX">;
/** A verdict counter's name: its enumerator in enum ebpfcni_stat, unprefixed, lower case. */
export type StatName = StatEnumerator extends `STAT_${infer R}` ? Lowercase<R> : never;

/** enum ebpfcni_stat's counters, in index order (a unit test checks there is no gap). */
export const STAT_NAMES: readonly StatName[] = Object.entries(ENUMS.ebpfcni_stat)
  .filter(([k]) => k !== "STAT_MAX")
  .sort(([, a], [, b]) => a - b)
  .map(([k]) => k.slice("STAT_".length).toLowerCase() as StatName);

/** ct_entry flags (enum ebpfcni_ct_flag). */
export const CT_FLAGS = {
  seenReply: CT_SEEN_REPLY,
  finFwd: CT_FIN_FWD,
  finRev: CT_FIN_REV,
  rst: CT_RST,
  pending: CT_PENDING,
  service: CT_SERVICE,
  /** Recorded by the source's hook / the destination's (ifindex is that end's veth). */
  atSrc: CT_AT_SRC,
  atDst: CT_AT_DST,
  /** In ct_est_map, charged to its destination (a local pod) rather than to its source. */
  chargedDst: CT_CHARGED_DST,
} as const;

/** Where the maps and the program are pinned unless configured otherwise (the original's
 * tc "globals" directory, so bpftool habits keep working). */
export const DEFAULT_PIN_DIR = "/sys/fs/bpf/tc/globals";

/** The pinned programs' file names in the pin directory (tc_prog is the original's). */
export const PROGRAM_PIN = "tc_prog";
export const PROGRAM_PIN_EGRESS = "tc_prog_egress";
/** The classifier of the device carrying pod traffic to other nodes (tc egress). */
export const PROGRAM_PIN_TO_NODE = "tc_prog_to_node";

// Keys and values are host-endian structs; every platform we build for is little-endian.
const LE = true;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function encodeU32(n: number, out = new Uint8Array(4), at = 0): Uint8Array<ArrayBuffer> {
  new DataView(out.buffer, out.byteOffset).setUint32(at, n, LE);
  return out as Uint8Array<ArrayBuffer>;
}

export function decodeU32(b: Uint8Array, at = 0): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(at, LE);
}

export function encodePolicyKey(
  src: number,
  dst: number,
  out = new Uint8Array(8),
  at = 0,
): Uint8Array<ArrayBuffer> {
  const v = new DataView(out.buffer, out.byteOffset);
  v.setUint32(at, src, LE);
  v.setUint32(at + 4, dst, LE);
  return out as Uint8Array<ArrayBuffer>;
}

export function decodePolicyKey(b: Uint8Array, at = 0): { src: number; dst: number } {
  const v = new DataView(b.buffer, b.byteOffset);
  return { src: v.getUint32(at, LE), dst: v.getUint32(at + 4, LE) };
}

// ---- the newer structs ----------------------------------------------------------------------

export interface DatapathConfig {
  mode: number;
  flags: number;
  ctTcpSyn: number;
  ctTcpEstablished: number;
  ctTcpClose: number;
  ctUdp: number;
  ctOther: number;
  eventsRate: number;
  eventsBurst: number;
  /** Service ranges as {addr, mask}, host order. */
  serviceCidrs: { addr: number; mask: number }[];
}

const CFG_U32 = [
  "mode",
  "flags",
  "ctTcpSyn",
  "ctTcpEstablished",
  "ctTcpClose",
  "ctUdp",
  "ctOther",
  "eventsRate",
  "eventsBurst",
] as const;

export function encodeConfig(c: DatapathConfig): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(S.dp_config.size);
  const v = view(b);
  CFG_U32.forEach((k, i) => v.setUint32(i * 4, c[k] >>> 0, LE));
  const cidrs = c.serviceCidrs.slice(0, MAX_SERVICE_CIDRS);
  v.setUint32(S.dp_config.fields.n_service_cidrs, cidrs.length, LE);
  cidrs.forEach((r, i) => {
    const at = S.dp_config.fields.service_cidrs + i * S.cidr4.size;
    v.setUint32(at, r.addr >>> 0, LE);
    v.setUint32(at + 4, r.mask >>> 0, LE);
  });
  return b;
}

export function decodeConfig(b: Uint8Array): DatapathConfig {
  const v = view(b);
  const out = Object.fromEntries(CFG_U32.map((k, i) => [k, v.getUint32(i * 4, LE)])) as Omit<
    DatapathConfig,
    "serviceCidrs"
  >;
  const n = Math.min(v.getUint32(S.dp_config.fields.n_service_cidrs, LE), MAX_SERVICE_CIDRS);
  const serviceCidrs = Array.from({ length: n }, (_, i) => {
    const at = S.dp_config.fields.service_cidrs + i * S.cidr4.size;
    return { addr: v.getUint32(at, LE), mask: v.getUint32(at + 4, LE) };
  });
  return { ...out, serviceCidrs };
}

/** An endpoint_map entry: an address (host order) and its identity. */
export interface Endpoint {
  /** IPv4 address as a host-order u32. */
  ip: number;
  identity: number;
}

/** A policy_map key: identities {src, dst}. */
export interface Policy {
  src: number;
  dst: number;
}

/** An ipcache_map value. */
export interface IpcacheValue {
  identity: number;
  flags: number;
}

/** A cidr_map key: a prefix. */
export interface CidrKey {
  addr: number;
  prefix: number;
}

export interface VethInfo {
  ips: number[];
  flags: number;
}

export function encodeVethInfo(info: VethInfo): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(S.veth_info.size);
  const v = view(b);
  const ips = info.ips.slice(0, VETH_MAX_IPS);
  ips.forEach((ip, i) => v.setUint32(i * 4, ip >>> 0, LE));
  v.setUint32(S.veth_info.fields.n_ips, ips.length, LE);
  v.setUint32(S.veth_info.fields.flags, info.flags >>> 0, LE);
  return b;
}

export function decodeVethInfo(b: Uint8Array, at = 0): VethInfo {
  const v = view(b);
  const n = Math.min(v.getUint32(at + S.veth_info.fields.n_ips, LE), VETH_MAX_IPS);
  return {
    ips: Array.from({ length: n }, (_, i) => v.getUint32(at + i * 4, LE)),
    flags: v.getUint32(at + S.veth_info.fields.flags, LE),
  };
}

export function encodeIpcacheEntry(
  identity: number,
  flags: number,
  out = new Uint8Array(8),
  at = 0,
): Uint8Array<ArrayBuffer> {
  const v = view(out);
  v.setUint32(at, identity >>> 0, LE);
  v.setUint32(at + 4, flags >>> 0, LE);
  return out as Uint8Array<ArrayBuffer>;
}

export function decodeIpcacheEntry(b: Uint8Array, at = 0): { identity: number; flags: number } {
  const v = view(b);
  return { identity: v.getUint32(at, LE), flags: v.getUint32(at + 4, LE) };
}

/** cidr_key: prefixlen host-endian, the address in network order (LPM matches bytes). */
export function encodeCidrKey(
  addr: number,
  prefix: number,
  out = new Uint8Array(8),
  at = 0,
): Uint8Array<ArrayBuffer> {
  const v = view(out);
  v.setUint32(at, prefix, LE);
  v.setUint32(at + 4, addr >>> 0, false);
  return out as Uint8Array<ArrayBuffer>;
}

export function decodeCidrKey(b: Uint8Array, at = 0): { addr: number; prefix: number } {
  const v = view(b);
  return { prefix: v.getUint32(at, LE), addr: v.getUint32(at + 4, false) };
}

/** One rule_map entry: {subject, peer, dir, proto} and the leading `prefixlen - 80` bits of
 * the port (network order), or fewer bits of the key for any port or protocol. */
export interface RuleKey {
  prefixlen: number;
  subject: number;
  peer: number;
  dir: number;
  proto: number;
  port: number;
}

export function encodeRuleKey(
  k: RuleKey,
  out = new Uint8Array(16),
  at = 0,
): Uint8Array<ArrayBuffer> {
  const v = view(out);
  v.setUint32(at, k.prefixlen, LE);
  v.setUint32(at + 4, k.subject >>> 0, LE);
  v.setUint32(at + 8, k.peer >>> 0, LE);
  v.setUint8(at + 12, k.dir);
  v.setUint8(at + 13, k.proto);
  v.setUint16(at + 14, k.port, false);
  return out as Uint8Array<ArrayBuffer>;
}

export function decodeRuleKey(b: Uint8Array, at = 0): RuleKey {
  const v = view(b);
  return {
    prefixlen: v.getUint32(at, LE),
    subject: v.getUint32(at + 4, LE),
    peer: v.getUint32(at + 8, LE),
    dir: v.getUint8(at + 12),
    proto: v.getUint8(at + 13),
    port: v.getUint16(at + 14, false),
  };
}

export interface CtKey {
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
  proto: number;
}

export function decodeCtKey(b: Uint8Array, at = 0): CtKey {
  const v = view(b);
  return {
    saddr: v.getUint32(at, LE),
    daddr: v.getUint32(at + 4, LE),
    sport: v.getUint16(at + 8, LE),
    dport: v.getUint16(at + 10, LE),
    proto: v.getUint8(at + 12),
  };
}

export interface CtEntry {
  /** bpf_ktime_get_ns() deadline. */
  expires: bigint;
  packets: bigint;
  bytes: bigint;
  srcId: number;
  dstId: number;
  flags: number;
  ifindex: number;
}

export function decodeCtEntry(b: Uint8Array, at = 0): CtEntry {
  const v = view(b);
  return {
    expires: v.getBigUint64(at, LE),
    packets: v.getBigUint64(at + 8, LE),
    bytes: v.getBigUint64(at + 16, LE),
    srcId: v.getUint32(at + 24, LE),
    dstId: v.getUint32(at + 28, LE),
    flags: v.getUint32(at + 32, LE),
    ifindex: v.getUint32(at + 36, LE),
  };
}

export interface DatapathEvent {
  /** bpf_ktime_get_ns() */
  ts: bigint;
  ifindex: number;
  saddr: number;
  daddr: number;
  srcId: number;
  dstId: number;
  sport: number;
  dport: number;
  proto: number;
  verdict: number;
  reason: number;
  hook: number;
}

export function decodeEvent(b: Uint8Array, at = 0): DatapathEvent {
  const v = view(b);
  const f = S.event.fields;
  return {
    ts: v.getBigUint64(at + f.ts, LE),
    ifindex: v.getUint32(at + f.ifindex, LE),
    saddr: v.getUint32(at + f.saddr, LE),
    daddr: v.getUint32(at + f.daddr, LE),
    srcId: v.getUint32(at + f.src_id, LE),
    dstId: v.getUint32(at + f.dst_id, LE),
    sport: v.getUint16(at + f.sport, LE),
    dport: v.getUint16(at + f.dport, LE),
    proto: v.getUint8(at + f.proto),
    verdict: v.getUint8(at + f.verdict),
    reason: v.getUint8(at + f.reason),
    hook: v.getUint8(at + f.hook),
  };
}
