// The node's routing as a pure plan: from this node's name, the cluster's nodes and what the
// node's network namespace has (addresses, links), the entries ebpfcni wants (a vxlan device,
// routes, neighbours, forwarding entries) and each node's state; then, against what a dump
// found of ebpfcni's own entries, the changes that make the kernel match. apply.ts runs them.
//
// vxlan works as flannel's vxlan backend: one device without learning and, per remote node, a
// forwarding entry (its VTEP MAC → its address), a permanent neighbour (its gateway → its
// VTEP MAC) and an onlink route (its pod CIDRs via its gateway). A node's gateway is its first
// pod CIDR's network address (the address its device holds as /32), and its VTEP MAC is
// derived from its address, so no node needs to publish anything beyond its Node object.
import type { VxlanSpec } from "../net/messages.ts";
import type { ClusterNode, NodeRouteState } from "../spec/node.ts";
import { type Cidr, cidrContains, formatCidr, formatIpv4, prefixMask } from "../spec/ipv4.ts";
import { type RoutingMode, VXLAN_DEVICE, VXLAN_OVERHEAD } from "../spec/routing.ts";

/** An IPv4 address of this node's network namespace. */
export interface HostAddr {
  ip: number;
  prefix: number;
  ifindex: number;
}

/** A link of this node's network namespace (name and MTU, for the underlay). */
export interface HostLink {
  index: number;
  name: string;
  mtu: number;
}

export interface RoutingInput {
  mode: RoutingMode;
  /** This node's name. */
  self: string;
  nodes: ReadonlyMap<string, ClusterNode>;
  vxlan: { port: number; vni: number };
  addrs: readonly HostAddr[];
  links: readonly HostLink[];
}

export interface DeviceWant extends VxlanSpec {
  /** This node's gateway (its first pod CIDR's network address), held as /32. */
  address: number | undefined;
}

/** A route to a remote pod CIDR: through the vxlan device, or an underlay interface. */
export interface RouteWant {
  dst: number;
  dstLen: number;
  gw: number;
  oif: number | "vxlan";
  onlink: boolean;
  /** The node whose pod CIDR it is. */
  node: string;
}

export interface Plan {
  device: DeviceWant | undefined;
  /** vxlan mode without a device to want (this node's address missing, or on none of its
   * interfaces: often a moment between a DHCP renew and the Node's update): why. The kernel's
   * device and entries are then kept as they are, not torn down with every route. */
  hold?: string;
  routes: RouteWant[];
  /** On the vxlan device: remote gateway → remote VTEP MAC. */
  neighbours: { ip: number; mac: string }[];
  /** On the vxlan device: remote VTEP MAC → remote node address. */
  fdb: { mac: string; dst: number }[];
  /** Every known node's state, this node's included. */
  states: Map<string, NodeRouteState>;
}

/** A node's VTEP MAC: locally administered (0e:eb), then its IPv4 address, so every node
 * derives every other's from the Node objects alone (flannel publishes a random one in an
 * annotation instead). */
export function vtepMac(address: number): string {
  const b = [
    0x0e,
    0xeb,
    address >>> 24,
    (address >>> 16) & 255,
    (address >>> 8) & 255,
    address & 255,
  ];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** The address other nodes' overlay routes use for a node (flannel's "subnet .0"). */
export function gatewayOf(node: ClusterNode): number | undefined {
  return node.podCidrs[0]?.network;
}

function notRouted(reason: string): NodeRouteState {
  return { routed: false, reason };
}

/** The interface whose connected subnet holds `ip` (the longest prefix wins), if any. */
export function connectedVia(addrs: readonly HostAddr[], ip: number): HostAddr | undefined {
  let best: HostAddr | undefined;
  for (const a of addrs) {
    if (a.prefix === 32 || a.ip === ip) continue; // a /32 (or the address itself) connects nothing
    const net: Cidr = { network: (a.ip & prefixMask(a.prefix)) >>> 0, prefix: a.prefix };
    if (cidrContains(net, ip) && (!best || a.prefix > best.prefix)) best = a;
  }
  return best;
}

function planDevice(
  input: RoutingInput,
  self: ClusterNode | undefined,
): DeviceWant | { problem: string } {
  if (!self) return { problem: `this node ${JSON.stringify(input.self)} is not among the nodes` };
  if (self.address === undefined) {
    return { problem: "this node has no address (InternalIP or ExternalIP) to tunnel from" };
  }
  const own = input.addrs.find((a) => a.ip === self.address);
  if (!own) {
    return {
      problem: `this node's address ${formatIpv4(self.address)} is on no interface of its ` +
        "network namespace",
    };
  }
  const link = input.links.find((l) => l.index === own.ifindex);
  return {
    name: VXLAN_DEVICE,
    vni: input.vxlan.vni,
    port: input.vxlan.port,
    local: self.address,
    link: own.ifindex,
    mtu: (link?.mtu ?? 1500) - VXLAN_OVERHEAD,
    mac: vtepMac(self.address),
    address: gatewayOf(self),
  };
}

function remoteProblem(node: ClusterNode): string | undefined {
  if (node.address === undefined) return "no address (InternalIP or ExternalIP)";
  if (node.podCidrs.length === 0) return "no pod CIDR yet";
  return undefined;
}

export function plan(input: RoutingInput): Plan {
  const out: Plan = { device: undefined, routes: [], neighbours: [], fdb: [], states: new Map() };
  const self = input.nodes.get(input.self);
  let device: DeviceWant | { problem: string } | undefined;
  if (input.mode === "vxlan") {
    device = planDevice(input, self);
    if ("name" in device) out.device = device;
    else out.hold = device.problem;
  }
  const names = [...input.nodes.keys()].sort();
  for (const name of names) {
    const node = input.nodes.get(name)!;
    if (name === input.self) {
      out.states.set(name, { routed: true, via: "this node" });
      continue;
    }
    if (input.mode === "none") {
      out.states.set(name, notRouted("routing is off here (--routing none)"));
      continue;
    }
    const problem = remoteProblem(node);
    if (problem !== undefined) {
      out.states.set(name, notRouted(problem));
      continue;
    }
    const address = node.address!;
    if (self?.address === address) {
      out.states.set(name, notRouted(`its address ${formatIpv4(address)} is this node's`));
      continue;
    }
    const clash = self?.podCidrs.find((c) => node.podCidrs.some((r) => overlaps(c, r)));
    if (clash) {
      out.states.set(name, notRouted(`its pod CIDR overlaps this node's ${formatCidr(clash)}`));
      continue;
    }
    if (input.mode === "vxlan") {
      if (device && "problem" in device) {
        out.states.set(name, notRouted(device.problem));
        continue;
      }
      const gw = gatewayOf(node)!;
      const mac = vtepMac(address);
      out.fdb.push({ mac, dst: address });
      out.neighbours.push({ ip: gw, mac });
      for (const c of node.podCidrs) {
        out.routes.push({
          dst: c.network,
          dstLen: c.prefix,
          gw,
          oif: "vxlan",
          onlink: true,
          node: name,
        });
      }
      out.states.set(name, { routed: true, via: `vxlan to ${formatIpv4(address)}` });
      continue;
    }
    const via = connectedVia(input.addrs, address);
    if (!via) {
      out.states.set(
        name,
        notRouted(
          `its address ${formatIpv4(address)} is not on a subnet this node is connected to ` +
            "(native routing needs the nodes on one link; use --routing vxlan)",
        ),
      );
      continue;
    }
    for (const c of node.podCidrs) {
      out.routes.push({
        dst: c.network,
        dstLen: c.prefix,
        gw: address,
        oif: via.ifindex,
        onlink: false,
        node: name,
      });
    }
    const dev = input.links.find((l) => l.index === via.ifindex)?.name ?? `ifindex ${via.ifindex}`;
    out.states.set(name, { routed: true, via: `${formatIpv4(address)} dev ${dev}` });
  }
  return out;
}

function overlaps(a: Cidr, b: Cidr): boolean {
  return a.prefix <= b.prefix ? cidrContains(a, b.network) : cidrContains(b, a.network);
}
