// Two pods on one network, driven through the binary as a runtime would: addresses from the
// subnet, the gateway on the bridge, and traffic only where policy_map allows it.
import assert from "node:assert/strict";
import { allowPair, containerId, ping, pingEventually, sh, withNetwork } from "./_cni.ts";

interface Ip {
  address: string;
  gateway?: string;
  interface?: number;
}

function firstIp(result: Record<string, unknown>): Ip {
  const ips = result.ips as Ip[];
  assert.equal(ips.length, 1, JSON.stringify(result));
  return ips[0]!;
}

Deno.test("two pods get subnet addresses and talk only once both directions are allowed", async () => {
  await withNetwork(async (net) => {
    const nsA = await net.netns();
    const nsB = await net.netns();
    const idA = containerId("pod-a");
    const idB = containerId("pod-b");
    const a = await net.add(idA, nsA, { args: "EBPFCNI_IDENTITY=1001" });
    const b = await net.add(idB, nsB, { args: "EBPFCNI_IDENTITY=1002" });

    const prefix = net.subnet.replace(/\.0\/24$/, ".");
    const ipA = firstIp(a);
    const ipB = firstIp(b);
    for (const ip of [ipA, ipB]) {
      assert.ok(ip.address.startsWith(prefix) && ip.address.endsWith("/24"), ip.address);
      assert.notEqual(ip.address, `${net.gateway}/24`);
      assert.equal(ip.gateway, net.gateway);
    }
    assert.notEqual(ipA.address, ipB.address);
    const addrA = ipA.address.split("/")[0]!;
    const addrB = ipB.address.split("/")[0]!;

    // The result's ip points at the container interface, which carries the sandbox.
    const ifaces = a.interfaces as { name: string; sandbox?: string }[];
    assert.equal(ifaces[ipA.interface!]?.name, "eth0");
    assert.equal(ifaces[ipA.interface!]?.sandbox, nsA);

    // The gateway is on the bridge, and both pods are registered with their identities.
    const br = await sh("ip", ["-j", "addr", "show", "dev", net.bridge], { check: true });
    const brAddrs = JSON.parse(br.stdout)[0].addr_info.map((
      x: { local: string; prefixlen: number },
    ) => `${x.local}/${x.prefixlen}`);
    assert.ok(brAddrs.includes(`${net.gateway}/24`), JSON.stringify(brAddrs));
    assert.deepEqual(await net.endpointIps(), { [addrA]: 1001, [addrB]: 1002 });
    // The address is really on eth0 inside the pod.
    const inA = await sh("ip", ["-n", nsA.split("/").pop()!, "-j", "addr", "show", "dev", "eth0"], {
      check: true,
    });
    assert.match(inA.stdout, new RegExp(`"local":"${addrA.replaceAll(".", "\\.")}"`));

    // Default deny: no rule, no traffic, either way.
    assert.equal(await ping(nsA, addrB), false, "A reached B without a rule");
    assert.equal(await ping(nsB, addrA), false, "B reached A without a rule");

    // One direction only is still not enough for a request/reply protocol.
    await allowPair(net.pinDir, 1001, 1002);
    assert.equal(await ping(nsA, addrB), false, "A reached B with only A->B allowed");

    await allowPair(net.pinDir, 1002, 1001);
    assert.equal(
      await pingEventually(nsA, addrB),
      true,
      "A cannot reach B with both directions allowed",
    );
    assert.equal(
      await pingEventually(nsB, addrA),
      true,
      "B cannot reach A with both directions allowed",
    );

    for (const [id, ns] of [[idA, nsA], [idB, nsB]] as const) {
      const del = await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth0" });
      assert.equal(del.code, 0, del.stdout);
    }
    assert.deepEqual(net.leases(), []);
    assert.deepEqual(await net.endpointIps(), {});
    assert.deepEqual(await net.bridgePorts(), []);
  });
});
