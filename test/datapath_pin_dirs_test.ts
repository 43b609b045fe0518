// Networks on different pin directories keep their own datapaths: loading one (its first ADD)
// moves only veths running that pin directory's older programs, never another network's.
import assert from "node:assert/strict";
import { containerId, TestNetwork, withNetwork } from "./_cni.ts";
import { pinnedProgId, tcAttachments } from "./_robust.ts";

Deno.test("loading a second pin directory leaves the first one's veths on their own programs", async () => {
  await withNetwork(async (first) => {
    const a = containerId("pins-a");
    await first.add(a, await first.netns(), { args: "EBPFCNI_IDENTITY=1001" });
    const firstProg = await pinnedProgId(first);
    const on = async (veth: string) => (await tcAttachments()).find((t) => t.devname === veth)?.id;
    assert.equal(await on(first.hostVeth(a)), firstProg);

    const second = new TestNetwork();
    try {
      const b = containerId("pins-b");
      await second.add(b, await second.netns(), { args: "EBPFCNI_IDENTITY=1002" });
      const secondProg = await pinnedProgId(second);
      assert.notEqual(secondProg, firstProg);
      assert.equal(await on(second.hostVeth(b)), secondProg);
      assert.equal(await on(first.hostVeth(a)), firstProg, "the first network's veth was moved");
    } finally {
      await second.cleanup();
    }
  });
});
