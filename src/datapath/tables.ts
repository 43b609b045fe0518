// Each pinned map as a typed table: its layout (spec/bpf_layout.ts) and the codecs of its keys and
// values. The bpf(2)-backed tables (maps.ts) and the fakes (table_fake.ts) are made from these.
import {
  CIDR_MAP,
  CONFIG_MAP,
  CT_QUOTA_MAP,
  type DatapathConfig,
  decodeCidrKey,
  decodeConfig,
  decodeIpcacheEntry,
  decodePolicyKey,
  decodeRuleKey,
  decodeU32,
  decodeVethInfo,
  encodeCidrKey,
  encodeConfig,
  encodeIpcacheEntry,
  encodePolicyKey,
  encodeRuleKey,
  encodeU32,
  encodeVethInfo,
  ENDPOINT_MAP,
  HOST_MAP,
  IPCACHE_MAP,
  ISOLATION_MAP,
  type MapSpec,
  POLICY_ALLOW,
  POLICY_MAP,
  RULE_MAP,
  type RuleKey,
  STRUCTS,
  VETH_MAP,
  type VethInfo,
} from "../spec/bpf_layout.ts";
import type { CidrKey, Endpoint, IpcacheValue, Policy } from "../spec/bpf_layout.ts";
import type { Codec, Table, TableSpec } from "./table.ts";

export type { CidrKey, Endpoint, IpcacheValue, Policy };

/** A u32 (identities, ifindexes, addresses in host order, flags). */
export const u32: Codec<number> = {
  size: 4,
  encode: (v, out, at) => void encodeU32(v, out, at),
  decode: (b, at) => decodeU32(b, at),
};

/** The value of a map used as a set (host_map, rule_map): a u32 1. */
export const present: Codec<true> = {
  size: 4,
  encode: (_v, out, at) => void encodeU32(1, out, at),
  decode: () => true,
};

/** policy_map's value: its action byte, allow or not. */
const action: Codec<boolean> = {
  size: 1,
  encode: (v, out, at) => void (out[at] = v ? POLICY_ALLOW : 0),
  decode: (b, at) => b[at] === POLICY_ALLOW,
};

/** A codec of a struct whose encoder writes a buffer of its own. */
function whole<T>(
  size: number,
  enc: (v: T) => Uint8Array,
  dec: (b: Uint8Array, at: number) => T,
): Codec<T> {
  return { size, encode: (v, out, at) => out.set(enc(v), at), decode: dec };
}

function spec<K, V>(map: MapSpec, key: Codec<K>, value: Codec<V>): TableSpec<K, V> {
  return { map, key, value };
}

export const ENDPOINTS = spec(ENDPOINT_MAP, u32, u32);

export const POLICIES = spec<Policy, boolean>(POLICY_MAP, {
  size: STRUCTS.policy_key.size,
  encode: (p, out, at) => void encodePolicyKey(p.src, p.dst, out, at),
  decode: decodePolicyKey,
}, action);

export const VETHS = spec<number, VethInfo>(
  VETH_MAP,
  u32,
  whole(STRUCTS.veth_info.size, encodeVethInfo, decodeVethInfo),
);

export const HOSTS = spec(HOST_MAP, u32, present);

export const IPCACHE = spec<number, IpcacheValue>(IPCACHE_MAP, u32, {
  size: STRUCTS.ipcache_entry.size,
  encode: (e, out, at) => void encodeIpcacheEntry(e.identity, e.flags, out, at),
  decode: decodeIpcacheEntry,
});

export const CIDRS = spec<CidrKey, number>(CIDR_MAP, {
  size: STRUCTS.cidr_key.size,
  encode: (k, out, at) => void encodeCidrKey(k.addr, k.prefix, out, at),
  decode: decodeCidrKey,
}, u32);

export const RULES = spec<RuleKey, true>(RULE_MAP, {
  size: STRUCTS.rule_key.size,
  encode: (k, out, at) => void encodeRuleKey(k, out, at),
  decode: decodeRuleKey,
}, present);

export const ISOLATION = spec(ISOLATION_MAP, u32, u32);

export const CONFIG = spec<number, DatapathConfig>(
  CONFIG_MAP,
  u32,
  whole(CONFIG_MAP.valueSize, encodeConfig, (b, at) => decodeConfig(b.subarray(at))),
);

export const CT_QUOTAS = spec(CT_QUOTA_MAP, u32, u32);

/** The maps the policy agent writes (kubernetes mode): its reconciler's tables. */
export interface AgentTables {
  ipcache: Table<number, IpcacheValue>;
  isolation: Table<number, number>;
  rules: Table<RuleKey, true>;
  cidrs: Table<CidrKey, number>;
  hosts: Table<number, true>;
}
