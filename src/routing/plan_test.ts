import assert from "node:assert/strict";
import { connectedVia, plan, type RoutingInput, vtepMac } from "./plan.ts";
import { changeCount, diff, type Have } from "./diff.ts";
import { parseCidr, parseIpv4 } from "../spec/ipv4.ts";
import type { ClusterNode } from "../spec/node.ts";

const ip = parseIpv4;
function node(name: string, cidrs: string[], address?: string): ClusterNode {
  return {
    name,
    podCidrs: cidrs.map((c) => parseCidr(c)),
    ...(address === undefined ? {} : { address: ip(address) }),
  };
}
function input(mode: RoutingInput["mode"], nodes: ClusterNode[], self = "a"): RoutingInput {
  return {
    mode,
    self,
    nodes: new Map(nodes.map((n) => [n.name, n])),
    vxlan: { port: 8472, vni: 1 },
    addrs: [{ ip: ip("10.0.0.1"), prefix: 24, ifindex: 2 }, {
      ip: ip("127.0.0.1"),
      prefix: 8,
      ifindex: 1,
    }],
    links: [{ index: 1, name: "lo", mtu: 65536 }, { index: 2, name: "eth0", mtu: 9000 }],
  };
}
const A = node("a", ["10.244.1.0/24"], "10.0.0.1");
const B = node("b", ["10.244.2.0/24"], "10.0.0.2");
const C = node("c", ["10.244.3.0/24", "10.245.3.0/24"], "10.0.0.3");
const empty: Have = { device: undefined, routes: [], neighbours: [], fdb: [], addrs: [] };

Deno.test("plan() in vxlan mode: a device on the underlay at its MTU - 50 and, per remote node, an FDB entry, a neighbour and onlink routes", () => {
  const p = plan(input("vxlan", [A, B, C]));
  assert.deepEqual(p.device, {
    name: "ebpfcni.vxlan",
    vni: 1,
    port: 8472,
    local: ip("10.0.0.1"),
    link: 2,
    mtu: 8950,
    mac: "0e:eb:0a:00:00:01",
    address: ip("10.244.1.0"),
  });
  assert.deepEqual(p.fdb, [{ mac: vtepMac(ip("10.0.0.2")), dst: ip("10.0.0.2") }, {
    mac: "0e:eb:0a:00:00:03",
    dst: ip("10.0.0.3"),
  }]);
  assert.deepEqual(p.neighbours.map((n) => n.ip), [ip("10.244.2.0"), ip("10.244.3.0")]);
  assert.deepEqual(
    p.routes.map((r) => [r.dst, r.dstLen, r.gw, r.oif, r.onlink, r.node]),
    [
      [ip("10.244.2.0"), 24, ip("10.244.2.0"), "vxlan", true, "b"],
      [ip("10.244.3.0"), 24, ip("10.244.3.0"), "vxlan", true, "c"],
      [ip("10.245.3.0"), 24, ip("10.244.3.0"), "vxlan", true, "c"],
    ],
  );
  assert.deepEqual(p.states.get("b"), { routed: true, via: "vxlan to 10.0.0.2" });
  assert.deepEqual(p.states.get("a"), { routed: true, via: "this node" });
});

Deno.test("plan() reports a remote node without address or pod CIDR as not routed, and routes the rest", () => {
  const p = plan(input("vxlan", [A, B, node("x", ["10.244.9.0/24"]), node("y", [], "10.0.0.9")]));
  assert.deepEqual(p.states.get("x"), {
    routed: false,
    reason: "no address (InternalIP or ExternalIP)",
  });
  assert.deepEqual(p.states.get("y"), { routed: false, reason: "no pod CIDR yet" });
  assert.equal(p.routes.length, 1);
});

Deno.test("plan() in vxlan mode makes no device when this node's address is on none of its interfaces", () => {
  const p = plan(input("vxlan", [node("a", ["10.244.1.0/24"], "192.168.7.7"), B]));
  assert.equal(p.device, undefined);
  assert.deepEqual(p.routes, []);
  const b = p.states.get("b");
  assert.ok(b && !b.routed && b.reason.includes("192.168.7.7"), JSON.stringify(b));
});

Deno.test("plan() in native mode routes via a node on a connected subnet and reports one that is not", () => {
  const far = node("far", ["10.244.7.0/24"], "10.1.0.7");
  const p = plan(input("native", [A, B, far]));
  assert.equal(p.device, undefined);
  assert.deepEqual(p.routes, [{
    dst: ip("10.244.2.0"),
    dstLen: 24,
    gw: ip("10.0.0.2"),
    oif: 2,
    onlink: false,
    node: "b",
  }]);
  assert.deepEqual(p.states.get("b"), { routed: true, via: "10.0.0.2 dev eth0" });
  const s = p.states.get("far");
  assert.ok(s && !s.routed && s.reason.startsWith("its address 10.1.0.7 is not on a subnet"));
});

Deno.test("plan() in none mode routes nothing and says why for every remote node", () => {
  const p = plan(input("none", [A, B]));
  assert.deepEqual([p.device, p.routes.length], [undefined, 0]);
  assert.deepEqual(p.states.get("b"), {
    routed: false,
    reason: "routing is off here (--routing none)",
  });
});

Deno.test("plan() refuses a remote pod CIDR overlapping this node's", () => {
  const p = plan(input("native", [A, node("b", ["10.244.0.0/16"], "10.0.0.2")]));
  assert.deepEqual(p.routes, []);
  assert.equal(p.states.get("b")?.routed, false);
});

Deno.test("connectedVia() picks the longest connected prefix and never a /32", () => {
  const addrs = [
    { ip: ip("10.0.0.1"), prefix: 16, ifindex: 2 },
    { ip: ip("10.0.5.1"), prefix: 24, ifindex: 3 },
    { ip: ip("10.9.0.0"), prefix: 32, ifindex: 4 },
  ];
  assert.equal(connectedVia(addrs, ip("10.0.5.9"))?.ifindex, 3);
  assert.equal(connectedVia(addrs, ip("10.0.9.9"))?.ifindex, 2);
  assert.equal(connectedVia(addrs, ip("10.9.0.0")), undefined);
});

Deno.test("diff() writes everything to an empty kernel, nothing when the kernel already holds the plan", () => {
  const p = plan(input("vxlan", [A, B]));
  const first = diff(p, empty, 5);
  assert.equal(first.device.kind, "create");
  assert.equal(changeCount(first), 1 + 1 + 1 + 1 + 1); // device, route, neighbour, fdb, address
  const have: Have = {
    device: {
      index: 5,
      up: true,
      mtu: 8950,
      mac: "0e:eb:0a:00:00:01",
      vxlan: { vni: 1, link: 2, local: ip("10.0.0.1"), port: 8472 },
    },
    routes: [{ dst: ip("10.244.2.0"), dstLen: 24, gw: ip("10.244.2.0"), oif: 5, onlink: true }],
    neighbours: [{ ip: ip("10.244.2.0"), mac: vtepMac(ip("10.0.0.2")), permanent: true }],
    fdb: [{ mac: vtepMac(ip("10.0.0.2")), dst: ip("10.0.0.2") }],
    addrs: [{ ip: ip("10.244.1.0"), prefix: 32 }],
  };
  assert.equal(changeCount(diff(p, have, 5)), 0);
});

Deno.test("diff() removes a vanished node's entries and fixes a changed one", () => {
  const have: Have = {
    device: undefined,
    routes: [
      { dst: ip("10.244.2.0"), dstLen: 24, gw: ip("10.0.0.22"), oif: 2, onlink: false },
      { dst: ip("10.244.8.0"), dstLen: 24, gw: ip("10.0.0.8"), oif: 2, onlink: false },
    ],
    neighbours: [],
    fdb: [],
    addrs: [],
  };
  const c = diff(plan(input("native", [A, B])), have, undefined);
  assert.deepEqual(c.routesDel, [{ dst: ip("10.244.8.0"), dstLen: 24 }]);
  assert.deepEqual(c.routesSet.map((r) => r.gw), [ip("10.0.0.2")]);
});

Deno.test("diff() deletes the vxlan device outside vxlan mode and recreates one whose VNI or port changed", () => {
  const dev = {
    index: 5,
    up: true,
    mtu: 8950,
    mac: "0e:eb:0a:00:00:01",
    vxlan: { vni: 1, link: 2, local: ip("10.0.0.1"), port: 4789 },
  };
  assert.equal(
    diff(plan(input("native", [A, B])), { ...empty, device: dev }, 5).device.kind,
    "delete",
  );
  assert.equal(
    diff(plan(input("vxlan", [A, B])), { ...empty, device: dev }, 5).device.kind,
    "recreate",
  );
  const mtu = diff(plan(input("vxlan", [A, B])), {
    ...empty,
    device: { ...dev, mtu: 1450, vxlan: { ...dev.vxlan, port: 8472 } },
  }, 5).device;
  assert.deepEqual(mtu, { kind: "update", mtu: 8950, up: false });
});

Deno.test("diff() keeps the vxlan device and every entry while this node's address is missing or on none of its interfaces", () => {
  const dev = {
    index: 5,
    up: true,
    mtu: 8950,
    mac: "0e:eb:0a:00:00:01",
    vxlan: { vni: 1, link: 2, local: ip("10.0.0.1"), port: 8472 },
  };
  const have: Have = {
    device: dev,
    routes: [{ dst: ip("10.244.2.0"), dstLen: 24, gw: ip("10.244.2.0"), oif: 5, onlink: true }],
    neighbours: [{ ip: ip("10.244.2.0"), mac: vtepMac(ip("10.0.0.2")), permanent: true }],
    fdb: [{ mac: vtepMac(ip("10.0.0.2")), dst: ip("10.0.0.2") }],
    addrs: [{ ip: ip("10.244.1.0"), prefix: 32 }],
  };
  for (const self of [node("a", ["10.244.1.0/24"], "10.0.0.99"), node("a", ["10.244.1.0/24"])]) {
    const p = plan(input("vxlan", [self, B]));
    const c = diff(p, have, 5);
    assert.equal(c.device.kind, "keep");
    assert.equal(changeCount(c), 0, JSON.stringify(c));
    assert.ok(p.hold !== undefined, "the plan says why it holds");
    const b = p.states.get("b");
    assert.ok(b && !b.routed, JSON.stringify(b));
  }
  // Outside vxlan mode the device still goes.
  const native = plan(input("native", [A, B]));
  assert.equal(native.hold, undefined);
  assert.equal(diff(native, have, 5).device.kind, "delete");
});
