// Byte layouts of the pinned maps' keys and values, mirroring bpf/ebpfcni.h. A test checks
// these sizes against the BTF of the built object and the maps the kernel created.

export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_PROG_TYPE_SCHED_CLS = 3;

import type { MapSpec } from "../spec/pinned.ts";
export type { MapSpec };

/** endpoint_map: __u32 IPv4 address (host byte order) -> __u32 identity. */
export const ENDPOINT_MAP: MapSpec = {
  name: "endpoint_map",
  type: BPF_MAP_TYPE_HASH,
  keySize: 4,
  valueSize: 4,
  maxEntries: 16384,
  flags: 0,
};

/** policy_map: struct policy_key { __u32 src_id; __u32 dst_id; } -> __u8 action. */
export const POLICY_MAP: MapSpec = {
  name: "policy_map",
  type: BPF_MAP_TYPE_HASH,
  keySize: 8,
  valueSize: 1,
  maxEntries: 65536,
  flags: 0,
};

/** stats_map: enum ebpfcni_stat -> per-CPU __u64 counter. */
export const STATS_MAP: MapSpec = {
  name: "stats_map",
  type: BPF_MAP_TYPE_PERCPU_ARRAY,
  keySize: 4,
  valueSize: 8,
  maxEntries: 6,
  flags: 0,
};

/** enum ebpfcni_stat, in index order. */
export const STAT_NAMES = [
  "pass_non_ipv4",
  "pass_short",
  "drop_unknown_src",
  "drop_unknown_dst",
  "drop_policy",
  "allow",
] as const;

export const POLICY_ALLOW = 1;

/** Where the maps and the program are pinned unless configured otherwise (the original's
 * tc "globals" directory, so bpftool habits keep working). */
export const DEFAULT_PIN_DIR = "/sys/fs/bpf/tc/globals";

/** The pinned program's file name in the pin directory. */
export const PROGRAM_PIN = "tc_prog";

// Keys and values are host-endian structs; every platform we build for is little-endian.
const LE = true;

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
