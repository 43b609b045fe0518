import assert from "node:assert/strict";
import { parseCidr, parseIpv4 } from "../spec/ipv4.ts";
import type { ClusterNode } from "../spec/node.ts";
import {
  addIpMasqRule,
  deleteTable,
  describePlan,
  ipMasqComment,
  ipMasqRules,
  masqueradePlan,
  mergeRanges,
  replaceAgentTable,
} from "./ruleset.ts";

const node = (name: string, cidrs: string[], address?: string): [string, ClusterNode] => [
  name,
  {
    name,
    podCidrs: cidrs.map((c) => parseCidr(c)),
    ...(address === undefined ? {} : { address: parseIpv4(address) }),
  },
];

Deno.test("mergeRanges() joins overlapping and adjacent CIDRs into sorted disjoint ranges", () => {
  const r = mergeRanges(
    ["10.0.1.0/24", "10.0.0.0/24", "192.168.1.10/32", "192.168.0.0/16", "10.0.3.0/24"]
      .map((c) => parseCidr(c)),
  );
  assert.deepEqual(r, [
    [parseIpv4("10.0.0.0"), parseIpv4("10.0.1.255")],
    [parseIpv4("10.0.3.0"), parseIpv4("10.0.3.255")],
    [parseIpv4("192.168.0.0"), parseIpv4("192.168.255.255")],
  ]);
  assert.deepEqual(mergeRanges([parseCidr("255.255.255.255/32"), parseCidr("0.0.0.0/0")]), [[
    0,
    0xffffffff,
  ]]);
});

Deno.test("masqueradePlan() masquerades this node's pod CIDRs and exempts every node's CIDRs and addresses", () => {
  const nodes = new Map([
    node("a", ["10.1.0.0/24"], "192.168.0.1"),
    node("b", ["10.2.0.0/24"], "192.168.0.2"),
    node("c", [], "192.168.0.3"),
  ]);
  const plan = masqueradePlan("a", nodes, [parseCidr("172.16.0.0/12")]);
  assert.ok(!("waiting" in plan));
  assert.equal(
    describePlan(plan),
    "from 10.1.0.0/24 except to 10.1.0.0-10.1.0.255, 10.2.0.0-10.2.0.255, " +
      "172.16.0.0-172.31.255.255, 192.168.0.1-192.168.0.3",
  );
});

Deno.test("masqueradePlan() waits while this node is unknown or has no pod CIDR", () => {
  const nodes = new Map([node("a", [], "192.168.0.1")]);
  assert.deepEqual(masqueradePlan("a", nodes, []), { waiting: 'node "a" has no pod CIDR yet' });
  assert.deepEqual(masqueradePlan("x", nodes, []), { waiting: 'node "x" is not known yet' });
});

Deno.test("replaceAgentTable() replaces the table in one batch: add, delete, add, then its contents", () => {
  const plan = masqueradePlan("a", new Map([node("a", ["10.1.0.0/24"], "192.168.0.1")]), []);
  assert.ok(!("waiting" in plan));
  const ops = replaceAgentTable(plan).nftables.map((o) => Object.keys(o as object)[0]);
  assert.deepEqual(ops, ["add", "delete", "add", "add", "add", "add", "add"]);
  const text = JSON.stringify(replaceAgentTable(plan));
  assert.match(text, /"elem":\[\{"range":\["10\.1\.0\.0","10\.1\.0\.255"\]\},"192\.168\.0\.1"\]/);
  assert.match(text, /"hook":"postrouting","prio":100/);
  assert.match(text, /\{"masquerade":\{"flags":"fully-random"\}\}/);
});

Deno.test("deleteTable() adds before deleting, so a missing table is no error", () => {
  assert.deepEqual(deleteTable("ebpfcni").nftables.map((o) => Object.keys(o as object)[0]), [
    "add",
    "delete",
  ]);
});

Deno.test("ipMasqComment() names network, container and interface, hashed to fit 128 bytes", () => {
  assert.equal(ipMasqComment("podman", "abc", "eth0"), "podman abc/eth0");
  const long = ipMasqComment("net", "x".repeat(200), "eth0");
  assert.match(long, /^net #[0-9a-f]{48}$/);
  assert.notEqual(long, ipMasqComment("net", "x".repeat(200), "eth1"));
  assert.match(ipMasqComment("n".repeat(60), "c", "eth0"), /^#[0-9a-f]{24} c\/eth0$/);
});

Deno.test("addIpMasqRule() masquerades the pod leaving its subnet except to multicast, dropping stale rules", () => {
  const b = addIpMasqRule("net c/eth0", parseIpv4("10.5.0.7"), parseCidr("10.5.0.0/24"), [42]);
  const text = JSON.stringify(b);
  assert.match(text, /"delete":\{"rule":\{[^}]*"handle":42/);
  assert.match(text, /"right":"10\.5\.0\.7"/);
  assert.match(
    text,
    /"op":"!=","left":\{"payload":\{"protocol":"ip","field":"daddr"\}\},"right":\{"prefix":\{"addr":"10\.5\.0\.0","len":24\}\}/,
  );
  assert.match(text, /"right":\{"prefix":\{"addr":"224\.0\.0\.0","len":4\}\}/);
});

Deno.test("ipMasqRules() reads handles and comments from a chain listing", () => {
  const listing = {
    nftables: [
      { metainfo: { version: "1.0.6" } },
      { chain: { name: "postrouting", handle: 1 } },
      { rule: { handle: 4, comment: "net a/eth0", expr: [] } },
      { rule: { handle: 5, expr: [] } },
    ],
  };
  assert.deepEqual(ipMasqRules(listing), [{ handle: 4, comment: "net a/eth0" }]);
  assert.deepEqual(ipMasqRules(undefined), []);
});
