// Address exhaustion: a /29 has 5 usable addresses once the gateway (.1) is taken out. Five
// pods fill it; the sixth ADD fails with code 100 naming the exhaustion and changes nothing on
// the host; after one DEL the sixth pod gets the freed address.
import assert from "node:assert/strict";
import {
  endpointIps,
  hostLinks,
  hostVethName,
  linkExists,
  netnsLinks,
  resultIp,
  stateFiles,
  tree,
  withCheckedNetwork,
} from "./_robust.ts";

Deno.test("a full /29 refuses the next ADD with code 100 and no change, until a DEL", async () => {
  await withCheckedNetwork(async (net) => {
    const prefix = net.subnet.replace(/\.0\/24$/, "");
    const config = net.config({}, { subnet: `${prefix}.0/29` });
    const ids = [0, 1, 2, 3, 4].map((i) => `full-${i}`);
    const netnses = new Map<string, string>();
    const ips = new Map<string, string>();
    for (const id of ids) {
      netnses.set(id, await net.netns());
      const r = await net.run({
        command: "ADD",
        containerId: id,
        netns: netnses.get(id)!,
        ifname: "eth0",
        config,
      });
      assert.equal(r.code, 0, `ADD ${id} failed: ${r.stdout}${r.stderr}`);
      ips.set(id, resultIp(r.json));
    }
    const usable = [2, 3, 4, 5, 6].map((o) => `${prefix}.${o}`);
    assert.deepEqual([...ips.values()].sort(), usable.sort());
    assert.deepEqual(net.leases(), [...usable].sort());

    const extraNs = await net.netns();
    const before = {
      links: await hostLinks(),
      ports: (await net.bridgePorts()).sort(),
      store: tree(net.dataDir),
      state: stateFiles(net),
      endpoints: [...(await endpointIps(net))].sort(),
      extraNs: await netnsLinks(extraNs),
    };
    const r = await net.run({
      command: "ADD",
      containerId: "full-5",
      netns: extraNs,
      ifname: "eth0",
      config,
    });
    assert.notEqual(r.code, 0, "ADD into a full network succeeded");
    assert.ok(r.json, `error is not JSON: ${r.stdout}`);
    assert.equal(r.json.code, 100, `wrong code: ${r.stdout}`);
    assert.match(String(r.json.msg), /no (ip )?addresses available/i);
    assert.equal(await linkExists(hostVethName("full-5", "eth0")), false, "host veth made");
    const after = {
      links: await hostLinks(),
      ports: (await net.bridgePorts()).sort(),
      store: tree(net.dataDir),
      state: stateFiles(net),
      endpoints: [...(await endpointIps(net))].sort(),
      extraNs: await netnsLinks(extraNs),
    };
    // Links of other tests running at the same time may come and go; ours are named.
    const ours = (l: string[]) =>
      l.filter((n) =>
        n === net.bridge || n === hostVethName("full-5", "eth0") ||
        ids.some((id) => n === hostVethName(id, "eth0"))
      );
    assert.deepEqual(ours(after.links), ours(before.links));
    assert.deepEqual({ ...after, links: [] }, { ...before, links: [] });

    const freed = ips.get("full-2")!;
    const d = await net.run({
      command: "DEL",
      containerId: "full-2",
      netns: netnses.get("full-2")!,
      ifname: "eth0",
      config,
    });
    assert.equal(d.code, 0, `DEL failed: ${d.stdout}${d.stderr}`);
    assert.equal(net.leases().includes(freed), false);

    const again = await net.run({
      command: "ADD",
      containerId: "full-5",
      netns: extraNs,
      ifname: "eth0",
      config,
    });
    assert.equal(again.code, 0, `ADD after DEL failed: ${again.stdout}${again.stderr}`);
    assert.equal(resultIp(again.json), freed);
    assert.deepEqual(net.leases(), [...usable].sort());
    assert.equal((await endpointIps(net)).size, 5);

    for (const id of ["full-0", "full-1", "full-3", "full-4"]) {
      const x = await net.run({
        command: "DEL",
        containerId: id,
        netns: netnses.get(id)!,
        ifname: "eth0",
        config,
      });
      assert.equal(x.code, 0);
    }
    const x = await net.run({
      command: "DEL",
      containerId: "full-5",
      netns: extraNs,
      ifname: "eth0",
      config,
    });
    assert.equal(x.code, 0);
    assert.deepEqual(net.leases(), []);
    assert.deepEqual(await net.bridgePorts(), []);
    assert.deepEqual(stateFiles(net), []);
  });
});

Deno.test("8 concurrent ADDs into an empty /29: 5 get distinct addresses, 3 get code 100", async () => {
  await withCheckedNetwork(async (net) => {
    const prefix = net.subnet.replace(/\.0\/24$/, "");
    const config = net.config({}, { subnet: `${prefix}.0/29` });
    const ids = Array.from({ length: 8 }, (_, i) => `race-${i}`);
    const netnses = await Promise.all(ids.map(() => net.netns()));
    const replies = await Promise.all(
      ids.map((id, i) =>
        net.run({ command: "ADD", containerId: id, netns: netnses[i]!, ifname: "eth0", config })
      ),
    );
    const won = ids.filter((_, i) => replies[i]!.code === 0);
    const lost = ids.filter((_, i) => replies[i]!.code !== 0);
    assert.equal(won.length, 5, replies.map((r) => r.stdout).join(""));
    for (const id of lost) {
      const r = replies[ids.indexOf(id)]!;
      assert.equal(r.json?.code, 100, `${id}: ${r.stdout}${r.stderr}`);
      assert.match(String(r.json?.msg), /no (ip )?addresses available/i);
      assert.deepEqual(await netnsLinks(netnses[ids.indexOf(id)]!), ["lo"], `${id} has a link`);
    }
    const ips = won.map((id) => resultIp(replies[ids.indexOf(id)]!.json));
    assert.deepEqual([...ips].sort(), [2, 3, 4, 5, 6].map((o) => `${prefix}.${o}`).sort());
    assert.deepEqual(net.leases(), [...ips].sort());
    assert.deepEqual([...(await endpointIps(net)).keys()].sort(), [...ips].sort());
    assert.deepEqual(stateFiles(net), won.map((id) => `${id}_eth0.json`).sort());
    assert.deepEqual(
      (await net.bridgePorts()).sort(),
      won.map((id) => hostVethName(id, "eth0")).sort(),
    );
    for (const id of won) {
      const i = ids.indexOf(id);
      const d = await net.run({
        command: "DEL",
        containerId: id,
        netns: netnses[i]!,
        ifname: "eth0",
        config,
      });
      assert.equal(d.code, 0);
    }
    assert.deepEqual(net.leases(), []);
    assert.deepEqual(stateFiles(net), []);
  });
});
