import assert from "node:assert/strict";
import { type DatapathEvent, IDENTITY_HOST, IDENTITY_WORLD } from "../spec/bpf_layout.ts";
import { parseIpv4 } from "../spec/ipv4.ts";
import { flowJson, flowRecord, flowText } from "./flow_record.ts";

const drop: DatapathEvent = {
  ts: 2_000_000_000n,
  ifindex: 7,
  saddr: parseIpv4("10.1.0.3"),
  daddr: parseIpv4("10.1.0.2"),
  srcId: 70001,
  dstId: 70002,
  sport: 40000,
  dport: 80,
  proto: 6,
  verdict: 0,
  reason: 14, // drop_ingress
  hook: 1,
};
const wallMs = (ts: bigint) => Date.UTC(2026, 0, 1) + Number(ts / 1_000_000n);
const ifname = (i: number) => `veth${i}`;

Deno.test("flowRecord() without names carries what the event says, in the documented order", () => {
  const r = flowRecord(drop, wallMs, ifname);
  assert.deepEqual(Object.keys(r), [
    "time",
    "verdict",
    "reason",
    "hook",
    "ifindex",
    "interface",
    "proto",
    "src",
    "sport",
    "srcIdentity",
    "dst",
    "dport",
    "dstIdentity",
  ]);
  assert.equal(r.time, "2026-01-01T00:00:02.000Z");
  assert.equal(r.verdict, "drop");
  assert.equal(r.reason, "drop_ingress");
  assert.equal(r.hook, "to-pod");
  assert.equal(r.interface, "veth7");
  assert.equal(r.src, "10.1.0.3");
  assert.equal(r.srcIdentity, "70001");
});

Deno.test("flowRecord() puts each side's pod after its identity and the policies last", () => {
  const r = flowRecord(drop, wallMs, ifname, {
    src: { namespace: "x", pod: "c" },
    dst: { namespace: "y", pod: "b" },
    policies: ["y/b-from-a"],
  });
  const line = flowJson(r);
  assert.ok(line.endsWith("}\n") && !line.slice(0, -1).includes("\n"), "one line");
  assert.deepEqual(Object.keys(JSON.parse(line)).slice(9), [
    "srcIdentity",
    "srcNamespace",
    "srcPod",
    "dst",
    "dport",
    "dstIdentity",
    "dstNamespace",
    "dstPod",
    "policies",
  ]);
  assert.deepEqual(JSON.parse(line), r);
});

Deno.test("flowRecord() names host and world identities and leaves an unknown one as -", () => {
  const r = flowRecord({ ...drop, srcId: IDENTITY_HOST, dstId: 0, reason: 200 }, wallMs, ifname);
  assert.equal(r.srcIdentity, "host");
  assert.equal(r.dstIdentity, "-");
  assert.equal(flowRecord({ ...drop, dstId: IDENTITY_WORLD }, wallMs, ifname).dstIdentity, "world");
  assert.equal(r.reason, "reason 200");
});

Deno.test("flowText() shows pods, ports of L4 protocols only, and who decided", () => {
  const named = flowRecord(drop, wallMs, ifname, {
    src: { namespace: "x", pod: "c" },
    dst: { namespace: "y", pod: "b" },
    policies: ["y/b-from-a"],
  });
  assert.equal(
    flowText(named),
    "2026-01-01T00:00:02.000Z DROP  veth7 to-pod tcp 10.1.0.3:40000 (x/c 70001) -> " +
      "10.1.0.2:80 (y/b 70002) drop_ingress (isolated by y/b-from-a)\n",
  );
  const ping = flowRecord({ ...drop, proto: 1, verdict: 1, reason: 5 }, wallMs, ifname, {
    policies: [],
  });
  assert.equal(
    flowText(ping),
    "2026-01-01T00:00:02.000Z ALLOW veth7 to-pod icmp 10.1.0.3 (70001) -> 10.1.0.2 (70002) " +
      "allow (not isolated)\n",
  );
});

Deno.test("flowRecord() names the hook of a drop as a pod's traffic left for another node", () => {
  const r = flowRecord({ ...drop, reason: 13, hook: 2 }, wallMs, ifname);
  assert.equal(r.hook, "to-node");
  assert.equal(r.reason, "drop_egress");
});
