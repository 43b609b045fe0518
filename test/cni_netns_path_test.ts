// CNI_NETNS paths that are not a pod's network namespace, in the process and through the
// agent alike: a FIFO is refused at once (opening it must not block the agent's thread, and
// with it every other call), and the node's own namespace, however the path dresses it up
// (`..` to /proc/self/ns/net, a named netns of the host's, the caller's own), is refused with
// code 4 and gets no interface.
import assert from "node:assert/strict";
import { containerId, rand, sh } from "./_cni.ts";
import { linkExists, startPlugin } from "./_robust.ts";
import { type K8sSetup, startAgent, withK8sSetup } from "./_agent.ts";

const cniArgs = (name: string) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=${name}`;

/** No routes: an ADD that wrongly runs in the node's namespace must not touch its routes. */
const configOf = (s: K8sSetup, handoff: boolean) => ({
  ...s.config,
  agentHandoff: handoff,
  ipam: { ...s.config.ipam as Record<string, unknown>, routes: [] },
});

const MODES = [["in the process", false], ["through the agent", true]] as const;

Deno.test("ADD with CNI_NETNS a FIFO fails at once with code 4, in the process and through the agent, and the agent keeps answering", async () => {
  await withK8sSetup(["a"], async (s) => {
    const fifo = `${s.net.dir}/fifo`;
    await sh("mkfifo", [fifo], { check: true });
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    try {
      await agent.synced();
      for (const [mode, handoff] of MODES) {
        const id = containerId("pod");
        // The bound only keeps a hang from hanging the suite (a hung call is a failure).
        const add = startPlugin(
          {
            command: "ADD",
            containerId: id,
            netns: fifo,
            ifname: "eth0",
            args: cniArgs("a"),
          },
          configOf(s, handoff),
          { bound: 30_000 },
        );
        const r = await add.reply;
        assert.equal(add.killed(), false, `${mode}: the ADD hung on the FIFO`);
        assert.equal(r.code, 1, `${mode}: ${r.stdout}${r.stderr}`);
        assert.equal(r.json?.code, 4, `${mode}: ${r.stdout}`);
        assert.equal(r.json?.msg, `CNI_NETNS "${fifo}" is not a network namespace`, mode);
        const st = await agent.status();
        assert.equal(st.attachments, 0, mode);
      }
      assert.equal((await agent.status()).cni?.handled.ADD, 1, "the agent ran the second");
      assert.deepEqual(s.net.leases(), []);
    } finally {
      // A reader stuck in open(2) on the FIFO is let go by a writer.
      await sh("timeout", ["2", "sh", "-c", `: > ${fifo}`]);
      await agent.stop();
    }
  });
});

Deno.test("ADD with CNI_NETNS naming the node's own namespace (behind .., as a named netns, the caller's own) is refused with code 4 and creates no interface on the node", async () => {
  await withK8sSetup(["a"], async (s) => {
    // The namespace of this test (the node's) under a name, as `ip netns add` would make one.
    const hostName = `tns-${rand()}`;
    await sh("ip", ["netns", "attach", hostName, String(Deno.pid)], { check: true });
    const podNs = await s.net.netns();
    const podName = podNs.split("/").pop()!;
    const agent = await startAgent(s.net, { manifests: s.manifests.dir });
    const ids: string[] = [];
    const ifname = `tx${rand(5)}`;
    try {
      await agent.synced();
      // Whose namespace it is found to be: in the process, and through the agent.
      const cases: { netns: string; wrap?: string[]; whose: [string, string] }[] = [
        // Resolved, a /proc path: the agent declines it, the process refuses it.
        { netns: "/var/run/netns/../../../proc/self/ns/net", whose: ["plugin's", "plugin's"] },
        { netns: `/var/run/netns/${hostName}`, whose: ["plugin's", "policy agent's"] },
        // The plugin runs in the pod's namespace and names it: the caller's own.
        { netns: podNs, wrap: ["ip", "netns", "exec", podName], whose: ["plugin's", "caller's"] },
      ];
      for (const c of cases) {
        for (const [n, [mode, handoff]] of MODES.entries()) {
          const id = containerId("pod");
          ids.push(id);
          const add = startPlugin(
            {
              command: "ADD",
              containerId: id,
              netns: c.netns,
              ifname,
              args: cniArgs("a"),
            },
            configOf(s, handoff),
            { bound: 30_000, ...(c.wrap ? { wrap: c.wrap } : {}) },
          );
          const r = await add.reply;
          const what = `${c.netns} ${mode}`;
          assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
          assert.equal(r.json?.code, 4, `${what}: ${r.stdout}`);
          assert.equal(
            r.json?.msg,
            `CNI_NETNS "${c.netns}" is the ${c.whose[n]} own network namespace, not a pod's`,
            what,
          );
          assert.equal(await linkExists(ifname), false, `${what}: ${ifname} made on the node`);
          assert.equal(await linkExists(s.net.hostVeth(id, ifname)), false, what);
        }
      }
      assert.deepEqual(s.net.leases(), []);
      assert.equal((await agent.status()).attachments, 0);
    } finally {
      for (const id of ids) {
        await s.net.run({ command: "DEL", containerId: id, netns: "", ifname, config: s.config });
      }
      await sh("ip", ["link", "del", ifname]);
      await sh("ip", ["netns", "del", hostName]);
      await agent.stop();
    }
  });
});
