// Two networks on one pin directory share its endpoint_map: an ADD on a network whose subnet
// holds another network's pod there is refused (code 7, naming that network) before it
// changes anything, where it used to overwrite the other pod's entry.
import assert from "node:assert/strict";
import { containerId, TestNetwork, withNetwork } from "./_cni.ts";
import { resultIp } from "./_robust.ts";

/** A second network on `net`'s pin and state directories, with `subnet`. */
async function withSecondNetwork<T>(
  net: TestNetwork,
  subnet: string,
  fn: (other: TestNetwork, config: Record<string, unknown>) => Promise<T>,
): Promise<T> {
  const other = new TestNetwork();
  try {
    const config = other.config({ pinDir: net.pinDir, stateDir: net.stateDir }, { subnet });
    return await fn(other, config);
  } finally {
    await other.cleanup();
  }
}

for (const how of ["the same subnet", "an overlapping subnet"] as const) {
  Deno.test(`a second network with ${how} on the same pin dir: its ADD is refused with code 7 naming the first`, async () => {
    await withNetwork(async (net) => {
      const first = resultIp(
        await net.add(containerId("ovl-a"), await net.netns(), {
          args: "EBPFCNI_IDENTITY=1001",
        }),
      );
      const subnet = how === "the same subnet"
        ? net.subnet
        : `${net.subnetBase}.${net.subnetOctet}.0/25`;
      await withSecondNetwork(net, subnet, async (other, config) => {
        const id = containerId("ovl-b");
        const ns = await other.netns();
        const before = await other.snapshot([id], [ns]);
        const r = await other.run({
          command: "ADD",
          containerId: id,
          netns: ns,
          ifname: "eth0",
          args: "EBPFCNI_IDENTITY=2002",
          config,
        });
        assert.equal(r.json?.code, 7, r.stdout + r.stderr);
        assert.match(
          String(r.json?.msg),
          new RegExp(
            `^Network "${net.name}" has a pod on pin directory "${net.pinDir}" in ${
              subnet.replaceAll(".", "\\.")
            } \\(${first.replaceAll(".", "\\.")}\\), an address of network "${other.name}"`,
          ),
        );
        assert.deepEqual(await other.snapshot([id], [ns]), before);
        assert.deepEqual(await net.endpointIps(), { [first]: 1001 });
      });
    });
  });
}

Deno.test("ADD on a disjoint subnet on the same pin dir works beside the other network's pods", async () => {
  await withNetwork(async (net) => {
    const first = resultIp(
      await net.add(containerId("ovl-a"), await net.netns(), {
        args: "EBPFCNI_IDENTITY=1001",
      }),
    );
    const subnet = `${net.subnetBase}.${(net.subnetOctet + 1) % 256}.0/24`;
    await withSecondNetwork(net, subnet, async (other, config) => {
      const second = resultIp(
        await other.add(containerId("ovl-b"), await other.netns(), {
          args: "EBPFCNI_IDENTITY=2002",
          config,
        }),
      );
      assert.deepEqual(await net.endpointIps(), { [first]: 1001, [second]: 2002 });
    });
  });
});
