// Pure builders of rtnetlink requests (link, address, route) as declarative attribute
// tables; ffi/libmnl.ts serialises them.
import type { NlAttr, NlRequest } from "./wire.ts";
import * as K from "./constants.ts";

/** struct ifinfomsg (16 bytes). */
export function ifinfomsg(
  index = 0,
  flags = 0,
  change = 0,
  family = K.AF_UNSPEC,
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

/** struct ifaddrmsg (8 bytes). */
export function ifaddrmsg(prefixlen: number, index: number, family = K.AF_INET): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setUint8(1, prefixlen);
  v.setUint32(4, index, true);
  return b;
}

/** struct rtmsg (12 bytes). */
export function rtmsg(dstLen: number, scope: number, table = K.RT_TABLE_MAIN): Uint8Array {
  return new Uint8Array([
    K.AF_INET,
    dstLen,
    0,
    0,
    table < 256 ? table : 0,
    K.RTPROT_BOOT,
    scope,
    K.RTN_UNICAST,
    0,
    0,
    0,
    0,
  ]);
}

/** IPv4 address (host-order u32) as the 4 network-order bytes netlink wants. */
export function ip4(n: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

export function getLink(name: string): NlRequest {
  return {
    op: `get link "${name}"`,
    type: K.RTM_GETLINK,
    flags: 0,
    header: ifinfomsg(),
    attrs: [{ type: K.IFLA_IFNAME, str: name }],
  };
}

export function getLinkByIndex(index: number): NlRequest {
  return {
    op: `get link ${index}`,
    type: K.RTM_GETLINK,
    flags: 0,
    header: ifinfomsg(index),
    attrs: [],
  };
}

export function dumpLinks(): NlRequest {
  return { op: "list links", type: K.RTM_GETLINK, flags: 0, header: ifinfomsg(), attrs: [] };
}

export function newBridge(name: string, mtu: number): NlRequest {
  return {
    op: `create bridge "${name}"`,
    type: K.RTM_NEWLINK,
    flags: K.NLM_F_CREATE | K.NLM_F_EXCL,
    header: ifinfomsg(),
    attrs: [
      { type: K.IFLA_IFNAME, str: name },
      { type: K.IFLA_MTU, u32: mtu },
      { type: K.IFLA_LINKINFO, nest: [{ type: K.IFLA_INFO_KIND, str: "bridge" }] },
    ],
  };
}

/** A veth pair whose peer is created straight inside the namespace `peerNetnsFd`. */
export function newVeth(
  hostName: string,
  peerName: string,
  peerNetnsFd: number,
  mtu: number,
): NlRequest {
  const peer: NlAttr[] = [
    { type: K.IFLA_IFNAME, str: peerName },
    { type: K.IFLA_MTU, u32: mtu },
    { type: K.IFLA_NET_NS_FD, u32: peerNetnsFd },
  ];
  return {
    op: `create veth "${hostName}" with peer "${peerName}"`,
    type: K.RTM_NEWLINK,
    flags: K.NLM_F_CREATE | K.NLM_F_EXCL,
    header: ifinfomsg(),
    attrs: [
      { type: K.IFLA_IFNAME, str: hostName },
      { type: K.IFLA_MTU, u32: mtu },
      {
        type: K.IFLA_LINKINFO,
        nest: [
          { type: K.IFLA_INFO_KIND, str: "veth" },
          {
            type: K.IFLA_INFO_DATA,
            nest: [{ type: K.VETH_INFO_PEER, header: ifinfomsg(), nest: peer }],
          },
        ],
      },
    ],
  };
}

/** Sets interface flags under `mask` (e.g. IFF_UP) and, optionally, its master. */
export function setLink(
  index: number,
  name: string,
  opts: { flags?: number; mask?: number; master?: number; hairpin?: boolean },
): NlRequest {
  const attrs: NlAttr[] = [];
  if (opts.master !== undefined) attrs.push({ type: K.IFLA_MASTER, u32: opts.master });
  if (opts.hairpin !== undefined) {
    attrs.push({
      type: K.IFLA_LINKINFO,
      nest: [
        { type: K.IFLA_INFO_SLAVE_KIND, str: "bridge" },
        {
          type: K.IFLA_INFO_SLAVE_DATA,
          nest: [{ type: K.IFLA_BRPORT_MODE, u8: opts.hairpin ? 1 : 0 }],
        },
      ],
    });
  }
  return {
    op: `configure link "${name}"`,
    type: K.RTM_NEWLINK,
    flags: 0,
    header: ifinfomsg(index, opts.flags ?? 0, opts.mask ?? 0),
    attrs,
  };
}

export function delLink(index: number, name: string): NlRequest {
  return {
    op: `delete link "${name}"`,
    type: K.RTM_DELLINK,
    flags: 0,
    header: ifinfomsg(index),
    attrs: [],
  };
}

export function newAddr(index: number, ip: number, prefix: number, ifname: string): NlRequest {
  const host = 32 - prefix;
  const bcast = prefix >= 31 ? ip : (ip | ((2 ** host - 1) >>> 0)) >>> 0;
  return {
    op: `add address to "${ifname}"`,
    type: K.RTM_NEWADDR,
    flags: K.NLM_F_CREATE | K.NLM_F_EXCL,
    header: ifaddrmsg(prefix, index),
    attrs: [
      { type: K.IFA_LOCAL, bytes: ip4(ip) },
      { type: K.IFA_ADDRESS, bytes: ip4(ip) },
      { type: K.IFA_BROADCAST, bytes: ip4(bcast) },
    ],
  };
}

export function dumpAddrs(): NlRequest {
  return {
    op: "list addresses",
    type: K.RTM_GETADDR,
    flags: 0,
    header: ifaddrmsg(0, 0),
    attrs: [],
  };
}

export interface RouteSpec {
  dst: number;
  dstLen: number;
  gw?: number;
  oif: number;
  priority?: number;
  table?: number;
  mtu?: number;
  advmss?: number;
}

export function newRoute(r: RouteSpec, ifname: string): NlRequest {
  const attrs: NlAttr[] = [{ type: K.RTA_OIF, u32: r.oif }];
  if (r.dstLen > 0) attrs.push({ type: K.RTA_DST, bytes: ip4(r.dst) });
  if (r.gw !== undefined) attrs.push({ type: K.RTA_GATEWAY, bytes: ip4(r.gw) });
  if (r.priority !== undefined) attrs.push({ type: K.RTA_PRIORITY, u32: r.priority });
  if (r.table !== undefined) attrs.push({ type: K.RTA_TABLE, u32: r.table });
  const metrics: NlAttr[] = [];
  if (r.mtu !== undefined) metrics.push({ type: K.RTAX_MTU, u32: r.mtu });
  if (r.advmss !== undefined) metrics.push({ type: K.RTAX_ADVMSS, u32: r.advmss });
  if (metrics.length) attrs.push({ type: K.RTA_METRICS, nest: metrics });
  return {
    op: `add route to ${r.dstLen ? "a prefix" : "default"} via "${ifname}"`,
    type: K.RTM_NEWROUTE,
    // Appended, as the reference plugins do (netlink.RouteAddEcmp): a second attachment of
    // the pod (another interface) gets its own default route beside the first one's, where
    // EXCL would refuse it. Only an identical route (same interface) is still EEXIST.
    flags: K.NLM_F_CREATE | K.NLM_F_APPEND,
    header: rtmsg(r.dstLen, r.gw === undefined ? K.RT_SCOPE_LINK : K.RT_SCOPE_UNIVERSE, r.table),
    attrs,
  };
}

export function dumpRoutes(): NlRequest {
  return {
    op: "list routes",
    type: K.RTM_GETROUTE,
    flags: 0,
    header: rtmsg(0, 0, 0),
    attrs: [],
  };
}

/** struct tcmsg (20 bytes). */
export function tcmsg(ifindex: number, handle: number, parent: number, info: number): Uint8Array {
  const b = new Uint8Array(20);
  const v = new DataView(b.buffer);
  v.setUint8(0, K.AF_UNSPEC);
  v.setInt32(4, ifindex, true);
  v.setUint32(8, handle >>> 0, true);
  v.setUint32(12, parent >>> 0, true);
  v.setUint32(16, info >>> 0, true);
  return b;
}

/** Which side of a clsact qdisc a filter hangs on. */
export type TcHook = "ingress" | "egress";

/** TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS or _EGRESS). */
function hookParent(hook: TcHook): number {
  const min = hook === "ingress" ? K.TC_H_MIN_INGRESS : K.TC_H_MIN_EGRESS;
  return ((K.TC_H_CLSACT & 0xffff0000) | min) >>> 0;
}

/** tcm_info of a filter: priority in the upper half, protocol ETH_P_ALL (network order). */
function filterInfo(priority: number): number {
  return ((priority << 16) | ((K.ETH_P_ALL & 0xff) << 8) | (K.ETH_P_ALL >> 8)) >>> 0;
}

/** A clsact qdisc on `ifindex` (the hooks tc BPF programs hang on). */
export function newClsact(ifindex: number): NlRequest {
  return {
    op: `create clsact qdisc on ifindex ${ifindex}`,
    type: K.RTM_NEWQDISC,
    flags: K.NLM_F_CREATE | K.NLM_F_EXCL,
    header: tcmsg(ifindex, K.TC_H_CLSACT & 0xffff0000, K.TC_H_CLSACT, 0),
    attrs: [{ type: K.TCA_KIND, str: "clsact" }],
  };
}

export interface TcFilterSpec {
  ifindex: number;
  hook: TcHook;
  handle: number;
  priority: number;
}

/** A direct-action cls_bpf filter running program `progFd`, replacing one at the same
 * handle and priority (the kernel swaps the program in place: no packet sees neither). */
export function newBpfFilter(f: TcFilterSpec, progFd: number, name: string): NlRequest {
  return {
    op: `attach tc program on ifindex ${f.ifindex} ${f.hook}`,
    type: K.RTM_NEWTFILTER,
    flags: K.NLM_F_CREATE | K.NLM_F_REPLACE,
    header: tcmsg(f.ifindex, f.handle, hookParent(f.hook), filterInfo(f.priority)),
    attrs: [
      { type: K.TCA_KIND, str: "bpf" },
      {
        type: K.TCA_OPTIONS,
        nest: [
          { type: K.TCA_BPF_FD, u32: progFd },
          { type: K.TCA_BPF_NAME, str: name },
          { type: K.TCA_BPF_FLAGS, u32: K.TCA_BPF_FLAG_ACT_DIRECT },
        ],
      },
    ],
  };
}

export function delFilter(f: TcFilterSpec): NlRequest {
  return {
    op: `detach tc program on ifindex ${f.ifindex} ${f.hook}`,
    type: K.RTM_DELTFILTER,
    flags: 0,
    header: tcmsg(f.ifindex, f.handle, hookParent(f.hook), filterInfo(f.priority)),
    attrs: [],
  };
}

export function getFilter(f: TcFilterSpec): NlRequest {
  return {
    op: `query tc program on ifindex ${f.ifindex} ${f.hook}`,
    type: K.RTM_GETTFILTER,
    flags: 0,
    header: tcmsg(f.ifindex, f.handle, hookParent(f.hook), filterInfo(f.priority)),
    attrs: [{ type: K.TCA_KIND, str: "bpf" }],
  };
}

/** A MAC address "aa:bb:cc:dd:ee:ff" as its 6 bytes. */
export function macBytes(mac: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(mac.split(":"), (x) => parseInt(x, 16));
}

export interface VxlanSpec {
  name: string;
  vni: number;
  port: number;
  /** The node's underlay address (host order) the tunnel's packets leave from. */
  local: number;
  /** The underlay interface carrying `local`. */
  link: number;
  mtu: number;
  mac: string;
}

/** A vxlan device without learning (every peer is programmed: FDB and neighbour entries),
 * as flannel makes flannel.<VNI> (linux/if_link.h IFLA_VXLAN_*). */
export function newVxlan(s: VxlanSpec): NlRequest {
  const port = new Uint8Array([(s.port >> 8) & 255, s.port & 255]); // network order
  return {
    op: `create vxlan device "${s.name}"`,
    type: K.RTM_NEWLINK,
    flags: K.NLM_F_CREATE | K.NLM_F_EXCL,
    header: ifinfomsg(),
    attrs: [
      { type: K.IFLA_IFNAME, str: s.name },
      { type: K.IFLA_MTU, u32: s.mtu },
      { type: K.IFLA_ADDRESS, bytes: macBytes(s.mac) },
      {
        type: K.IFLA_LINKINFO,
        nest: [
          { type: K.IFLA_INFO_KIND, str: "vxlan" },
          {
            type: K.IFLA_INFO_DATA,
            nest: [
              { type: K.IFLA_VXLAN_ID, u32: s.vni },
              { type: K.IFLA_VXLAN_LINK, u32: s.link },
              { type: K.IFLA_VXLAN_LOCAL, bytes: ip4(s.local) },
              { type: K.IFLA_VXLAN_LEARNING, u8: 0 },
              { type: K.IFLA_VXLAN_PORT, bytes: port },
            ],
          },
        ],
      },
    ],
  };
}

/** Changes a link's MTU and/or MAC address in place. */
export function setLinkAttrs(
  index: number,
  name: string,
  opts: { mtu?: number; mac?: string },
): NlRequest {
  const attrs: NlAttr[] = [];
  if (opts.mtu !== undefined) attrs.push({ type: K.IFLA_MTU, u32: opts.mtu });
  if (opts.mac !== undefined) attrs.push({ type: K.IFLA_ADDRESS, bytes: macBytes(opts.mac) });
  return {
    op: `configure link "${name}"`,
    type: K.RTM_NEWLINK,
    flags: 0,
    header: ifinfomsg(index),
    attrs,
  };
}

export function delAddr(index: number, ip: number, prefix: number, ifname: string): NlRequest {
  return {
    op: `delete address from "${ifname}"`,
    type: K.RTM_DELADDR,
    flags: 0,
    header: ifaddrmsg(prefix, index),
    attrs: [{ type: K.IFA_LOCAL, bytes: ip4(ip) }],
  };
}

/** A route tagged with its owner's protocol number (struct rtmsg rtm_protocol), so a dump
 * tells ebpfcni's routes from everyone else's. */
export interface OwnedRouteSpec {
  dst: number;
  dstLen: number;
  gw: number;
  oif: number;
  onlink: boolean;
  protocol: number;
}

function ownedRtmsg(r: { dstLen: number; protocol: number; onlink?: boolean }): Uint8Array {
  const b = new Uint8Array(12);
  b.set([
    K.AF_INET,
    r.dstLen,
    0,
    0,
    K.RT_TABLE_MAIN,
    r.protocol,
    K.RT_SCOPE_UNIVERSE,
    K.RTN_UNICAST,
  ]);
  new DataView(b.buffer).setUint32(8, r.onlink ? K.RTNH_F_ONLINK : 0, true);
  return b;
}

/** Adds the route or replaces the one to the same prefix (main table). */
export function replaceRoute(r: OwnedRouteSpec): NlRequest {
  return {
    op: `set route to a pod CIDR (/${r.dstLen})`,
    type: K.RTM_NEWROUTE,
    flags: K.NLM_F_CREATE | K.NLM_F_REPLACE,
    header: ownedRtmsg(r),
    attrs: [
      { type: K.RTA_DST, bytes: ip4(r.dst) },
      { type: K.RTA_GATEWAY, bytes: ip4(r.gw) },
      { type: K.RTA_OIF, u32: r.oif },
    ],
  };
}

/** Deletes the route to a prefix that carries `protocol` (another owner's is left alone: the
 * kernel matches rtm_protocol when it is set). */
export function delRoute(r: { dst: number; dstLen: number; protocol: number }): NlRequest {
  return {
    op: `delete route to a pod CIDR (/${r.dstLen})`,
    type: K.RTM_DELROUTE,
    flags: 0,
    header: ownedRtmsg(r),
    attrs: [{ type: K.RTA_DST, bytes: ip4(r.dst) }],
  };
}

/** struct ndmsg (12 bytes). */
export function ndmsg(family: number, ifindex: number, state = 0, flags = 0): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint8(0, family);
  v.setInt32(4, ifindex, true);
  v.setUint16(8, state, true);
  v.setUint8(10, flags);
  return b;
}

/** A permanent neighbour (AF_INET: IP → MAC) or, on a vxlan device, forwarding entry
 * (AF_BRIDGE with NTF_SELF: MAC → remote tunnel endpoint), added or replaced. */
export function replaceNeigh(
  n: { family: number; ifindex: number; mac: string; dst: number },
): NlRequest {
  const fdb = n.family === K.AF_BRIDGE;
  return {
    op: fdb
      ? `set forwarding entry on ifindex ${n.ifindex}`
      : `set neighbour on ifindex ${n.ifindex}`,
    type: K.RTM_NEWNEIGH,
    flags: K.NLM_F_CREATE | K.NLM_F_REPLACE,
    header: ndmsg(n.family, n.ifindex, K.NUD_PERMANENT, fdb ? K.NTF_SELF : 0),
    attrs: [
      { type: K.NDA_DST, bytes: ip4(n.dst) },
      { type: K.NDA_LLADDR, bytes: macBytes(n.mac) },
    ],
  };
}

export function delNeigh(
  n: { family: number; ifindex: number; mac: string; dst: number },
): NlRequest {
  const fdb = n.family === K.AF_BRIDGE;
  return {
    op: fdb
      ? `delete forwarding entry on ifindex ${n.ifindex}`
      : `delete neighbour on ifindex ${n.ifindex}`,
    type: K.RTM_DELNEIGH,
    flags: 0,
    header: ndmsg(n.family, n.ifindex, 0, fdb ? K.NTF_SELF : 0),
    attrs: fdb
      ? [{ type: K.NDA_LLADDR, bytes: macBytes(n.mac) }, { type: K.NDA_DST, bytes: ip4(n.dst) }]
      : [{ type: K.NDA_DST, bytes: ip4(n.dst) }],
  };
}

/** Neighbours (AF_INET) or forwarding entries (AF_BRIDGE) of every device. */
export function dumpNeigh(family: number): NlRequest {
  return {
    op: family === K.AF_BRIDGE ? "list forwarding entries" : "list neighbours",
    type: K.RTM_GETNEIGH,
    flags: 0,
    header: ndmsg(family, 0),
    attrs: [],
  };
}
