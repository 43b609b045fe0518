// A runtime that goes away before reading the result (its end of stdout closed): the plugin
// logs one line on stderr, exits non-zero, and undoes the ADD it could not report, as it
// would any failed ADD.
import assert from "node:assert/strict";
import { BINARY, containerId, linkExists, pluginEnv, stdinOf, withNetwork } from "./_cni.ts";

Deno.test("ADD with stdout closed before the result logs one line, exits 1 and is undone", async () => {
  await withNetwork(async (net) => {
    const id = containerId("epipe");
    const ns = await net.netns();
    const call = {
      command: "ADD",
      containerId: id,
      netns: ns,
      ifname: "eth0",
      args: "EBPFCNI_IDENTITY=1001",
    };
    const p = new Deno.Command(BINARY, {
      env: pluginEnv(call),
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // The read end goes before the plugin can have written anything (ADD takes far longer).
    await p.stdout.cancel();
    const w = p.stdin.getWriter();
    await w.write(stdinOf({}, net.config()));
    await w.close();
    const status = await p.status;
    const stderr = new TextDecoder().decode(
      new Uint8Array(await new Response(p.stderr).arrayBuffer()),
    );

    assert.equal(status.code, 1, stderr);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, `more than one line on stderr:\n${stderr}`);
    assert.match(lines[0]!, /error: ADD: .*Broken pipe/);
    assert.doesNotMatch(stderr, /Uncaught|^\s+at /m);

    assert.deepEqual(net.leases(), []);
    assert.deepEqual(await net.endpointIps(), {});
    assert.equal(await linkExists(net.hostVeth(id)), false);
    assert.deepEqual(net.stateFiles(), []);
    assert.equal(await linkExists("eth0", ns.split("/").pop()), false);
  });
});
