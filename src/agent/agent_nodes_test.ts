// Agent.nodes(), onNodes() and the routing state provider, on a stand-in for the maps (the
// reconciler is the kernel's side; the node view is not).
import assert from "node:assert/strict";
import { Agent } from "./agent_core.ts";
import type { Reconciler } from "./reconcile.ts";
import type { AgentLog } from "../log.ts";
import { type Cidr, formatCidr, parseCidr } from "../spec/ipv4.ts";

/** Maps that take every write (nothing of them is looked at here). */
function noMaps(): Reconciler {
  const none = {
    actualIdentities: () => new Map(),
    actualHosts: () => new Set(),
    actualCidrs: () => new Map(),
    apply: () => ({ writes: 0, removed: 0, failed: [], waiting: [] }),
    counts: () => ({ ipcache: 0, isolation: 0, rules: 0, cidrs: 0, hosts: 0 }),
    refresh: () => {},
    forgetAddresses: () => {},
  };
  return none as unknown as Reconciler;
}

function node(name: string, cidr: string, ip: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name },
    spec: { podCIDR: cidr },
    status: { addresses: [{ type: "InternalIP", address: ip }] },
  };
}

function agentWith(services: Cidr[], warnings: string[]): Agent {
  const log: AgentLog = {
    debug: () => {},
    info: () => {},
    warn: (msg) => warnings.push(msg),
    error: (msg) => warnings.push(msg),
  };
  return new Agent(noMaps(), [], {
    node: "n1",
    addWaitMs: 10,
    debounceMs: 60_000, // reconciles only when the test asks
    log,
    hostAddresses: () => new Set(),
    serviceCidrs: () => services,
  });
}

Deno.test("Agent.nodes() holds the checked nodes once synced; onNodes() fires only when they change", () => {
  const services: Cidr[] = [];
  const warnings: string[] = [];
  const agent = agentWith(services, warnings);
  try {
    let fired = 0;
    agent.onNodes(() => fired++);
    agent.store.upsert(node("n1", "10.244.1.0/24", "192.0.2.1"));
    agent.store.upsert(node("n2", "10.244.2.0/24", "192.0.2.2"));
    agent.reconcile();
    assert.equal(agent.nodes().size, 0, "nothing before the source has synced");
    agent.store.synced();
    agent.reconcile();
    assert.deepEqual([...agent.nodes().keys()], ["n1", "n2"]);
    assert.deepEqual(agent.nodes().get("n2")!.podCidrs.map(formatCidr), ["10.244.2.0/24"]);
    assert.equal(fired, 1);
    // The same nodes again, a change of another kind: no call.
    agent.reconcile();
    agent.store.upsert({ apiVersion: "v1", kind: "Namespace", metadata: { name: "x" } });
    agent.reconcile();
    agent.store.upsert(node("n2", "10.244.2.0/24", "192.0.2.2"));
    agent.reconcile();
    assert.equal(fired, 1);
    // A node's address changes; a node leaves; a Service CIDR comes to overlap one.
    agent.store.upsert(node("n2", "10.244.2.0/24", "192.0.2.22"));
    agent.reconcile();
    assert.equal(fired, 2);
    agent.store.remove("Node", undefined, "n2");
    agent.reconcile();
    assert.equal(fired, 3);
    assert.deepEqual([...agent.nodes().keys()], ["n1"]);
    services.push(parseCidr("10.244.0.0/16"));
    agent.reconcile();
    assert.equal(fired, 4);
    assert.deepEqual(agent.nodes().get("n1")!.podCidrs, []);
    assert.ok(
      warnings.some((w) => /^Node "n1": spec\.podCIDRs: .* overlaps the Service CIDR/.test(w)),
    );
  } finally {
    agent.stop();
  }
});

Deno.test("agent status shows the routing provider's state per node, else why nothing routes", () => {
  const agent = agentWith([], []);
  try {
    agent.store.upsert(node("n1", "10.244.1.0/24", "192.0.2.1"));
    agent.store.upsert(node("n2", "10.244.2.0/24", "192.0.2.2"));
    agent.store.upsert(node("n3", "10.244.3.0/24", "192.0.2.3"));
    agent.store.synced();
    agent.reconcile();
    const routing = () => agent.status().nodes.map((n) => [n.name, n.self, n.routing]);
    assert.deepEqual(routing(), [
      ["n1", true, { routed: true, via: "this node" }],
      ["n2", false, { routed: false, reason: "routing not running" }],
      ["n3", false, { routed: false, reason: "routing not running" }],
    ]);
    agent.setRouteState((name) => name === "n2" ? { routed: true, via: "192.0.2.2" } : undefined);
    assert.deepEqual(routing()[1], ["n2", false, { routed: true, via: "192.0.2.2" }]);
  } finally {
    agent.stop();
  }
});
