// What a pin directory the datapath cannot use is refused with: the message says what is
// actually wrong (a "." bpffs refuses, a map of another layout, a program where a map belongs),
// not a permission or mount problem the node does not have.
import assert from "node:assert/strict";
import { containerId, rand, sh, type TestNetwork, withNetwork } from "./_cni.ts";

async function addWith(net: TestNetwork, pinDir: string) {
  return await net.run({
    command: "ADD",
    containerId: containerId("pins"),
    netns: await net.netns(),
    ifname: "eth0",
    config: net.config({ pinDir }),
  });
}

/** Runs `fn` with an extra pin directory under /sys/fs/bpf, removed afterwards. */
async function withPinDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = `/sys/fs/bpf/ebpfcni-test-${rand()}`;
  Deno.mkdirSync(dir);
  try {
    return await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test('ADD with a pin directory named with a "." says bpffs refuses the dot', async () => {
  await withNetwork(async (net) => {
    const r = await addWith(net, `${net.pinDir}.v2`);
    assert.equal(r.json?.code, 11, r.stdout + r.stderr);
    const msg = String(r.json?.msg);
    assert.match(
      msg,
      /bpffs refuses names with a "\.": "ebpfcni-test-\w+\.v2" in the pin directory/,
    );
    assert.doesNotMatch(msg, /CAP_BPF|needs root/);
    assert.deepEqual(net.leases(), []);
  });
});

Deno.test("ADD over a pinned endpoint_map of another layout names it and what differs", async () => {
  await withNetwork(async (net) => {
    await withPinDir(async (dir) => {
      await sh("bpftool", [
        "map",
        "create",
        `${dir}/endpoint_map`,
        ...["type", "hash", "key", "8", "value", "8", "entries", "16", "name", "endpoint_map"],
      ], { check: true });
      const r = await addWith(net, dir);
      assert.equal(r.json?.code, 11, r.stdout + r.stderr);
      const msg = String(r.json?.msg);
      assert.match(msg, /is not ebpfcni's endpoint_map: key size 8, expected 4, value size 8/);
      assert.doesNotMatch(msg, /BPF FS|mount -t bpf|CAP_BPF/);
    });
  });
});

Deno.test("ADD over a program pinned where a map belongs says it is a program", async () => {
  await withNetwork(async (net) => {
    // A loaded datapath to take a program from.
    const status = await net.run({ command: "STATUS" });
    assert.equal(status.code, 0, status.stdout + status.stderr);
    await withPinDir(async (dir) => {
      await sh("bpftool", [
        "prog",
        "pin",
        "pinned",
        `${net.pinDir}/tc_prog`,
        `${dir}/endpoint_map`,
      ], { check: true });
      const r = await addWith(net, dir);
      assert.equal(r.json?.code, 11, r.stdout + r.stderr);
      assert.match(
        String(r.json?.msg),
        /^Pinned map "[^"]+\/endpoint_map" is not ebpfcni's endpoint_map: it is a BPF prog, not a map$/,
      );
    });
  });
});
