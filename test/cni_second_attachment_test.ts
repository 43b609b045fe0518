// A second attachment of one pod on the same network (another interface), as the reference
// bridge plugin handles it: each interface gets its addresses and its own default route, and
// CHECK passes for both, before and after the other one is deleted.
import assert from "node:assert/strict";
import { containerId, sh, type TestNetwork, withNetwork } from "./_cni.ts";

function checkOf(net: TestNetwork, id: string, ns: string, ifname: string, prev: unknown) {
  return net.run({
    command: "CHECK",
    containerId: id,
    netns: ns,
    ifname,
    config: net.config({ prevResult: prev }),
  });
}

async function defaultRoutes(ns: string): Promise<string[]> {
  const r = await sh("ip", ["-n", ns.split("/").pop()!, "-j", "-4", "route", "show", "default"], {
    check: true,
  });
  return (JSON.parse(r.stdout) as { dev: string }[]).map((x) => x.dev).sort();
}

Deno.test("a second interface of a pod on the same network gets its own default route and passes CHECK", async () => {
  await withNetwork(async (net) => {
    const id = containerId("two-if");
    const ns = await net.netns();
    const first = await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
    const second = await net.add(id, ns, { ifname: "eth1", args: "EBPFCNI_IDENTITY=1001" });
    assert.deepEqual(await defaultRoutes(ns), ["eth0", "eth1"]);
    for (const [ifname, prev] of [["eth0", first], ["eth1", second]] as const) {
      const r = await checkOf(net, id, ns, ifname, prev);
      assert.equal(r.code, 0, `CHECK ${ifname}: ${r.stdout}${r.stderr}`);
    }

    const del = await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth1" });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await defaultRoutes(ns), ["eth0"]);
    const r = await checkOf(net, id, ns, "eth0", first);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(net.leases().length, 1);
  });
});
