// DEL is idempotent and best effort: twice, with the netns gone, after a failed ADD, and as
// podman/containerd send it (with the cached ADD result as prevResult), it exits 0 and leaves
// no lease, host veth, endpoint entry or state file behind.
import assert from "node:assert/strict";
import { containerId, linkExists, sh, type TestNetwork, withNetwork } from "./_cni.ts";

async function assertNothingLeft(net: TestNetwork, containerId: string): Promise<void> {
  assert.deepEqual(net.leases(), [], "lease left");
  assert.deepEqual(await net.endpointIps(), {}, "endpoint entry left");
  assert.equal(await linkExists(net.hostVeth(containerId)), false, "host veth left");
  assert.deepEqual(await net.bridgePorts(), [], "bridge port left");
  assert.deepEqual(net.stateFiles(), [], "state file left");
}

async function assertAdded(net: TestNetwork, containerId: string): Promise<void> {
  assert.equal(net.leases().length, 1);
  assert.equal(Object.keys(await net.endpointIps()).length, 1);
  assert.equal(await linkExists(net.hostVeth(containerId)), true);
}

Deno.test("DEL twice: both exit 0 and the second finds nothing to do", async () => {
  await withNetwork(async (net) => {
    const id = containerId("del-twice");
    const ns = await net.netns();
    await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
    await assertAdded(net, id);
    for (let i = 0; i < 2; i++) {
      const r = await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth0" });
      assert.equal(r.code, 0, `DEL #${i + 1}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, "");
      await assertNothingLeft(net, id);
    }
    // The container side went with the pair.
    assert.equal(await linkExists("eth0", ns.split("/").pop()), false);
  });
});

Deno.test("DEL after the netns was deleted cleans up, with or without CNI_NETNS", async () => {
  await withNetwork(async (net) => {
    for (const withNetnsVar of [true, false]) {
      const id = containerId(`del-gone-${withNetnsVar ? "ns" : "nons"}`);
      const ns = await net.netns();
      await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
      await assertAdded(net, id);
      await sh("ip", ["netns", "del", ns.split("/").pop()!], { check: true });
      const r = await net.run({
        command: "DEL",
        containerId: id,
        ifname: "eth0",
        ...(withNetnsVar ? { netns: ns } : {}),
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      await assertNothingLeft(net, id);
    }
  });
});

for (const point of ["after-lease", "after-veth", "after-endpoint"]) {
  Deno.test(`DEL after an ADD that failed ${point} exits 0 and leaves nothing`, async () => {
    await withNetwork(async (net) => {
      const id = containerId("del-failed");
      const ns = await net.netns();
      const add = await net.run({
        command: "ADD",
        containerId: id,
        netns: ns,
        ifname: "eth0",
        env: { EBPFCNI_FAULT: `fail:${point}` },
      });
      assert.notEqual(add.code, 0, add.stdout);
      // The runtime always follows a failed ADD with a DEL.
      const del = await net.run({
        command: "DEL",
        containerId: id,
        netns: ns,
        ifname: "eth0",
      });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      await assertNothingLeft(net, id);
    });
  });
}

Deno.test("DEL with an ADD that failed before creating anything (bad netns) exits 0", async () => {
  await withNetwork(async (net) => {
    const id = containerId("del-nons");
    const missing = `/var/run/netns/tns-missing-${net.name}`;
    const add = await net.run({
      command: "ADD",
      containerId: id,
      netns: missing,
      ifname: "eth0",
    });
    assert.equal(add.json?.code, 4, add.stdout);
    const del = await net.run({
      command: "DEL",
      containerId: id,
      netns: missing,
      ifname: "eth0",
    });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    await assertNothingLeft(net, id);
  });
});

Deno.test("DEL as podman/containerd send it (prevResult, live CNI_NETNS) cleans up", async () => {
  await withNetwork(async (net) => {
    const keepId = containerId("del-keep");
    const id = containerId("del-prev");
    const nsKeep = await net.netns();
    const keep = await net.add(keepId, nsKeep, { args: "EBPFCNI_IDENTITY=1002" });
    const keepIp = (keep.ips as { address: string }[])[0]!.address.split("/")[0]!;

    const ns = await net.netns();
    const args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;EBPFCNI_IDENTITY=1001";
    const prevResult = await net.add(id, ns, { args });
    const ip = (prevResult.ips as { address: string }[])[0]!.address.split("/")[0]!;
    assert.deepEqual(await net.endpointIps(), { [ip]: 1001, [keepIp]: 1002 });

    const r = await net.run({
      command: "DEL",
      containerId: id,
      netns: ns,
      ifname: "eth0",
      args,
      config: net.config({ prevResult }),
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(await linkExists(net.hostVeth(id)), false);
    assert.equal(await linkExists("eth0", ns.split("/").pop()), false);
    assert.deepEqual(net.leases(), [keepIp]);
    assert.deepEqual(await net.endpointIps(), { [keepIp]: 1002 });
    assert.deepEqual(net.stateFiles(), [`${keepId}_eth0.json`]);
    // The other pod is untouched.
    const check = await net.check(keepId, nsKeep, keep);
    assert.equal(check.code, 0, check.stdout);
  });
});

Deno.test("DEL succeeds and releases the lease when the config's ranges are now invalid", async () => {
  await withNetwork(async (net) => {
    const id = containerId("del-badrange");
    const ns = await net.netns();
    await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
    const r = await net.run({
      command: "DEL",
      containerId: id,
      netns: ns,
      ifname: "eth0",
      config: net.config({}, { subnet: "not-a-subnet" }),
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await assertNothingLeft(net, id);
  });
});

Deno.test("DEL succeeds when the pinned datapath is gone (bpffs wiped)", async () => {
  await withNetwork(async (net) => {
    const id = containerId("del-nopins");
    const ns = await net.netns();
    await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
    Deno.removeSync(net.pinDir, { recursive: true });
    const r = await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth0" });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(net.leases(), []);
    assert.deepEqual(net.stateFiles(), []);
    assert.equal(await linkExists(net.hostVeth(id)), false);
    // DEL must not load the datapath again just to find nothing in it.
    assert.throws(() => Deno.statSync(net.pinDir), Deno.errors.NotFound);
  });
});
