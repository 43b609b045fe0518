// Lock contention: 32 plugin processes on one network at once, 24 ADDs and 8 DELs, each DEL
// following its own pod's ADD while the other ADDs are still running. Afterwards the lease
// store, the state records, the bridge ports and endpoint_map must all describe exactly the 16
// live pods: one lease each, no address twice, and an endpoint entry per lease.
import assert from "node:assert/strict";
import { sh } from "./_cni.ts";
import {
  endpointIps,
  hostVethName,
  netnsLinks,
  resultIp,
  stateFiles,
  withCheckedNetwork,
} from "./_robust.ts";

const PODS = 24;
const DELETED = 8;
const identityOf = (i: number) => 5000 + i;

Deno.test("32 concurrent ADDs and DELs leave a consistent lease store and endpoint_map", async () => {
  await withCheckedNetwork(async (net) => {
    const ids = Array.from({ length: PODS }, (_, i) => `busy-${String(i).padStart(2, "0")}`);
    const netnses = await Promise.all(ids.map(() => net.netns()));
    // Deleted pods are spread over the batch so their DELs overlap the other ADDs.
    const deleted = new Set(ids.filter((_, i) => i % (PODS / DELETED) === 1));
    assert.equal(deleted.size, DELETED);

    const ops = ids.map(async (id, i) => {
      const call = {
        containerId: id,
        netns: netnses[i]!,
        ifname: "eth0",
        args: `EBPFCNI_IDENTITY=${identityOf(i)}`,
      };
      const add = await net.run({ command: "ADD", ...call });
      assert.equal(add.code, 0, `ADD ${id} failed: ${add.stdout}${add.stderr}`);
      const ip = resultIp(add.json);
      if (!deleted.has(id)) return { id, ip, deleted: false };
      const del = await net.run({ command: "DEL", ...call });
      assert.equal(del.code, 0, `DEL ${id} failed: ${del.stdout}${del.stderr}`);
      return { id, ip, deleted: true };
    });
    const settled = await Promise.allSettled(ops);
    const failures = settled.filter((s) => s.status === "rejected");
    assert.deepEqual(failures, [], "some operations failed");
    const results = settled.map((s) =>
      (s as PromiseFulfilledResult<
        { id: string; ip: string; deleted: boolean }
      >).value
    );
    const live = results.filter((r) => !r.deleted);
    assert.equal(live.length, PODS - DELETED);

    // Every live pod got its own address.
    const liveIps = live.map((r) => r.ip);
    assert.equal(new Set(liveIps).size, liveIps.length, `duplicate IPs: ${liveIps}`);

    // Lease store: exactly one lease per live pod, holding its ID and interface, no others.
    const dir = `${net.dataDir}/${net.name}`;
    const owners = new Map<string, string>();
    for (const ip of net.leases()) {
      const text = Deno.readTextFileSync(`${dir}/${ip}`);
      owners.set(ip, text);
    }
    assert.deepEqual(
      [...owners].sort(),
      live.map((r) => [r.ip, `${r.id}\r\neth0`]).sort(),
      "lease store does not match the live pods",
    );
    // No temporary files left behind by the writers.
    const stray = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      !owners.has(n) && n !== "lock" && !n.startsWith("last_reserved_ip.")
    );
    assert.deepEqual(stray, []);

    // endpoint_map: one entry per lease, with the pod's identity.
    const byId = new Map(ids.map((id, i) => [id, identityOf(i)]));
    assert.deepEqual(
      [...(await endpointIps(net))].sort(),
      live.map((r) => [r.ip, byId.get(r.id)]).sort(),
      "endpoint_map does not match the leases",
    );

    // State records and links: the live pods', nothing of the deleted ones.
    assert.deepEqual(stateFiles(net), live.map((r) => `${r.id}_eth0.json`).sort());
    assert.deepEqual(
      (await net.bridgePorts()).sort(),
      live.map((r) => hostVethName(r.id, "eth0")).sort(),
    );
    for (const [i, id] of ids.entries()) {
      const links = await netnsLinks(netnses[i]!);
      assert.deepEqual(links, deleted.has(id) ? ["lo"] : ["eth0", "lo"], `netns of ${id}`);
    }
    // One bridge, made once even though 24 ADDs raced to create it.
    const bridges = await sh("ip", ["-br", "link", "show", "dev", net.bridge]);
    assert.equal(bridges.code, 0);

    // Tear the rest down, concurrently too, and check the network is empty.
    const dels = await Promise.all(
      live.map((r) =>
        net.run({
          command: "DEL",
          containerId: r.id,
          netns: netnses[ids.indexOf(r.id)]!,
          ifname: "eth0",
        })
      ),
    );
    assert.deepEqual(dels.map((d) => d.code), live.map(() => 0));
    assert.deepEqual(net.leases(), []);
    assert.deepEqual([...(await endpointIps(net))], []);
    assert.deepEqual(stateFiles(net), []);
    assert.deepEqual(await net.bridgePorts(), []);
  });
});
