import assert from "node:assert/strict";
import {
  changeMayEnd,
  connectionsToEnd,
  type RevokeInput,
  type TrackedConnection,
} from "./revoke_plan.ts";
import { compile, type Compiled } from "./compile.ts";
import { evaluate } from "./evaluate.ts";
import { IdentityAllocator } from "./identity_alloc.ts";
import type { Model, Protocol } from "./model.ts";
import { upstreamCases } from "./testdata/upstream_cases.ts";
import { applyStep, ENV, initialModel } from "./testdata/steps.ts";
import { allPodNames, networkPolicy, podObject, SERVED_PORTS } from "./testdata/_objects.ts";
import { parseDocument } from "./parse.ts";
import { applyObject } from "./model_build.ts";
import { IPPROTO } from "../spec/rule_key.ts";
import { CT_FLAGS, IDENTITY_HOST, IDENTITY_WORLD } from "../spec/bpf_layout.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

const PROTOCOLS: Protocol[] = ["TCP", "UDP", "SCTP"];
const SPORT = 40000;

function inputOf(c: Compiled, revokeDenied = true): RevokeInput {
  const addresses = new Map([...c.ipcache].map(([ip, e]) => [ip, e.identity]));
  return { compiled: c, addresses, hosts: new Set([parseIpv4("10.244.0.1")]), revokeDenied };
}

interface Conn extends TrackedConnection {
  from: string;
  to: string;
  protocol: Protocol;
}

/** A connection from pod `from` to pod `to` as the to-pod hook records it under `c`. */
function recorded(c: Compiled, from: string, to: string, protocol: Protocol, port: number): Conn {
  const saddr = parseIpv4(ENV.podIp(from));
  const daddr = parseIpv4(ENV.podIp(to));
  return {
    from,
    to,
    protocol,
    key: {
      saddr,
      daddr,
      sport: SPORT,
      dport: port,
      proto: IPPROTO[protocol.toLowerCase() as "tcp"],
    },
    entry: {
      srcId: c.ipcache.get(saddr)!.identity,
      dstId: c.ipcache.get(daddr)!.identity,
      flags: CT_FLAGS.seenReply,
    },
  };
}

const podEnd = (p: string) => {
  const [namespace = "", name = ""] = p.split("/");
  return { kind: "pod" as const, namespace, name };
};

function engineAllows(m: Model, c: Conn): boolean {
  const flow = { src: podEnd(c.from), dst: podEnd(c.to), protocol: c.protocol, port: c.key.dport };
  return evaluate(m, flow).allowed;
}

/** Runs every upstream case after the other, each client reusing its source port: before
 * each step the connections the compiled entries allow are tracked (those tracked before and
 * not ended stay). Returns what `check` found wrong. */
function runCases(
  revokeDenied: boolean,
): { wrong: string[]; denied: number; changed: number; passes: boolean[] } {
  const alloc = { pods: new IdentityAllocator("pod"), cidrs: new IdentityAllocator("cidr") };
  const compileOf = (m: Model) => compile(m, { ...alloc, isLocal: () => true });
  let model = initialModel();
  let compiled = compileOf(model);
  const tracked = new Map<string, Conn>();
  const wrong: string[] = [];
  let denied = 0;
  let changed = 0;
  const passes: boolean[] = [];
  const cases = upstreamCases(ENV);
  for (const uc of cases) {
    const steps = [{ description: "start", delete: [], apply: [], probes: [] }, ...uc.steps];
    for (const [i, step] of steps.entries()) {
      // Clients connect to everything allowed now.
      for (const from of allPodNames()) {
        for (const to of allPodNames()) {
          for (const protocol of PROTOCOLS) {
            for (const port of SERVED_PORTS) {
              const id = `${from}>${to} ${protocol}/${port}`;
              if (tracked.has(id)) continue;
              const c = recorded(compiled, from, to, protocol, port);
              if (engineAllows(model, c)) tracked.set(id, c);
            }
          }
        }
      }
      const before = compiled;
      model = i === 0 ? initialModel() : applyStep(model, step);
      compiled = compileOf(model);
      const ended = new Map(
        connectionsToEnd([...tracked.values()], inputOf(compiled, revokeDenied))
          .map((e) => [e.connection, e.reason]),
      );
      // The agent skips the pass when changeMayEnd() says nothing can end: never wrongly.
      const rulesChanged = new Set(
        [...before.rules.keys(), ...compiled.rules.keys()].filter((id) =>
          before.rules.has(id) !== compiled.rules.has(id)
        ),
      );
      const none = new Set<number>();
      if (
        ended.size > 0 &&
        !changeMayEnd(before, compiled, rulesChanged, { before: none, after: none })
      ) {
        wrong.push(`${uc.name} (${step.description}): changeMayEnd() false, ${ended.size} ended`);
      }
      if (i > 0) {
        passes.push(changeMayEnd(before, compiled, rulesChanged, { before: none, after: none }));
      }
      for (const [id, c] of tracked) {
        const moved = ["saddr", "daddr"].some((end) => {
          const ip = c.key[end as "saddr"];
          return before.ipcache.get(ip)?.identity !== compiled.ipcache.get(ip)?.identity;
        });
        const want = moved
          ? "identity-changed"
          : revokeDenied && !engineAllows(model, c)
          ? "denied"
          : undefined;
        if (ended.get(c) !== want) {
          wrong.push(`${uc.name} (${step.description}) ${id}: ${ended.get(c)}, want ${want}`);
        }
        if (want === "denied") denied++;
        if (want === "identity-changed") changed++;
        if (ended.has(c)) tracked.delete(id);
      }
    }
  }
  return { wrong, denied, changed, passes };
}

Deno.test("connectionsToEnd() ends exactly the tracked connections the engine no longer allows, over every upstream case run in sequence with reused source ports", () => {
  const { wrong, denied, changed, passes } = runCases(true);
  assert.deepEqual(wrong.slice(0, 10), []);
  // ...and some steps need no pass at all.
  assert.ok(passes.includes(false), "every step needed a pass");
  assert.ok(denied > 1000, `${denied} connections revoked`);
  assert.ok(changed > 0, `${changed} connections of relabelled pods`);
});

Deno.test("connectionsToEnd() with established connections kept ends only those whose ends changed identity", () => {
  const { wrong, denied, changed } = runCases(false);
  assert.deepEqual(wrong.slice(0, 10), []);
  assert.equal(denied, 0);
  assert.ok(changed > 0);
});

/** The initial cluster with `policies` applied, compiled. */
function cluster(...policies: ReturnType<typeof networkPolicy>[]): { m: Model; c: Compiled } {
  let m = initialModel();
  for (const p of policies) for (const o of parseDocument(p)) m = applyObject(m, o);
  return {
    m,
    c: compile(m, {
      pods: new IdentityAllocator("pod"),
      cidrs: new IdentityAllocator("cidr"),
      isLocal: () => true,
    }),
  };
}

const denyIngressXb = networkPolicy("x", "deny-b", {
  podSelector: { matchLabels: { pod: "b" } },
  policyTypes: ["Ingress"],
});

Deno.test("connectionsToEnd() ends a connection to a Service address with its backend's, and keeps it otherwise", () => {
  const open = cluster().c;
  const toB = recorded(open, "x/a", "x/b", "TCP", 80);
  const toC = recorded(open, "x/a", "x/c", "TCP", 80);
  toC.key.sport = 40001;
  const service = (backend: Conn): Conn => ({
    ...backend,
    key: { ...backend.key, daddr: parseIpv4("10.96.0.10"), dport: 8080 },
    entry: { srcId: backend.entry.srcId, dstId: 0, flags: CT_FLAGS.pending | CT_FLAGS.service },
  });
  const { c } = cluster(denyIngressXb);
  const ended = connectionsToEnd([toB, service(toB), toC, service(toC)], inputOf(c));
  assert.deepEqual(
    ended.map((e) => [e.connection.to, e.connection.key.daddr === toB.key.daddr, e.reason]),
    [["x/b", true, "denied"], ["x/b", false, "denied"]],
  );
});

Deno.test("connectionsToEnd() ends the connections of an address that left its pod or now resolves to another identity, even with established connections kept", () => {
  const { c } = cluster();
  const conn = recorded(c, "x/a", "x/b", "UDP", 81);
  const gone = inputOf(c, false);
  const addresses = new Map(gone.addresses);
  addresses.delete(conn.key.saddr);
  assert.deepEqual(
    connectionsToEnd([conn], { ...gone, addresses }).map((e) => e.reason),
    ["identity-changed"],
  );
  addresses.set(conn.key.saddr, c.ipcache.get(parseIpv4(ENV.podIp("y/c")))!.identity);
  assert.deepEqual(
    connectionsToEnd([conn], { ...gone, addresses }).map((e) => e.reason),
    ["identity-changed"],
  );
  assert.deepEqual(connectionsToEnd([conn], gone), []);
});

Deno.test("connectionsToEnd() keeps the node's connections to pods and judges a pod's to the world by its egress", () => {
  const isolateEgress = networkPolicy("x", "a-egress", {
    podSelector: { matchLabels: { pod: "a" } },
    policyTypes: ["Egress", "Ingress"],
  });
  const { c } = cluster(isolateEgress);
  const a = parseIpv4(ENV.podIp("x/a"));
  const node = parseIpv4("10.244.0.1");
  const world = parseIpv4("192.0.2.7");
  const aId = c.ipcache.get(a)!.identity;
  const conns: TrackedConnection[] = [
    {
      key: { saddr: node, daddr: a, sport: 5000, dport: 80, proto: 6 },
      entry: { srcId: IDENTITY_HOST, dstId: aId, flags: 0 },
    },
    {
      key: { saddr: a, daddr: world, sport: 5001, dport: 443, proto: 6 },
      entry: { srcId: aId, dstId: IDENTITY_WORLD, flags: 0 },
    },
  ];
  assert.deepEqual(
    connectionsToEnd(conns, inputOf(c)).map((e) => [e.connection.key.sport, e.reason]),
    [[5001, "denied"]],
  );
});

Deno.test("connectionsToEnd() does not judge a connection of an address the maps hold but the compile does not know", () => {
  const { c } = cluster(denyIngressXb);
  const conn = recorded(c, "x/a", "x/b", "TCP", 80);
  const input = inputOf(c);
  const stranger = parseIpv4("10.244.9.9");
  const addresses = new Map(input.addresses).set(stranger, conn.entry.srcId);
  const unknown = { ...conn, key: { ...conn.key, saddr: stranger } };
  assert.deepEqual(
    connectionsToEnd([unknown, conn], { ...input, addresses }).map((e) => e.connection),
    [conn],
  );
});

Deno.test("changeMayEnd() is true for what can deny a tracked connection and false for a new pod or new rules", () => {
  const alloc = { pods: new IdentityAllocator("pod"), cidrs: new IdentityAllocator("cidr") };
  const compileOf = (m: Model) => compile(m, { ...alloc, isLocal: () => true });
  const withObjects = (m: Model, ...objs: unknown[]) =>
    objs.flatMap((o) => parseDocument(o)).reduce((acc, o) => applyObject(acc, o), m);
  const hosts = { before: new Set<number>(), after: new Set<number>() };
  const rulesOf = (c: Compiled) => new Set(c.rules.keys());
  const changed = (a: Compiled, b: Compiled) =>
    new Set(
      [...rulesOf(a), ...rulesOf(b)].filter((id) => rulesOf(a).has(id) !== rulesOf(b).has(id)),
    );
  const verdict = (m0: Model, m1: Model, h = hosts) => {
    const c0 = compileOf(m0);
    const c1 = compileOf(m1);
    return changeMayEnd(c0, c1, changed(c0, c1), h);
  };
  const base = initialModel();
  const allowFromA = networkPolicy("x", "b-from-a", {
    podSelector: { matchLabels: { pod: "b" } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }] }],
  });
  const isolated = withObjects(base, allowFromA);
  const newPod = podObject({ podIp: () => "10.244.3.99" }, "z", "d");
  assert.equal(verdict(base, isolated), true, "a pod isolated");
  assert.equal(verdict(isolated, base), false, "a policy removed: isolation gone, rules gone");
  assert.equal(verdict(base, withObjects(base, newPod)), false, "a new pod");
  const wider = networkPolicy("x", "b-from-a", {
    podSelector: { matchLabels: { pod: "b" } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }, { podSelector: {} }] }],
  });
  assert.equal(verdict(isolated, withObjects(isolated, wider)), false, "a rule added");
  assert.equal(verdict(withObjects(isolated, wider), isolated), true, "a rule removed");
  const relabelled = podObject(ENV, "x", "a", { tier: "new" });
  assert.equal(verdict(base, withObjects(base, relabelled)), true, "a pod's identity changed");
  const node = parseIpv4("10.244.0.1");
  assert.equal(
    verdict(base, base, { before: new Set([node]), after: new Set() }),
    true,
    "a node address gone",
  );
  assert.equal(
    changeMayEnd(undefined, compileOf(base), new Set(), hosts),
    true,
    "no compile before",
  );
});

Deno.test("connectionsToEnd() keeps a multicast or broadcast the node sent to a pod (recorded with the receiving pod's identity)", () => {
  const { c } = cluster(denyIngressXb);
  const b = parseIpv4(ENV.podIp("x/b"));
  const igmp: TrackedConnection = {
    key: {
      saddr: parseIpv4("10.244.0.1"),
      daddr: parseIpv4("224.0.0.22"),
      sport: 0,
      dport: 0,
      proto: 2,
    },
    entry: { srcId: IDENTITY_HOST, dstId: c.ipcache.get(b)!.identity, flags: 0 },
  };
  assert.deepEqual(connectionsToEnd([igmp], inputOf(c)), []);
});

Deno.test("connectionsToEnd() judges only this node's directions: a remote pod's egress is its own node's", () => {
  const isolateA = networkPolicy("x", "a-isolated", {
    podSelector: { matchLabels: { pod: "a" } },
    policyTypes: ["Egress", "Ingress"],
  });
  // A twin of a (same labels, so the same identity) runs on b's node: a's rules are compiled
  // there for the twin, and must not be applied to a, which is remote there.
  const twin = podObject(ENV, "x", "a-twin");
  (twin.metadata as { labels: Record<string, string> }).labels = { pod: "a" };
  (twin.status as Record<string, unknown>) = {
    phase: "Running",
    podIP: "10.99.0.9",
    podIPs: [{ ip: "10.99.0.9" }],
  };
  let m = initialModel();
  for (const o of [...parseDocument(isolateA), ...parseDocument(twin)]) m = applyObject(m, o);
  const compileOn = (...local: string[]) =>
    compile(m, {
      pods: new IdentityAllocator("pod"),
      cidrs: new IdentityAllocator("cidr"),
      isLocal: (p) => local.includes(`${p.namespace}/${p.name}`),
    });
  const a = parseIpv4(ENV.podIp("x/a"));
  const b = parseIpv4(ENV.podIp("x/b"));
  const conns = (c: Compiled): TrackedConnection[] => [{
    key: { saddr: a, daddr: b, sport: 5000, dport: 80, proto: 6 },
    entry: { srcId: c.ipcache.get(a)!.identity, dstId: c.ipcache.get(b)!.identity, flags: 0 },
  }];
  // On b's node, a is a remote pod: its egress (isolated, nothing allowed) is a's node's.
  const onB = compileOn("x/b", "x/a-twin");
  assert.ok(onB.rules.size > 0 || onB.isolation.size > 0, "the twin's isolation is here");
  assert.deepEqual(connectionsToEnd(conns(onB), inputOf(onB)), []);
  // On a's node the connection is denied by a's egress.
  const onA = compileOn("x/a");
  assert.deepEqual(connectionsToEnd(conns(onA), inputOf(onA)).map((e) => e.reason), ["denied"]);
});
