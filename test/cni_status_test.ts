// STATUS (spec 1.1): ready (exit 0, no output) when the datapath can be pinned and the lease
// store is usable; otherwise code 50, so the runtime stops sending ADDs.
import assert from "node:assert/strict";
import { containerId, withNetwork } from "./_cni.ts";

Deno.test("STATUS on a good network exits 0 with no output, before and after pods exist", async () => {
  await withNetwork(async (net) => {
    const first = await net.run({ command: "STATUS" });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(first.stdout, "");
    await net.add(containerId("st"), await net.netns(), { args: "EBPFCNI_IDENTITY=8001" });
    const endpoints = await net.endpointIps();
    const second = await net.run({ command: "STATUS" });
    assert.equal(second.code, 0, second.stdout + second.stderr);
    // STATUS reuses the pinned datapath: the live pod's registration survives it.
    assert.deepEqual(await net.endpointIps(), endpoints);
    assert.equal(Object.keys(endpoints).length, 1);
  });
});

Deno.test("STATUS with a pinDir that is not on bpffs exits with code 50", async () => {
  await withNetwork(async (net) => {
    const pinDir = `${net.dir}/not-bpffs/pins`;
    const r = await net.run({ command: "STATUS", config: net.config({ pinDir }) });
    assert.notEqual(r.code, 0);
    assert.equal(r.json?.code, 50, r.stdout + r.stderr);
    assert.equal(r.json?.cniVersion, "1.1.0");
    assert.match(String(r.json?.msg), /not ready|bpf/i);
    // Nothing was pinned there.
    let pinned: string[] = [];
    try {
      pinned = [...Deno.readDirSync(pinDir)].map((e) => e.name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    assert.deepEqual(pinned, []);
  });
});

Deno.test("STATUS with a lease directory that cannot be written exits with code 50", async () => {
  await withNetwork(async (net) => {
    // A regular file where the data directory should be.
    const dataDir = `${net.dir}/not-a-dir`;
    Deno.writeTextFileSync(dataDir, "");
    const r = await net.run({ command: "STATUS", config: net.config({}, { dataDir }) });
    assert.notEqual(r.code, 0);
    assert.equal(r.json?.code, 50, r.stdout + r.stderr);
  });
});
