// Per-attachment records are not trusted blindly: one of the wrong shape is set aside (*.bad)
// and DEL and GC go on from the lease store; one copied under another attachment's file name
// does not make them tear down that other attachment.
import assert from "node:assert/strict";
import { containerId, linkExists, type TestNetwork, withNetwork } from "./_cni.ts";
import { resultIp } from "./_robust.ts";

const BAD_RECORDS = ['{"ips":5}', "[]", '{"ips":null}', '{"containerId":'];

function recordPath(net: TestNetwork, id: string): string {
  return `${net.stateDir}/${net.name}/${id}_eth0.json`;
}

function gc(net: TestNetwork, valid: string[]) {
  return net.run({
    command: "GC",
    config: net.config({
      "cni.dev/valid-attachments": valid.map((id) => ({ containerID: id, ifname: "eth0" })),
    }),
  });
}

for (const bad of BAD_RECORDS) {
  for (const command of ["DEL", "GC"] as const) {
    Deno.test(`${command} with a record ${bad} succeeds, sets it aside and releases the lease`, async () => {
      await withNetwork(async (net) => {
        const id = containerId("rec-bad");
        const ns = await net.netns();
        await net.add(id, ns, { args: "EBPFCNI_IDENTITY=1001" });
        Deno.writeTextFileSync(recordPath(net, id), bad);

        const r = command === "DEL"
          ? await net.run({ command: "DEL", containerId: id, netns: ns, ifname: "eth0" })
          : await gc(net, []);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stderr, /set aside/);
        assert.deepEqual(net.stateFiles().filter((f) => !f.endsWith(".lock")), [
          `${id}_eth0.json.bad`,
        ]);
        assert.equal(Deno.readTextFileSync(`${recordPath(net, id)}.bad`), bad);
        assert.deepEqual(net.leases(), []);
        assert.deepEqual(await net.endpointIps(), {});
        // DEL knows the attachment from its environment: its veth goes too.
        if (command === "DEL") assert.equal(await linkExists(net.hostVeth(id)), false);
      });
    });
  }
}

for (const command of ["DEL", "GC"] as const) {
  Deno.test(`${command} with another attachment's record copied under its name leaves that attachment intact`, async () => {
    await withNetwork(async (net) => {
      const a = containerId("rec-a");
      const b = containerId("rec-b");
      const nsA = await net.netns();
      const nsB = await net.netns();
      const ipA = resultIp(await net.add(a, nsA, { args: "EBPFCNI_IDENTITY=1001" }));
      const resultB = await net.add(b, nsB, { args: "EBPFCNI_IDENTITY=1002" });
      const ipB = resultIp(resultB);
      // a's record replaced by a copy of b's.
      Deno.copyFileSync(recordPath(net, b), recordPath(net, a));

      const r = command === "DEL"
        ? await net.run({ command: "DEL", containerId: a, netns: nsA, ifname: "eth0" })
        : await gc(net, [b]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /set aside/);

      // a is gone (from the lease store), b untouched.
      assert.deepEqual(net.leases(), [ipB]);
      assert.deepEqual(await net.endpointIps(), { [ipB]: 1002 });
      assert.ok(!net.leases().includes(ipA));
      if (command === "DEL") assert.equal(await linkExists(net.hostVeth(a)), false);
      assert.equal(await linkExists(net.hostVeth(b)), true);
      assert.ok(net.stateFiles().includes(`${b}_eth0.json`));
      assert.ok(net.stateFiles().includes(`${a}_eth0.json.bad`));
      const check = await net.check(b, nsB, resultB);
      assert.equal(check.code, 0, check.stdout + check.stderr);
    });
  });
}
