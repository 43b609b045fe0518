// ADD edge cases found while testing: a duplicate ADD of a live attachment is refused without
// tearing down the attachment it duplicates.
import assert from "node:assert/strict";
import { containerId, withNetwork } from "./_cni.ts";

Deno.test("a duplicate ADD is refused with code 4 and leaves the live attachment intact", async () => {
  await withNetwork(async (net) => {
    const id = containerId("dup");
    const ns = await net.netns();
    const first = await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
    const ip = (first.ips as { address: string }[])[0]!.address.split("/")[0]!;
    const before = await net.snapshot([id], [ns]);
    assert.deepEqual(before.leases, [ip]);
    assert.deepEqual(before.state, [`${id}_eth0.json`]);

    const again = await net.run({
      command: "ADD",
      containerId: id,
      netns: ns,
      ifname: "eth0",
      args: "EBPFCNI_IDENTITY=1001",
    });
    assert.equal(again.json?.code, 4, again.stdout);
    assert.match(String(again.json?.msg), /eth0.*already exists/);
    // Its rollback must not release the first ADD's lease or drop its state record: the
    // address would be handed out twice and DEL could no longer find the endpoint entry.
    assert.deepEqual(await net.snapshot([id], [ns]), before);

    const check = await net.check(id, ns, first);
    assert.equal(check.code, 0, check.stdout);
    // A second pod still gets a different address.
    const other = await net.add(containerId("dup-other"), await net.netns());
    assert.notEqual((other.ips as { address: string }[])[0]!.address, `${ip}/24`);
  });
});

Deno.test("an ADD of an attachment live in another netns is refused and takes nothing over", async () => {
  await withNetwork(async (net) => {
    const id = containerId("moved");
    const ns = await net.netns();
    const first = await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
    const before = await net.snapshot([id], [ns]);

    const elsewhere = await net.netns();
    const again = await net.run({
      command: "ADD",
      containerId: id,
      netns: elsewhere,
      ifname: "eth0",
    });
    assert.equal(again.json?.code, 4, again.stdout);
    assert.match(String(again.json?.msg), /already attached/);
    // The live pod keeps its host veth, lease, state record and endpoint entry.
    assert.deepEqual(await net.snapshot([id], [ns]), before);
    const check = await net.check(id, ns, first);
    assert.equal(check.code, 0, check.stdout);
  });
});
