// rule_map full (issue 19, item 3): a filler policy takes every slot but the test's own, then
// the agent is driven as an operator would. A new small policy that does not fit is named as
// not enforced (its pods, entries needed vs free) by `agent status`, `--wait-synced` fails,
// `policy explain` says what the maps do (DENIED, not enforced) and its pod is isolated (fail
// closed); an enforced policy updated while full keeps its old rule (real traffic still
// passes on it); freed slots go to the first policy refused, then the next.
import assert from "node:assert/strict";
import { BINARY, containerId, sh } from "./_cni.ts";
import { ebpfcni } from "./_cli.ts";
import type { Pod } from "./_pods.ts";
import { probeUntil, startServers } from "./_traffic.ts";
import {
  addK8sPod,
  type AgentProcess,
  type AgentStatusJson,
  startAgent,
  withK8sSetup,
} from "./_agent.ts";
import { namespaceObject, networkPolicy } from "../src/netpol/testdata/_objects.ts";
import { RULE_MAP } from "../src/spec/bpf_layout.ts";

const CAPACITY = RULE_MAP.maxEntries;
const FILL_IP = "100.64.7.1";

/** A pod of another node in namespace fill, subject and peer of the filler policy. */
const fillPod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "f", namespace: "fill", labels: { pod: "f" } },
  // Scheduled on the agent's node: a node holds rules only for its own pods.
  spec: { nodeName: "node-1", containers: [{ name: "c", image: "x" }] },
  status: { phase: "Running", podIP: FILL_IP, podIPs: [{ ip: FILL_IP }] },
};

/** A second pod with c's labels (its address from its attachment). */
const podD = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "d", namespace: "x", labels: { pod: "c" } },
  spec: { nodeName: "node-1", containers: [{ name: "c", image: "x" }] },
  status: { phase: "Pending" },
};

/** A policy of exactly `n` rule entries: f from f, one port each (TCP, then UDP, then SCTP). */
function filler(n: number) {
  const ports: { protocol: string; port: number }[] = [];
  for (const protocol of ["TCP", "UDP", "SCTP"]) {
    for (let port = 1; port <= 65535 && ports.length < n; port++) ports.push({ protocol, port });
  }
  assert.equal(ports.length, n);
  return networkPolicy("fill", "filler", {
    podSelector: { matchLabels: { pod: "f" } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "f" } } }], ports }],
  });
}

function ingressFromA(name: string, to: string, port: number) {
  return networkPolicy("x", name, {
    podSelector: { matchLabels: { pod: to } },
    ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }], ports: [{ port }] }],
  });
}

/** Polls the status until `ok` holds (the agent reconciles a few ms after a file changes). */
async function until(
  agent: AgentProcess,
  ok: (s: AgentStatusJson) => boolean,
): Promise<AgentStatusJson> {
  let st = await agent.status();
  for (let i = 0; i < 300 && !ok(st); i++) {
    await new Promise((r) => setTimeout(r, 100));
    st = await agent.status();
  }
  assert.ok(ok(st), `status never got there: ${JSON.stringify(st.notEnforced)}`);
  return st;
}

Deno.test("with rule_map full, a policy that does not fit is reported as not enforced, keeps its old rules, and goes in first come first served", async () => {
  await withK8sSetup(["a", "b", "c"], async (s) => {
    s.manifests.apply(namespaceObject("fill"));
    s.manifests.apply(fillPod);
    s.manifests.apply(podD);
    s.manifests.apply(ingressFromA("b-from-a", "b", 80));
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    let servers: Awaited<ReturnType<typeof startServers>> | undefined;
    try {
      await agent.synced();
      const pods: Pod[] = [];
      for (const p of ["a", "b", "c"]) pods.push(await addK8sPod(s.net, s.config, "x", p));
      const [a, b, c] = pods as [Pod, Pod, Pod];
      servers = await startServers([
        { netns: b.netns, tcp: [80, 8080], udp: [] },
        { netns: c.netns, tcp: [80], udp: [] },
      ]);
      const probes = [
        { from: a.netns, to: b.ip, port: 80, proto: "tcp" as const },
        { from: a.netns, to: b.ip, port: 8080, proto: "tcp" as const },
        { from: a.netns, to: c.ip, port: 80, proto: "tcp" as const },
      ];
      const own = (await agent.synced()).entries.rules;
      assert.equal(own, 1);
      assert.deepEqual(probeUntil(probes, [true, false, true]), [true, false, true]);

      // Every slot taken.
      s.manifests.apply(filler(CAPACITY - own));
      const full = await agent.synced(120);
      assert.equal(full.entries.rules, CAPACITY);
      assert.deepEqual(full.notEnforced, []);

      // A new small policy: c only from a on 80. One entry, no slot.
      s.manifests.apply(ingressFromA("c-from-a", "c", 80));
      const wait = await ebpfcni([
        "agent",
        "status",
        "--json",
        "--wait-synced",
        "2",
        "--socket",
        agent.socket,
      ]);
      assert.equal(wait.code, 3, `wait-synced with a policy not enforced: ${wait.stderr}`);
      assert.match(wait.stderr, /x\/c-from-a \(needs 1 more rule_map entry, 0 free/);
      const st = JSON.parse(wait.stdout) as AgentStatusJson;
      assert.equal(st.appliedGeneration, st.generation);
      assert.equal(st.notEnforced.length, 1);
      const w = st.notEnforced[0]!;
      assert.equal(w.policy, "x/c-from-a");
      assert.deepEqual(w.pods, ["x/c", "x/d"]);
      assert.equal(w.needed, 1);
      assert.equal(w.free, 0);
      assert.equal(w.keepsPrevious, false);
      const text = await ebpfcni(["agent", "status", "--socket", agent.socket]);
      assert.match(text.stdout, /^enforced: +NOT 1 policy/m);
      assert.match(
        text.stdout,
        /^not enforced: x\/c-from-a \(#1 in line .*selects pods x\/c, x\/d\): needs 1 more/m,
      );
      // explain agrees with the maps: c is isolated and its allow rule is not there.
      const explain = (to: string, port: number) =>
        sh(BINARY, [
          "policy",
          "explain",
          "--from",
          "x/a",
          "--to",
          to,
          "--port",
          String(port),
          "--socket",
          agent.socket,
        ]);
      const e = await explain("x/c", 80);
      assert.equal(e.code, 0, e.stderr);
      assert.match(e.stdout, /^x\/a -> x\/c 80\/tcp: DENIED by the maps \(the policies allow it\)/);
      assert.match(e.stdout, /datapath \(to-pod hook\): drop/);
      assert.match(e.stdout, /NOT ENFORCED as written: x\/c-from-a/);
      // Fail closed: c is isolated, a cannot reach it.
      assert.deepEqual(probeUntil(probes, [true, false, false]), [true, false, false]);
      // A pod the policy selects does not start isolated without its allow rules: ADD fails
      // (code 11, the runtime retries) naming the policy.
      const d = { containerId: containerId("pod"), netns: await s.net.netns(), ifname: "eth0" };
      const refused = await s.net.run({
        command: "ADD",
        ...d,
        args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=d",
        config: s.config,
      });
      assert.equal(refused.json?.code, 11, refused.stdout + refused.stderr);
      assert.match(
        String(refused.json?.msg),
        /pod x\/d: policy x\/c-from-a that selects it is not enforced: needs 1 more/,
      );
      const undo = await s.net.run({ command: "DEL", ...d, config: s.config });
      assert.equal(undo.code, 0, undo.stdout + undo.stderr);

      // b's policy updated while full (80 -> 8080): its old rule stays until the new is in.
      s.manifests.apply(ingressFromA("b-from-a", "b", 8080));
      const two = await until(agent, (x) => x.notEnforced.length === 2);
      assert.deepEqual(two.notEnforced.map((x) => [x.policy, x.place, x.keepsPrevious]), [
        ["x/c-from-a", 1, false],
        ["x/b-from-a", 2, true],
      ]);
      assert.equal(two.entries.rules, CAPACITY);
      assert.deepEqual(probeUntil(probes, [true, false, false]), [true, false, false]);
      assert.match((await explain("x/b", 80)).stdout, /^x\/a -> x\/b 80\/tcp: ALLOWED by the maps/);

      // One slot frees: it goes to the first refused, not to the update behind it.
      s.manifests.apply(filler(CAPACITY - own - 1));
      const one = await until(agent, (x) => x.notEnforced.length === 1);
      assert.equal(one.notEnforced[0]!.policy, "x/b-from-a");
      assert.equal(one.notEnforced[0]!.place, 1);
      assert.deepEqual(probeUntil(probes, [true, false, true]), [true, false, true]);
      assert.match((await explain("x/c", 80)).stdout, /^x\/a -> x\/c 80\/tcp: ALLOWED\n/);
      await addK8sPod(s.net, s.config, "x", "d");

      // Another: the update goes in, then its old rule goes.
      s.manifests.apply(filler(CAPACITY - own - 2));
      const done = await agent.synced(60);
      assert.deepEqual(done.notEnforced, []);
      assert.equal(done.entries.rules, CAPACITY - 1);
      assert.deepEqual(probeUntil(probes, [false, true, true]), [false, true, true]);
    } finally {
      await servers?.stop();
      const st = await agent.stop();
      assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs().slice(-4000)}`);
    }
  });
});

Deno.test("with rule_map full, an update waiting for room keeps its old rules across an agent restart", async () => {
  await withK8sSetup(["a", "b"], async (s) => {
    s.manifests.apply(namespaceObject("fill"));
    s.manifests.apply(fillPod);
    s.manifests.apply(ingressFromA("b-from-a", "b", 80));
    let agent = await startAgent(s.net, { manifests: s.manifests.dir });
    let servers: Awaited<ReturnType<typeof startServers>> | undefined;
    try {
      await agent.synced();
      const [a, b] = [
        await addK8sPod(s.net, s.config, "x", "a"),
        await addK8sPod(s.net, s.config, "x", "b"),
      ];
      servers = await startServers([{ netns: b.netns, tcp: [80, 8080], udp: [] }]);
      const probes = [
        { from: a.netns, to: b.ip, port: 80, proto: "tcp" as const },
        { from: a.netns, to: b.ip, port: 8080, proto: "tcp" as const },
      ];
      const own = (await agent.synced()).entries.rules;
      s.manifests.apply(filler(CAPACITY - own));
      assert.equal((await agent.synced(120)).entries.rules, CAPACITY);
      // b's policy updated while full (80 -> 8080): it waits, its old rule in force.
      s.manifests.apply(ingressFromA("b-from-a", "b", 8080));
      await until(agent, (x) => x.notEnforced.length === 1);
      assert.deepEqual(probeUntil(probes, [true, false]), [true, false]);

      const stopped = await agent.stop();
      assert.equal(stopped.code, 0, agent.logs().slice(-4000));
      agent = await startAgent(s.net, { manifests: s.manifests.dir });
      const st = await until(
        agent,
        (x) => x.synced && x.appliedGeneration === x.generation && x.lastReconcile !== null,
      );
      assert.deepEqual(st.notEnforced.map((w) => [w.policy, w.keepsPrevious]), [
        ["x/b-from-a", true],
      ], "the old rule was removed at start and the update went in");
      assert.equal(st.entries.rules, CAPACITY);
      assert.deepEqual(probeUntil(probes, [true, false]), [true, false]);
    } finally {
      await servers?.stop();
      const st = await agent.stop();
      assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs().slice(-4000)}`);
    }
  });
});
