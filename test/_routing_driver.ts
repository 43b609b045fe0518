// Test-only entry: the agent's routing loop (startRouting) run inside one node's network
// namespace (`nsenter --net=/var/run/netns/NODE deno run -A test/_routing_driver.ts JSON`), fed
// with ClusterNode objects instead of the agent's model. The agent process wires the same loop
// to its nodes (src/agent/run.ts).
//
// JSON: { self, mode, port?, vni?, nodes?: [NODE], watch?: FILE, resyncMs? } where NODE is
// { name, podCidrs: ["a.b.c.d/n"], address? }.
// - With `nodes`: one pass, then the routing status as JSON on stdout.
// - With `watch`: FILE holds [NODE] and is read again whenever it changes (the change hook
//   fires, as the agent's does after a reconcile); runs until SIGTERM, printing "ready" once
//   the first pass is done.
import { startRouting } from "../src/agent/routing.ts";
import { jsonLog } from "../src/log.ts";
import type { ClusterNode } from "../src/spec/node.ts";
import { parseCidr, parseIpv4 } from "../src/spec/ipv4.ts";
import type { RoutingMode } from "../src/spec/routing.ts";

interface NodeJson {
  name: string;
  podCidrs: string[];
  address?: string;
}

interface DriverInput {
  self: string;
  mode: RoutingMode;
  port?: number;
  vni?: number;
  nodes?: NodeJson[];
  watch?: string;
  resyncMs?: number;
}

const toNodes = (list: NodeJson[]) =>
  new Map<string, ClusterNode>(list.map((n) => [n.name, {
    name: n.name,
    podCidrs: n.podCidrs.map((c) => parseCidr(c)),
    ...(n.address === undefined ? {} : { address: parseIpv4(n.address) }),
  }]));

const input = JSON.parse(Deno.args[0]!) as DriverInput;
const read = () =>
  toNodes(input.watch ? JSON.parse(Deno.readTextFileSync(input.watch)) : input.nodes ?? []);
let nodes = read();
const hooks: (() => void)[] = [];
const routing = startRouting({ nodes: () => nodes, onChange: (cb) => hooks.push(cb) }, {
  mode: input.mode,
  node: input.self,
  vxlan: { port: input.port ?? 8472, vni: input.vni ?? 1 },
  resyncMs: input.resyncMs ?? 60_000,
  log: jsonLog("debug"),
});
if (!input.watch) {
  const status = routing.status();
  routing.stop();
  console.log(JSON.stringify(status));
} else {
  // The directory: a file replaced by rename would leave a watch on the old one.
  const watcher = Deno.watchFs(input.watch.slice(0, input.watch.lastIndexOf("/")) || "/");
  Deno.addSignalListener("SIGTERM", () => {
    routing.stop();
    watcher.close();
    Deno.exit(0);
  });
  console.log("ready");
  for await (const _ of watcher) {
    try {
      nodes = read();
    } catch {
      continue; // caught mid-write: the next event has it whole
    }
    for (const cb of hooks) cb();
  }
}
