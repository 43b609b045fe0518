import assert from "node:assert/strict";
import { type DatapathEvent, STAT_NAMES, type StatName } from "../spec/bpf_layout.ts";
import { modelOf, namespaceObj, podObj, policyObj } from "../netpol/_test_util.ts";
import { parseIpv4 } from "../spec/ipv4.ts";
import { FlowNamer, nameFlow } from "./flow_names.ts";

const model = modelOf(
  namespaceObj("x"),
  podObj("x/a", { pod: "a" }, { ip: "10.0.0.1" }),
  podObj("x/b", { pod: "b" }, { ip: "10.0.0.2" }),
  podObj("x/c", { pod: "c" }, { ip: "10.0.0.3" }),
  podObj("x/h", { pod: "h" }, { ip: "10.0.0.254", hostNetwork: true }),
  policyObj("x/b-from-a", {
    podSelector: { matchLabels: { pod: "b" } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }], ports: [{ port: 80 }] }],
  }),
  policyObj("x/c-no-egress", {
    podSelector: { matchLabels: { pod: "c" } },
    policyTypes: ["Egress"],
  }),
);
const hosts = new Set([parseIpv4("10.0.0.254")]);

function event(src: string, dst: string, reason: StatName, o: Partial<DatapathEvent> = {}) {
  return {
    ts: 1n,
    ifindex: 3,
    saddr: parseIpv4(src),
    daddr: parseIpv4(dst),
    srcId: 0,
    dstId: 0,
    sport: 40000,
    dport: 80,
    proto: 6,
    verdict: reason.startsWith("allow") ? 1 : 0,
    reason: STAT_NAMES.indexOf(reason),
    hook: 1,
    ...o,
  };
}

Deno.test("nameFlow() names both pods and, for an ingress drop, the policies isolating it", () => {
  assert.deepEqual(
    nameFlow(model, hosts, event("10.0.0.1", "10.0.0.2", "drop_ingress", { dport: 81 })),
    {
      src: { namespace: "x", pod: "a" },
      dst: { namespace: "x", pod: "b" },
      policies: ["x/b-from-a"],
    },
  );
});

Deno.test("nameFlow() names the egress policy for an egress drop, of any protocol", () => {
  const ping = event("10.0.0.3", "192.0.2.1", "drop_egress", { proto: 1, dport: 0, hook: 0 });
  assert.deepEqual(nameFlow(model, hosts, ping), {
    src: { namespace: "x", pod: "c" },
    policies: ["x/c-no-egress"],
  });
});

Deno.test("nameFlow() names the allowing policies of an allow, none when not isolated", () => {
  assert.deepEqual(nameFlow(model, hosts, event("10.0.0.1", "10.0.0.2", "allow")).policies, [
    "x/b-from-a",
  ]);
  assert.deepEqual(nameFlow(model, hosts, event("10.0.0.2", "10.0.0.1", "allow")).policies, []);
});

Deno.test("nameFlow() names no policy for other reasons, nor one the model no longer holds", () => {
  const spoof = nameFlow(model, hosts, event("10.0.0.9", "10.0.0.2", "drop_spoofed"));
  assert.deepEqual(spoof, { dst: { namespace: "x", pod: "b" } });
  // A drop_ingress of a flow the engine now allows (the maps were older): it cannot say who.
  const stale = nameFlow(model, hosts, event("10.0.0.2", "10.0.0.1", "drop_ingress"));
  assert.equal(stale.policies, undefined);
  // The node's address is the node, not its hostNetwork pod.
  const node = nameFlow(model, hosts, event("10.0.0.254", "10.0.0.2", "allow_host"));
  assert.deepEqual(node, { dst: { namespace: "x", pod: "b" } });
});

Deno.test("FlowNamer keeps answers for a model and judges again under a new one", () => {
  const namer = new FlowNamer();
  const e = event("10.0.0.1", "10.0.0.2", "drop_ingress", { dport: 81 });
  const first = namer.names(model, hosts, e);
  assert.equal(namer.names(model, hosts, e), first, "cached");
  const without = modelOf(namespaceObj("x"), podObj("x/a", { pod: "a" }, { ip: "10.0.0.1" }));
  assert.deepEqual(namer.names(without, hosts, e), { src: { namespace: "x", pod: "a" } });
});

Deno.test("FlowNamer forgets the least recently used flow first, not every flow at once", () => {
  const namer = new FlowNamer({ maxCached: 2 });
  const [a, b, c] = [81, 82, 83].map((dport) =>
    event("10.0.0.1", "10.0.0.2", "drop_ingress", { dport })
  ) as [DatapathEvent, DatapathEvent, DatapathEvent];
  const first = namer.names(model, hosts, a);
  const second = namer.names(model, hosts, b);
  assert.equal(namer.names(model, hosts, a), first); // a used last
  namer.names(model, hosts, c); // b goes
  assert.equal(namer.names(model, hosts, a), first, "a was forgotten with the rest");
  assert.notEqual(namer.names(model, hosts, b), second);
});

Deno.test("FlowNamer judges a bounded number of new flows per window: past it, the pods only", () => {
  let now = 0;
  const namer = new FlowNamer({ judgedPerWindow: 1, windowMs: 100, now: () => now });
  const scan = (dport: number) =>
    namer.names(model, hosts, event("10.0.0.1", "10.0.0.2", "drop_ingress", { dport }));
  assert.deepEqual(scan(81).policies, ["x/b-from-a"]);
  const over = scan(82);
  assert.deepEqual(over, { src: { namespace: "x", pod: "a" }, dst: { namespace: "x", pod: "b" } });
  assert.deepEqual(scan(81).policies, ["x/b-from-a"], "a flow judged before stays named");
  now = 100;
  assert.deepEqual(scan(82).policies, ["x/b-from-a"], "judged in the next window");
});
