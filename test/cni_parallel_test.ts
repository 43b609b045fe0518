// Concurrency between plugin processes: the runtime starts ADDs (and DELs) for many pods at
// once, each a separate process racing on the bridge, the datapath pins and the lease store.
import assert from "node:assert/strict";
import { containerId, linkExists, withNetwork } from "./_cni.ts";

const PODS = 16;

Deno.test(`${PODS} parallel ADDs get distinct addresses; ${PODS} parallel DELs leave nothing`, async () => {
  await withNetwork(async (net) => {
    const pods: { id: string; ns: string; identity: number }[] = [];
    for (let i = 0; i < PODS; i++) {
      pods.push({ id: containerId(`par${i}`), ns: await net.netns(), identity: 4001 + i });
    }

    // Nothing exists yet: the first ADDs race to create the bridge and load the datapath.
    const adds = await Promise.all(pods.map((p) =>
      net.run({
        command: "ADD",
        containerId: p.id,
        netns: p.ns,
        ifname: "eth0",
        args: `EBPFCNI_IDENTITY=${p.identity}`,
      })
    ));
    adds.forEach((r, i) => assert.equal(r.code, 0, `ADD #${i}: ${r.stdout}${r.stderr}`));

    const ips = adds.map((r) => (r.json!.ips as { address: string }[])[0]!.address.split("/")[0]!);
    assert.equal(new Set(ips).size, PODS, `duplicate addresses: ${ips.join(", ")}`);
    assert.deepEqual(net.leases(), [...ips].sort());
    assert.deepEqual(
      await net.endpointIps(),
      Object.fromEntries(
        ips.map((ip, i) => [ip, pods[i]!.identity] as const).sort(([a], [b]) => a.localeCompare(b)),
      ),
    );
    assert.equal((await net.bridgePorts()).length, PODS);
    assert.equal(net.stateFiles().length, PODS);

    const dels = await Promise.all(
      pods.map((p) => net.run({ command: "DEL", containerId: p.id, netns: p.ns, ifname: "eth0" })),
    );
    dels.forEach((r, i) => assert.equal(r.code, 0, `DEL #${i}: ${r.stdout}${r.stderr}`));

    assert.deepEqual(net.leases(), []);
    assert.deepEqual(await net.endpointIps(), {});
    assert.deepEqual(await net.bridgePorts(), []);
    assert.deepEqual(net.stateFiles(), []);
    for (const p of pods) assert.equal(await linkExists(net.hostVeth(p.id)), false, p.id);
  });
});
