// The plugin and the reference host-local binary share one lease directory at the plugin
// level: full ADD/DEL of ebpfcni interleaved with host-local on the same network name and
// dataDir never hand out one address twice, and each releases what the other leased.
// (Unit-level store interop is in ipam_hostlocal_interop_test.ts.)
import assert from "node:assert/strict";
import {
  containerId,
  HOST_LOCAL,
  linkExists,
  runBinary,
  type TestNetwork,
  withNetwork,
} from "./_cni.ts";

const missing = (() => {
  try {
    return !Deno.statSync(HOST_LOCAL).isFile;
  } catch {
    return true;
  }
})();
const opts = { ignore: missing };

function addressOf(result: Record<string, unknown> | undefined): string {
  const ips = result?.ips as { address: string }[] | undefined;
  assert.ok(ips?.length === 1, JSON.stringify(result));
  return ips[0]!.address.split("/")[0]!;
}

async function hostLocalAdd(net: TestNetwork, id: string): Promise<string> {
  const r = await net.hostLocal("ADD", id);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return addressOf(r.json);
}

Deno.test("host-local ADD after an ebpfcni ADD gets a different address", opts, async () => {
  await withNetwork(async (net) => {
    const ours = addressOf(await net.add(containerId("ours"), await net.netns()));
    const theirs = await hostLocalAdd(net, containerId("theirs"));
    assert.notEqual(theirs, ours);
    assert.deepEqual(net.leases(), [ours, theirs].sort());
  });
});

Deno.test("ebpfcni ADD after a host-local ADD gets a different address", opts, async () => {
  await withNetwork(async (net) => {
    const theirs = await hostLocalAdd(net, containerId("theirs"));
    const id = containerId("ours");
    const ns = await net.netns();
    const ours = addressOf(await net.add(id, ns, { args: "EBPFCNI_IDENTITY=5001" }));
    assert.notEqual(ours, theirs);
    assert.deepEqual(net.leases(), [ours, theirs].sort());
    // Only our pod is registered: host-local's lease is not an endpoint of ours.
    assert.deepEqual(await net.endpointIps(), { [ours]: 5001 });

    // Our DEL releases our lease only.
    const del = await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth0" });
    assert.equal(del.code, 0, del.stdout);
    assert.deepEqual(net.leases(), [theirs]);
  });
});

Deno.test("host-local DEL releases a lease that ebpfcni ADD made", opts, async () => {
  await withNetwork(async (net) => {
    const id = containerId("ours");
    const ns = await net.netns();
    const ours = addressOf(await net.add(id, ns));
    assert.deepEqual(net.leases(), [ours]);
    // host-local recognises the attachment as the owner of our lease file.
    assert.equal((await net.hostLocal("CHECK", id)).code, 0);

    const del = await net.hostLocal("DEL", id);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(net.leases(), []);

    // Our DEL afterwards cleans up the rest and does not mind the missing lease.
    const ourDel = await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth0" });
    assert.equal(ourDel.code, 0, ourDel.stdout);
    assert.equal(await linkExists(net.hostVeth(id)), false);
    assert.deepEqual(await net.endpointIps(), {});
  });
});

Deno.test(
  "after ebpfcni DEL releases its lease, host-local can take the address",
  opts,
  async () => {
    await withNetwork(async (net) => {
      const id = containerId("ours");
      const ns = await net.netns();
      const ours = addressOf(await net.add(id, ns));
      const del = await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth0" });
      assert.equal(del.code, 0, del.stdout);
      assert.deepEqual(net.leases(), []);

      // host-local continues round-robin after the last reserved address, so ask for ours.
      const r = await runHostLocalWithIp(net, containerId("theirs"), ours);
      assert.equal(r, ours);
      assert.deepEqual(net.leases(), [ours]);
    });
  },
);

async function runHostLocalWithIp(net: TestNetwork, id: string, ip: string): Promise<string> {
  const r = await runBinary(HOST_LOCAL, {
    command: "ADD",
    containerId: id,
    ifname: "eth0",
    netns: "/proc/self/ns/net",
    args: `IgnoreUnknown=1;IP=${ip}`,
  }, net.config({}, {}, "1.0.0"));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return addressOf(r.json);
}
