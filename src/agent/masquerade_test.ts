import assert from "node:assert/strict";
import { parseCidr } from "../spec/ipv4.ts";
import type { ClusterNode } from "../spec/node.ts";
import type { NftBatch } from "../masq/ruleset.ts";
import { jsonLog } from "../log.ts";
import { startMasquerade } from "./masquerade.ts";

function fixture() {
  let nodes = new Map<string, ClusterNode>();
  let changed = () => {};
  const batches: NftBatch[] = [];
  let fail = false;
  return {
    source: { nodes: () => nodes, onChange: (cb: () => void) => (changed = cb) },
    set(list: ClusterNode[]) {
      nodes = new Map(list.map((n) => [n.name, n]));
      changed();
    },
    batches,
    failNext: () => (fail = true),
    apply: (b: NftBatch) => {
      if (fail) {
        fail = false;
        throw new Error("refused");
      }
      batches.push(b);
    },
  };
}

const a: ClusterNode = { name: "a", podCidrs: [parseCidr("10.1.0.0/24")], address: 1 };
const b: ClusterNode = { name: "b", podCidrs: [parseCidr("10.2.0.0/24")], address: 2 };
const log = jsonLog("error", () => {});

Deno.test("startMasquerade() writes nothing until this node has a pod CIDR", async () => {
  const f = fixture();
  const m = await startMasquerade(f.source, { self: "a", nonMasquerade: [], log, apply: f.apply });
  assert.equal(m.status().state, "waiting");
  f.set([{ ...a, podCidrs: [] }, b]);
  assert.deepEqual(m.status(), { state: "waiting", reason: 'node "a" has no pod CIDR yet' });
  assert.equal(f.batches.length, 0);
  f.set([a, b]);
  assert.equal(m.status().state, "applied");
  assert.equal(f.batches.length, 1);
});

Deno.test("startMasquerade() replaces the table only when the plan changes, or to repair", async () => {
  const f = fixture();
  f.set([a]);
  const m = await startMasquerade(f.source, { self: "a", nonMasquerade: [], log, apply: f.apply });
  assert.equal(f.batches.length, 1);
  f.set([a]);
  assert.equal(f.batches.length, 1, "the same nodes again change nothing");
  f.set([a, b]);
  assert.equal(f.batches.length, 2);
  assert.match(JSON.stringify(f.batches[1]), /10\.2\.0\.0/);
  m.sync(true);
  assert.equal(f.batches.length, 3);
  // This node vanishing keeps the last table (pods keep reaching the world).
  f.set([b]);
  assert.equal(f.batches.length, 3);
  assert.equal(m.status().state, "applied");
});

Deno.test("startMasquerade() reports a refused transaction and retries it at the next sync", async () => {
  const f = fixture();
  f.failNext();
  f.set([a]);
  const m = await startMasquerade(f.source, { self: "a", nonMasquerade: [], log, apply: f.apply });
  assert.deepEqual(m.status(), { state: "failed", error: "refused" });
  m.sync();
  assert.equal(m.status().state, "applied");
  assert.equal(f.batches.length, 1);
});

Deno.test("startMasquerade() at a resync replaces the table only when the kernel's differs from what it applied", async () => {
  const f = fixture();
  let kernel: string | undefined;
  const apply = (b: NftBatch) => {
    f.apply(b);
    kernel = JSON.stringify(b); // what a listing would show
  };
  f.set([a, b]);
  const m = await startMasquerade(f.source, {
    self: "a",
    nonMasquerade: [],
    log,
    apply,
    list: () => kernel,
  });
  assert.equal(f.batches.length, 1);
  m.sync(true);
  m.sync(true);
  assert.equal(f.batches.length, 1, "nothing drifted: no transaction");
  kernel = undefined; // someone deleted the table
  m.sync(true);
  assert.equal(f.batches.length, 2);
  kernel = "changed by hand";
  m.sync(true);
  assert.equal(f.batches.length, 3);
  m.sync(true);
  assert.equal(f.batches.length, 3);
});

Deno.test("startMasquerade() never masquerades to a pod CIDR withheld from the nodes (two nodes claim it)", async () => {
  const f = fixture();
  const both = parseCidr("10.9.0.0/24");
  f.set([a, { ...b, podCidrs: [] }]); // b's 10.9.0.0/24 withheld: c claims it too
  const source = { ...f.source, claimedPodCidrs: () => [a.podCidrs[0]!, both, both] };
  await startMasquerade(source, { self: "a", nonMasquerade: [], log, apply: f.apply });
  const set = (f.batches[0]!.nftables as { add?: { set?: { name: string; elem?: unknown } } }[])
    .find((o) => o.add?.set?.name === "no-masquerade")!.add!.set!;
  assert.match(JSON.stringify(set.elem), /"10\.9\.0\.0","10\.9\.0\.255"/);
});
