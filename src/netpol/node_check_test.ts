import assert from "node:assert/strict";
import { checkNodes } from "./node_check.ts";
import type { ClusterNode } from "../spec/node.ts";
import { parseCidr, parseIpv4 } from "../spec/ipv4.ts";

function nodes(...list: ClusterNode[]): Map<string, ClusterNode> {
  return new Map(list.map((n) => [n.name, n]));
}
const n = (name: string, cidr?: string, address?: string): ClusterNode => ({
  name,
  podCidrs: cidr === undefined ? [] : [parseCidr(cidr)],
  ...(address === undefined ? {} : { address: parseIpv4(address) }),
});

Deno.test("checkNodes() keeps good nodes as they are, with no problem", () => {
  const c = checkNodes(
    nodes(n("a", "10.244.0.0/24", "192.168.1.1"), n("b", "10.244.1.0/24", "192.168.1.2")),
    [parseCidr("10.96.0.0/12")],
  );
  assert.deepEqual([...c.nodes.keys()], ["a", "b"]);
  assert.deepEqual(c.nodes.get("b"), n("b", "10.244.1.0/24", "192.168.1.2"));
  assert.equal(c.problems.size, 0);
});

Deno.test("checkNodes() withholds a CIDR two nodes claim from both, the others unaffected", () => {
  const c = checkNodes(
    nodes(
      n("a", "10.244.0.0/24", "192.168.1.1"),
      n("b", "10.244.0.0/25", "192.168.1.2"),
      n("c", "10.244.2.0/24", "192.168.1.3"),
    ),
    [],
  );
  assert.deepEqual(c.nodes.get("a")!.podCidrs, []);
  assert.deepEqual(c.nodes.get("b")!.podCidrs, []);
  assert.deepEqual(c.nodes.get("c")!.podCidrs, [parseCidr("10.244.2.0/24")]);
  assert.match(
    c.problems.get("b")![0]!,
    /^Node "b": spec\.podCIDRs: 10\.244\.0\.0\/25 overlaps Node "a"'s 10\.244\.0\.0\/24: withheld/,
  );
  assert.match(c.problems.get("a")![0]!, /overlaps Node "b"'s/);
  assert.equal(c.problems.has("c"), false);
});

Deno.test("checkNodes() withholds a pod CIDR overlapping a Service CIDR", () => {
  const c = checkNodes(nodes(n("a", "10.96.1.0/24", "192.168.1.1")), [parseCidr("10.96.0.0/12")]);
  assert.deepEqual(c.nodes.get("a")!.podCidrs, []);
  assert.match(
    c.problems.get("a")![0]!,
    /^Node "a": spec\.podCIDRs: 10\.96\.1\.0\/24 overlaps the Service CIDR 10\.96\.0\.0\/12/,
  );
});

Deno.test("checkNodes() reports a node without a pod CIDR or an address, and keeps it", () => {
  const c = checkNodes(nodes(n("a")), []);
  assert.deepEqual(c.nodes.get("a"), n("a"));
  assert.deepEqual(c.problems.get("a"), [
    'Node "a": spec.podCIDRs: no IPv4 pod CIDR assigned (yet): not routed',
    'Node "a": status.addresses: no IPv4 InternalIP or ExternalIP: not routed',
  ]);
});
