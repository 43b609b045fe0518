// Byte layouts of the pinned maps' keys and values, mirroring bpf/ebpfcni.h: each map's
// spec, each struct's size and field offsets (STRUCTS), and codecs. A test checks all of it
// against the BTF of the built object and the maps the kernel created.
import type { MapSpec } from "../spec/pinned.ts";
export type { MapSpec };

export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LRU_HASH = 9;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10;
export const BPF_MAP_TYPE_LPM_TRIE = 11;
export const BPF_MAP_TYPE_RINGBUF = 27;
export const BPF_PROG_TYPE_SCHED_CLS = 3;
export const BPF_F_NO_PREALLOC = 1;

/** Struct sizes and field offsets of bpf/ebpfcni.h (checked against BTF). */
export const STRUCTS = {
  policy_key: { size: 8, fields: { src_id: 0, dst_id: 4 } },
  dp_config: {
    size: 104,
    fields: {
      mode: 0,
      flags: 4,
      ct_tcp_syn: 8,
      ct_tcp_established: 12,
      ct_tcp_close: 16,
      ct_udp: 20,
      ct_other: 24,
      events_rate: 28,
      events_burst: 32,
      n_service_cidrs: 36,
      service_cidrs: 40,
    },
  },
  cidr4: { size: 8, fields: { addr: 0, mask: 4 } },
  veth_info: { size: 24, fields: { ips: 0, n_ips: 16, flags: 20 } },
  ipcache_entry: { size: 8, fields: { identity: 0, flags: 4 } },
  cidr_key: { size: 8, fields: { prefixlen: 0, addr: 4 } },
  rule_key: {
    size: 16,
    fields: { prefixlen: 0, subject: 4, peer: 8, dir: 12, proto: 13, dport: 14 },
  },
  ct_key: { size: 16, fields: { saddr: 0, daddr: 4, sport: 8, dport: 10, proto: 12 } },
  ct_entry: {
    size: 40,
    fields: { expires: 0, packets: 8, bytes: 16, src_id: 24, dst_id: 28, flags: 32, ifindex: 36 },
  },
  frag_key: { size: 12, fields: { saddr: 0, daddr: 4, id: 8, proto: 10 } },
  frag_ports: { size: 4, fields: { sport: 0, dport: 2 } },
  pair_stats: { size: 16, fields: { packets: 0, bytes: 8 } },
  event: {
    size: 40,
    fields: {
      ts: 0,
      ifindex: 8,
      saddr: 12,
      daddr: 16,
      src_id: 20,
      dst_id: 24,
      sport: 28,
      dport: 30,
      proto: 32,
      verdict: 33,
      reason: 34,
      hook: 35,
    },
  },
  rate_state: { size: 16, fields: { last_ns: 0, tokens: 8 } },
} as const;

const S = STRUCTS;

function map(
  name: string,
  type: number,
  keySize: number,
  valueSize: number,
  maxEntries: number,
  flags = 0,
): MapSpec {
  return { name, type, keySize, valueSize, maxEntries, flags };
}

// The original project's maps: their names, layouts and sizes are a contract.
/** endpoint_map: __u32 IPv4 address (host byte order) -> __u32 identity. */
export const ENDPOINT_MAP = map("endpoint_map", BPF_MAP_TYPE_HASH, 4, 4, 16384);
/** policy_map: struct policy_key { __u32 src_id; __u32 dst_id; } -> __u8 action. */
export const POLICY_MAP = map("policy_map", BPF_MAP_TYPE_HASH, 8, 1, 65536);

// Maps added since (a pin directory of an older build gets them added on upgrade).
/** stats_map: enum ebpfcni_stat -> per-CPU __u64 counter. */
export const STATS_MAP = map("stats_map", BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 18);
export const CONFIG_MAP = map("config_map", BPF_MAP_TYPE_ARRAY, 4, S.dp_config.size, 1);
export const VETH_MAP = map("veth_map", BPF_MAP_TYPE_HASH, 4, S.veth_info.size, 4096);
export const HOST_MAP = map("host_map", BPF_MAP_TYPE_HASH, 4, 4, 256);
export const IPCACHE_MAP = map(
  "ipcache_map",
  BPF_MAP_TYPE_HASH,
  4,
  S.ipcache_entry.size,
  65536,
  BPF_F_NO_PREALLOC,
);
export const CIDR_MAP = map(
  "cidr_map",
  BPF_MAP_TYPE_LPM_TRIE,
  S.cidr_key.size,
  4,
  16384,
  BPF_F_NO_PREALLOC,
);
export const RULE_MAP = map(
  "rule_map",
  BPF_MAP_TYPE_LPM_TRIE,
  S.rule_key.size,
  4,
  131072,
  BPF_F_NO_PREALLOC,
);
export const ISOLATION_MAP = map(
  "isolation_map",
  BPF_MAP_TYPE_HASH,
  4,
  4,
  65536,
  BPF_F_NO_PREALLOC,
);
export const CT_MAP = map("ct_map", BPF_MAP_TYPE_LRU_HASH, S.ct_key.size, S.ct_entry.size, 262144);
/** ct_est_map: established connections (ct_map's layout), out of the LRU's reach. */
export const CT_EST_MAP = map(
  "ct_est_map",
  BPF_MAP_TYPE_HASH,
  S.ct_key.size,
  S.ct_entry.size,
  131072,
  BPF_F_NO_PREALLOC,
);
/** ct_quota_map: local pod IPv4 (host order) -> its entries in ct_est_map (signed). */
export const CT_QUOTA_MAP = map("ct_quota_map", BPF_MAP_TYPE_HASH, 4, 4, 65536, BPF_F_NO_PREALLOC);
/** How many of ct_est_map's entries one local pod address may hold (CT_EST_PER_ADDR): 128
 * addresses have their whole share whatever the others do. */
export const CT_EST_PER_ADDR = 1024;
export const FRAG_MAP = map(
  "frag_map",
  BPF_MAP_TYPE_LRU_HASH,
  S.frag_key.size,
  S.frag_ports.size,
  8192,
);
export const PAIR_STATS_MAP = map(
  "pair_stats_map",
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  S.policy_key.size,
  S.pair_stats.size,
  16384,
);
export const EVENTS_MAP = map("events", BPF_MAP_TYPE_RINGBUF, 0, 0, 256 * 1024);
export const RATE_MAP = map("rate_map", BPF_MAP_TYPE_PERCPU_ARRAY, 4, S.rate_state.size, 1);

/** Every map of the object. */
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

/** Maps whose contents are not policy and that an upgrade may replace when their layout
 * changed (counters, events, caches). Every other map is kept, whatever it costs. */
export const REPLACEABLE_MAPS: ReadonlySet<string> = new Set([
  STATS_MAP.name,
  FRAG_MAP.name,
  PAIR_STATS_MAP.name,
  EVENTS_MAP.name,
  RATE_MAP.name,
]);

/** enum ebpfcni_stat, in index order. */
export const STAT_NAMES = [
  "pass_non_ipv4",
  "pass_short",
  "drop_unknown_src",
  "drop_unknown_dst",
  "drop_policy",
  "allow",
  "drop_no_veth",
  "drop_spoofed",
  "drop_ipv6",
  "drop_ethertype",
  "allow_ct",
  "pass_service",
  "pass_to_pod",
  "drop_egress",
  "drop_ingress",
  "allow_host",
  "drop_fragment",
  "events_lost",
] as const;
export type StatName = (typeof STAT_NAMES)[number];

export const POLICY_ALLOW = 1;

/** Reserved identities (ebpfcni.h): the node's addresses, and anything else unknown. */
export const IDENTITY_HOST = 0xfffffffe;
export const IDENTITY_WORLD = 0xffffffff;
/** In rule keys: any peer. */
export const IDENTITY_ANY = 0;

export const MODE_IDENTITY = 0;
export const MODE_KUBERNETES = 1;
export const CFG_CONNTRACK = 1;
export const MAX_SERVICE_CIDRS = 8;
export const VETH_MAX_IPS = 4;
export const IPCACHE_LOCAL = 1;
export const ISOLATE_INGRESS = 1;
export const ISOLATE_EGRESS = 2;
export const DIR_PAIR = 0;
export const DIR_INGRESS = 1;
export const DIR_EGRESS = 2;
export const RULE_PREFIX_ANY_PROTO = 72;
export const RULE_PREFIX_ANY_PORT = 80;
export const RULE_PREFIX_FULL = 96;

/** ct_entry flags. */
export const CT_FLAGS = {
  seenReply: 0x1,
  finFwd: 0x2,
  finRev: 0x4,
  rst: 0x8,
  pending: 0x10,
  service: 0x20,
  /** Recorded by the source's hook / the destination's (ifindex is that end's veth). */
  atSrc: 0x40,
  atDst: 0x80,
  /** In ct_est_map, charged to its destination (a local pod) rather than to its source. */
  chargedDst: 0x100,
} as const;

/** Where the maps and the program are pinned unless configured otherwise (the original's
 * tc "globals" directory, so bpftool habits keep working). */
export const DEFAULT_PIN_DIR = "/sys/fs/bpf/tc/globals";

/** The pinned programs' file names in the pin directory (tc_prog is the original's). */
export const PROGRAM_PIN = "tc_prog";
export const PROGRAM_PIN_EGRESS = "tc_prog_egress";

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
