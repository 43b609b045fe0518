// The agent fed by the Kubernetes API (the TLS fake API server of _fake_apiserver.ts, which
// test/fake_apiserver_kubectl_test.ts checks against the real kubectl): pods attached through
// CNI ADD, and every kind of mutation (pod labels, namespace labels, policy create, update and
// delete, pod delete), a 410 Gone relist and an API server restart, each converging to the
// matrix the engine gives for the objects the API holds, on real traffic.
import assert from "node:assert/strict";
import { withNetwork } from "./_cni.ts";
import type { Pod } from "./_pods.ts";
import { type Probe, probeUntil, startServers } from "./_traffic.ts";
import {
  addK8sPod,
  type AgentProcess,
  k8sConfig,
  randomServiceCidr,
  startAgent,
} from "./_agent.ts";
import { FakeApiServer } from "./_fake_apiserver.ts";
import { namespaceObject, networkPolicy, podObject } from "../src/netpol/testdata/_objects.ts";
import { buildModel, evaluate, type FlowEnd, parseDocument } from "../src/netpol/mod.ts";

type Obj = Record<string, unknown>;
const PODS = ["x/a", "x/b", "y/a"];
const PORTS = [80, 81];
const PLACEHOLDER = {
  podIp: (p: string) => `198.18.${p[0] === "x" ? 1 : 2}.${10 + "abc".indexOf(p[2]!)}`,
};

function pod(name: string, labels: Record<string, string> = {}): Obj {
  const [ns = "", p = ""] = name.split("/");
  return podObject(PLACEHOLDER, ns, p, labels);
}

/** Every cell (TCP, both ports) the engine allows or denies for what the API holds now. */
function expected(fake: FakeApiServer, pods: Map<string, Pod>): Map<string, boolean> {
  const objects = [
    ...fake.list("Namespace"),
    ...fake.list("Pod"),
    ...fake.list("NetworkPolicy"),
  ].flatMap((o) => parseDocument(o));
  const model = buildModel(objects);
  const end = (p: string): FlowEnd => {
    const [namespace = "", name = ""] = p.split("/");
    if (model.pods.has(p)) return { kind: "pod", namespace, name };
    const ip = pods.get(p)!.ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
    return { kind: "ip", ip };
  };
  const out = new Map<string, boolean>();
  for (const from of PODS) {
    for (const to of PODS) {
      if (from === to || !model.pods.has(to)) continue;
      for (const port of PORTS) {
        const d = evaluate(model, { src: end(from), dst: end(to), protocol: "TCP", port });
        out.set(`${from}->${to}:${port}`, d.allowed);
      }
    }
  }
  return out;
}

/** Waits for the agent to take in a change (its generation moves), then to apply it; then
 * probes every expected cell. The cells that differ. */
async function converge(
  agent: AgentProcess,
  fake: FakeApiServer,
  pods: Map<string, Pod>,
  before: number,
): Promise<string[]> {
  for (let i = 0; i < 300 && (await agent.status()).generation <= before; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await agent.synced();
  const want = expected(fake, pods);
  const cells = [...want.keys()];
  const probes: Probe[] = cells.map((cell) => {
    const [fromTo = "", port = ""] = cell.split(":");
    const [from = "", to = ""] = fromTo.split("->");
    return { from: pods.get(from)!.netns, to: pods.get(to)!.ip, port: Number(port), proto: "tcp" };
  });
  const got = probeUntil(probes, cells.map((c) => want.get(c)!));
  return cells.flatMap((c, i) =>
    got[i] === want.get(c) ? [] : [`${c}: want ${want.get(c) ? "allowed" : "denied"}`]
  );
}

Deno.test("the agent on the Kubernetes API converges to the right matrix after every kind of mutation, a 410 relist and an API server restart", async (t) => {
  await using fake = await FakeApiServer.start();
  await withNetwork(async (net) => {
    const kubeconfig = fake.writeKubeconfig({ auth: "token" });
    fake.put(namespaceObject("x"));
    fake.put(namespaceObject("y"));
    for (const p of PODS) fake.put(pod(p));
    const agent = await startAgent(net, { kubeconfig });
    const config = k8sConfig(net, randomServiceCidr());
    const pods = new Map<string, Pod>();
    let servers: Awaited<ReturnType<typeof startServers>> | undefined;
    try {
      await agent.synced();
      for (const p of PODS) {
        const [ns = "", name = ""] = p.split("/");
        pods.set(p, await addK8sPod(net, config, ns, name));
      }
      servers = await startServers(
        [...pods.values()].map((p) => ({ netns: p.netns, tcp: PORTS, udp: [] })),
      );
      const step = async (name: string, mutate: () => void | Promise<void>) => {
        await t.step(name, async () => {
          const before = (await agent.status()).generation;
          await mutate();
          const wrong = await converge(agent, fake, pods, before);
          assert.deepEqual(wrong, [], `mismatching cells:\n${wrong.join("\n")}`);
        });
      };
      const toA = (from: Obj[], ports?: Obj[]) => ({
        podSelector: { matchLabels: { pod: "a" } },
        ingress: [{ from, ...(ports ? { ports } : {}) }],
      });
      await step("a policy isolates x/a; nothing matches its peers yet", () => {
        fake.put(
          networkPolicy("x", "p1", toA([{ podSelector: { matchLabels: { role: "client" } } }])),
        );
      });
      await step("a pod's new label makes it a peer", () => {
        fake.put(pod("x/b", { role: "client" }));
      });
      await step("a namespace's new label makes its pods peers", () => {
        fake.put(
          networkPolicy("x", "p2", toA([{ namespaceSelector: { matchLabels: { team: "blue" } } }])),
        );
        fake.put(namespaceObject("y", { team: "blue" }));
      });
      await step("a policy update narrows the ports", () => {
        fake.put(networkPolicy(
          "x",
          "p1",
          toA([{ podSelector: { matchLabels: { role: "client" } } }], [{ port: 81 }]),
        ));
      });
      await step("a policy delete takes its peers away", () => {
        fake.delete("NetworkPolicy", "x", "p2");
      });
      await step("changes missed behind a 410 Gone are found by the relist", () => {
        fake.compact();
        fake.closeWatches();
        fake.put(networkPolicy("x", "p3", toA([{ namespaceSelector: {} }], [{ port: 80 }])));
      });
      await step(
        "deletes made while the API server is down are found after its restart",
        async () => {
          await fake.stop();
          fake.delete("NetworkPolicy", "x", "p1");
          fake.delete("NetworkPolicy", "x", "p3");
          fake.put(networkPolicy("x", "p4", toA([{ podSelector: { matchLabels: { pod: "b" } } }])));
          await fake.restart();
        },
      );
      await step("a deleted pod is no longer a peer", () => {
        fake.delete("Pod", "x", "b");
      });
    } finally {
      await servers?.stop();
      const s = await agent.stop();
      assert.equal(s.code, 0, agent.logs());
    }
  });
});
