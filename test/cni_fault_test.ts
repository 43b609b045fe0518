// A failure late in ADD is rolled back completely: the runtime sees the error JSON on stdout
// and a non-zero exit, and the host has no lease, host veth, endpoint entry or state file.
import assert from "node:assert/strict";
import { containerId, linkExists, withNetwork } from "./_cni.ts";
import { FAULT_POINTS } from "../src/cni/fault.ts";

// Every fault point ADD has, the late ones (after-lease, after-veth, after-endpoint) included.
for (const point of FAULT_POINTS) {
  Deno.test(`ADD failing ${point} reports the error and rolls everything back`, async () => {
    await withNetwork(async (net) => {
      // A pod that is already there must survive the rollback of the failed one.
      const keepId = containerId("fault-keep");
      const podId = containerId("fault-pod");
      const nsKeep = await net.netns();
      const keep = await net.add(keepId, nsKeep, { args: "EBPFCNI_IDENTITY=1002" });
      const keepIp = (keep.ips as { address: string }[])[0]!.address.split("/")[0]!;

      const ns = await net.netns();
      const r = await net.run({
        command: "ADD",
        containerId: podId,
        netns: ns,
        ifname: "eth0",
        args: "EBPFCNI_IDENTITY=1001",
        env: { EBPFCNI_FAULT: `fail:${point}` },
      });
      assert.notEqual(r.code, 0);
      assert.ok(r.json, `stdout is not JSON: ${r.stdout}`);
      assert.equal(r.json.cniVersion, "1.1.0");
      assert.equal(typeof r.json.code, "number");
      assert.notEqual(r.json.code, 0);
      assert.match(String(r.json.msg), new RegExp(point));
      assert.equal("ips" in r.json, false);

      assert.deepEqual(net.leases(), [keepIp], "lease left");
      assert.equal(await linkExists(net.hostVeth(podId)), false, "host veth left");
      assert.equal(await linkExists("eth0", ns.split("/").pop()), false, "container veth left");
      assert.deepEqual(await net.endpointIps(), { [keepIp]: 1002 }, "endpoint entry left");
      assert.deepEqual(net.stateFiles(), [`${keepId}_eth0.json`], "state file left");
      assert.deepEqual(await net.bridgePorts(), [net.hostVeth(keepId)]);

      // The same attachment can be added afterwards, as the runtime's retry would.
      const retry = await net.add(podId, ns, { args: "EBPFCNI_IDENTITY=1001" });
      const ip = (retry.ips as { address: string }[])[0]!.address.split("/")[0]!;
      assert.deepEqual(await net.endpointIps(), { [ip]: 1001, [keepIp]: 1002 });
    });
  });
}
