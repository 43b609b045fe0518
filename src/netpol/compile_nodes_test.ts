// A node compiles only what it enforces: the rules and isolation of the identities with a pod
// on it (each pod's rules are judged on its own node), while ipcache keeps every pod of the
// cluster (peers). Measured over manifest clusters of up to 100 nodes of 50 pods.
import assert from "node:assert/strict";
import { compile, type Compiled } from "./compile.ts";
import { IdentityAllocator } from "./identity_alloc.ts";
import type { Model, Pod } from "./model.ts";
import { modelOf, podObj, policyObj } from "./_test_util.ts";
import { ISOLATE_EGRESS, ISOLATE_INGRESS } from "../spec/bpf_layout.ts";
import { formatIpv4 } from "../spec/ipv4.ts";

const onNode = (node: string) => (pod: Pod) => pod.node === node;
const alloc = () => ({ pods: new IdentityAllocator("pod"), cidrs: new IdentityAllocator("cidr") });

Deno.test("compile: rules and isolation only for this node's pods' identities; ipcache keeps every pod", () => {
  const model = modelOf(
    podObj("x/a", { app: "a" }, { ip: "10.244.1.2", nodeName: "node-1" }),
    podObj("x/b", { app: "b" }, { ip: "10.244.2.2", nodeName: "node-2" }),
    policyObj("x/a-out", {
      podSelector: { matchLabels: { app: "a" } },
      policyTypes: ["Egress"],
      egress: [{ to: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }] }],
    }),
    policyObj("x/b-in", {
      podSelector: { matchLabels: { app: "b" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }] }],
    }),
  );
  const a = alloc();
  const one = compile(model, { ...a, isLocal: onNode("node-1") });
  const two = compile(model, { ...a, isLocal: onNode("node-2") });
  const idA = one.identities.get("x/a")!;
  const idB = one.identities.get("x/b")!;
  assert.deepEqual([...one.isolation], [[idA, ISOLATE_EGRESS]]);
  assert.deepEqual([...two.isolation], [[idB, ISOLATE_INGRESS]]);
  assert.ok(one.rules.size > 0 && two.rules.size > 0);
  assert.ok([...one.rules.values()].every((r) => r.key.subject === idA));
  assert.ok([...two.rules.values()].every((r) => r.key.subject === idB));
  // Both pods are known on both nodes, each local only on its own.
  const flags = (c: Compiled) =>
    [...c.ipcache].map(([ip, e]) =>
      `${formatIpv4(ip)} ${e.identity === idA ? "a" : "b"} ${e.local}`
    )
      .sort();
  assert.deepEqual(flags(one), ["10.244.1.2 a true", "10.244.2.2 b false"]);
  assert.deepEqual(flags(two), ["10.244.1.2 a false", "10.244.2.2 b true"]);
});

/** `nodes` nodes of 50 pods: deployments of 10 pods spread over 10 nodes, each selected by a
 * policy allowing ingress from the next deployment and egress to the third after it and to a
 * CIDR (the scale issue 17 measures: 100 nodes, 500 policies). */
function cluster(nodes: number): Model {
  const objects: unknown[] = [];
  const deployments = nodes * 5;
  for (let d = 0; d < deployments; d++) {
    for (let r = 0; r < 10; r++) {
      const n = (d + r * Math.max(1, Math.floor(nodes / 10))) % nodes;
      const i = d * 10 + r;
      objects.push(
        podObj(`x/d${d}-${r}`, { app: `d${d}` }, {
          ip: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
          nodeName: `node-${n}`,
        }),
      );
    }
    const app = (k: number) => ({ podSelector: { matchLabels: { app: `d${k % deployments}` } } });
    objects.push(policyObj(`x/p${d}`, {
      podSelector: { matchLabels: { app: `d${d}` } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: [app(d + 1)], ports: [{ port: 80 }] }],
      egress: [{ to: [app(d + 3), { ipBlock: { cidr: "192.0.2.0/24" } }], ports: [{ port: 443 }] }],
    }));
  }
  return modelOf(...objects);
}

Deno.test("compile: a node's rule entries grow with its own pods, not with the cluster (100 nodes of 50 pods)", () => {
  const rows: string[] = [];
  const perNode: number[] = [];
  const wholes: number[] = [];
  for (const nodes of [10, 50, 100]) {
    const model = cluster(nodes);
    assert.equal(model.pods.size, nodes * 50);
    const a = alloc();
    const whole = compile(model, { ...a, isLocal: () => true });
    const mine = compile(model, { ...a, isLocal: onNode("node-0") });
    // Exactly the whole cluster's entries for the identities of this node's pods.
    const local = new Set(
      [...model.pods.values()].filter(onNode("node-0")).map((p) =>
        mine.identities.get(`${p.namespace}/${p.name}`)!
      ),
    );
    const expected = [...whole.rules.keys()].filter((id) =>
      local.has(whole.rules.get(id)!.key.subject)
    ).sort();
    assert.deepEqual([...mine.rules.keys()].sort(), expected);
    assert.deepEqual(
      [...mine.isolation.keys()].sort(),
      [...whole.isolation.keys()].filter((id) => local.has(id)).sort(),
    );
    assert.equal(mine.ipcache.size, whole.ipcache.size); // every pod stays a peer
    rows.push(
      `${nodes} nodes: rule_map ${mine.rules.size} on node-0 vs ${whole.rules.size} cluster-wide, ` +
        `isolation ${mine.isolation.size} vs ${whole.isolation.size}, ipcache ${mine.ipcache.size}`,
    );
    perNode.push(mine.rules.size);
    wholes.push(whole.rules.size);
  }
  console.error(rows.join("\n"));
  // The node's 50 pods are 50 identities whatever the cluster's size (on 10 nodes, every one);
  // the cluster's entries grow with its nodes.
  assert.deepEqual(perNode, [perNode[0], perNode[0], perNode[0]]);
  assert.deepEqual(wholes, [perNode[0]!, perNode[0]! * 5, perNode[0]! * 10]);
});
