// The agent's faults and edges on a real node: ADD while it is down or does not know the pod
// (code 11, nothing changed), DEL while it is down, kill -9 and restart under a live flow (no
// loss, no entry changed), its socket's permissions and refusals, and manifest files that do
// not parse.
import assert from "node:assert/strict";
import { BINARY, containerId, type HostSnapshot, sh } from "./_cni.ts";
import type { Pod } from "./_pods.ts";
import { probeUntil, startServers } from "./_traffic.ts";
import { addK8sPod, type AgentProcess, type K8sSetup, startAgent, withK8sSetup } from "./_agent.ts";
import { networkPolicy } from "../src/netpol/testdata/_objects.ts";
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { CidrMap, IpcacheMap, IsolationMap, RuleMap } from "../src/datapath/maps.ts";
import { CIDR_MAP, IPCACHE_MAP, ISOLATION_MAP, RULE_MAP } from "../src/spec/bpf_layout.ts";

type Setup = K8sSetup;

const withSetup = (fn: (s: Setup) => Promise<void>) => withK8sSetup(["a", "b", "c"], fn);

async function withAgent<T>(
  s: Setup,
  fn: (agent: AgentProcess) => Promise<T>,
  extra: string[] = [],
): Promise<T> {
  const agent = await startAgent(s.net, { manifests: s.manifests.dir }, { extra });
  try {
    await agent.synced();
    return await fn(agent);
  } finally {
    const st = await agent.stop();
    assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs()}`);
  }
}

/** A host snapshot without the plugin's own storage directories (the lease and state
 * stores), which the first ADD creates, failing or not, and which stay. */
function hostState(s: HostSnapshot): Omit<HostSnapshot, "dirs"> {
  const { dirs: _, ...rest } = s;
  return rest;
}

function cniArgs(ns: string, name: string): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name}`;
}

/** Every entry the agent writes, as text (to compare before and after). */
function entries(
  pinDir: string,
): { ipcache: string[]; isolation: string[]; rules: string[]; cidrs: string[] } {
  using dp = openPinnedMaps(pinDir);
  assert.ok(dp, "maps pinned");
  return {
    ipcache: new IpcacheMap(dp.fd(IPCACHE_MAP)).list().map((e) => JSON.stringify(e)).sort(),
    isolation: new IsolationMap(dp.fd(ISOLATION_MAP)).list().map((e) => JSON.stringify(e))
      .sort(),
    rules: new RuleMap(dp.fd(RULE_MAP)).list().map((e) => JSON.stringify(e)).sort(),
    cidrs: new CidrMap(dp.fd(CIDR_MAP)).list().map((e) => JSON.stringify(e)).sort(),
  };
}

Deno.test("ADD fails with code 11 and changes nothing while the agent is not running", async () => {
  await withSetup(async (s) => {
    const id = containerId("pod");
    const netns = await s.net.netns();
    // The pin directory exists (the agent ran once): ADD finds maps, but no agent.
    await withAgent(s, () => Promise.resolve());
    const before = hostState(await s.net.snapshot([id], [netns]));
    const r = await s.net.run({
      command: "ADD",
      containerId: id,
      netns,
      ifname: "eth0",
      args: cniArgs("x", "a"),
      config: s.config,
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.json?.code, 11);
    assert.match(String(r.json?.msg), /policy agent is not reachable/);
    assert.deepEqual(hostState(await s.net.snapshot([id], [netns])), before);
    const del = await s.net.run({
      command: "DEL",
      containerId: id,
      netns,
      ifname: "eth0",
      args: cniArgs("x", "a"),
      config: s.config,
    });
    assert.equal(del.code, 0, del.stderr);
  });
});

Deno.test("ADD of a pod the source does not know fails with code 11 after the bounded wait and changes nothing", async () => {
  await withSetup(async (s) => {
    await withAgent(s, async (agent) => {
      const id = containerId("pod");
      const netns = await s.net.netns();
      const before = hostState(await s.net.snapshot([id], [netns]));
      const entriesBefore = entries(s.net.pinDir);
      const r = await s.net.run({
        command: "ADD",
        containerId: id,
        netns,
        ifname: "eth0",
        args: cniArgs("x", "nobody"),
        config: s.config,
      });
      assert.equal(r.json?.code, 11, r.stdout + r.stderr);
      assert.match(String(r.json?.msg), /pod x\/nobody is not known to the agent's source/);
      assert.deepEqual(hostState(await s.net.snapshot([id], [netns])), before);
      assert.deepEqual(entries(s.net.pinDir), entriesBefore);
      assert.equal((await agent.status()).attachments, 0);
    }, ["--add-wait", "0.3"]);
  });
});

Deno.test("DEL succeeds while the agent is down, and the agent forgets the attachment on restart", async () => {
  await withSetup(async (s) => {
    let pod: Pod | undefined;
    await withAgent(s, async (agent) => {
      pod = await addK8sPod(s.net, s.config, "x", "a");
      assert.equal((await agent.status()).attachments, 1);
    });
    const r = await s.net.run({
      command: "DEL",
      containerId: pod!.id,
      netns: pod!.netns,
      ifname: "eth0",
      args: cniArgs("x", "a"),
      config: s.config,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(s.net.stateFiles(), []);
    await withAgent(s, async (agent) => {
      const st = await agent.status();
      assert.equal(st.attachments, 0);
      // x/a's address is gone from ipcache: no attachment holds it, the source has no
      // address for it either.
      const ips = entries(s.net.pinDir).ipcache.map((e) => JSON.parse(e).ip);
      assert.ok(!ips.includes(ipNumber(pod!.ip)), `${pod!.ip} still in ipcache`);
    });
  });
});

function ipNumber(ip: string): number {
  return ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

Deno.test("an agent killed with -9 and restarted keeps allowed flows flowing, denied ones denied, and rewrites no entry", async () => {
  await withSetup(async (s) => {
    // b accepts anything from a, nothing from c.
    s.manifests.apply(networkPolicy("x", "b-from-a", {
      podSelector: { matchLabels: { pod: "b" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }] }],
    }));
    let agent = await startAgent(s.net, { manifests: s.manifests.dir });
    const pods: Pod[] = [];
    let servers: Awaited<ReturnType<typeof startServers>> | undefined;
    try {
      await agent.synced();
      for (const p of ["a", "b", "c"]) pods.push(await addK8sPod(s.net, s.config, "x", p));
      const [a, b, c] = pods as [Pod, Pod, Pod];
      servers = await startServers([{ netns: b.netns, tcp: [80], udp: [] }]);
      await agent.synced();
      const probes = [
        { from: a.netns, to: b.ip, port: 80, proto: "tcp" as const },
        { from: c.netns, to: b.ip, port: 80, proto: "tcp" as const },
      ];
      assert.deepEqual(probeUntil(probes, [true, false]), [true, false]);
      const before = entries(s.net.pinDir);
      // A continuous flow a -> b across the kill and the restart.
      const ping = new Deno.Command("ip", {
        args: ["netns", "exec", a.name, "ping", "-D", "-O", "-i", "0.02", "-w", "4", b.ip],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await new Promise((r) => setTimeout(r, 300));
      await agent.kill9();
      // Down: the maps keep enforcing.
      assert.deepEqual(probeUntil(probes, [true, false]), [true, false]);
      agent = await startAgent(s.net, { manifests: s.manifests.dir });
      const st = await agent.synced();
      assert.equal(st.attachments, 3, "attachments read back from the CNI records");
      assert.deepEqual(entries(s.net.pinDir), before, "the restart changed entries");
      assert.deepEqual(probeUntil(probes, [true, false]), [true, false]);
      const out = new TextDecoder().decode((await ping.output()).stdout);
      const m = out.match(/(\d+) packets transmitted, (\d+) received/);
      assert.ok(m, out);
      assert.ok(Number(m[1]) > 50, out);
      const gaps = out.split("\n").filter((l) => !l.includes("bytes from")).join("\n");
      assert.equal(m[2], m[1], `ping lost packets across the restart:\n${gaps}\n${agent.logs()}`);
    } finally {
      await servers?.stop();
      await agent.stop();
    }
  });
});

Deno.test("the agent's socket is root-only and refuses malformed requests, changing nothing", async () => {
  await withSetup(async (s) => {
    await withAgent(s, async (agent) => {
      await addK8sPod(s.net, s.config, "x", "a");
      const mode = Deno.statSync(agent.socket).mode! & 0o777;
      assert.equal(mode, 0o600);
      const before = entries(s.net.pinDir);
      const add = {
        op: "add",
        namespace: "x",
        name: "b",
        containerId: "c1",
        ifname: "eth0",
        ips: ["10.1.2.3"],
      };
      const bad: [string, RegExp][] = [
        ["not json", /not valid JSON/],
        ["[1]", /a request is a JSON object/],
        ["{}", /"op" must be cni, add, del, status, sync, explain, monitor or podcidr/],
        [JSON.stringify({ op: "add" }), /"namespace" must be a string/],
        [JSON.stringify({ ...add, namespace: "X!" }), /"namespace" "X!" is not a namespace/],
        [
          JSON.stringify({ ...add, containerId: "../etc" }),
          /"containerId" .* is not a container ID/,
        ],
        [JSON.stringify({ ...add, ifname: "a/b" }), /"ifname"/],
        [JSON.stringify({ ...add, ips: ["10.1.2"] }), /"ips\[0\]" "10.1.2"/],
        [JSON.stringify({ ...add, ips: "10.1.2.3" }), /"ips" must be a list/],
        [
          JSON.stringify({
            op: "explain",
            from: { ip: "10.0.0.1" },
            to: { namespace: "x", name: "a" },
            port: 0,
          }),
          /"port" must be an integer from 1 to 65535/,
        ],
        [
          JSON.stringify({ op: "cni", env: { CNI_COMMAND: "GC" }, stdin: "{}" }),
          /"env.CNI_COMMAND"/,
        ],
        [JSON.stringify({ op: "cni", env: { CNI_COMMAND: "ADD", X: 1 }, stdin: "" }), /"env.X"/],
        [JSON.stringify({ op: "cni", env: { CNI_COMMAND: "CHECK" } }), /"stdin" must be a string/],
        ["x".repeat(270_000), /request longer than/],
      ];
      for (const [line, want] of bad) {
        const reply = await rawRequest(agent.socket, line + "\n");
        assert.match(String(reply.error), /^bad request: /, line.slice(0, 80));
        assert.match(String(reply.error), want, line.slice(0, 80));
      }
      assert.deepEqual(entries(s.net.pinDir), before);
      const st = await agent.status();
      assert.equal(st.attachments, 1);
    });
  });
});

async function rawRequest(path: string, text: string): Promise<Record<string, unknown>> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    const bytes = new TextEncoder().encode(text);
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    let out = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
      if (out.includes("\n")) break;
    }
    return JSON.parse(out);
  } finally {
    conn.close();
  }
}

Deno.test("a manifest that does not parse is reported with its path and field, and the objects of its last good version stay enforced", async () => {
  await withSetup(async (s) => {
    s.manifests.apply(networkPolicy("x", "deny-b", {
      podSelector: { matchLabels: { pod: "b" } },
      policyTypes: ["Ingress"],
    }));
    await withAgent(s, async (agent) => {
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      const servers = await startServers([{ netns: b.netns, tcp: [80], udp: [] }]);
      try {
        const probe = [{ from: a.netns, to: b.ip, port: 80, proto: "tcp" as const }];
        assert.deepEqual(probeUntil(probe, [false]), [false]);
        // A broken YAML file beside, and the policy's own file made invalid.
        s.manifests.writeRaw("broken.yaml", "kind: NetworkPolicy\n  bad: [indent\n");
        const policyFile = `${s.manifests.dir}/NetworkPolicy.x.deny-b.json`;
        const good = Deno.readTextFileSync(policyFile);
        const obj = JSON.parse(good);
        obj.spec.podSelector = 5;
        Deno.writeTextFileSync(policyFile, JSON.stringify(obj));
        const st = await agent.synced();
        const problems = st.problems.join("\n");
        assert.match(problems, new RegExp(`${s.manifests.dir}/broken.yaml: not valid YAML`));
        assert.match(problems, /NetworkPolicy\.x\.deny-b\.json: .*podSelector/);
        assert.equal(st.policies, 1, "the last good version stays");
        assert.deepEqual(probeUntil(probe, [false]), [false]);
        // Fixed, and the policy removed: allowed again.
        Deno.removeSync(`${s.manifests.dir}/broken.yaml`);
        Deno.removeSync(policyFile);
        assert.equal((await agent.synced()).policies, 0);
        assert.deepEqual(probeUntil(probe, [true]), [true]);
      } finally {
        await servers.stop();
      }
    });
  });
});

Deno.test("agent run refuses bad flags with exit 2 naming the value, before touching anything", async () => {
  const cases: [string[], RegExp][] = [
    [["agent", "run"], /Missing source/],
    [["agent", "run", "--manifests", "/tmp", "--in-cluster"], /Give one source/],
    [["agent", "run", "--manifests", "rel/dir"], /Invalid --manifests "rel\/dir"/],
    [["agent", "run", "--in-cluster", "--log-level", "loud"], /Invalid --log-level "loud"/],
    [["agent", "run", "--in-cluster", "--resync", "0"], /Invalid --resync "0"/],
    [["agent", "run", "--in-cluster", "--node", "Bad_Node"], /Invalid --node "Bad_Node"/],
    [
      ["agent", "run", "--in-cluster", "--metrics-address", "9972"],
      /Invalid --metrics-address "9972": must be HOST:PORT/,
    ],
    [
      ["agent", "run", "--in-cluster", "--metrics-address", "1.2.3.4:70000"],
      /Invalid --metrics-address "1.2.3.4:70000": port 70000 out of range/,
    ],
    [
      ["agent", "run", "--in-cluster", "--metrics-address", "node-1:9972"],
      /Invalid --metrics-address "node-1:9972": host: /,
    ],
    [
      ["agent", "run", "--in-cluster", "--routing", "host-gw"],
      /Invalid --routing "host-gw": must be vxlan, native, none/,
    ],
    [
      ["agent", "run", "--in-cluster", "--vxlan-port", "70000"],
      /Invalid --vxlan-port "70000": must be a number from 1 to 65535/,
    ],
    [
      ["agent", "run", "--in-cluster", "--vxlan-vni", "16777216"],
      /Invalid --vxlan-vni "16777216": must be a number from 1 to 16777215/,
    ],
    [
      ["agent", "run", "--in-cluster", "--routing", "native", "--vxlan-port", "4789"],
      /--vxlan-port needs --routing vxlan/,
    ],
    [["agent", "status", "--wait-synced", "soon"], /Invalid --wait-synced "soon"/],
    [["agent", "run", "--in-cluster", "--add-wait", "-1"], /Invalid --add-wait "-1"/],
    [["agent", "run", "--in-cluster", "--state-dir", "state"], /Invalid --state-dir "state"/],
    [["monitor", "--count", "0"], /Invalid --count "0": must be a positive integer/],
    [["monitor", "--verdict", "drops"], /Invalid --verdict "drops": must be drop, allow or all/],
    [["policy", "explain", "--from", "x/a", "--to", "x/b", "--port", "80/icmp"], /Invalid --port/],
    [["policy", "explain", "--from", "x", "--to", "x/b", "--port", "80"], /Invalid --from "x"/],
  ];
  for (const [args, want] of cases) {
    const r = await sh(BINARY, [...args, "--pin-dir", "/sys/fs/bpf/ebpfcni-never"]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
  let exists = true;
  try {
    Deno.statSync("/sys/fs/bpf/ebpfcni-never");
  } catch {
    exists = false;
  }
  assert.equal(exists, false);
});

Deno.test("policy explain names the policies and rules that decide each direction", async () => {
  await withSetup(async (s) => {
    s.manifests.apply(networkPolicy("x", "b-from-a", {
      podSelector: { matchLabels: { pod: "b" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }], ports: [{ port: 80 }] }],
    }));
    await withAgent(s, async (agent) => {
      await addK8sPod(s.net, s.config, "x", "a");
      await addK8sPod(s.net, s.config, "x", "b");
      await agent.synced();
      const explain = (from: string, port: string) =>
        sh(BINARY, [
          "policy",
          "explain",
          "--from",
          from,
          "--to",
          "x/b",
          "--port",
          port,
          "--socket",
          agent.socket,
        ]);
      const ok = await explain("x/a", "80");
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^x\/a -> x\/b 80\/tcp: ALLOWED/);
      assert.match(ok.stdout, /allowed by x\/b-from-a ingress rule 0/);
      assert.match(ok.stdout, /datapath \(to-pod hook\): pass/);
      const no = await explain("x/c", "80");
      assert.match(no.stdout, /^x\/c -> x\/b 80\/tcp: DENIED/);
      assert.match(no.stdout, /isolated by x\/b-from-a/);
      assert.match(no.stdout, /datapath \(to-pod hook\): drop/);
      const port = await explain("x/a", "81/udp");
      assert.match(port.stdout, /DENIED/);
      const json = await sh(BINARY, [
        "policy",
        "explain",
        "--from",
        "x/a",
        "--to",
        "x/b",
        "--port",
        "80",
        "--json",
        "--socket",
        agent.socket,
      ]);
      const e = JSON.parse(json.stdout);
      assert.equal(e.decision.allowed, true);
      assert.deepEqual(e.decision.ingress.allowedBy, [
        { policy: "x/b-from-a", direction: "ingress", rule: 0 },
      ]);
      assert.equal(e.datapath.allowed, true);
    });
  });
});
