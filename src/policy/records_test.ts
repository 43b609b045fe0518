// Unit tests for the text and JSON forms of map entries.
import assert from "node:assert/strict";
import {
  endpointRecords,
  formatIpv4,
  formatRecordsJson,
  ipv4Problem,
  ipv4ToU32,
  isIdentity,
  policyRecords,
} from "./records.ts";

Deno.test("isIdentity() accepts integers from 1 to 2^32-1 only", () => {
  for (const ok of [1, 1001, 4294967295]) assert.equal(isIdentity(ok), true);
  for (const bad of [0, -1, 1.5, 4294967296, NaN, "1", null, undefined, 1n]) {
    assert.equal(isIdentity(bad), false, String(bad));
  }
});

Deno.test("ipv4ToU32() and formatIpv4() round-trip, ipv4Problem() accepts dotted quads", () => {
  for (const text of ["0.0.0.0", "10.13.0.2", "192.168.255.1", "255.255.255.255"]) {
    assert.equal(ipv4Problem(text), undefined);
    assert.equal(formatIpv4(ipv4ToU32(text)), text);
  }
  assert.equal(ipv4ToU32("10.13.0.2"), 0x0a0d0002);
  assert.equal(ipv4Problem("256.0.0.1"), "octet 256 out of range 0-255");
  assert.equal(ipv4Problem("fe80::1"), "IPv6 addresses are not supported (IPv4 dotted quad only)");
});

Deno.test("endpointRecords() sorts by address numerically, not as text", () => {
  const ips = ["10.13.0.10", "10.13.0.9", "9.255.255.255", "10.13.0.100"];
  const recs = endpointRecords(ips.map((ip, i) => ({ ip: ipv4ToU32(ip), identity: i + 1 })));
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
