// Tests for result.ts: per-version result shapes, prevResult parsing and error objects.

import assert from "node:assert/strict";
import { errorOf } from "./_test_util.ts";
import { CniError } from "../spec/cni.ts";
import { formatError, formatResult, parsePrevResult } from "./result.ts";
import type { Result } from "../spec/cni.ts";
import { SUPPORTED_VERSIONS } from "./spec_version.ts";

const RESULT: Result = {
  cniVersion: "1.1.0",
  interfaces: [
    { name: "cni0", mac: "aa:bb:cc:dd:ee:01" },
    { name: "veth1234", mac: "aa:bb:cc:dd:ee:02" },
    { name: "eth0", mac: "aa:bb:cc:dd:ee:03", mtu: 1500, sandbox: "/var/run/netns/x" },
  ],
  ips: [{ address: "10.13.0.5/24", gateway: "10.13.0.1", interface: 2 }],
  routes: [{ dst: "0.0.0.0/0", gw: "10.13.0.1" }],
  dns: { nameservers: ["10.96.0.10"] },
};

const LEGACY = {
  interfaces: [
    { name: "cni0", mac: "aa:bb:cc:dd:ee:01" },
    { name: "veth1234", mac: "aa:bb:cc:dd:ee:02" },
    { name: "eth0", mac: "aa:bb:cc:dd:ee:03", sandbox: "/var/run/netns/x" },
  ],
  ips: [{ version: "4", interface: 2, address: "10.13.0.5/24", gateway: "10.13.0.1" }],
  routes: [{ dst: "0.0.0.0/0", gw: "10.13.0.1" }],
  dns: { nameservers: ["10.96.0.10"] },
};

const CURRENT = {
  interfaces: [
    { name: "cni0", mac: "aa:bb:cc:dd:ee:01" },
    { name: "veth1234", mac: "aa:bb:cc:dd:ee:02" },
    { name: "eth0", mac: "aa:bb:cc:dd:ee:03", mtu: 1500, sandbox: "/var/run/netns/x" },
  ],
  ips: [{ interface: 2, address: "10.13.0.5/24", gateway: "10.13.0.1" }],
  routes: [{ dst: "0.0.0.0/0", gw: "10.13.0.1" }],
  dns: { nameservers: ["10.96.0.10"] },
};

Deno.test("formatResult() gives every supported version its shape", () => {
  const expected: Record<string, unknown> = {
    "0.3.0": LEGACY,
    "0.3.1": LEGACY,
    "0.4.0": LEGACY,
    "1.0.0": CURRENT,
    "1.1.0": CURRENT,
  };
  for (const v of SUPPORTED_VERSIONS) {
    const out = formatResult(RESULT, v);
    assert.deepEqual(out, { cniVersion: v, ...(expected[v] as object) }, v);
    // Key order is part of the wire format people diff against libcni's output.
    assert.deepEqual(Object.keys(out), ["cniVersion", "interfaces", "ips", "routes", "dns"], v);
  }
});

Deno.test("formatResult() marks IPv6 addresses as version 6 in the 0.x shape", () => {
  const out = formatResult({ cniVersion: "1.1.0", ips: [{ address: "fd00::5/64" }] }, "0.4.0");
  assert.deepEqual(out.ips, [{ version: "6", address: "fd00::5/64" }]);
});

Deno.test("formatResult() leaves out empty optional fields", () => {
  const out = formatResult(
    {
      cniVersion: "1.1.0",
      interfaces: [{ name: "eth0", mac: "", sandbox: "" }],
      ips: [],
      routes: [],
      dns: { nameservers: [], search: [] },
    },
    "1.1.0",
  );
  assert.deepEqual(out, { cniVersion: "1.1.0", interfaces: [{ name: "eth0" }] });
});

Deno.test("formatResult() keeps route attributes and an explicit zero table or scope", () => {
  const out = formatResult(
    {
      cniVersion: "1.1.0",
      routes: [{ dst: "10.0.0.0/8", mtu: 1400, advmss: 1360, priority: 10, table: 0, scope: 0 }],
    },
    "1.1.0",
  );
  assert.deepEqual(out.routes, [
    { dst: "10.0.0.0/8", mtu: 1400, advmss: 1360, priority: 10, table: 0, scope: 0 },
  ]);
});

Deno.test("formatResult() rejects an unsupported version with code 1", () => {
  assert.equal(errorOf(() => formatResult(RESULT, "0.2.0")).code, 1);
});

Deno.test("parsePrevResult() reads what formatResult() wrote, in every version", () => {
  for (const v of SUPPORTED_VERSIONS) {
    const back = parsePrevResult(JSON.parse(JSON.stringify(formatResult(RESULT, v))), v);
    const expected = structuredClone(RESULT);
    expected.cniVersion = v;
    // Interface mtu does not exist in the 0.x shape.
    if (v.startsWith("0.")) delete expected.interfaces?.[2]?.mtu;
    assert.deepEqual(back, expected, v);
  }
});

Deno.test("parsePrevResult() ignores unknown fields and treats null as absent", () => {
  const r = parsePrevResult(
    { cniVersion: "1.0.0", ips: null, routes: [{ dst: "0.0.0.0/0", gw: null }], extra: 1 },
    "1.0.0",
  );
  assert.deepEqual(r, { cniVersion: "1.0.0", routes: [{ dst: "0.0.0.0/0" }] });
});

Deno.test("parsePrevResult() rejects malformed results with code 7 naming the field", () => {
  const cases: [unknown, string][] = [
    ["x", "must be an object"],
    [{ ips: {} }, '"ips" must be an array'],
    [{ ips: [1] }, '"ips[0]" must be an object'],
    [{ ips: [{ address: "10.0.0.5" }] }, '"ips[0].address" must be an address in CIDR'],
    [{ ips: [{ address: "10.0.0.5/24", version: "6" }] }, '"ips[0].version" must be "4"'],
    [{ ips: [{ address: "10.0.0.5/24", gateway: "x" }] }, '"ips[0].gateway" must be an IP'],
    [{ ips: [{ address: "10.0.0.5/24", interface: -1 }] }, '"ips[0].interface"'],
    [{ interfaces: [{ mac: "aa" }] }, '"interfaces[0].name" must be a non-empty string'],
    [{ routes: [{ gw: "10.0.0.1" }] }, '"routes[0].dst"'],
    [{ routes: [{ dst: "0.0.0.0/0", mtu: "1500" }] }, '"routes[0].mtu"'],
    [{ dns: { domain: 5 } }, '"dns.domain" must be a string'],
  ];
  for (const [obj, message] of cases) {
    const err = errorOf(() => parsePrevResult(obj, "1.0.0"));
    assert.equal(err.code, 7, JSON.stringify(obj));
    assert.ok(err.message.startsWith("Invalid prevResult: "), err.message);
    assert.ok(err.message.includes(message), err.message);
  }
});

Deno.test("formatError() uses the request's version, or the current one if unusable", () => {
  const err = new CniError(7, "Invalid network config: bad", "more");
  assert.deepEqual(formatError(err, "0.4.0"), {
    cniVersion: "0.4.0",
    code: 7,
    msg: "Invalid network config: bad",
    details: "more",
  });
  assert.equal(formatError(err, "9.9.9").cniVersion, "1.1.0");
  assert.equal(formatError(new CniError(4, "x"), "1.0.0").details, undefined);
});
