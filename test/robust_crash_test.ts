// Crash mid-ADD: the plugin is killed with SIGKILL while it stops at a fault point, so none of
// its rollback runs. Whatever it had done by then must be undone by (a) a DEL of the same
// attachment or (b) a GC whose valid-attachments list is empty, leaving no lease, host veth,
// container veth, endpoint entry, tc attachment or state file; and a new ADD for the same
// container must then succeed.
import assert from "node:assert/strict";
import { sh, type TestNetwork } from "./_cni.ts";
import {
  addAndKillAt,
  endpointIps,
  hostVethName,
  linkExists,
  netnsLinks,
  pinnedProgId,
  resultIp,
  stateFiles,
  tcAttachments,
  withCheckedNetwork,
} from "./_robust.ts";

const CID = "crash-pod";
const IDENTITY = 4242;
const POINTS = ["after-lease", "after-veth", "after-attach", "after-endpoint"] as const;
type Point = typeof POINTS[number];

/** Asserts what a killed ADD left behind, so each case is known to have something to undo. */
async function assertLeftovers(net: TestNetwork, netns: string, point: Point): Promise<void> {
  const veth = hostVethName(CID, "eth0");
  const leases = net.leases();
  assert.equal(leases.length, 1, `the killed ADD holds no lease at ${point}`);
  assert.deepEqual(stateFiles(net), [`${CID}_eth0.json`], `no state file at ${point}`);
  const after = POINTS.indexOf(point);
  if (after >= POINTS.indexOf("after-veth")) {
    assert.ok(await linkExists(veth), `no host veth at ${point}`);
    assert.ok((await netnsLinks(netns)).includes("eth0"), `no container veth at ${point}`);
  }
  if (after >= POINTS.indexOf("after-attach")) {
    const prog = await pinnedProgId(net);
    assert.ok(
      (await tcAttachments()).some((t) => t.devname === veth && t.id === prog),
      `classifier not attached at ${point}`,
    );
  }
  if (after >= POINTS.indexOf("after-endpoint")) {
    assert.equal((await endpointIps(net)).get(leases[0]!), IDENTITY, `no endpoint at ${point}`);
  }
}

/** Nothing of the attachment is left: no lease, links, tc attachment, endpoint, state. */
async function assertClean(net: TestNetwork, netns: string, how: string): Promise<void> {
  const veth = hostVethName(CID, "eth0");
  assert.deepEqual(net.leases(), [], `lease left after ${how}`);
  assert.equal(await linkExists(veth), false, `host veth left after ${how}`);
  assert.deepEqual(await netnsLinks(netns), ["lo"], `container link left after ${how}`);
  assert.deepEqual(await net.bridgePorts(), [], `bridge port left after ${how}`);
  const prog = await pinnedProgId(net);
  assert.ok(prog !== undefined, "the datapath pins went away");
  assert.deepEqual(
    (await tcAttachments()).filter((t) => t.devname === veth || t.id === prog),
    [],
    `tc attachment left after ${how}`,
  );
  assert.deepEqual([...(await endpointIps(net))], [], `endpoint entry left after ${how}`);
  assert.deepEqual(stateFiles(net), [], `state file left after ${how}`);
}

async function cleanUpWith(
  net: TestNetwork,
  netns: string,
  how: "DEL" | "GC",
): Promise<void> {
  const r = how === "DEL"
    ? await net.run({ command: "DEL", containerId: CID, netns, ifname: "eth0" })
    : await net.run({
      command: "GC",
      config: net.config({ "cni.dev/valid-attachments": [] }),
    });
  assert.equal(r.code, 0, `${how} failed: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout.trim(), "", `${how} printed a result`);
}

for (const point of POINTS) {
  for (const how of ["DEL", "GC"] as const) {
    Deno.test(`ADD killed ${point}: ${how} removes everything, then ADD succeeds`, async () => {
      await withCheckedNetwork(async (net) => {
        const netns = await net.netns();
        const call = {
          command: "ADD",
          containerId: CID,
          netns,
          ifname: "eth0",
          args: `EBPFCNI_IDENTITY=${IDENTITY}`,
        };
        await addAndKillAt(net, call, point);
        await assertLeftovers(net, netns, point);

        await cleanUpWith(net, netns, how);
        await assertClean(net, netns, how);
        // Cleaning up is idempotent: a second run finds nothing and still succeeds.
        await cleanUpWith(net, netns, how);
        await assertClean(net, netns, `a second ${how}`);

        const r = await net.run(call);
        assert.equal(r.code, 0, `ADD after ${how} failed: ${r.stdout}${r.stderr}`);
        const ip = resultIp(r.json);
        assert.deepEqual(net.leases(), [ip]);
        assert.deepEqual([...(await endpointIps(net))], [[ip, IDENTITY]]);
        assert.deepEqual(await net.bridgePorts(), [hostVethName(CID, "eth0")]);
        assert.deepEqual(await netnsLinks(netns), ["eth0", "lo"]);
        assert.deepEqual(stateFiles(net), [`${CID}_eth0.json`]);

        await cleanUpWith(net, netns, "DEL");
        await assertClean(net, netns, "the final DEL");
      });
    });
  }
}

Deno.test("ADD killed next to a live pod: DEL removes only the killed pod's things", async () => {
  await withCheckedNetwork(async (net) => {
    const liveNs = await net.netns();
    const live = await net.run({
      command: "ADD",
      containerId: "crash-neighbour",
      netns: liveNs,
      ifname: "eth0",
      args: "EBPFCNI_IDENTITY=4343",
    });
    assert.equal(live.code, 0, `ADD of the neighbour failed: ${live.stdout}${live.stderr}`);
    const liveIp = resultIp(live.json);
    const liveVeth = hostVethName("crash-neighbour", "eth0");

    const netns = await net.netns();
    const call = { command: "ADD", containerId: CID, netns, ifname: "eth0" };
    await addAndKillAt(net, { ...call, args: `EBPFCNI_IDENTITY=${IDENTITY}` }, "after-endpoint");
    assert.equal(net.leases().length, 2);

    const r = await net.run({ ...call, command: "DEL" });
    assert.equal(r.code, 0, `DEL failed: ${r.stdout}${r.stderr}`);
    assert.deepEqual(net.leases(), [liveIp]);
    assert.deepEqual([...(await endpointIps(net))], [[liveIp, 4343]]);
    assert.deepEqual(await net.bridgePorts(), [liveVeth]);
    assert.deepEqual(await netnsLinks(netns), ["lo"]);
    assert.deepEqual(await netnsLinks(liveNs), ["eth0", "lo"]);
    assert.deepEqual(stateFiles(net), ["crash-neighbour_eth0.json"]);
    const prog = await pinnedProgId(net);
    assert.deepEqual(
      (await tcAttachments()).filter((t) => t.id === prog).map((t) => t.devname),
      [liveVeth],
    );
  });
});

Deno.test("ADD killed after-attach, netns gone: DEL without CNI_NETNS removes everything", async () => {
  await withCheckedNetwork(async (net) => {
    const netns = await net.netns();
    const call = {
      command: "ADD",
      containerId: CID,
      netns,
      ifname: "eth0",
      args: `EBPFCNI_IDENTITY=${IDENTITY}`,
    };
    await addAndKillAt(net, call, "after-attach");
    await assertLeftovers(net, netns, "after-attach");

    // The runtime tore the sandbox down before it got to DEL: no netns to pass.
    const name = netns.split("/").pop()!;
    await sh("ip", ["netns", "del", name], { check: true });
    const r = await net.run({ command: "DEL", containerId: CID, ifname: "eth0" });
    assert.equal(r.code, 0, `DEL failed: ${r.stdout}${r.stderr}`);
    const veth = hostVethName(CID, "eth0");
    assert.deepEqual(net.leases(), []);
    assert.equal(await linkExists(veth), false);
    assert.deepEqual(await net.bridgePorts(), []);
    assert.deepEqual([...(await endpointIps(net))], []);
    assert.deepEqual(stateFiles(net), []);

    const fresh = await net.netns();
    const again = await net.run({ ...call, netns: fresh });
    assert.equal(again.code, 0, `ADD after DEL failed: ${again.stdout}${again.stderr}`);
    assert.equal((await net.run({ ...call, command: "DEL", netns: fresh })).code, 0);
    assert.deepEqual(net.leases(), []);
  });
});
