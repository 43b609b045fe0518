// Unit tests for the pure allocator: host-local's iteration order and its errors.

import assert from "node:assert/strict";
import { CniError } from "../spec/cni.ts";
import { allocate, candidates, checkRequested } from "./allocator.ts";
import { formatIpv4, parseIpv4 } from "../spec/ipv4.ts";
import { parseHostLocalConfig, type RangeSet } from "./ipam_conf.ts";

function set(ipam: Record<string, unknown>): RangeSet {
  return parseHostLocalConfig({ type: "host-local", ...ipam }).ranges[0]!;
}

const ip = parseIpv4;
const leased = (...ips: string[]) => new Set(ips.map(parseIpv4));
const order = (s: RangeSet, last?: string) =>
  [...candidates(s, last === undefined ? undefined : ip(last))].map((c) => formatIpv4(c.ip));

function cniCode(code: number, message: string | RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CniError);
    assert.equal(err.code, code);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  };
}

Deno.test("allocate() skips the gateway address", () => {
  const s = set({ subnet: "10.13.0.0/24" });
  assert.equal(formatIpv4(allocate(s, new Set()).ip), "10.13.0.2");
});

Deno.test("allocate() skips a gateway in the middle of the range", () => {
  const s = set({ subnet: "10.13.0.0/29", gateway: "10.13.0.3" });
  assert.deepEqual(order(s), ["10.13.0.1", "10.13.0.2", "10.13.0.4", "10.13.0.5", "10.13.0.6"]);
});

Deno.test("allocate() skips leased addresses", () => {
  const s = set({ subnet: "10.13.0.0/24" });
  assert.equal(formatIpv4(allocate(s, leased("10.13.0.2", "10.13.0.3")).ip), "10.13.0.4");
});

Deno.test("allocate() resumes after the last reserved IP", () => {
  const s = set({ subnet: "10.13.0.0/24" });
  assert.equal(formatIpv4(allocate(s, new Set(), ip("10.13.0.7")).ip), "10.13.0.8");
});

Deno.test("allocate() wraps around to the range start after the range end", () => {
  const s = set({ subnet: "10.13.0.0/29" });
  assert.deepEqual(order(s, "10.13.0.5"), [
    "10.13.0.6",
    "10.13.0.2",
    "10.13.0.3",
    "10.13.0.4",
    "10.13.0.5",
  ]);
  assert.equal(formatIpv4(allocate(s, leased("10.13.0.6"), ip("10.13.0.5")).ip), "10.13.0.2");
});

Deno.test("allocate() offers the last reserved IP itself last", () => {
  const s = set({ subnet: "10.13.0.0/29" });
  const all = leased("10.13.0.2", "10.13.0.3", "10.13.0.4", "10.13.0.6");
  assert.equal(formatIpv4(allocate(s, all, ip("10.13.0.5")).ip), "10.13.0.5");
});

Deno.test("allocate() starts at the range start when the last reserved IP is outside the set", () => {
  const s = set({ subnet: "10.13.0.0/24", rangeStart: "10.13.0.100" });
  assert.equal(formatIpv4(allocate(s, new Set(), ip("10.13.0.5")).ip), "10.13.0.100");
});

Deno.test("candidates() walks every range of a set and wraps to the first", () => {
  const s: RangeSet = parseHostLocalConfig({
    type: "host-local",
    ranges: [[
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.12" },
      { subnet: "10.0.1.0/24", rangeStart: "10.0.1.1", rangeEnd: "10.0.1.3" },
    ]],
  }).ranges[0]!;
  // 10.0.1.1 is the second range's default gateway.
  assert.deepEqual(order(s), ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.1.2", "10.0.1.3"]);
  assert.deepEqual(order(s, "10.0.0.12"), [
    "10.0.1.2",
    "10.0.1.3",
    "10.0.0.10",
    "10.0.0.11",
    "10.0.0.12",
  ]);
});

Deno.test("candidates() yields nothing when the only address is the gateway", () => {
  const s = set({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.1", rangeEnd: "10.0.0.1" });
  assert.deepEqual(order(s), []);
});

Deno.test("allocate() fails with code 100 when the range set is exhausted", () => {
  const s = set({ subnet: "10.13.0.0/29" });
  const all = leased("10.13.0.2", "10.13.0.3", "10.13.0.4", "10.13.0.5", "10.13.0.6");
  assert.throws(
    () => allocate(s, all, ip("10.13.0.3")),
    cniCode(100, "No IP addresses available in range set 10.13.0.1-10.13.0.6"),
  );
});

Deno.test("checkRequested() accepts a free address inside a range", () => {
  const s = set({ subnet: "10.13.0.0/24" });
  const a = checkRequested(s, ip("10.13.0.77"), leased("10.13.0.2"));
  assert.equal(formatIpv4(a.ip), "10.13.0.77");
  assert.equal(a.range.subnet.prefix, 24);
});

Deno.test("checkRequested() fails with code 101 for a taken, outside or gateway address", () => {
  const s = set({ subnet: "10.13.0.0/24", rangeEnd: "10.13.0.100" });
  assert.throws(
    () => checkRequested(s, ip("10.13.0.5"), leased("10.13.0.5")),
    cniCode(101, 'Requested IP address "10.13.0.5" is already allocated'),
  );
  assert.throws(
    () => checkRequested(s, ip("10.13.0.200"), new Set()),
    cniCode(101, 'Requested IP address "10.13.0.200" is not in range set 10.13.0.1-10.13.0.100'),
  );
  assert.throws(
    () => checkRequested(s, ip("10.13.0.1"), new Set()),
    cniCode(101, /is the gateway of range 10\.13\.0\.1-10\.13\.0\.100$/),
  );
});
