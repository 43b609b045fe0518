// Pure parsers for rtnetlink replies: links, addresses and routes out of NlMessage payloads.
import * as K from "./constants.ts";
import { decodeAttrs } from "./wire.ts";

export interface Link {
  index: number;
  name: string;
  flags: number;
  mtu: number;
  master: number;
  mac: string;
  kind: string;
  /** A vxlan device's settings (IFLA_INFO_DATA). */
  vxlan?: { vni: number; link: number; local: number; port: number };
}

export interface Addr {
  index: number;
  prefixlen: number;
  /** IPv4 as host-order u32. */
  ip: number;
}

export interface RouteEntry {
  dst: number;
  dstLen: number;
  gw: number | undefined;
  oif: number;
  table: number;
  /** rtm_protocol: who added it (RTPROT_*). */
  protocol: number;
  /** rtm_flags (RTNH_F_ONLINK). */
  flags: number;
  /** rtm_type (RTN_UNICAST, RTN_LOCAL, ...). */
  type: number;
}

/** A neighbour (AF_INET) or forwarding (AF_BRIDGE) entry. */
export interface NeighEntry {
  family: number;
  ifindex: number;
  state: number;
  flags: number;
  /** NDA_DST: the neighbour's IP, or a forwarding entry's remote endpoint (host order). */
  dst: number | undefined;
  mac: string;
}

function cstr(d: Uint8Array): string {
  const end = d.indexOf(0);
  return new TextDecoder().decode(end < 0 ? d : d.subarray(0, end));
}

function u32(d: Uint8Array): number {
  return new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, true);
}

function be32(d: Uint8Array): number {
  return new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, false);
}

export function parseLink(payload: Uint8Array): Link {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const link: Link = {
    index: v.getInt32(4, true),
    flags: v.getUint32(8, true),
    name: "",
    mtu: 0,
    master: 0,
    mac: "",
    kind: "",
  };
  for (const a of decodeAttrs(payload, 16)) {
    if (a.type === K.IFLA_IFNAME) link.name = cstr(a.data);
    else if (a.type === K.IFLA_MTU) link.mtu = u32(a.data);
    else if (a.type === K.IFLA_MASTER) link.master = u32(a.data);
    else if (a.type === K.IFLA_ADDRESS) {
      link.mac = macText(a.data);
    } else if (a.type === K.IFLA_LINKINFO) {
      let data: Uint8Array | undefined;
      for (const i of decodeAttrs(a.data)) {
        if (i.type === K.IFLA_INFO_KIND) link.kind = cstr(i.data);
        else if (i.type === K.IFLA_INFO_DATA) data = i.data;
      }
      if (link.kind === "vxlan" && data) link.vxlan = parseVxlan(data);
    }
  }
  return link;
}

function parseVxlan(data: Uint8Array): NonNullable<Link["vxlan"]> {
  const x = { vni: 0, link: 0, local: 0, port: 0 };
  for (const a of decodeAttrs(data)) {
    if (a.type === K.IFLA_VXLAN_ID) x.vni = u32(a.data);
    else if (a.type === K.IFLA_VXLAN_LINK) x.link = u32(a.data);
    else if (a.type === K.IFLA_VXLAN_LOCAL) x.local = be32(a.data);
    else if (a.type === K.IFLA_VXLAN_PORT && a.data.length >= 2) {
      x.port = (a.data[0]! << 8) | a.data[1]!;
    }
  }
  return x;
}

const macText = (d: Uint8Array) => Array.from(d, (x) => x.toString(16).padStart(2, "0")).join(":");

/** IPv4 addresses only; others are skipped by the caller. */
export function parseAddr(payload: Uint8Array): Addr | undefined {
  if (payload[0] !== K.AF_INET) return undefined;
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let ip: number | undefined;
  let address: number | undefined;
  for (const a of decodeAttrs(payload, 8)) {
    if (a.type === K.IFA_LOCAL) ip = be32(a.data);
    else if (a.type === K.IFA_ADDRESS) address = be32(a.data);
  }
  const chosen = ip ?? address;
  if (chosen === undefined) return undefined;
  return { index: v.getUint32(4, true), prefixlen: payload[1] ?? 0, ip: chosen };
}

export function parseRoute(payload: Uint8Array): RouteEntry | undefined {
  if (payload[0] !== K.AF_INET) return undefined;
  const r: RouteEntry = {
    dst: 0,
    dstLen: payload[1] ?? 0,
    gw: undefined,
    oif: 0,
    table: payload[4] ?? 0,
    protocol: payload[5] ?? 0,
    flags: payload.length >= 12
      ? new DataView(payload.buffer, payload.byteOffset, 12).getUint32(8, true)
      : 0,
    type: payload[7] ?? 0,
  };
  for (const a of decodeAttrs(payload, 12)) {
    if (a.type === K.RTA_DST) r.dst = be32(a.data);
    else if (a.type === K.RTA_GATEWAY) r.gw = be32(a.data);
    else if (a.type === K.RTA_OIF) r.oif = u32(a.data);
    else if (a.type === K.RTA_TABLE) r.table = u32(a.data);
  }
  return r;
}

/** IPv4 neighbours and forwarding entries with an IPv4 endpoint (or none); others are
 * skipped by the caller. */
export function parseNeigh(payload: Uint8Array): NeighEntry | undefined {
  if (payload.length < 12) return undefined;
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const n: NeighEntry = {
    family: payload[0]!,
    ifindex: v.getInt32(4, true),
    state: v.getUint16(8, true),
    flags: payload[10]!,
    dst: undefined,
    mac: "",
  };
  for (const a of decodeAttrs(payload, 12)) {
    if (a.type === K.NDA_DST) {
      if (a.data.length !== 4) return undefined; // IPv6
      n.dst = be32(a.data);
    } else if (a.type === K.NDA_LLADDR) n.mac = macText(a.data);
  }
  return n;
}

/** The program id of a cls_bpf filter message (TCA_OPTIONS.TCA_BPF_ID), or 0. */
export function parseBpfFilterProgId(payload: Uint8Array): number {
  for (const a of decodeAttrs(payload, 20)) {
    if (a.type !== K.TCA_OPTIONS) continue;
    for (const o of decodeAttrs(a.data)) if (o.type === K.TCA_BPF_ID) return u32(o.data);
  }
  return 0;
}
