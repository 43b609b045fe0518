// Tests that the hand-written codecs and names of layout.ts agree with the generated contract.
import assert from "node:assert/strict";
import { ENUMS, MAP_SPECS, STAT_MAX } from "./bpf_abi.gen.ts";
import {
  decodeCidrKey,
  decodeConfig,
  decodeCtEntry,
  decodeCtKey,
  decodeEvent,
  decodeIpcacheEntry,
  decodePolicyKey,
  decodeRuleKey,
  decodeVethInfo,
  encodeCidrKey,
  encodeConfig,
  encodeIpcacheEntry,
  encodePolicyKey,
  encodeRuleKey,
  encodeVethInfo,
  MAPS,
  STAT_NAMES,
  type StatName,
  STATS_MAP,
  STRUCTS,
} from "./bpf_layout.ts";

const LE = true;
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

Deno.test("MAPS lists every map of the object once", () => {
  assert.deepEqual(MAPS.map((m) => m.name).sort(), Object.keys(MAP_SPECS).sort());
  for (const m of MAPS) assert.equal(m, MAP_SPECS[m.name as keyof typeof MAP_SPECS]);
});

Deno.test("STAT_NAMES names each enum ebpfcni_stat counter at its index, one per stats_map slot", () => {
  const first: StatName = "pass_non_ipv4";
  assert.equal(STAT_NAMES[0], first);
  assert.equal(STAT_NAMES.length, STAT_MAX);
  assert.equal(STAT_NAMES.length, STATS_MAP.maxEntries);
  for (const [enumerator, value] of Object.entries(ENUMS.ebpfcni_stat)) {
    if (enumerator === "STAT_MAX") continue;
    assert.equal(STAT_NAMES[value], enumerator.slice("STAT_".length).toLowerCase(), enumerator);
  }
});

Deno.test("encodePolicyKey and decodePolicyKey use struct policy_key's offsets", () => {
  const f = STRUCTS.policy_key.fields;
  const b = encodePolicyKey(0x11223344, 0xa0b0c0d0);
  assert.equal(b.length, STRUCTS.policy_key.size);
  assert.equal(view(b).getUint32(f.src_id, LE), 0x11223344);
  assert.equal(view(b).getUint32(f.dst_id, LE), 0xa0b0c0d0);
  assert.deepEqual(decodePolicyKey(b), { src: 0x11223344, dst: 0xa0b0c0d0 });
});

Deno.test("encodeConfig and decodeConfig use struct dp_config's offsets", () => {
  const f = STRUCTS.dp_config.fields;
  const cfg = {
    mode: 1,
    flags: 2,
    ctTcpSyn: 3,
    ctTcpEstablished: 4,
    ctTcpClose: 5,
    ctUdp: 6,
    ctOther: 7,
    eventsRate: 8,
    eventsBurst: 9,
    serviceCidrs: [{ addr: 0x0a600000, mask: 0xfff00000 }, { addr: 0x0a700000, mask: 0xffff0000 }],
  };
  const b = encodeConfig(cfg);
  const v = view(b);
  assert.equal(b.length, STRUCTS.dp_config.size);
  const u32 = {
    mode: f.mode,
    flags: f.flags,
    ctTcpSyn: f.ct_tcp_syn,
    ctTcpEstablished: f.ct_tcp_established,
    ctTcpClose: f.ct_tcp_close,
    ctUdp: f.ct_udp,
    ctOther: f.ct_other,
    eventsRate: f.events_rate,
    eventsBurst: f.events_burst,
  } as const;
  for (const [k, at] of Object.entries(u32)) {
    assert.equal(v.getUint32(at, LE), cfg[k as keyof typeof u32], k);
  }
  assert.equal(v.getUint32(f.n_service_cidrs, LE), 2);
  const second = f.service_cidrs + STRUCTS.cidr4.size;
  assert.equal(v.getUint32(second + STRUCTS.cidr4.fields.addr, LE), 0x0a700000);
  assert.equal(v.getUint32(second + STRUCTS.cidr4.fields.mask, LE), 0xffff0000);
  assert.deepEqual(decodeConfig(b), cfg);
});

Deno.test("encodeVethInfo and decodeVethInfo use struct veth_info's offsets", () => {
  const f = STRUCTS.veth_info.fields;
  const b = encodeVethInfo({ ips: [0x0a000002, 0x0a000003], flags: 5 });
  const v = view(b);
  assert.equal(b.length, STRUCTS.veth_info.size);
  assert.equal(v.getUint32(f.ips + 4, LE), 0x0a000003);
  assert.equal(v.getUint32(f.n_ips, LE), 2);
  assert.equal(v.getUint32(f.flags, LE), 5);
  assert.deepEqual(decodeVethInfo(b), { ips: [0x0a000002, 0x0a000003], flags: 5 });
});

Deno.test("encodeIpcacheEntry and decodeIpcacheEntry use struct ipcache_entry's offsets", () => {
  const f = STRUCTS.ipcache_entry.fields;
  const b = encodeIpcacheEntry(0xfffffffe, 1);
  assert.equal(b.length, STRUCTS.ipcache_entry.size);
  assert.equal(view(b).getUint32(f.identity, LE), 0xfffffffe);
  assert.equal(view(b).getUint32(f.flags, LE), 1);
  assert.deepEqual(decodeIpcacheEntry(b), { identity: 0xfffffffe, flags: 1 });
});

Deno.test("encodeCidrKey and decodeCidrKey use struct cidr_key's offsets, the address big-endian", () => {
  const f = STRUCTS.cidr_key.fields;
  const b = encodeCidrKey(0xc0a80000, 16);
  assert.equal(b.length, STRUCTS.cidr_key.size);
  assert.equal(view(b).getUint32(f.prefixlen, LE), 16);
  assert.equal(view(b).getUint32(f.addr, false), 0xc0a80000);
  assert.deepEqual(decodeCidrKey(b), { addr: 0xc0a80000, prefix: 16 });
});

Deno.test("encodeRuleKey and decodeRuleKey use struct rule_key's offsets, the port big-endian", () => {
  const f = STRUCTS.rule_key.fields;
  const key = { prefixlen: 96, subject: 7, peer: 0xffffffff, dir: 2, proto: 6, port: 443 };
  const b = encodeRuleKey(key);
  const v = view(b);
  assert.equal(b.length, STRUCTS.rule_key.size);
  assert.equal(v.getUint32(f.prefixlen, LE), 96);
  assert.equal(v.getUint32(f.subject, LE), 7);
  assert.equal(v.getUint32(f.peer, LE), 0xffffffff);
  assert.equal(v.getUint8(f.dir), 2);
  assert.equal(v.getUint8(f.proto), 6);
  assert.equal(v.getUint16(f.dport, false), 443);
  assert.deepEqual(decodeRuleKey(b), key);
});

Deno.test("decodeCtKey and decodeCtEntry read struct ct_key's and ct_entry's offsets", () => {
  const k = STRUCTS.ct_key.fields;
  const key = new Uint8Array(STRUCTS.ct_key.size);
  const kv = view(key);
  kv.setUint32(k.saddr, 0x0a000002, LE);
  kv.setUint32(k.daddr, 0x0a000003, LE);
  kv.setUint16(k.sport, 40000, LE);
  kv.setUint16(k.dport, 80, LE);
  kv.setUint8(k.proto, 6);
  assert.deepEqual(decodeCtKey(key), {
    saddr: 0x0a000002,
    daddr: 0x0a000003,
    sport: 40000,
    dport: 80,
    proto: 6,
  });
  const e = STRUCTS.ct_entry.fields;
  const entry = new Uint8Array(STRUCTS.ct_entry.size);
  const ev = view(entry);
  ev.setBigUint64(e.expires, 1n << 40n, LE);
  ev.setBigUint64(e.packets, 3n, LE);
  ev.setBigUint64(e.bytes, 180n, LE);
  ev.setUint32(e.src_id, 11, LE);
  ev.setUint32(e.dst_id, 12, LE);
  ev.setUint32(e.flags, 0x41, LE);
  ev.setUint32(e.ifindex, 9, LE);
  assert.deepEqual(decodeCtEntry(entry), {
    expires: 1n << 40n,
    packets: 3n,
    bytes: 180n,
    srcId: 11,
    dstId: 12,
    flags: 0x41,
    ifindex: 9,
  });
});

Deno.test("decodeEvent reads struct event's offsets", () => {
  const f = STRUCTS.event.fields;
  const b = new Uint8Array(STRUCTS.event.size);
  const v = view(b);
  v.setBigUint64(f.ts, 123456789n, LE);
  v.setUint32(f.ifindex, 4, LE);
  v.setUint32(f.saddr, 0x0a000002, LE);
  v.setUint32(f.daddr, 0x0a000003, LE);
  v.setUint32(f.src_id, 21, LE);
  v.setUint32(f.dst_id, 22, LE);
  v.setUint16(f.sport, 1234, LE);
  v.setUint16(f.dport, 53, LE);
  v.setUint8(f.proto, 17);
  v.setUint8(f.verdict, 1);
  v.setUint8(f.reason, 5);
  v.setUint8(f.hook, 1);
  assert.deepEqual(decodeEvent(b), {
    ts: 123456789n,
    ifindex: 4,
    saddr: 0x0a000002,
    daddr: 0x0a000003,
    srcId: 21,
    dstId: 22,
    sport: 1234,
    dport: 53,
    proto: 17,
    verdict: 1,
    reason: 5,
    hook: 1,
  });
});
