// What changes make the kernel hold the plan: the plan's entries against what a dump found of
// ebpfcni's own (routes with its protocol number; neighbours, forwarding entries and
// addresses on its vxlan device). An entry already right is left alone, so a restarted agent
// rewrites nothing; one nobody wants any more (a vanished node's) is removed. Pure.
import type { DeviceWant, Plan } from "./plan.ts";

/** A route as dumped (ebpfcni's only). */
export interface HaveRoute {
  dst: number;
  dstLen: number;
  gw: number | undefined;
  oif: number;
  onlink: boolean;
}

/** The vxlan device as dumped. */
export interface HaveDevice {
  index: number;
  up: boolean;
  mtu: number;
  mac: string;
  vxlan: { vni: number; link: number; local: number; port: number } | undefined;
}

export interface Have {
  device: HaveDevice | undefined;
  routes: readonly HaveRoute[];
  /** On the vxlan device. */
  neighbours: readonly { ip: number; mac: string; permanent: boolean }[];
  fdb: readonly { mac: string; dst: number }[];
  addrs: readonly { ip: number; prefix: number }[];
}

export type DeviceChange =
  | { kind: "keep" }
  | { kind: "create" }
  /** VNI, port, local address and underlay link are fixed at creation. */
  | { kind: "recreate" }
  | { kind: "delete" }
  | { kind: "update"; mtu?: number; mac?: string; up: boolean };

export interface Changes {
  device: DeviceChange;
  routesSet: HaveRoute[];
  routesDel: { dst: number; dstLen: number }[];
  neighSet: { ip: number; mac: string }[];
  neighDel: { ip: number; mac: string }[];
  fdbSet: { mac: string; dst: number }[];
  fdbDel: { mac: string; dst: number }[];
  addrAdd: number[];
  addrDel: { ip: number; prefix: number }[];
}

export function deviceChange(
  want: DeviceWant | undefined,
  have: HaveDevice | undefined,
): DeviceChange {
  if (!want) return have ? { kind: "delete" } : { kind: "keep" };
  if (!have) return { kind: "create" };
  const x = have.vxlan;
  if (
    !x || x.vni !== want.vni || x.port !== want.port || x.local !== want.local ||
    x.link !== want.link
  ) {
    return { kind: "recreate" };
  }
  const mtu = have.mtu !== want.mtu ? want.mtu : undefined;
  const mac = have.mac !== want.mac ? want.mac : undefined;
  if (mtu === undefined && mac === undefined && have.up) return { kind: "keep" };
  return {
    kind: "update",
    ...(mtu === undefined ? {} : { mtu }),
    ...(mac === undefined ? {} : { mac }),
    up: !have.up,
  };
}

const routeKey = (r: { dst: number; dstLen: number }) => `${r.dst}/${r.dstLen}`;

/** The changes, given the vxlan device's ifindex once it exists (`vxlanIndex`). A device
 * that is (re)created starts empty: pass `have` without its entries then. */
export function diff(p: Plan, have: Have, vxlanIndex: number | undefined): Changes {
  const c: Changes = {
    device: p.hold === undefined ? deviceChange(p.device, have.device) : { kind: "keep" },
    routesSet: [],
    routesDel: [],
    neighSet: [],
    neighDel: [],
    fdbSet: [],
    fdbDel: [],
    addrAdd: [],
    addrDel: [],
  };
  if (p.hold !== undefined) return c; // what the kernel holds stays until a device is wanted
  const wantRoutes = new Map<string, HaveRoute>();
  for (const r of p.routes) {
    const oif = r.oif === "vxlan" ? vxlanIndex : r.oif;
    if (oif === undefined) continue;
    wantRoutes.set(routeKey(r), { dst: r.dst, dstLen: r.dstLen, gw: r.gw, oif, onlink: r.onlink });
  }
  const haveRoutes = new Map(have.routes.map((r) => [routeKey(r), r]));
  for (const [k, w] of wantRoutes) {
    const h = haveRoutes.get(k);
    if (!h || h.gw !== w.gw || h.oif !== w.oif || h.onlink !== w.onlink) c.routesSet.push(w);
  }
  for (const [k, h] of haveRoutes) {
    if (!wantRoutes.has(k)) c.routesDel.push({ dst: h.dst, dstLen: h.dstLen });
  }

  const wantNeigh = new Map(p.neighbours.map((n) => [n.ip, n.mac]));
  const haveNeigh = new Map(have.neighbours.map((n) => [n.ip, n]));
  for (const [ip, mac] of wantNeigh) {
    const h = haveNeigh.get(ip);
    if (!h || h.mac !== mac || !h.permanent) c.neighSet.push({ ip, mac });
  }
  for (const h of have.neighbours) {
    if (!wantNeigh.has(h.ip)) c.neighDel.push({ ip: h.ip, mac: h.mac });
  }

  const fdbKey = (f: { mac: string; dst: number }) => `${f.mac} ${f.dst}`;
  const wantFdb = new Set(p.fdb.map(fdbKey));
  const haveFdb = new Set(have.fdb.map(fdbKey));
  for (const f of p.fdb) if (!haveFdb.has(fdbKey(f))) c.fdbSet.push(f);
  for (const f of have.fdb) if (!wantFdb.has(fdbKey(f))) c.fdbDel.push(f);

  const want = p.device?.address;
  for (const a of have.addrs) if (a.ip !== want || a.prefix !== 32) c.addrDel.push(a);
  if (want !== undefined && !have.addrs.some((a) => a.ip === want && a.prefix === 32)) {
    c.addrAdd.push(want);
  }
  return c;
}

/** How many kernel writes the changes take (0: the kernel already holds the plan). */
export function changeCount(c: Changes): number {
  return (c.device.kind === "keep" ? 0 : 1) + c.routesSet.length + c.routesDel.length +
    c.neighSet.length + c.neighDel.length + c.fdbSet.length + c.fdbDel.length +
    c.addrAdd.length + c.addrDel.length;
}
