// Flow logs on a real node: `ebpfcni monitor --json` through the agent names both pods, the
// hook, the reason and the deciding policy of a denied connection; the agent's --flow-log
// gets the same drop line (and no allowed flow), rotates by size keeping the configured
// number of files, and writes to stdout with `-` with nothing else there.
import assert from "node:assert/strict";
import { BINARY, sh } from "./_cni.ts";
import type { Pod } from "./_pods.ts";
import { probeAll, probeUntil, type Servers, startServers } from "./_traffic.ts";
import { addK8sPod, type AgentProcess, type K8sSetup, startAgent, withK8sSetup } from "./_agent.ts";
import { networkPolicy } from "../src/netpol/testdata/_objects.ts";

interface Flow {
  verdict: string;
  reason: string;
  hook: string;
  proto: string;
  src: string;
  dst: string;
  dport: number;
  srcNamespace?: string;
  srcPod?: string;
  dstNamespace?: string;
  dstPod?: string;
  policies?: string[];
}

interface Node {
  s: K8sSetup;
  agent: AgentProcess;
  a: Pod;
  b: Pod;
  c: Pod;
}

/** Pods a, b, c in namespace x; b serves tcp/80 and takes it from a only (x/b-from-a). */
async function withNode(extra: string[], fn: (n: Node) => Promise<void>): Promise<void> {
  await withK8sSetup(["a", "b", "c"], async (s) => {
    s.manifests.apply(networkPolicy("x", "b-from-a", {
      podSelector: { matchLabels: { pod: "b" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }], ports: [{ port: 80 }] }],
    }));
    const agent = await startAgent(s.net, { manifests: s.manifests.dir }, { extra });
    let servers: Servers | undefined;
    try {
      await agent.synced();
      const [a, b, c] = [
        await addK8sPod(s.net, s.config, "x", "a"),
        await addK8sPod(s.net, s.config, "x", "b"),
        await addK8sPod(s.net, s.config, "x", "c"),
      ];
      servers = await startServers([{ netns: b.netns, tcp: [80], udp: [] }]);
      await agent.synced();
      await fn({ s, agent, a, b, c });
    } finally {
      await servers?.stop();
      const st = await agent.stop();
      assert.equal(st.code, 0, `agent exit ${st.code}: ${agent.logs()}`);
    }
  });
}

function lines(text: string): Flow[] {
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Flow);
}

/** `ebpfcni monitor --json` as an operator runs it, ended with Ctrl-C. */
function startMonitor(n: Node, args: string[]) {
  const child = new Deno.Command(BINARY, {
    args: ["monitor", "--json", "--pin-dir", n.s.net.pinDir, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { EBPFCNI_PIN_DIR: "" },
  }).spawn();
  let out = "";
  const dec = new TextDecoder();
  const pump = (async () => {
    for await (const chunk of child.stdout) out += dec.decode(chunk);
  })();
  const stderr = new Response(child.stderr).text();
  return {
    out: () => out,
    /** Its exit, by itself. */
    async ended() {
      const status = await child.status;
      await pump;
      return { code: status.code, stderr: await stderr };
    },
    stop() {
      child.kill("SIGINT");
      return this.ended();
    },
  };
}

/** Denied connections c -> b until `seen()` (the first packets after a reader starts may
 * predate it); bounded. */
async function denyUntil(n: Node, seen: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !seen(); i++) {
    assert.deepEqual(probeAll([{ from: n.c.netns, to: n.b.ip, port: 80, proto: "tcp" }], 200), [
      false,
    ]);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(seen(), "the denied connection was reported");
}

const isDenied = (n: Node) => (f: Flow) => f.src === n.c.ip && f.dst === n.b.ip;

Deno.test("a denied connection is a monitor line naming both pods, the hook, the reason and the policy, and the same line in the flow log; allowed flows are not logged", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-flowlog-" });
  const file = `${dir}/flows.log`;
  try {
    await withNode(["--flow-log", file], async (n) => {
      const monitor = startMonitor(n, ["--verdict", "all", "--socket", n.agent.socket]);
      let stopped: { code: number; stderr: string } | undefined;
      try {
        await denyUntil(n, () => lines(monitor.out()).some(isDenied(n)));
        assert.deepEqual(
          probeUntil([{ from: n.a.netns, to: n.b.ip, port: 80, proto: "tcp" }], [true]),
          [true],
        );
        for (let i = 0; i < 50 && !lines(monitor.out()).some((f) => f.src === n.a.ip); i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        stopped = await monitor.stop();
      }
      assert.equal(stopped.code, 0, `Ctrl-C ends it cleanly: ${stopped.stderr}`);
      const seen = lines(monitor.out());
      const drop = seen.find(isDenied(n));
      assert.ok(drop, monitor.out());
      assert.deepEqual(
        {
          verdict: drop.verdict,
          reason: drop.reason,
          hook: drop.hook,
          proto: drop.proto,
          dport: drop.dport,
          src: [drop.srcNamespace, drop.srcPod],
          dst: [drop.dstNamespace, drop.dstPod],
          policies: drop.policies,
        },
        {
          verdict: "drop",
          reason: "drop_ingress",
          hook: "to-pod",
          proto: "tcp",
          dport: 80,
          src: ["x", "c"],
          dst: ["x", "b"],
          policies: ["x/b-from-a"],
        },
      );
      const allow = seen.find((f) => f.src === n.a.ip && f.dst === n.b.ip);
      assert.ok(allow, `the allowed connection was reported: ${monitor.out()}`);
      assert.equal(allow.verdict, "allow");
      assert.deepEqual([allow.srcPod, allow.dstPod, allow.policies], ["a", "b", ["x/b-from-a"]]);
      // The flow log: the very line the monitor printed for the drop, and drops only.
      const logged = Deno.readTextFileSync(file).split("\n").filter((l) => l !== "");
      const monitorLine = monitor.out().split("\n").find((l) => {
        const f = JSON.parse(l || "{}") as Flow;
        return f.src === n.c.ip && f.dst === n.b.ip;
      });
      assert.ok(logged.includes(monitorLine!), `${monitorLine} not in\n${logged.join("\n")}`);
      assert.ok(logged.every((l) => (JSON.parse(l) as Flow).verdict === "drop"), logged.join("\n"));
      assert.ok(!logged.some((l) => (JSON.parse(l) as Flow).src === n.a.ip), "allowed flow logged");
      const st = await n.agent.status();
      assert.equal(st.flowLog?.path, file);
      // More drops (the pods' IPv6 router solicitations) may have come since the file was read.
      assert.ok(st.flowLog!.written >= logged.length, JSON.stringify(st.flowLog));
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the flow log rotates past its size limit and keeps the configured number of files", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-flowlog-" });
  const file = `${dir}/flows.log`;
  const limit = 2048;
  try {
    const args = ["--flow-log", file, "--flow-log-max-size", "2K", "--flow-log-keep", "2"];
    await withNode(args, async (n) => {
      const rotations = async () => (await n.agent.status()).flowLog?.rotations ?? 0;
      for (let i = 0; i < 100 && await rotations() < 4; i++) {
        probeAll(
          Array.from(
            { length: 4 },
            () => ({ from: n.c.netns, to: n.b.ip, port: 80, proto: "tcp" }),
          ),
          100,
        );
      }
      assert.ok(await rotations() >= 4, `rotated ${await rotations()} times: ${n.agent.logs()}`);
      const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(files, ["flows.log", "flows.log.1", "flows.log.2"]);
      const texts = files.map((name) => Deno.readTextFileSync(`${dir}/${name}`));
      const longest = Math.max(...texts.flatMap((t) => t.split("\n").map((l) => l.length + 1)));
      texts.forEach((text, i) => {
        assert.ok(text.length <= limit, `${files[i]} holds ${text.length} bytes`);
        // Drops only (the pods' IPv6 router solicitations are drops too).
        assert.ok(lines(text).every((f) => f.verdict === "drop"), text);
        // A rotated file was full: the next line would have taken it past the limit.
        if (i > 0) assert.ok(text.length + longest > limit, `${files[i]}: ${text.length} bytes`);
      });
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--flow-log - writes drop lines to stdout and nothing else; a monitor without an agent has no names", async () => {
  await withNode(["--flow-log", "-"], async (n) => {
    await denyUntil(n, () => lines(n.agent.stdout()).some(isDenied(n)));
    for (const line of n.agent.stdout().split("\n").filter((l) => l !== "")) {
      const f = JSON.parse(line) as Flow;
      assert.equal(f.verdict, "drop", line);
    }
    const drop = lines(n.agent.stdout()).find(isDenied(n))!;
    assert.deepEqual([drop.srcPod, drop.dstPod, drop.policies], ["c", "b", ["x/b-from-a"]]);
    // The agent's own log stays on stderr.
    assert.match(n.agent.logs(), /"msg":"agent started"/);
    assert.doesNotMatch(n.agent.stdout(), /"msg"/);
    // A monitor streaming through the agent when the agent stops: the agent stops cleanly,
    // the monitor fails saying so.
    const streaming = startMonitor(n, ["--socket", n.agent.socket]);
    try {
      // Named: it streams through the agent.
      await denyUntil(n, () => lines(streaming.out()).some((f) => isDenied(n)(f) && !!f.srcPod));
    } catch (err) {
      await streaming.stop();
      throw err;
    }
    assert.equal((await n.agent.stop()).code, 0, n.agent.logs());
    const ended = await streaming.ended();
    assert.equal(ended.code, 1);
    assert.match(ended.stderr, /The policy agent stopped/);
    // No agent on the monitor's socket: it reads the ring buffer itself, without names.
    const monitor = startMonitor(n, ["--socket", n.agent.socket]);
    let stopped: { code: number; stderr: string } | undefined;
    try {
      await denyUntil(n, () => lines(monitor.out()).some(isDenied(n)));
    } finally {
      stopped = await monitor.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stderr, /no policy agent answers on ".*agent.sock"/);
    const bare = lines(monitor.out()).find(isDenied(n))!;
    assert.equal(bare.reason, "drop_ingress");
    assert.equal(bare.srcPod, undefined);
    assert.equal(bare.policies, undefined);
  });
});

Deno.test("a monitor whose reader goes away (monitor | head -1) ends by itself", async () => {
  await withNode([], async (n) => {
    const child = new Deno.Command(BINARY, {
      args: ["monitor", "--json", "--pin-dir", n.s.net.pinDir, "--socket", n.agent.socket],
      stdout: "piped",
      stderr: "piped",
      env: { EBPFCNI_PIN_DIR: "" },
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let exited: Deno.CommandStatus | undefined;
    const status = child.status.then((s) => (exited = s));
    try {
      // Read one line, then hang up as `head -1` does.
      const reader = child.stdout.getReader();
      let first = "";
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          first += new TextDecoder().decode(value);
          if (first.includes("\n")) return;
        }
      })();
      await denyUntil(n, () => first.includes("\n"));
      await reading;
      await reader.cancel();
      // More denied connections: the next line it prints finds nobody reading.
      for (let i = 0; i < 50 && exited === undefined; i++) {
        probeAll([{ from: n.c.netns, to: n.b.ip, port: 80, proto: "tcp" }], 200);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(exited !== undefined, "the monitor still runs with nobody reading it");
      assert.equal(exited.code, 0, await stderr);
    } finally {
      if (exited === undefined) child.kill("SIGKILL");
      await status;
      await stderr;
    }
  });
});

Deno.test("agent run refuses bad flow log flags with exit 2, and a flow log it cannot open with exit 1, before touching anything", async () => {
  const never = "/sys/fs/bpf/ebpfcni-never";
  const cases: [string[], number, RegExp][] = [
    [["--flow-log", "rel.log"], 2, /Invalid --flow-log "rel.log": not absolute/],
    [
      ["--flow-log", "/tmp/f", "--flow-log-max-size", "10Q"],
      2,
      /Invalid --flow-log-max-size "10Q"/,
    ],
    [["--flow-log", "/tmp/f", "--flow-log-max-size", "0"], 2, /Invalid --flow-log-max-size "0"/],
    [["--flow-log", "/tmp/f", "--flow-log-keep", "-1"], 2, /Invalid --flow-log-keep "-1"/],
    [["--flow-log-keep", "2"], 2, /--flow-log-keep needs --flow-log FILE/],
    [
      ["--flow-log", "/nonexistent-dir/flows.log"],
      1,
      /Cannot open the flow log "\/nonexistent-dir\/flows.log"/,
    ],
  ];
  for (const [args, code, want] of cases) {
    const r = await sh(BINARY, [
      "agent",
      "run",
      "--manifests",
      "/nonexistent-manifests",
      "--socket",
      "/nonexistent-dir/agent.sock",
      "--pin-dir",
      never,
      ...args,
    ]);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
  assert.throws(() => Deno.statSync(never), Deno.errors.NotFound);
});
