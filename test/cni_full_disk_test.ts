// A full file system under the lease or state directory: STATUS says the plugin is not
// available (code 50) rather than ready, and an ADD that fails on it says why and leaves no
// temporary file behind. The full file system is a tiny tmpfs on a temporary directory.
import assert from "node:assert/strict";
import { containerId, sh, type TestNetwork, withNetwork } from "./_cni.ts";
import { tree } from "./_robust.ts";

/** Runs `fn` with a 64 KiB tmpfs mounted at `<net.dir>/full`, filled to the last byte. */
async function withFullFs<T>(net: TestNetwork, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = `${net.dir}/full`;
  Deno.mkdirSync(dir);
  await sh("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir], { check: true });
  try {
    const file = Deno.openSync(`${dir}/fill`, { write: true, createNew: true });
    try {
      const chunk = new Uint8Array(4096);
      for (;;) file.writeSync(chunk);
    } catch (err) {
      if (!String(err).includes("No space left")) throw err;
    } finally {
      file.close();
    }
    return await fn(dir);
  } finally {
    await sh("umount", [dir], { check: true });
  }
}

/** The snapshot of what an attachment changes (the node's datapath may be loaded first). */
async function attachmentState(net: TestNetwork, ids: string[], netnses: string[]) {
  const { pins: _, pinParent: __, ...rest } = await net.snapshot(ids, netnses);
  return rest;
}

for (const which of ["dataDir", "stateDir"] as const) {
  Deno.test(`STATUS on a full ${which} exits with code 50, as the ADD after it fails`, async () => {
    await withNetwork(async (net) => {
      await withFullFs(net, async (full) => {
        const config = which === "dataDir"
          ? net.config({}, { dataDir: full })
          : net.config({ stateDir: full });
        const status = await net.run({ command: "STATUS", config });
        assert.equal(status.json?.code, 50, status.stdout + status.stderr);
        assert.match(String(status.json?.msg), /No space left on device/);
        assert.deepEqual(tree(full).filter((l) => l.includes("probe")), [], "probe left");

        const add = await net.run({
          command: "ADD",
          containerId: containerId("full"),
          netns: await net.netns(),
          ifname: "eth0",
          config,
        });
        assert.equal(add.json?.code, 5, add.stdout + add.stderr);
      });
      // The same network once there is room: ready.
      const status = await net.run({ command: "STATUS" });
      assert.equal(status.code, 0, status.stdout + status.stderr);
    });
  });
}

Deno.test("ADD on a full stateDir fails with code 5 saying why and leaves no temporary file", async () => {
  await withNetwork(async (net) => {
    await withFullFs(net, async (full) => {
      const id = containerId("full-tmp");
      const ns = await net.netns();
      const config = net.config({ stateDir: full });
      const before = await attachmentState(net, [id], [ns]);
      const r = await net.run({
        command: "ADD",
        containerId: id,
        netns: ns,
        ifname: "eth0",
        config,
      });
      assert.equal(r.json?.code, 5, r.stdout + r.stderr);
      assert.match(String(r.json?.msg), /^Cannot write state in ".*": No space left on device/);
      const left = tree(full).map((l) => l.split(":")[0]);
      assert.deepEqual(left, ["fill"], "left in the stateDir");
      assert.deepEqual(await attachmentState(net, [id], [ns]), before);
    });
  });
});
