// Map pressure: endpoint_map of the network's pin dir is filled to its maximum with fake
// endpoints (batch insert through the FFI); the next ADD must fail with code 102 naming
// endpoint_map as full and leave no half-configured pod behind. Freeing one entry lets the
// ADD through.
//
// This is the only robust_* file that uses libbpf in the test process (see the note at the
// top of datapath_kernel_test.ts about libbpf's process-global print callback).
import assert from "node:assert/strict";
import { ensureDatapath } from "../src/datapath/loader.ts";
import { type Endpoint, EndpointMap, MapFullError } from "../src/datapath/maps.ts";
import { ENDPOINT_MAP } from "../src/spec/bpf_layout.ts";
import {
  hostVethName,
  ipNum,
  ipText,
  linkExists,
  netnsLinks,
  resultIp,
  stateFiles,
  tcAttachments,
  withCheckedNetwork,
} from "./_robust.ts";

const FAKE_BASE = ipNum("100.64.0.0");
const FAKE_IDENTITY = 7;

Deno.test("ADD with endpoint_map full fails with code 102 and leaves no half pod", async () => {
  assert.equal(ENDPOINT_MAP.maxEntries, 16384);
  await withCheckedNetwork(async (net) => {
    const dp = ensureDatapath(net.pinDir);
    try {
      const endpoints = new EndpointMap(dp.endpointFd);
      const fakes: Endpoint[] = Array.from(
        { length: ENDPOINT_MAP.maxEntries },
        (_, i) => ({ ip: FAKE_BASE + i, identity: FAKE_IDENTITY }),
      );
      endpoints.setMany(fakes.map((e) => [e.ip, e.identity]));
      assert.equal(endpoints.list().length, ENDPOINT_MAP.maxEntries);
      // The map really is full: the kernel refuses one more key.
      assert.throws(() => endpoints.set(ipNum("100.127.0.1"), 1), MapFullError);

      const netns = await net.netns();
      const call = { command: "ADD", containerId: "pressure", netns, ifname: "eth0" };
      const r = await net.run(call);
      assert.notEqual(r.code, 0, "ADD succeeded with endpoint_map full");
      assert.ok(r.json, `error is not JSON: ${r.stdout}`);
      assert.equal(r.json.code, 102, `wrong code: ${r.stdout}`);
      assert.match(String(r.json.msg), /endpoint_map/);
      assert.match(String(r.json.msg), /full/);

      const veth = hostVethName("pressure", "eth0");
      assert.equal(await linkExists(veth), false, "host veth left");
      assert.deepEqual(await netnsLinks(netns), ["lo"], "container veth left");
      assert.deepEqual(await net.bridgePorts(), [], "bridge port left");
      assert.equal((await tcAttachments()).some((t) => t.devname === veth), false);
      assert.deepEqual(net.leases(), [], "lease left");
      assert.deepEqual(stateFiles(net), [], "state file left");
      const after = endpoints.list();
      assert.equal(after.length, ENDPOINT_MAP.maxEntries);
      assert.ok(after.every(([, identity]) => identity === FAKE_IDENTITY), "endpoint_map changed");

      // The runtime's DEL after the failed ADD succeeds and removes no one else's entry.
      const d = await net.run({ ...call, command: "DEL" });
      assert.equal(d.code, 0, `DEL failed: ${d.stdout}${d.stderr}`);
      assert.equal(endpoints.list().length, ENDPOINT_MAP.maxEntries);

      // One free slot is enough.
      assert.ok(endpoints.delete(FAKE_BASE));
      const ok = await net.run(call);
      assert.equal(ok.code, 0, `ADD with a free slot failed: ${ok.stdout}${ok.stderr}`);
      const ip = resultIp(ok.json);
      assert.equal(endpoints.get(ipNum(ip)), 1);
      assert.deepEqual(net.leases(), [ip]);
      const del = await net.run({ ...call, command: "DEL" });
      assert.equal(del.code, 0);
      assert.equal(endpoints.get(ipNum(ip)), undefined, `${ipText(ipNum(ip))} still registered`);
      assert.equal(endpoints.list().length, ENDPOINT_MAP.maxEntries - 1);
      assert.deepEqual(net.leases(), []);
      assert.deepEqual(stateFiles(net), []);
    } finally {
      dp.close();
    }
  });
});
