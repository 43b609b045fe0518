// Concurrent lifecycle calls on one attachment, as a runtime produces them (an ADD retried
// after a timeout, a DEL sent while the ADD still runs, a GC whose list predates an ADD),
// 16 rounds each. Whatever the interleaving, the attachment ends consistent: its veth, lease,
// state record and endpoint entry all there or all gone; no address is held twice; no lock
// file outlives a removed attachment.
import assert from "node:assert/strict";
import { containerId, type TestNetwork } from "./_cni.ts";
import { endpointIps, hostVethName, linkExists, resultIp, withCheckedNetwork } from "./_robust.ts";

const ROUNDS = 16;

/** Odd rounds: the ADD pauses 200 ms once its state record is written (after-state) or its
 * address leased (after-lease), so the other call surely lands inside it; even rounds: as
 * the processes' timing falls. */
function addFault(round: number, point: "after-state" | "after-lease") {
  return round % 2 === 1 ? { env: { EBPFCNI_FAULT: `sleep:${point}` } } : {};
}

interface Seen {
  veth: boolean;
  lease: string[];
  record: boolean;
  endpoint: string[];
}

/** What exists of attachment `id` on eth0. */
async function seen(net: TestNetwork, id: string): Promise<Seen> {
  const dir = `${net.dataDir}/${net.name}`;
  const lease = net.leases().filter((ip) =>
    Deno.readTextFileSync(`${dir}/${ip}`).startsWith(`${id}\r\n`)
  );
  const endpoints = await endpointIps(net);
  return {
    veth: await linkExists(hostVethName(id, "eth0")),
    lease,
    record: net.stateFiles().includes(`${id}_eth0.json`),
    endpoint: lease.filter((ip) => endpoints.has(ip)),
  };
}

function assertLive(s: Seen, what: string): void {
  assert.deepEqual(
    { veth: s.veth, leases: s.lease.length, record: s.record, endpoints: s.endpoint.length },
    { veth: true, leases: 1, record: true, endpoints: 1 },
    `${what}: the attachment is not whole`,
  );
}

function assertGone(s: Seen, what: string): void {
  assert.deepEqual(
    s,
    { veth: false, lease: [], record: false, endpoint: [] },
    `${what}: left over`,
  );
}

/** Every endpoint entry belongs to a lease (no stale entry). */
async function assertNoStrayEndpoints(net: TestNetwork): Promise<void> {
  const leases = new Set(net.leases());
  const stray = [...(await endpointIps(net)).keys()].filter((ip) => !leases.has(ip));
  assert.deepEqual(stray, [], "endpoint entries without a lease");
}

function call(net: TestNetwork, command: string, id: string, netns: string, extra = {}) {
  return net.run({
    command,
    containerId: id,
    netns,
    ifname: "eth0",
    args: "EBPFCNI_IDENTITY=4242",
    ...extra,
  });
}

Deno.test("two ADDs at once for one attachment: one attaches, the other gets a clear error and tears nothing down (16 rounds)", async () => {
  await withCheckedNetwork(async (net) => {
    for (let round = 0; round < ROUNDS; round++) {
      const id = containerId("dup");
      const netns = await net.netns();
      const first = call(net, "ADD", id, netns, addFault(round, "after-state"));
      if (round % 2 === 1) await new Promise((r) => setTimeout(r, 80));
      const [a, b] = await Promise.all([first, call(net, "ADD", id, netns)]);
      const ok = [a, b].filter((r) => r.code === 0);
      const failed = [a, b].filter((r) => r.code !== 0);
      assert.equal(ok.length, 1, `round ${round}: ${a.stdout} / ${b.stdout}`);
      assert.match(String(failed[0]!.json?.msg), /already exists|already attached/);
      const s = await seen(net, id);
      assertLive(s, `round ${round}`);
      assert.equal(s.lease[0], resultIp(ok[0]!.json), "the lease is the address ADD returned");
      const del = await call(net, "DEL", id, netns);
      assert.equal(del.code, 0, del.stdout);
      assertGone(await seen(net, id), `round ${round} after DEL`);
    }
    assert.deepEqual(net.lockFiles(), [], "lock files of removed attachments");
    await assertNoStrayEndpoints(net);
  });
});

Deno.test("a DEL while the ADD of the same attachment runs leaves it whole or wholly gone (16 rounds)", async () => {
  await withCheckedNetwork(async (net) => {
    let live = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const id = containerId("deladd");
      const netns = await net.netns();
      const add = call(net, "ADD", id, netns, addFault(round, "after-lease"));
      // Staggered so the DEL lands inside the ADD in some rounds, before it in others.
      await new Promise((r) => setTimeout(r, round % 2 === 1 ? 80 : round % 4 * 5));
      const [addR, delR] = await Promise.all([add, call(net, "DEL", id, netns)]);
      assert.equal(delR.code, 0, delR.stdout);
      const s = await seen(net, id);
      if (addR.code === 0 && s.veth) {
        // The DEL ran first (nothing to remove), then the ADD: the pod is live and whole.
        assertLive(s, `round ${round}`);
        live++;
        assert.equal((await call(net, "DEL", id, netns)).code, 0);
      }
      assertGone(await seen(net, id), `round ${round}`);
    }
    assert.deepEqual(net.lockFiles(), []);
    await assertNoStrayEndpoints(net);
    // Informative only: how the rounds fell.
    console.log(`${live} of ${ROUNDS} rounds had the DEL before the ADD`);
  });
});

Deno.test("a GC alongside an ADD never tears down the ADD's attachment, nor leaves stale entries (16 rounds)", async () => {
  await withCheckedNetwork(async (net) => {
    const ids: { id: string; netns: string }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const id = containerId("gcadd");
      const netns = await net.netns();
      // The runtime's list predates this ADD: it names only the pods already known.
      const valid = ids.map((p) => ({ containerID: p.id, ifname: "eth0" }));
      // The GC must land inside the ADD (a list made before an ADD that has already returned
      // is the runtime's to avoid): the ADD pauses once leased, the GC starts at a spread of
      // points of it, before its record, during the pause, or about as it ends.
      const add = call(net, "ADD", id, netns, { env: { EBPFCNI_FAULT: "sleep:after-lease" } });
      await new Promise((r) => setTimeout(r, [0, 40, 120, 190][round % 4]));
      const gc = net.run({
        command: "GC",
        config: net.config({ "cni.dev/valid-attachments": valid }),
      });
      const [addR, gcR] = await Promise.all([add, gc]);
      assert.equal(addR.code, 0, addR.stdout);
      assert.equal(gcR.code, 0, gcR.stdout);
      ids.push({ id, netns });
      for (const p of ids) assertLive(await seen(net, p.id), `round ${round}: ${p.id}`);
      await assertNoStrayEndpoints(net);
    }
    // A GC that does not list them removes them all, and their lock files.
    const gc = await net.run({
      command: "GC",
      config: net.config({ "cni.dev/valid-attachments": [] }),
    });
    assert.equal(gc.code, 0, gc.stdout);
    for (const p of ids) assertGone(await seen(net, p.id), p.id);
    assert.deepEqual(net.lockFiles(), []);
  });
});
