// Unit tests for the IPv4 arithmetic helpers.

import assert from "node:assert/strict";
import {
  addIp,
  broadcast,
  cidrContains,
  CidrError,
  cidrSize,
  formatCidr,
  formatIpv4,
  ipv4Problem,
  isIpv6,
  parseCidr,
  parseIpPrefix,
  parseIpv4,
  parseIpv4Prefix,
  prefixMask,
  tryParseIpv4,
} from "./ipv4.ts";

Deno.test("parseIpv4() and formatIpv4() round-trip host-order numbers", () => {
  assert.equal(parseIpv4("10.13.0.2"), 0x0a0d0002);
  assert.equal(parseIpv4("255.255.255.255"), 0xffffffff);
  assert.equal(parseIpv4("0.0.0.0"), 0);
  assert.equal(formatIpv4(0x0a0d0002), "10.13.0.2");
  assert.equal(formatIpv4(0xffffffff), "255.255.255.255");
});

Deno.test("parseIpv4() rejects malformed addresses with the reason", () => {
  const cases: [string, string][] = [
    ["300.1.1.1", `Cannot parse IPv4 address "300.1.1.1": octet 300 out of range 0-255`],
    ["1.2.3", `Cannot parse IPv4 address "1.2.3": expected 4 dot-separated octets, found 3`],
    [" 1.2.3.4", `Cannot parse IPv4 address " 1.2.3.4": invalid octet " 1"`],
    ["x1.2.3.4", `Cannot parse IPv4 address "x1.2.3.4": invalid octet "x1"`],
    ["1.2.3.4x", `Cannot parse IPv4 address "1.2.3.4x": invalid octet "4x"`],
    ["01.2.3.4", `Cannot parse IPv4 address "01.2.3.4": octet "01" has a leading zero`],
    ["1..3.4", `Cannot parse IPv4 address "1..3.4": invalid octet ""`],
    [
      "fd00::1",
      `Cannot parse IPv4 address "fd00::1": IPv6 addresses are not supported (IPv4 dotted quad only)`,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseIpv4(text), { name: "CidrError", message });
    assert.equal(tryParseIpv4(text), undefined);
  }
});

Deno.test("formatIpv4() refuses numbers outside 32 bits", () => {
  assert.throws(() => formatIpv4(2 ** 32), CidrError);
  assert.throws(() => formatIpv4(-1), CidrError);
  assert.throws(() => formatIpv4(1.5), CidrError);
});

Deno.test("parseCidr() returns network and prefix", () => {
  assert.deepEqual(parseCidr("10.13.0.0/24"), { network: 0x0a0d0000, prefix: 24 });
  assert.deepEqual(parseCidr("0.0.0.0/0"), { network: 0, prefix: 0 });
  assert.equal(formatCidr(parseCidr("192.168.1.128/25")), "192.168.1.128/25");
});

Deno.test("parseCidr() explains what is wrong", () => {
  const cases: [string, string][] = [
    ["10.0.0.0/33", `Cannot parse subnet "10.0.0.0/33": prefix length out of range`],
    ["10.0.0.0", `Cannot parse subnet "10.0.0.0": missing prefix length`],
    ["10.0.0.0/", `Cannot parse subnet "10.0.0.0/": invalid prefix length ""`],
    ["10.0.0.0/024", `Cannot parse subnet "10.0.0.0/024": invalid prefix length "024"`],
    ["10.0.0/24", `Cannot parse subnet "10.0.0/24": expected 4 dot-separated octets, found 3`],
    ["fd00::/64", `Cannot parse subnet "fd00::/64": IPv6 subnets are not supported`],
    [
      "10.0.0.1/24",
      `Cannot parse subnet "10.0.0.1/24": host bits set (the network address is 10.0.0.0)`,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseCidr(text), { name: "CidrError", message });
  }
});

Deno.test("parseCidr() with strict false masks host bits off", () => {
  assert.deepEqual(parseCidr("10.0.0.1/8", { strict: false }), { network: 0x0a000000, prefix: 8 });
});

Deno.test("broadcast(), cidrContains() and cidrSize() agree on a /24", () => {
  const c = parseCidr("10.13.0.0/24");
  assert.equal(formatIpv4(broadcast(c)), "10.13.0.255");
  assert.equal(cidrSize(c), 256);
  assert.ok(cidrContains(c, parseIpv4("10.13.0.0")));
  assert.ok(cidrContains(c, parseIpv4("10.13.0.255")));
  assert.ok(!cidrContains(c, parseIpv4("10.13.1.0")));
  assert.ok(!cidrContains(c, parseIpv4("10.12.255.255")));
});

Deno.test("prefixMask() handles /0 and /32", () => {
  assert.equal(prefixMask(0), 0);
  assert.equal(prefixMask(32), 0xffffffff);
  assert.equal(prefixMask(24), 0xffffff00);
  assert.equal(formatIpv4(broadcast(parseCidr("0.0.0.0/0"))), "255.255.255.255");
});

Deno.test("addIp() wraps around the 32-bit space", () => {
  assert.equal(addIp(0xffffffff, 1), 0);
  assert.equal(addIp(0, -1), 0xffffffff);
  assert.equal(addIp(parseIpv4("10.0.0.255"), 1), parseIpv4("10.0.1.0"));
});

Deno.test("parseIpv4() and formatIpv4() round-trip, ipv4Problem() accepts dotted quads", () => {
  for (const text of ["0.0.0.0", "10.13.0.2", "192.168.255.1", "255.255.255.255"]) {
    assert.equal(ipv4Problem(text), undefined);
    assert.equal(formatIpv4(parseIpv4(text)), text);
  }
  assert.equal(parseIpv4("10.13.0.2"), 0x0a0d0002);
  assert.equal(ipv4Problem("256.0.0.1"), "octet 256 out of range 0-255");
  assert.equal(ipv4Problem("fe80::1"), "IPv6 addresses are not supported (IPv4 dotted quad only)");
});

Deno.test("ipv4Problem() accepts dotted quads only", () => {
  for (const ok of ["0.0.0.0", "10.1.2.3", "255.255.255.255"]) {
    assert.ok(ipv4Problem(ok) === undefined, ok);
  }
  for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", " 1.2.3.4", "1.2.3.4/32"]) {
    assert.ok(ipv4Problem(bad) !== undefined, bad);
  }
});

Deno.test("isIpv6() accepts RFC 4291 forms and rejects malformed ones", () => {
  for (
    const ok of ["::", "::1", "fd00::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::ffff:1.2.3.4"]
  ) {
    assert.ok(isIpv6(ok), ok);
  }
  for (
    const bad of [
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7:8::",
      "fe80::1%eth0",
      "1.2.3.4",
    ]
  ) {
    assert.ok(!isIpv6(bad), bad);
  }
});

Deno.test("parseIpPrefix() checks the prefix length against the family", () => {
  assert.deepEqual(parseIpPrefix("10.0.0.0/8"), {
    address: "10.0.0.0",
    prefix: 8,
    family: 4,
    ip: 0x0a000000,
  });
  assert.deepEqual(parseIpPrefix("fd00::/64"), { address: "fd00::", prefix: 64, family: 6 });
  for (const bad of ["10.0.0.0/33", "10.0.0.0", "10.0.0.0/", "10.0.0.0/08", "fd00::/129", "x/8"]) {
    assert.equal(parseIpPrefix(bad), undefined, bad);
  }
});

Deno.test("parseIpv4Prefix() reads a bare address as /32 and keeps host bits", () => {
  assert.deepEqual(parseIpv4Prefix("10.0.0.7"), { ip: 0x0a000007, prefix: 32 });
  assert.deepEqual(parseIpv4Prefix("10.0.0.7/24"), { ip: 0x0a000007, prefix: 24 });
  for (const bad of ["fd00::7/64", "10.0.0.7/33", "10.0.0.07", "10.0.0.7/"]) {
    assert.equal(parseIpv4Prefix(bad), undefined, bad);
  }
});
