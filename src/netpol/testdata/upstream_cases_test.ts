import assert from "node:assert/strict";
import {
  baseCluster,
  casePods,
  SCTP_BLOCK,
  TCP_BLOCK,
  UDP_BLOCK,
  UPSTREAM_COMMIT,
  upstreamCases,
} from "./upstream_cases.ts";
import { expectedMatrix } from "./reachability.ts";
import type { CaseEnv, ExpectOp, PodName, UpstreamCase } from "./format.ts";

const PODS = casePods();
const env = (base: number): CaseEnv => ({
  podIp: (pod: PodName) => {
    const i = PODS.indexOf(pod);
    if (i < 0) throw new Error(`No address for pod "${pod}"`);
    return `10.244.${base}.${10 + i}`;
  },
});
const ENV = env(1);
const CASES = upstreamCases(ENV);
const BASE = baseCluster(ENV);

function get(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const key of path) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function str(obj: unknown, ...path: string[]): string | undefined {
  const v = get(obj, ...path);
  return typeof v === "string" ? v : undefined;
}

/** Every value under `obj` (depth first), for finding ipBlocks and named ports anywhere. */
function* walk(obj: unknown): Generator<unknown> {
  yield obj;
  if (Array.isArray(obj)) { for (const v of obj) yield* walk(v); }
  else if (typeof obj === "object" && obj !== null) {
    for (const v of Object.values(obj)) yield* walk(v);
  }
}

function objectKey(obj: unknown): string {
  const ns = str(obj, "metadata", "namespace") ?? "";
  return `${str(obj, "kind")}/${ns}/${str(obj, "metadata", "name")}`;
}

function opPods(op: ExpectOp): { pods: PodName[]; namespaces: string[]; names: string[] } {
  switch (op.op) {
    case "expect":
      return { pods: [op.from, op.to], namespaces: [], names: [] };
    case "expectAllIngress":
    case "expectAllEgress":
      return { pods: [op.pod], namespaces: [], names: [] };
    case "expectPeer":
      return {
        pods: [],
        namespaces: [op.from.namespace, op.to.namespace].filter((v) => v !== undefined),
        names: [op.from.pod, op.to.pod].filter((v) => v !== undefined),
      };
  }
}

const byTitle = (source: string, name: string): UpstreamCase => {
  const found = CASES.find((c) => c.source === source && c.name === name);
  assert.ok(found, `no case "${name}" in ${source}`);
  return found;
};

Deno.test("upstreamCases() has every It() of network_policy.go, per Describe block", () => {
  // Counted in kubernetes/kubernetes test/e2e/network/netpol/network_policy.go at
  // 9db638c0807a720aa050ebcef69c32e4d4cce280: 42 It() in "NetworkPolicy between server and
  // client" (TCP, one of which also probes UDP), 3 in the UDP block, 3 in the SCTP block.
  assert.equal(UPSTREAM_COMMIT, "9db638c0807a720aa050ebcef69c32e4d4cce280");
  const count = (source: string) => CASES.filter((c) => c.source === source).length;
  assert.equal(count(TCP_BLOCK), 42);
  assert.equal(count(UDP_BLOCK), 3);
  assert.equal(count(SCTP_BLOCK), 3);
  assert.equal(CASES.length, 48);
});

Deno.test("upstreamCases() probes each protocol in the cases upstream does", () => {
  const probing = (protocol: string) =>
    CASES.filter((c) => c.steps.some((s) => s.probes.some((p) => p.protocol === protocol)));
  assert.equal(probing("TCP").length, 42);
  assert.ok(probing("TCP").every((c) => c.source === TCP_BLOCK));
  // The UDP block, plus "should enforce ingress policy allowing any port traffic to a server
  // on a specific protocol", which probes TCP 80 and UDP 80.
  assert.equal(probing("UDP").length, 4);
  assert.deepEqual(probing("SCTP").map((c) => c.source), [SCTP_BLOCK, SCTP_BLOCK, SCTP_BLOCK]);
});

Deno.test("every case has a step, every step a probe, and titles are unique per block", () => {
  const seen = new Set<string>();
  for (const c of CASES) {
    assert.ok(c.name.startsWith("should "), c.name);
    assert.ok(c.steps.length >= 1, c.name);
    for (const s of c.steps) {
      assert.ok(s.probes.length >= 1, `${c.name}: "${s.description}" has no probe`);
      assert.ok(s.description.length > 0, c.name);
    }
    const key = `${c.source} ${c.name}`;
    assert.ok(!seen.has(key), `duplicate case ${key}`);
    seen.add(key);
  }
});

Deno.test("every applied object has apiVersion, kind and metadata.name of a known kind", () => {
  const apiVersions: Record<string, string> = {
    Namespace: "v1",
    Pod: "v1",
    NetworkPolicy: "networking.k8s.io/v1",
  };
  for (const obj of [...BASE, ...CASES.flatMap((c) => c.steps.flatMap((s) => s.apply))]) {
    const kind = str(obj, "kind") ?? "";
    assert.ok(kind in apiVersions, `unexpected kind ${kind}`);
    assert.equal(str(obj, "apiVersion"), apiVersions[kind]);
    assert.ok(str(obj, "metadata", "name"), objectKey(obj));
    if (kind !== "Namespace") assert.ok(str(obj, "metadata", "namespace"), objectKey(obj));
  }
});

Deno.test("no step applies one object twice, and deletions name objects that exist", () => {
  for (const c of CASES) {
    const live = new Set(BASE.map(objectKey));
    for (const s of c.steps) {
      const keys = s.apply.map(objectKey);
      assert.equal(new Set(keys).size, keys.length, `${c.name}: "${s.description}"`);
      for (const k of keys) live.add(k);
      for (const ref of s.delete) {
        const k = `${ref.kind}/${ref.namespace ?? ""}/${ref.name}`;
        assert.ok(live.delete(k), `${c.name}: deletes ${k}, which does not exist`);
      }
    }
  }
});

Deno.test("every pod and namespace a case names exists in baseCluster()", () => {
  const namespaces = new Set(
    BASE.filter((o) => str(o, "kind") === "Namespace").map((o) => str(o, "metadata", "name")),
  );
  const pods = new Set(
    BASE.filter((o) => str(o, "kind") === "Pod").map((o) =>
      `${str(o, "metadata", "namespace")}/${str(o, "metadata", "name")}`
    ),
  );
  const podNames = new Set([...pods].map((p) => p.split("/")[1]));
  assert.deepEqual([...pods], PODS);
  for (const c of CASES) {
    for (const s of c.steps) {
      for (const obj of s.apply) {
        const kind = str(obj, "kind");
        const ns = str(obj, "metadata", "namespace");
        const name = str(obj, "metadata", "name");
        if (kind === "Namespace") assert.ok(namespaces.has(name), `${c.name}: namespace ${name}`);
        else assert.ok(namespaces.has(ns), `${c.name}: ${objectKey(obj)}`);
        if (kind === "Pod") assert.ok(pods.has(`${ns}/${name}`), `${c.name}: pod ${ns}/${name}`);
      }
      for (const p of s.probes) {
        for (const op of p.expect.ops) {
          const used = opPods(op);
          for (const pod of used.pods) assert.ok(pods.has(pod), `${c.name}: pod ${pod}`);
          for (const ns of used.namespaces) assert.ok(namespaces.has(ns), `${c.name}: ns ${ns}`);
          for (const n of used.names) assert.ok(podNames.has(n), `${c.name}: pod name ${n}`);
        }
        assert.equal(expectedMatrix(PODS, p.expect).size, 72);
      }
    }
  }
});

Deno.test("every probed port and every named port in a policy is one the pods serve", () => {
  const served = new Set<string>();
  const names = new Set<string>();
  for (const port of BASE.flatMap((o) => (get(o, "spec", "containers") ?? []) as unknown[])) {
    for (const cp of (get(port, "ports") ?? []) as unknown[]) {
      served.add(`${str(cp, "protocol")}/${get(cp, "containerPort")}`);
      names.add(str(cp, "name") ?? "");
    }
  }
  assert.equal(served.size, 6);
  for (const c of CASES) {
    for (const s of c.steps) {
      for (const p of s.probes) assert.ok(served.has(`${p.protocol}/${p.port}`), c.name);
      for (const obj of s.apply.filter((o) => str(o, "kind") === "NetworkPolicy")) {
        for (const v of walk(get(obj, "spec"))) {
          const port = get(v, "port");
          if (typeof port === "string") assert.ok(names.has(port), `${c.name}: port "${port}"`);
        }
      }
    }
  }
});

Deno.test("baseCluster() is upstream's model: labels, node, addresses and named ports", () => {
  const ns = BASE.filter((o) => str(o, "kind") === "Namespace");
  assert.deepEqual(ns.map((o) => get(o, "metadata", "labels")), [
    { "kubernetes.io/metadata.name": "x" },
    { "kubernetes.io/metadata.name": "y" },
    { "kubernetes.io/metadata.name": "z" },
  ]);
  const xb = BASE.find((o) => objectKey(o) === "Pod/x/b");
  assert.deepEqual(get(xb, "metadata", "labels"), { pod: "b" });
  assert.equal(get(xb, "spec", "nodeName"), "node-1");
  assert.equal(get(xb, "status", "podIP"), ENV.podIp("x/b"));
  assert.deepEqual(get(xb, "status", "podIPs"), [{ ip: ENV.podIp("x/b") }]);
  const containers = (get(xb, "spec", "containers") ?? []) as unknown[];
  assert.deepEqual(containers.map((c) => str(c, "name")), [
    "cont-80-tcp",
    "cont-80-udp",
    "cont-80-sctp",
    "cont-81-tcp",
    "cont-81-udp",
    "cont-81-sctp",
  ]);
  assert.deepEqual(get(containers[2], "ports"), [
    { containerPort: 80, name: "serve-80-sctp", protocol: "SCTP" },
  ]);
});

Deno.test("label changes replace a pod or namespace with only its labels changed", () => {
  const base = new Map(BASE.map((o) => [objectKey(o), o]));
  const strip = (o: unknown) => {
    const copy = structuredClone(o) as { metadata: { labels?: unknown } };
    delete copy.metadata.labels;
    return copy;
  };
  let changes = 0;
  for (const c of CASES) {
    for (const obj of c.steps.flatMap((s) => s.apply)) {
      if (str(obj, "kind") === "NetworkPolicy") continue;
      const before = base.get(objectKey(obj));
      assert.ok(before, objectKey(obj));
      assert.deepEqual(strip(obj), strip(before));
      const oldLabels = get(before, "metadata", "labels") as Record<string, string>;
      const newLabels = get(obj, "metadata", "labels") as Record<string, string>;
      for (const [k, v] of Object.entries(oldLabels)) assert.equal(newLabels[k], v);
      changes++;
    }
  }
  // AddNamespaceLabel(y, ns2=updated), AddPodLabels(x/b, pod2=updated), AddPodLabels(x/a, target=isolated)
  assert.equal(changes, 3);
});

Deno.test("ipBlock CIDRs are built from the environment's pod addresses", () => {
  const cidrs = (cases: UpstreamCase[]) =>
    cases.flatMap((c) =>
      c.steps.flatMap((s) =>
        s.apply.flatMap((o) =>
          [...walk(o)].flatMap((v) => {
            const cidr = str(v, "ipBlock", "cidr");
            const except = (get(v, "ipBlock", "except") ?? []) as string[];
            return cidr === undefined ? [] : [cidr, ...except];
          })
        )
      )
    );
  const ipOf = (p: string) => ENV.podIp(p);
  assert.deepEqual(cidrs(CASES), [
    `${ipOf("y/b")}/32`,
    `${ipOf("x/a")}/4`,
    `${ipOf("x/b")}/32`,
    `${ipOf("x/a")}/4`,
    `${ipOf("x/b")}/32`,
    `${ipOf("x/b")}/32`,
  ]);
  const other = env(7);
  assert.ok(cidrs(upstreamCases(other)).every((c) => c.startsWith("10.244.7.")));
});

Deno.test("the transcription reproduces the matrices upstream documents in its comments", () => {
  const matrix = (c: UpstreamCase) => {
    const p = c.steps[0]?.probes[0];
    assert.ok(p);
    return [...expectedMatrix(PODS, p.expect)].filter(([, v]) => !v).map(([k]) => k).sort();
  };
  // The example at the top of network_policy.go (loopback ignored): x/a admits only y.
  assert.deepEqual(
    matrix(byTitle(
      TCP_BLOCK,
      "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
    )),
    ["x/b->x/a", "x/c->x/a", "z/a->x/a", "z/b->x/a", "z/c->x/a"],
  );
  // The "Expected results" table in the client-side egress case.
  const denied = matrix(byTitle(
    TCP_BLOCK,
    "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
  ));
  const expected = [
    ...PODS.filter((p) => p !== "x/a" && p !== "y/a").map((p) => `x/a->${p}`),
    ...PODS.filter((p) => p !== "x/a").flatMap((p) => [`${p}->y/a`, `${p}->y/b`]),
  ].filter((k) => k !== "y/a->y/a" && k !== "y/b->y/b").sort();
  assert.deepEqual(denied, [...new Set(expected)].sort());
});
