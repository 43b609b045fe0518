// The routing plan applied through netlink in the network namespace of one socket: the
// namespace's addresses and links are read, the plan made (plan.ts), the vxlan device
// created, fixed or removed, ebpfcni's own entries dumped and the difference (diff.ts)
// written. A write the kernel refuses is reported on the node it was for, and the rest still
// goes through.
import { errorMessage } from "../spec/text.ts";
import type { NetlinkSocket } from "../net/socket.ts";
import { Links } from "../net/link.ts";
import * as M from "../net/messages.ts";
import * as K from "../net/constants.ts";
import { parseNeigh } from "../net/rtnl_parse.ts";
import { NetlinkError, SysError } from "../../ffi/errors.ts";
import type { Link } from "../net/rtnl_parse.ts";
import { formatCidr } from "../spec/ipv4.ts";
import type { NodeRouteState } from "../spec/node.ts";
import { RTPROT_EBPFCNI, VXLAN_DEVICE } from "../spec/routing.ts";
import { plan, type RoutingInput } from "./plan.ts";
import { deviceChange, diff, type Have, type HaveDevice } from "./diff.ts";

export interface ApplyResult {
  states: Map<string, NodeRouteState>;
  /** Kernel writes made (0: everything was already right). */
  writes: number;
  /** Writes the kernel refused, as sentences. */
  errors: string[];
  /** The interfaces carrying pod traffic to other nodes (the vxlan device; in native mode
   * the underlay interfaces of the routes), where the pods' egress is judged as it leaves. */
  devices: number[];
}

function haveDevice(l: Link | undefined): HaveDevice | undefined {
  if (!l) return undefined;
  return {
    index: l.index,
    up: (l.flags & K.IFF_UP) !== 0,
    mtu: l.mtu,
    mac: l.mac,
    vxlan: l.kind === "vxlan" ? l.vxlan : undefined,
  };
}

const ignorable = (err: unknown, on: "add" | "del") =>
  on === "del"
    ? err instanceof SysError && err.notFound
    : err instanceof NetlinkError && err.exists;

/** ebpfcni's entries as the kernel holds them now. */
export function dumpOwned(nl: NetlinkSocket, vxlanIndex: number | undefined): Omit<Have, "device"> {
  const links = new Links(nl);
  const routes = links.routes().filter((r) =>
    r.protocol === RTPROT_EBPFCNI && r.table === K.RT_TABLE_MAIN && r.type === K.RTN_UNICAST
  ).map((r) => ({
    dst: r.dst,
    dstLen: r.dstLen,
    gw: r.gw,
    oif: r.oif,
    onlink: (r.flags & K.RTNH_F_ONLINK) !== 0,
  }));
  if (vxlanIndex === undefined) return { routes, neighbours: [], fdb: [], addrs: [] };
  const neigh = (family: number) =>
    nl.dump(M.dumpNeigh(family)).map((m) => parseNeigh(m.payload)).filter((n) =>
      n !== undefined && n.family === family && n.ifindex === vxlanIndex && n.dst !== undefined
    ) as { dst: number; mac: string; state: number }[];
  return {
    routes,
    neighbours: neigh(K.AF_INET).map((n) => ({
      ip: n.dst,
      mac: n.mac,
      permanent: (n.state & K.NUD_PERMANENT) !== 0,
    })),
    fdb: neigh(K.AF_BRIDGE).map((n) => ({ mac: n.mac, dst: n.dst })),
    addrs: links.addrs(vxlanIndex).map((a) => ({ ip: a.ip, prefix: a.prefixlen })),
  };
}

/** Makes the namespace of `nl` route as `input` asks (its addrs and links are read here). */
export function applyRouting(
  nl: NetlinkSocket,
  input: Omit<RoutingInput, "addrs" | "links">,
): ApplyResult {
  const links = new Links(nl);
  const all = links.list();
  const p = plan({
    ...input,
    links: all.map((l) => ({ index: l.index, name: l.name, mtu: l.mtu })),
    addrs: links.addrs().map((a) => ({ ip: a.ip, prefix: a.prefixlen, ifindex: a.index })),
  });
  // No device can be planned now: nothing is written (diff() keeps everything as well).
  if (p.hold !== undefined) {
    const kept = all.find((l) => l.name === VXLAN_DEVICE);
    return { states: p.states, writes: 0, errors: [], devices: kept ? [kept.index] : [] };
  }
  const errors: string[] = [];
  const failed = new Map<string, string>();
  let writes = 0;
  const write = (what: () => void, on: "add" | "del", node?: string) => {
    try {
      what();
      writes++;
    } catch (err) {
      if (ignorable(err, on)) return;
      const text = errorMessage(err);
      errors.push(text);
      if (node !== undefined && !failed.has(node)) failed.set(node, text);
    }
  };

  const current = all.find((l) => l.name === VXLAN_DEVICE);
  const dc = deviceChange(p.device, haveDevice(current));
  if (current && (dc.kind === "delete" || dc.kind === "recreate")) {
    write(() => nl.request(M.delLink(current.index, VXLAN_DEVICE)), "del");
  }
  if (p.device && (dc.kind === "create" || dc.kind === "recreate")) {
    const d = p.device;
    try {
      nl.request(M.newVxlan({ ...d, name: VXLAN_DEVICE }));
      writes++;
    } catch (err) {
      // EEXIST is also the kernel's answer when another vxlan device (flannel's flannel.1,
      // say) already takes this VNI and UDP port: then ours does not exist.
      const made = err instanceof NetlinkError && err.exists &&
        links.get(VXLAN_DEVICE)?.kind === "vxlan";
      if (!made) {
        const clash = err instanceof NetlinkError && err.exists
          ? `: another vxlan device uses VNI ${d.vni} and UDP port ${d.port}` +
            (vxlanClash(links.list(), d) ?? "")
          : "";
        errors.push(`${errorMessage(err)}${clash}`);
      }
    }
  }
  let device = links.get(VXLAN_DEVICE);
  if (p.device && device && dc.kind !== "keep" && dc.kind !== "delete") {
    const d = p.device;
    const dev = device;
    if (dev.mtu !== d.mtu || dev.mac !== d.mac) {
      write(
        () => nl.request(M.setLinkAttrs(dev.index, dev.name, { mtu: d.mtu, mac: d.mac })),
        "add",
      );
    }
    if (!(dev.flags & K.IFF_UP)) write(() => links.setUp(dev), "add");
    device = links.get(VXLAN_DEVICE);
  }
  const vxlanIndex = p.device ? device?.index : undefined;
  if (p.device && vxlanIndex === undefined) {
    // Without the device no overlay route can be made: every node it would carry says why.
    const why = `the vxlan device ${JSON.stringify(VXLAN_DEVICE)} could not be made: ${
      errors.at(-1) ?? "it vanished"
    }`;
    for (const r of p.routes) if (r.oif === "vxlan" && !failed.has(r.node)) failed.set(r.node, why);
  }
  // A route of another owner to a pod CIDR is left alone (a REPLACE would take it over): the
  // node it was for is reported instead.
  // Whatever its type: REPLACE matches destination, TOS and priority, so a blackhole or
  // unreachable route would be taken over too.
  const foreign = new Map(
    links.routes().filter((r) => r.protocol !== RTPROT_EBPFCNI && r.table === K.RT_TABLE_MAIN)
      .map((r) => [`${r.dst}/${r.dstLen}`, r]),
  );
  p.routes = p.routes.filter((r) => {
    const other = foreign.get(`${r.dst}/${r.dstLen}`);
    if (!other) return true;
    if (!failed.has(r.node)) {
      failed.set(
        r.node,
        `another route to ${formatCidr({ network: r.dst, prefix: r.dstLen })} (protocol ` +
          `${other.protocol}) is in the main table: left alone`,
      );
    }
    return false;
  });
  const c = diff(p, { ...dumpOwned(nl, vxlanIndex), device: haveDevice(device) }, vxlanIndex);
  const routeNode = new Map(p.routes.map((r) => [`${r.dst}/${r.dstLen}`, r.node]));

  for (const r of c.routesDel) {
    write(() => nl.request(M.delRoute({ ...r, protocol: RTPROT_EBPFCNI })), "del");
  }
  if (vxlanIndex !== undefined) {
    const on = { ifindex: vxlanIndex };
    for (const n of c.neighDel) {
      write(
        () => nl.request(M.delNeigh({ ...on, family: K.AF_INET, mac: n.mac, dst: n.ip })),
        "del",
      );
    }
    for (const f of c.fdbDel) {
      write(() => nl.request(M.delNeigh({ ...on, family: K.AF_BRIDGE, ...f })), "del");
    }
    for (const a of c.addrDel) {
      write(() => nl.request(M.delAddr(vxlanIndex, a.ip, a.prefix, VXLAN_DEVICE)), "del");
    }
    for (const ip of c.addrAdd) {
      write(() => nl.request(M.newAddr(vxlanIndex, ip, 32, VXLAN_DEVICE)), "add");
    }
    for (const f of c.fdbSet) {
      const node = nodeOfMac(p.neighbours, p.routes, f.mac);
      write(() => nl.request(M.replaceNeigh({ ...on, family: K.AF_BRIDGE, ...f })), "add", node);
    }
    for (const n of c.neighSet) {
      const node = nodeOfMac(p.neighbours, p.routes, n.mac);
      write(
        () => nl.request(M.replaceNeigh({ ...on, family: K.AF_INET, mac: n.mac, dst: n.ip })),
        "add",
        node,
      );
    }
  }
  for (const r of c.routesSet) {
    const node = routeNode.get(`${r.dst}/${r.dstLen}`);
    write(
      () =>
        nl.request(M.replaceRoute({
          dst: r.dst,
          dstLen: r.dstLen,
          gw: r.gw!,
          oif: r.oif,
          onlink: r.onlink,
          protocol: RTPROT_EBPFCNI,
        })),
      "add",
      node,
    );
  }
  const states = new Map(p.states);
  for (const [node, why] of failed) {
    const cidrs = input.nodes.get(node)?.podCidrs.map(formatCidr).join(", ") ?? "";
    states.set(node, {
      routed: false,
      reason: why.startsWith("the vxlan device") || why.startsWith("another route")
        ? why
        : `the kernel refused ${cidrs}: ${why}`,
    });
  }
  const devices = vxlanIndex !== undefined
    ? [vxlanIndex]
    : [...new Set(p.routes.flatMap((r) => typeof r.oif === "number" ? [r.oif] : []))];
  return { states, writes, errors, devices };
}

/** The node whose gateway neighbour has this MAC (its routes go via that gateway). */
function nodeOfMac(
  neighbours: readonly { ip: number; mac: string }[],
  routes: readonly { gw: number; node: string }[],
  mac: string,
): string | undefined {
  const gw = neighbours.find((n) => n.mac === mac)?.ip;
  return routes.find((r) => r.gw === gw)?.node;
}

/** The name of another vxlan device with the same VNI and port, for the error's hint. */
function vxlanClash(
  all: readonly Link[],
  want: { vni: number; port: number },
): string | undefined {
  const other = all.find((l) =>
    l.name !== VXLAN_DEVICE && l.vxlan?.vni === want.vni && l.vxlan.port === want.port
  );
  return other ? ` (${JSON.stringify(other.name)})` : undefined;
}
