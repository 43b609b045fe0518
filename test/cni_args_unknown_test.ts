// CNI_ARGS keys the plugin does not know are refused, as libcni's types.LoadArgs and the
// reference plugins do (code 999), unless the runtime says IgnoreUnknown=1; DEL stays best
// effort and cleans up whatever it is given.
import assert from "node:assert/strict";
import { containerId, withNetwork } from "./_cni.ts";

Deno.test("ADD with an unknown CNI_ARGS key and no IgnoreUnknown fails with code 999 and changes nothing", async () => {
  await withNetwork(async (net) => {
    const id = containerId("args-unknown");
    const ns = await net.netns();
    const before = await net.snapshot([id], [ns]);
    const r = await net.run({
      command: "ADD",
      containerId: id,
      netns: ns,
      ifname: "eth0",
      args: "EBPFCNI_IDENTITY=1001;FOO=bar",
    });
    assert.equal(r.json?.code, 999, r.stdout + r.stderr);
    assert.match(String(r.json?.msg), /^Unknown CNI_ARGS "FOO": .*IgnoreUnknown=1/);
    assert.deepEqual(await net.snapshot([id], [ns]), before);
  });
});

Deno.test("ADD and CHECK with IgnoreUnknown=1 accept unknown CNI_ARGS keys; DEL accepts them regardless", async () => {
  await withNetwork(async (net) => {
    const id = containerId("args-ignore");
    const ns = await net.netns();
    const args = "IgnoreUnknown=1;EBPFCNI_IDENTITY=1001;K8S_POD_UID=u;FOO=bar";
    const result = await net.add(id, ns, { args });
    const call = { containerId: id, netns: ns, ifname: "eth0" };
    const check = await net.run({
      command: "CHECK",
      ...call,
      args,
      config: net.config({ prevResult: result }),
    });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const strict = await net.run({
      command: "CHECK",
      ...call,
      args: "FOO=bar",
      config: net.config({ prevResult: result }),
    });
    assert.equal(strict.json?.code, 999, strict.stdout + strict.stderr);
    const del = await net.run({ command: "DEL", ...call, args: "FOO=bar" });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(net.leases(), []);
  });
});
