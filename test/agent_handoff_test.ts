// CNI calls handed to the agent (kubernetes mode, src/cni/handoff.ts): with the agent up,
// ADD and CHECK run in it and give what the in-process path gives, DEL runs in the process;
// with "agentHandoff": false, or an agent that declines (--no-cni-handoff), the process runs
// them itself; an agent killed while it holds an ADD fails that ADD with code 11, and the
// runtime's DEL leaves the host as it was; an ADD whose plugin process was killed, or whose
// attachment a DEL removed while it waited, does not complete late.
import assert from "node:assert/strict";
import { containerId, type HostSnapshot, sh } from "./_cni.ts";
import { exists, ipNum, startPlugin } from "./_robust.ts";
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { IpcacheMap } from "../src/datapath/maps.ts";
import { IPCACHE_MAP } from "../src/spec/bpf_layout.ts";
import {
  addK8sPod,
  type AgentProcess,
  type AgentStatusJson,
  type K8sSetup,
  startAgent,
  withK8sSetup,
} from "./_agent.ts";
import { CniServer } from "../src/agent/cni_serve.ts";
import { runCni } from "../src/cni/dispatch.ts";
import { podObject } from "../src/netpol/testdata/_objects.ts";

type Setup = K8sSetup;

const withSetup = (fn: (s: Setup) => Promise<void>) => withK8sSetup(["a", "b", "c", "d"], fn);

const handled = (st: AgentStatusJson, command: string) => st.cni?.handled[command] ?? 0;

function cniArgs(name: string): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=${name}`;
}

/** The result without what differs from pod to pod (names, MACs, addresses). */
function shape(result: Record<string, unknown>): unknown {
  const ifs = result.interfaces as Record<string, unknown>[];
  return {
    keys: Object.keys(result).sort(),
    interfaces: ifs.map((i) => Object.keys(i).sort()),
    ips: (result.ips as Record<string, unknown>[]).map((i) => Object.keys(i).sort()),
    routes: result.routes,
  };
}

async function ping(from: string, to: string): Promise<boolean> {
  const r = await sh("ip", ["netns", "exec", from, "ping", "-c", "1", "-W", "2", to]);
  return r.code === 0;
}

Deno.test("with the agent up, ADD and CHECK in kubernetes mode run in the agent and work as in the process", async () => {
  await withSetup(async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      let st = await agent.status();
      assert.equal(handled(st, "ADD"), 2, JSON.stringify(st.cni));
      assert.equal(st.attachments, 2);
      // The same config with the handoff off: the process runs it, the agent is only asked
      // for the identity, and the result has the same shape.
      const c = await addK8sPod(s.net, { ...s.config, agentHandoff: false }, "x", "c");
      st = await agent.status();
      assert.equal(handled(st, "ADD"), 2, "agentHandoff false: not handed over");
      assert.equal(st.attachments, 3);
      assert.deepEqual(shape(a.result), shape(c.result));
      assert.ok(await ping(a.name, b.ip), "a reaches b");
      assert.ok(await ping(c.name, a.ip), "c reaches a");

      const check = await s.net.run({
        command: "CHECK",
        containerId: a.id,
        netns: a.netns,
        ifname: "eth0",
        args: cniArgs("a"),
        config: { ...s.config, prevResult: a.result },
      });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      // A CHECK the agent runs fails as the process's would: here the container's MAC.
      const ifs = (a.result.interfaces as { mac: string }[]).map((i, n) =>
        n === 2 ? { ...i, mac: "02:00:00:00:00:01" } : i
      );
      const bad = await s.net.run({
        command: "CHECK",
        containerId: a.id,
        netns: a.netns,
        ifname: "eth0",
        args: cniArgs("a"),
        config: { ...s.config, prevResult: { ...a.result, interfaces: ifs } },
      });
      assert.equal(bad.code, 1, bad.stdout);
      assert.match(String(bad.json?.msg), /^Interface "eth0" has MAC .*, not 02:00:00:00:00:01/);
      st = await agent.status();
      assert.equal(handled(st, "CHECK"), 2);
      // What the calls log goes into the agent's JSON lines.
      const lines = agent.logs().trim().split("\n").map((l) => JSON.parse(l));
      assert.ok(
        lines.some((l) => l.from === "cni" && l.level === "error" && /^CHECK: /.test(l.msg)),
        agent.logs(),
      );

      for (const [p, name] of [[a, "a"], [b, "b"], [c, "c"]] as const) {
        const del = await s.net.run({
          command: "DEL",
          containerId: p.id,
          netns: p.netns,
          ifname: "eth0",
          args: cniArgs(name),
          config: s.config,
        });
        assert.equal(del.code, 0, del.stdout + del.stderr);
      }
      st = await agent.status();
      assert.equal(st.attachments, 0, "each DEL (run in its process) told the agent");
      assert.deepEqual(s.net.leases(), []);
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

Deno.test("an agent started with --no-cni-handoff declines the ADD, and the process runs it", async () => {
  await withSetup(async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir }, {
      extra: ["--no-cni-handoff"],
    });
    try {
      await agent.synced();
      const a = await addK8sPod(s.net, s.config, "x", "a");
      const b = await addK8sPod(s.net, s.config, "x", "b");
      const st = await agent.status();
      assert.deepEqual(st.cni?.handled, {});
      assert.equal(st.cni?.declined, 2);
      assert.equal(st.attachments, 2, "the processes asked it for the identities");
      assert.ok(await ping(a.name, b.ip), "a reaches b");
    } finally {
      const st = await agent.stop();
      assert.equal(st.code, 0, agent.logs());
    }
  });
});

/** A host snapshot without the plugin's storage directories, which stay once made. */
function withoutDirs(s: HostSnapshot): Omit<HostSnapshot, "dirs"> {
  const { dirs: _, ...rest } = s;
  return rest;
}

Deno.test("an agent killed while it runs a handed-over ADD fails that ADD with code 11, and DEL undoes it", async () => {
  await withSetup(async (s) => {
    let agent: AgentProcess | undefined = await startAgent(s.net, {
      manifests: s.manifests.dir,
    });
    try {
      await agent.synced();
      // A pod first: the bridge, which a DEL never removes, is there before and after.
      await addK8sPod(s.net, s.config, "x", "a");
      const id = containerId("pod");
      const netns = await s.net.netns();
      const before = withoutDirs(await s.net.snapshot([id], [netns]));
      const marker = `${s.net.dir}/marker-${crypto.randomUUID()}`;
      const add = s.net.run({
        command: "ADD",
        containerId: id,
        netns,
        ifname: "eth0",
        args: cniArgs("d"),
        config: s.config,
        // Carried to the agent with the rest of the environment: the agent stops there.
        env: { EBPFCNI_FAULT: "hang:after-veth", EBPFCNI_FAULT_MARKER: marker },
      });
      // A bound, not a timing assertion: fail instead of hanging if it never gets there.
      const deadline = Date.now() + 60_000;
      while (!exists(marker) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(exists(marker), "the agent ran the ADD up to the veth");
      await agent.kill9();
      agent = undefined;
      const r = await add;
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.equal(r.json?.code, 11, r.stdout);
      assert.match(String(r.json?.msg), /policy agent .* took the ADD and did not answer/);
      const links = (await s.net.snapshot([id], [netns])).links;
      assert.ok(links.some((l) => l.startsWith(s.net.hostVeth(id))), `the agent made the veth`);
      const del = await s.net.run({
        command: "DEL",
        containerId: id,
        netns,
        ifname: "eth0",
        args: cniArgs("d"),
        config: s.config,
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.deepEqual(withoutDirs(await s.net.snapshot([id], [netns])), before);
    } finally {
      await agent?.stop();
    }
  });
});

Deno.test("the agent declines a call of another build, or with a netns it cannot open as the plugin would", async () => {
  const server = new CniServer(runCni);
  const req = (netns: string, build?: string) => ({
    op: "cni" as const,
    env: { CNI_COMMAND: "ADD", CNI_NETNS: netns },
    stdin: "{}",
    ...(build === undefined ? {} : { build }),
  });
  const fallback = async (r: ReturnType<typeof req>) => {
    const reply = await server.serve(r);
    assert.ok("fallback" in reply, JSON.stringify(reply));
    return reply.fallback;
  };
  assert.match(await fallback(req("/proc/self/ns/net", "another build")), /another build/);
  assert.match(await fallback(req("/proc/self/ns/net", server.build)), /CNI_NETNS "\/proc\/self/);
  assert.match(await fallback(req("/var/run/netns/ebpfcni-none-here")), /CNI_NETNS/);
  assert.match(await fallback(req("relative")), /CNI_NETNS/);
});

/** The pods' addresses in ipcache_map (what a late ADD would leave behind). */
function ipcache(pinDir: string): string[] {
  using dp = openPinnedMaps(pinDir);
  assert.ok(dp, "maps pinned");
  return new IpcacheMap(dp.fd(IPCACHE_MAP)).list().map((e) => JSON.stringify(e)).sort();
}

/** Waits (a bound, not a timing assertion) until `ok()`; false if it never came. */
async function until(ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** A handed-over ADD of pod d, held up in the agent before it takes the attachment's lock
 * (as behind a slow call before it), started and waited for until the agent runs it. */
async function lateAdd(s: Setup, agent: AgentProcess, id: string, netns: string) {
  const reached = () => agent.logs().split("reached before-lock").length;
  const earlier = reached();
  const call = startPlugin({
    command: "ADD",
    containerId: id,
    netns,
    ifname: "eth0",
    args: cniArgs("d"),
    env: { EBPFCNI_FAULT: "sleep:before-lock", EBPFCNI_FAULT_SLEEP_MS: "4000" },
  }, s.config);
  const there = await until(() => reached() > earlier);
  assert.ok(there, `the agent never ran the ADD: ${agent.logs()}`);
  return call;
}

Deno.test("an ADD whose plugin process was killed (the runtime's timeout) does not complete after the runtime's DEL: no record, lease, veth or ipcache entry stays", async () => {
  await withSetup(async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      await addK8sPod(s.net, s.config, "x", "a");
      const id = containerId("pod");
      const netns = await s.net.netns();
      const before = withoutDirs(await s.net.snapshot([id], [netns]));
      const cacheBefore = ipcache(s.net.pinDir);
      const add = await lateAdd(s, agent, id, netns);
      add.kill();
      await add.reply;
      const del = await s.net.run({
        command: "DEL",
        containerId: id,
        netns,
        ifname: "eth0",
        args: cniArgs("d"),
        config: s.config,
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      // The agent is done with the ADD once it counts it.
      const done = await until(async () => handled(await agent.status(), "ADD") === 2);
      assert.ok(done, agent.logs());
      assert.deepEqual(withoutDirs(await s.net.snapshot([id], [netns])), before);
      assert.deepEqual(ipcache(s.net.pinDir), cacheBefore);
      assert.equal((await agent.status()).attachments, 1);
    } finally {
      await agent.stop();
    }
  });
});

Deno.test("a DEL that comes while a handed-over ADD of the same attachment waits wins: the ADD fails with code 11 and leaves nothing", async () => {
  await withSetup(async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      await addK8sPod(s.net, s.config, "x", "a");
      const id = containerId("pod");
      const netns = await s.net.netns();
      const before = withoutDirs(await s.net.snapshot([id], [netns]));
      const cacheBefore = ipcache(s.net.pinDir);
      const add = await lateAdd(s, agent, id, netns);
      const del = await s.net.run({
        command: "DEL",
        containerId: id,
        netns,
        ifname: "eth0",
        args: cniArgs("d"),
        config: s.config,
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      const r = await add.reply;
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.equal(r.json?.code, 11, r.stdout);
      assert.match(String(r.json?.msg), /^A DEL of container ".*" interface "eth0" came before/);
      assert.deepEqual(withoutDirs(await s.net.snapshot([id], [netns])), before);
      assert.deepEqual(ipcache(s.net.pinDir), cacheBefore);
      assert.equal((await agent.status()).attachments, 1);
    } finally {
      await agent.stop();
    }
  });
});

Deno.test("an ADD run in the process and killed while the agent waits for its pod leaves no attachment in the agent once the pod shows up after the DEL", async () => {
  await withSetup(async (s) => {
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      await addK8sPod(s.net, s.config, "x", "a");
      const id = containerId("pod");
      const netns = await s.net.netns();
      const leasesBefore = s.net.leases();
      const add = startPlugin({
        command: "ADD",
        containerId: id,
        netns,
        ifname: "eth0",
        args: cniArgs("e"), // not in the source yet
      }, { ...s.config, agentHandoff: false });
      const waiting = await until(() => agent.logs().includes("ADD waits for its pod"));
      assert.ok(waiting, agent.logs());
      // Leased before the agent is asked: the address the agent is waiting to register.
      const [leased] = s.net.leases().filter((ip) => !leasesBefore.includes(ip));
      assert.ok(leased, "the ADD leased an address");
      add.kill();
      await add.reply;
      const del = await s.net.run({
        command: "DEL",
        containerId: id,
        netns,
        ifname: "eth0",
        args: cniArgs("e"),
        config: s.config,
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      // The pod shows up while the agent still waits for it (--add-wait, 8 s).
      s.manifests.apply(podObject({ podIp: () => "198.18.0.99" }, "x", "e"));
      const attached = () => agent.logs().includes('"msg":"pod attached","pod":"x/e"');
      assert.ok(await until(attached), agent.logs());
      const st = await agent.synced();
      assert.equal(st.attachments, 1, "only a's");
      assert.deepEqual(s.net.leases(), leasesBefore);
      using dp = openPinnedMaps(s.net.pinDir);
      const entry = new IpcacheMap(dp!.fd(IPCACHE_MAP)).get(ipNum(leased));
      assert.equal(entry, undefined, `ipcache entry left for ${leased}`);
    } finally {
      await agent.stop();
    }
  });
});
