import assert from "node:assert/strict";
import { FakeTable, type Write } from "./table_fake.ts";
import { MapFullError } from "./table.ts";
import { ENDPOINTS, IPCACHE, POLICIES, RULES, VETHS } from "./tables.ts";

Deno.test("FakeTable: keys are one entry when their bytes are, as in the kernel", () => {
  const t = new FakeTable(RULES);
  const key = { prefixlen: 96, subject: 1, peer: 2, dir: 1, proto: 6, port: 80 };
  t.set(key, true);
  t.set({ ...key }, true);
  assert.equal(t.size, 1);
  assert.equal(t.get({ ...key }), true);
  assert.equal(t.get({ ...key, port: 81 }), undefined);
  assert.deepEqual(t.list(), [[key, true]]);
});

Deno.test("FakeTable: values go through the codec (what the map cannot hold is lost)", () => {
  const t = new FakeTable(VETHS);
  t.set(7, { ips: [1, 2, 3, 4, 5], flags: 0 });
  assert.deepEqual(t.get(7), { ips: [1, 2, 3, 4], flags: 0 });
  const p = new FakeTable(POLICIES);
  p.set({ src: 1, dst: 2 }, false);
  assert.deepEqual(p.list(), [[{ src: 1, dst: 2 }, false]]);
});

Deno.test("FakeTable: a full table refuses a new key with MapFullError, still replaces, and logs only what changed", () => {
  const log: Write[] = [];
  const t = new FakeTable(ENDPOINTS, log, 2);
  const ip = new FakeTable(IPCACHE, log);
  t.set(1, 10);
  ip.set(9, { identity: 300, flags: 1 });
  t.set(2, 20);
  assert.throws(() => t.set(3, 30), (err) => {
    assert.ok(err instanceof MapFullError);
    assert.equal(err.message, "endpoint_map is full (2 entries)");
    return true;
  });
  t.set(1, 11);
  assert.equal(t.add(2, 99), false);
  assert.equal(t.delete(3), false);
  assert.equal(t.delete(2), true);
  assert.deepEqual(log, [
    { map: "endpoint_map", op: "set", key: 1, value: 10 },
    { map: "ipcache_map", op: "set", key: 9, value: { identity: 300, flags: 1 } },
    { map: "endpoint_map", op: "set", key: 2, value: 20 },
    { map: "endpoint_map", op: "set", key: 1, value: 11 },
    { map: "endpoint_map", op: "delete", key: 2 },
  ]);
});
