// Unit tests for the text and JSON forms of map entries.
import assert from "node:assert/strict";
import { endpointRecords, formatRecordsJson, policyRecords } from "./map_records.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

Deno.test("endpointRecords() sorts by address numerically, not as text", () => {
  const ips = ["10.13.0.10", "10.13.0.9", "9.255.255.255", "10.13.0.100"];
  const recs = endpointRecords(ips.map((ip, i) => ({ ip: parseIpv4(ip), identity: i + 1 })));
  assert.deepEqual(recs.map((r) => r.ip), [
    "9.255.255.255",
    "10.13.0.9",
    "10.13.0.10",
    "10.13.0.100",
  ]);
  assert.deepEqual(recs[0], { ip: "9.255.255.255", identity: 3 });
});

Deno.test("policyRecords() sorts by src, then dst", () => {
  const recs = policyRecords([{ src: 20, dst: 1 }, { src: 3, dst: 9 }, { src: 3, dst: 10 }, {
    src: 4294967295,
    dst: 2,
  }]);
  assert.deepEqual(recs, [{ src: 3, dst: 9 }, { src: 3, dst: 10 }, { src: 20, dst: 1 }, {
    src: 4294967295,
    dst: 2,
  }]);
});

Deno.test("formatRecordsJson() prints one object per line with stable key order", () => {
  assert.equal(formatRecordsJson([]), "[]\n");
  assert.equal(
    formatRecordsJson([{ ip: "10.13.0.2", identity: 1001 }, { ip: "10.13.0.3", identity: 1002 }]),
    `[\n  {"ip":"10.13.0.2","identity":1001},\n  {"ip":"10.13.0.3","identity":1002}\n]\n`,
  );
  const policies = [{ src: 1, dst: 2 }];
  assert.deepEqual(JSON.parse(formatRecordsJson(policies)), policies);
});
