// GC (spec 1.1): every attachment not in cni.dev/valid-attachments is torn down like a DEL,
// and the valid ones keep working.
import assert from "node:assert/strict";
import {
  allowPair,
  containerId,
  linkExists,
  pingEventually,
  type TestNetwork,
  withNetwork,
} from "./_cni.ts";

interface Pod {
  id: string;
  ns: string;
  ip: string;
  identity: number;
  result: Record<string, unknown>;
}

Deno.test("GC removes exactly the attachments missing from valid-attachments", async () => {
  await withNetwork(async (net) => {
    const pods: Pod[] = [];
    for (const [i, name] of ["keep-a", "keep-b", "stale-c", "stale-d"].entries()) {
      const id = containerId(name);
      const ns = await net.netns();
      const identity = 2001 + i;
      const result = await net.add(id, ns, { args: `EBPFCNI_IDENTITY=${identity}` });
      const ip = (result.ips as { address: string }[])[0]!.address.split("/")[0]!;
      pods.push({ id, ns, ip, identity, result });
    }
    const [a, b, c, d] = pods as [Pod, Pod, Pod, Pod];
    assert.equal(net.leases().length, 4);

    // A lease without any state record or link (here: written by the reference host-local
    // for an attachment the runtime no longer knows): GC releases it too.
    const orphan = await net.hostLocal("ADD", containerId("orphan"));
    assert.equal(orphan.code, 0, orphan.stdout);
    assert.equal(net.leases().length, 5);

    const gc = await net.run({
      command: "GC",
      config: net.config({
        "cni.dev/valid-attachments": [
          { containerID: a.id, ifname: "eth0" },
          { containerID: b.id, ifname: "eth0" },
          // Another interface of c's container: it does not keep c's eth0.
          { containerID: c.id, ifname: "net1" },
        ],
      }),
    });
    assert.equal(gc.code, 0, gc.stdout + gc.stderr);
    assert.equal(gc.stdout, "");

    assert.deepEqual(net.leases(), [a.ip, b.ip].sort());
    assert.deepEqual(await net.endpointIps(), { [a.ip]: a.identity, [b.ip]: b.identity });
    for (const p of [c, d]) {
      assert.equal(await linkExists(net.hostVeth(p.id)), false, `${p.id} host veth left`);
    }
    assert.deepEqual(
      (await net.bridgePorts()).sort(),
      [net.hostVeth(a.id), net.hostVeth(b.id)].sort(),
    );
    assert.deepEqual(net.stateFiles(), [`${a.id}_eth0.json`, `${b.id}_eth0.json`].sort());

    // The valid ones still pass CHECK and still talk to each other.
    for (const p of [a, b]) {
      const check = await net.check(p.id, p.ns, p.result);
      assert.equal(check.code, 0, `${p.id}: ${check.stdout}`);
    }
    await allowPair(net.pinDir, a.identity, b.identity);
    await allowPair(net.pinDir, b.identity, a.identity);
    assert.equal(await pingEventually(a.ns, b.ip), true);
    assert.equal(await pingEventually(b.ns, a.ip), true);

    // A second GC with the same list changes nothing.
    const again = await net.run({
      command: "GC",
      config: net.config({
        "cni.dev/valid-attachments": [
          { containerID: a.id, ifname: "eth0" },
          { containerID: b.id, ifname: "eth0" },
        ],
      }),
    });
    assert.equal(again.code, 0, again.stdout);
    assert.deepEqual(net.leases(), [a.ip, b.ip].sort());
    assert.deepEqual(await net.endpointIps(), { [a.ip]: a.identity, [b.ip]: b.identity });
  });
});

Deno.test("GC with an empty valid-attachments list removes every attachment", async () => {
  await withNetwork(async (net) => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = containerId("gc-all");
      await net.add(id, await net.netns(), { args: `EBPFCNI_IDENTITY=${3001 + i}` });
      ids.push(id);
    }
    const gc = await net.run({
      command: "GC",
      config: net.config({ "cni.dev/valid-attachments": [] }),
    });
    assert.equal(gc.code, 0, gc.stdout);
    assert.deepEqual(net.leases(), []);
    assert.deepEqual(await net.endpointIps(), {});
    assert.deepEqual(await net.bridgePorts(), []);
    assert.deepEqual(net.stateFiles(), []);
    for (const id of ids) assert.equal(await linkExists(net.hostVeth(id)), false);
  });
});

/** A fake delegated IPAM plugin (sh builtins only: plugins run without PATH): logs every call,
 * hands out .2, .3, ... and, like skel, refuses DEL without CNI_CONTAINERID and CNI_IFNAME. */
function fakeIpam(net: TestNetwork): { dir: string; log: () => string[] } {
  const dir = `${net.dir}/plugins`;
  Deno.mkdirSync(dir, { recursive: true });
  const prefix = net.gateway.replace(/\.1$/, "");
  Deno.writeTextFileSync(
    `${dir}/fake-ipam`,
    `#!/bin/sh
d=\${0%/*}
echo "$CNI_COMMAND \${CNI_CONTAINERID:-} \${CNI_IFNAME:-}" >> "$d/calls.log"
case "$CNI_COMMAND" in
ADD|DEL|CHECK)
  if [ -z "\${CNI_CONTAINERID:-}" ] || [ -z "\${CNI_IFNAME:-}" ]; then
    echo '{"cniVersion":"1.1.0","code":4,"msg":"Required environment variables missing"}'
    exit 1
  fi ;;
esac
if [ "$CNI_COMMAND" = ADD ]; then
  n=1; [ -f "$d/n" ] && read -r n < "$d/n"; n=$((n + 1)); echo $n > "$d/n"
  echo '{"cniVersion":"1.1.0","ips":[{"address":"${prefix}.'$n'/24","gateway":"${prefix}.1"}],"routes":[{"dst":"0.0.0.0/0"}]}'
fi
`,
  );
  Deno.chmodSync(`${dir}/fake-ipam`, 0o755);
  return {
    dir,
    log: () => {
      try {
        return Deno.readTextFileSync(`${dir}/calls.log`).trim().split("\n");
      } catch {
        return [];
      }
    },
  };
}

Deno.test("GC with a delegated IPAM plugin releases each stale attachment's address through it", async () => {
  await withNetwork(async (net) => {
    const fake = fakeIpam(net);
    const config = net.config({}, { type: "fake-ipam" });
    const env = { CNI_PATH: `${fake.dir}:/usr/lib/cni` };
    const keep = containerId("gc-dkeep");
    const stale = containerId("gc-dstale");
    for (const [id, identity] of [[keep, 9001], [stale, 9002]] as const) {
      const r = await net.run({
        command: "ADD",
        containerId: id,
        netns: await net.netns(),
        ifname: "eth0",
        args: `EBPFCNI_IDENTITY=${identity}`,
        env,
        config,
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    const keepIp = Object.entries(await net.endpointIps()).find(([, id]) => id === 9001)![0];

    const gc = await net.run({
      command: "GC",
      env,
      config: { ...config, "cni.dev/valid-attachments": [{ containerID: keep, ifname: "eth0" }] },
    });
    assert.equal(gc.code, 0, gc.stdout + gc.stderr);
    // The stale attachment's address went back through the plugin, named by its attachment.
    assert.ok(fake.log().includes(`DEL ${stale} eth0`), fake.log().join("\n"));
    assert.ok(!fake.log().some((l) => l.startsWith(`DEL ${keep}`)), fake.log().join("\n"));
    assert.equal(await linkExists(net.hostVeth(stale)), false);
    assert.deepEqual(await net.endpointIps(), { [keepIp]: 9001 });
    assert.deepEqual(net.stateFiles(), [`${keep}_eth0.json`]);
  });
});
