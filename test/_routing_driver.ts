// Test-only entry: one routing pass of a node, run inside that node's network namespace
// (`nsenter --net=/var/run/netns/NODE deno run -A test/_routing_driver.ts JSON`), through the
// agent's own loop (startRouting) fed with ClusterNode objects instead of the agent's model.
// Prints the routing status as JSON on stdout. The agent process wires the same loop to its
// nodes (src/agent/run.ts).
//
// JSON: { self, mode, port?, vni?, nodes: [{ name, podCidrs: ["a.b.c.d/n"], address? }] }
import { startRouting } from "../src/agent/routing.ts";
import { jsonLog } from "../src/agent/log.ts";
import type { ClusterNode } from "../src/spec/node.ts";
import { parseCidr, parseIpv4 } from "../src/spec/ipv4.ts";
import type { RoutingMode } from "../src/spec/routing.ts";

interface DriverInput {
  self: string;
  mode: RoutingMode;
  port?: number;
  vni?: number;
  nodes: { name: string; podCidrs: string[]; address?: string }[];
}

const input = JSON.parse(Deno.args[0]!) as DriverInput;
const nodes = new Map<string, ClusterNode>(input.nodes.map((n) => [n.name, {
  name: n.name,
  podCidrs: n.podCidrs.map((c) => parseCidr(c)),
  ...(n.address === undefined ? {} : { address: parseIpv4(n.address) }),
}]));
const routing = startRouting({ nodes: () => nodes, onChange: () => {} }, {
  mode: input.mode,
  node: input.self,
  vxlan: { port: input.port ?? 8472, vni: input.vni ?? 1 },
  resyncMs: 60_000,
  log: jsonLog("debug"),
});
const status = routing.status();
routing.stop();
console.log(JSON.stringify(status));
