import assert from "node:assert/strict";
import { Agent } from "./agent_core.ts";
import type { Attachment } from "./local_view.ts";
import type { AgentLog } from "../log.ts";
import { Reconciler } from "./reconcile.ts";
import { FakeTable, type Write } from "../datapath/table_fake.ts";
import { CIDRS, HOSTS, IPCACHE, ISOLATION, RULES } from "../datapath/tables.ts";
import { IPCACHE_LOCAL, ISOLATE_EGRESS, ISOLATE_INGRESS } from "../spec/bpf_layout.ts";
import { namespaceObject, networkPolicy } from "../netpol/testdata/_objects.ts";
import { isPodIdentity } from "../netpol/identity_alloc.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

const NODE = "node-1";
type K8s = Record<string, unknown>;

/** The agent's maps as fakes sharing one write log. */
function fakeTables() {
  const log: Write[] = [];
  return {
    log,
    ipcache: new FakeTable(IPCACHE, log),
    isolation: new FakeTable(ISOLATION, log),
    rules: new FakeTable(RULES, log),
    cidrs: new FakeTable(CIDRS, log),
    hosts: new FakeTable(HOSTS, log),
  };
}
type Fakes = ReturnType<typeof fakeTables>;

interface Harness {
  agent: Agent;
  /** The node's addresses, as the agent reads them. */
  hosts: Set<number>;
  errors: string[];
  [Symbol.dispose](): void;
}

function agentOver(t: Fakes, attachments: Attachment[] = []): Harness {
  const errors: string[] = [];
  const log: AgentLog = {
    debug() {},
    info() {},
    warn() {},
    error: (msg, fields) => void errors.push(`${msg} ${JSON.stringify(fields ?? {})}`),
  };
  const hosts = new Set([parseIpv4("10.1.0.1")]);
  const agent = new Agent(new Reconciler(t), attachments, {
    node: NODE,
    addWaitMs: 0,
    debounceMs: 1,
    log,
    hostAddresses: () => new Set(hosts),
  });
  // stop() clears the debounce timer every change arms.
  return { agent, hosts, errors, [Symbol.dispose]: () => agent.stop() };
}

function pod(name: string, ip: string, labels: Record<string, string>): K8s {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: "x", name, labels },
    spec: { nodeName: NODE, containers: [{ name: "c", image: "i" }] },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  };
}

/** `selected` accepts TCP `ports` from pods labelled `from`. */
function ingress(name: string, selected: string, from: string, ports: number[]): K8s {
  return networkPolicy("x", name, {
    podSelector: { matchLabels: { app: selected } },
    ingress: [{
      from: [{ podSelector: { matchLabels: { app: from } } }],
      ports: ports.map((port) => ({ protocol: "TCP", port })),
    }],
    policyTypes: ["Ingress"],
  });
}

/** `selected` may send UDP 53 to `cidr` only. */
function egressTo(name: string, selected: string, cidr: string): K8s {
  return networkPolicy("x", name, {
    podSelector: { matchLabels: { app: selected } },
    egress: [{ to: [{ ipBlock: { cidr } }], ports: [{ protocol: "UDP", port: 53 }] }],
    policyTypes: ["Egress"],
  });
}

function feed(agent: Agent, objects: K8s[], synced = true): void {
  agent.store.upsert(namespaceObject("x"));
  for (const o of objects) agent.store.upsert(o);
  if (synced) agent.store.synced();
}

/** Every entry of every table, as sorted text (to compare states). */
function snapshot(t: Fakes): string[] {
  return [t.ipcache, t.isolation, t.rules, t.cidrs, t.hosts].flatMap((table) =>
    table.list().map(([k, v]) => `${table.name} ${JSON.stringify(k)} ${JSON.stringify(v)}`)
  ).sort();
}

function identityOf(t: Fakes, ip: string): number {
  const e = t.ipcache.get(parseIpv4(ip));
  assert.ok(e, `${ip} has an ipcache entry`);
  return e.identity;
}

/** The steps of reconcile.ts's header, in order: node addresses first and last around them. */
const STEPS = [
  "host_map set",
  "rule_map set",
  "cidr_map set",
  "isolation_map set",
  "ipcache_map set",
  "ipcache_map delete",
  "isolation_map delete",
  "cidr_map delete",
  "rule_map delete",
  "host_map delete",
];

function writes(log: readonly Write[]): string[] {
  return log.map((w) => `${w.map} ${w.op}`);
}

function steps(log: readonly Write[]): number[] {
  return log.map((w) => {
    const i = STEPS.indexOf(`${w.map} ${w.op}`);
    assert.ok(i >= 0, `unexpected write ${w.map} ${w.op}`);
    return i;
  });
}

const A = pod("a", "10.0.0.1", { app: "a" });
const B = pod("b", "10.0.0.2", { app: "b" });
const C = pod("c", "10.0.0.3", { app: "c" });
const D = pod("d", "10.0.0.4", { app: "d" });

Deno.test("agent: writes make before break: rules, then CIDRs, isolation, addresses; removals last in reverse", () => {
  const t = fakeTables();
  using h = agentOver(t);
  feed(h.agent, [
    A,
    B,
    D,
    ingress("b-to-a", "a", "b", [80]),
    egressTo("b-dns", "b", "192.0.2.0/24"),
  ]);
  h.agent.reconcile();
  const first = steps(t.log);
  assert.deepEqual([...new Set(first)], [0, 1, 2, 3, 4], "every kind of entry is added, in order");
  assert.equal(t.isolation.get(identityOf(t, "10.0.0.1")), ISOLATE_INGRESS);
  assert.equal(t.isolation.get(identityOf(t, "10.0.0.2")), ISOLATE_EGRESS);

  // One change adds and removes at once: a policy replaced by another (a loses its isolation,
  // b's changes), the CIDR policy gone, pod c new, pod d gone, the node's address changed.
  t.log.splice(0);
  h.agent.store.remove("NetworkPolicy", "x", "b-to-a");
  h.agent.store.remove("NetworkPolicy", "x", "b-dns");
  h.agent.store.remove("Pod", "x", "d");
  feed(h.agent, [C, ingress("a-to-b", "b", "a", [81])]);
  h.hosts.clear();
  h.hosts.add(parseIpv4("10.1.0.2"));
  h.agent.resync();
  const second = steps(t.log);
  assert.deepEqual(
    second,
    [...second].sort((x, y) => x - y),
    `writes out of order: ${writes(t.log).join(", ")}`,
  );
  assert.deepEqual([...new Set(second)], [0, 1, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(t.isolation.get(identityOf(t, "10.0.0.1")), undefined);
  assert.equal(t.isolation.get(identityOf(t, "10.0.0.2")), ISOLATE_INGRESS);
  assert.equal(t.ipcache.get(parseIpv4("10.0.0.4")), undefined);
  assert.equal(t.cidrs.size, 0);
  assert.deepEqual(t.hosts.list(), [[parseIpv4("10.1.0.2"), true]]);
});

Deno.test("agent: a resync repairs entries changed or removed behind its back, and only those", () => {
  const t = fakeTables();
  using h = agentOver(t);
  feed(h.agent, [A, B, ingress("b-to-a", "a", "b", [80]), egressTo("b-dns", "b", "192.0.2.0/24")]);
  h.agent.reconcile();
  const good = snapshot(t);
  const stray = { prefixlen: 96, subject: 999, peer: 998, dir: 1, proto: 6, port: 1 };
  // Someone else writes the maps.
  t.ipcache.delete(parseIpv4("10.0.0.1"));
  t.isolation.set(identityOf(t, "10.0.0.2"), 0);
  t.rules.set(stray, true);
  const [cidr] = t.cidrs.list();
  t.cidrs.delete(cidr![0]);
  t.log.splice(0);

  h.agent.reconcile();
  assert.deepEqual(writes(t.log), [], "a reconcile trusts its shadow: no read, no write");
  h.agent.resync();
  assert.deepEqual(snapshot(t), good);
  assert.deepEqual(writes(t.log), [
    "cidr_map set",
    "isolation_map set",
    "ipcache_map set",
    "rule_map delete",
  ]);
});

Deno.test("agent: restarted over full maps it writes nothing until its source has synced, then only the difference", () => {
  const t = fakeTables();
  const objects = [A, B, C, ingress("b-to-a", "a", "b", [80]), ingress("c-to-a", "a", "c", [82])];
  {
    using first = agentOver(t);
    feed(first.agent, objects);
    first.agent.reconcile();
  }
  const before = snapshot(t);
  t.log.splice(0);

  // While it was down, pod c and its policy went away.
  const now = objects.filter((o) => o !== C && (o.metadata as { name: string }).name !== "c-to-a");
  using second = agentOver(t);
  feed(second.agent, now, false);
  second.agent.reconcile();
  second.agent.resync();
  assert.deepEqual(writes(t.log), [], "written before the source synced");
  assert.deepEqual(snapshot(t), before);
  assert.equal(second.agent.status().synced, false);

  second.agent.store.synced();
  second.agent.reconcile();
  // What a fresh agent writes for the same source, on empty maps.
  const fresh = fakeTables();
  {
    using third = agentOver(fresh);
    feed(third.agent, now);
    third.agent.reconcile();
  }
  const want = snapshot(fresh);
  assert.deepEqual(snapshot(t), want);
  const changed = before.filter((e) => !want.includes(e)).length +
    want.filter((e) => !before.includes(e)).length;
  assert.ok(changed > 0);
  assert.equal(t.log.length, changed, "writes beyond the difference");
  assert.ok(t.log.every((w) => w.op === "delete"), "an entry that stays was rewritten");
});

Deno.test("agent: a policy whose rules do not fit waits whole, isolates its pods, is reported, and goes in once there is room", async () => {
  const t = fakeTables();
  using h = agentOver(t);
  feed(h.agent, [A, B, ingress("b-to-a", "a", "b", [80])]);
  h.agent.reconcile();
  const held = t.rules.list();
  t.rules.capacity = held.length + 1;
  feed(h.agent, [ingress("wide", "b", "a", [81, 82, 83])]);
  h.agent.reconcile();

  // Refused: none of its rules are in, the older policy's are all still there.
  assert.deepEqual(t.rules.list(), held);
  // Its pod is isolated all the same (fail closed).
  assert.equal(t.isolation.get(identityOf(t, "10.0.0.2")), ISOLATE_INGRESS);
  const st = h.agent.status();
  assert.deepEqual(st.failed, [], "a waiting policy is not a failed write");
  assert.equal(st.notEnforced.length, 1);
  const w = st.notEnforced[0]!;
  assert.equal(w.policy, "x/wide");
  assert.deepEqual(w.pods, ["x/b"]);
  assert.equal(w.free, 1);
  assert.ok(w.needed > 1);
  assert.equal(
    h.errors.filter((e) => e.includes("not enforced") && e.includes("x/wide")).length,
    1,
  );
  // ADD of a pod it selects is refused.
  await assert.rejects(
    h.agent.add({
      op: "add",
      containerId: "c1",
      ifname: "eth0",
      namespace: "x",
      name: "b",
      ips: ["10.0.0.2"],
    }),
    /policy x\/wide that selects it is not enforced/,
  );

  // Retried at every reconcile: in as soon as it fits.
  h.agent.reconcile();
  assert.equal(h.agent.status().notEnforced.length, 1);
  t.rules.capacity = 1000;
  h.agent.reconcile();
  assert.deepEqual(h.agent.status().notEnforced, []);
  assert.equal(t.rules.size, held.length + w.needed);
});

Deno.test("agent: an address the full ipcache_map refuses is reported in status, fails ADD and is written once there is room", async () => {
  const t = fakeTables();
  t.ipcache.capacity = 2;
  using h = agentOver(t);
  feed(h.agent, [A, B, C]);
  h.agent.reconcile();
  assert.equal(t.ipcache.size, 2);
  const st = h.agent.status();
  assert.equal(st.failed.length, 1);
  assert.match(st.failed[0]!, /^ipcache_map: ipcache_map is full \(2 entries\)$/);
  assert.equal(st.lastReconcile?.failed, 1);
  assert.ok(h.errors.some((e) => e.startsWith("some entries could not be written")));
  await assert.rejects(
    h.agent.add({
      op: "add",
      containerId: "c1",
      ifname: "eth0",
      namespace: "x",
      name: "a",
      ips: ["10.0.0.1"],
    }),
    /the maps refused entries: ipcache_map: ipcache_map is full/,
  );

  t.ipcache.capacity = 3;
  h.agent.reconcile();
  assert.deepEqual(h.agent.status().failed, []);
  assert.deepEqual(
    t.ipcache.list().map(([ip, e]) => [ip, e.flags]).sort(),
    ["10.0.0.1", "10.0.0.2", "10.0.0.3"].map((ip) => [parseIpv4(ip), IPCACHE_LOCAL]),
  );
});

// Two label sets of namespace x whose label hashes (the plain identities) are the same:
// 834591971, found by a search over app=p<n>.
const SAME_HASH = ["p193557", "p77552"];
const HASH = 834591971;

Deno.test("agent: two label sets whose hashes collide get two identities, the later rehashed, kept over restarts", () => {
  const t = fakeTables();
  const objects = [
    pod("one", "10.0.0.1", { app: SAME_HASH[0]! }),
    pod("two", "10.0.0.2", { app: SAME_HASH[1]! }),
    ingress("to-two", SAME_HASH[1]!, "nobody", [80]),
  ];
  {
    using h = agentOver(t);
    feed(h.agent, objects);
    h.agent.reconcile();
  }
  const one = identityOf(t, "10.0.0.1");
  const two = identityOf(t, "10.0.0.2");
  assert.equal(one, HASH, "the first label set keeps its plain hash");
  assert.notEqual(two, one, "merged");
  assert.ok(isPodIdentity(two));
  // The policy isolates the pod it selects, not the other one.
  assert.deepEqual(t.isolation.list(), [[two, ISOLATE_INGRESS]]);

  // Whatever order the objects arrive in, the same identities, and nothing rewritten.
  const fresh = fakeTables();
  {
    using h = agentOver(fresh);
    feed(h.agent, [...objects].reverse());
    h.agent.reconcile();
  }
  assert.deepEqual(snapshot(fresh), snapshot(t));
  t.log.splice(0);
  {
    using h = agentOver(t);
    feed(h.agent, [...objects].reverse());
    h.agent.reconcile();
  }
  assert.deepEqual(writes(t.log), []);

  // Pod one went while the agent was down: two keeps its identity (from the maps), though
  // its plain hash is free now.
  {
    using h = agentOver(t);
    feed(h.agent, objects.slice(1));
    h.agent.reconcile();
  }
  assert.deepEqual(writes(t.log), ["ipcache_map delete"]);
  assert.equal(identityOf(t, "10.0.0.2"), two);
});
