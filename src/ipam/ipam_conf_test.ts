// Unit tests for host-local IPAM config parsing and validation.

import assert from "node:assert/strict";
import { CniError } from "../spec/cni.ts";
import { formatIpv4 } from "../spec/ipv4.ts";
import {
  DEFAULT_DATA_DIR,
  formatRangeSet,
  ipamType,
  parseDataDir,
  parseHostLocalConfig,
  parseResolvConf,
} from "./ipam_conf.ts";

function configError(fn: () => unknown, message: string | RegExp, details?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${err}`);
    assert.equal(err.code, 7);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    if (details !== undefined) assert.equal(err.details, details);
    return true;
  });
}

Deno.test("parseHostLocalConfig() applies host-local's defaults to a single subnet", () => {
  const cfg = parseHostLocalConfig({ type: "host-local", subnet: "10.13.0.0/24" });
  assert.equal(cfg.ranges.length, 1);
  const r = cfg.ranges[0]![0]!;
  assert.equal(formatIpv4(r.rangeStart), "10.13.0.1");
  assert.equal(formatIpv4(r.rangeEnd), "10.13.0.254");
  assert.equal(formatIpv4(r.gateway), "10.13.0.1");
  assert.equal(cfg.dataDir, DEFAULT_DATA_DIR);
  assert.deepEqual(cfg.routes, []);
  assert.equal(cfg.resolvConf, undefined);
});

Deno.test("parseHostLocalConfig() keeps explicit rangeStart, rangeEnd and gateway", () => {
  const cfg = parseHostLocalConfig({
    type: "host-local",
    subnet: "10.13.0.0/24",
    rangeStart: "10.13.0.10",
    rangeEnd: "10.13.0.20",
    gateway: "10.13.0.254",
    dataDir: "/tmp/x",
    resolvConf: "/etc/resolv.conf",
  });
  const r = cfg.ranges[0]![0]!;
  assert.equal(formatRangeSet(cfg.ranges[0]!), "10.13.0.10-10.13.0.20");
  assert.equal(formatIpv4(r.gateway), "10.13.0.254");
  assert.equal(cfg.dataDir, "/tmp/x");
  assert.equal(cfg.resolvConf, "/etc/resolv.conf");
});

Deno.test("parseHostLocalConfig() puts the subnet shorthand before ranges and runtime ranges first", () => {
  const cfg = parseHostLocalConfig(
    {
      type: "host-local",
      subnet: "10.1.0.0/24",
      ranges: [[{ subnet: "10.2.0.0/24" }, { subnet: "10.3.0.0/24" }]],
    },
    [[{ subnet: "10.9.0.0/24" }]],
  );
  assert.deepEqual(cfg.ranges.map(formatRangeSet), [
    "10.9.0.1-10.9.0.254",
    "10.1.0.1-10.1.0.254",
    "10.2.0.1-10.2.0.254,10.3.0.1-10.3.0.254",
  ]);
});

Deno.test("parseHostLocalConfig() names the field that has the wrong type", () => {
  configError(() => parseHostLocalConfig("x"), `IPAM config "ipam" must be an object, got string`);
  configError(() => parseHostLocalConfig({}), `IPAM config field "type" is missing`);
  configError(
    () => parseHostLocalConfig({ type: "host-local", subnet: 5 }),
    `IPAM config field "subnet" must be a string, got number`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", ranges: {} }),
    `IPAM config field "ranges" must be an array, got object`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", ranges: [{ subnet: "10.0.0.0/24" }] }),
    `IPAM config field "ranges[0]" must be an array, got object`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", ranges: [[{ subnet: ["x"] }]] }),
    `IPAM config field "ranges[0][0].subnet" must be a string, got array`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", ranges: [[{ rangeStart: "10.0.0.1" }]] }),
    `IPAM config field "ranges[0][0].subnet" is missing`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", subnet: "10.0.0.0/24", dataDir: 1 }),
    `IPAM config field "dataDir" must be a string, got number`,
  );
  configError(
    () =>
      parseHostLocalConfig({ type: "host-local", subnet: "10.0.0.0/24", routes: [{ gw: "1" }] }),
    `IPAM config field "routes[0].dst" is missing`,
  );
});

Deno.test("parseHostLocalConfig() reports unparsable subnets with the field in details", () => {
  configError(
    () => parseHostLocalConfig({ type: "host-local", ranges: [[{ subnet: "10.0.0.0/33" }]] }),
    `Cannot parse subnet "10.0.0.0/33": prefix length out of range`,
    `field "ranges[0][0].subnet"`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", subnet: "10.0.0.5/24" }),
    `Cannot parse subnet "10.0.0.5/24": host bits set (the network address is 10.0.0.0)`,
    `field "subnet"`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", subnet: "10.0.0.0/24", gateway: "10.0.0" }),
    `Cannot parse IPv4 address "10.0.0": expected 4 dot-separated octets, found 3`,
    `field "gateway"`,
  );
});

Deno.test("parseHostLocalConfig() rejects IPv6 subnets and routes", () => {
  configError(
    () => parseHostLocalConfig({ type: "host-local", subnet: "fd00::/64" }),
    `IPv6 subnet "fd00::/64" is not supported: ebpfcni's maps hold IPv4 addresses only`,
  );
  configError(
    () =>
      parseHostLocalConfig({
        type: "host-local",
        subnet: "10.0.0.0/24",
        routes: [{ dst: "::/0" }],
      }),
    /^IPv6 route "::\/0" is not supported/,
  );
});

Deno.test("parseHostLocalConfig() rejects a subnet too small to allocate from", () => {
  configError(
    () => parseHostLocalConfig({ type: "host-local", subnet: "10.0.0.0/31" }),
    `Subnet "10.0.0.0/31" is too small to allocate from`,
  );
});

Deno.test("parseHostLocalConfig() requires rangeStart, rangeEnd and gateway inside the subnet", () => {
  const base = { type: "host-local", subnet: "10.13.0.0/24" };
  configError(
    () => parseHostLocalConfig({ ...base, rangeStart: "10.14.0.1" }),
    "rangeStart 10.14.0.1 is not in subnet 10.13.0.0/24",
    `field "rangeStart"`,
  );
  configError(
    () => parseHostLocalConfig({ ...base, rangeEnd: "10.14.0.1" }),
    "rangeEnd 10.14.0.1 is not in subnet 10.13.0.0/24",
  );
  configError(
    () => parseHostLocalConfig({ ...base, gateway: "10.12.0.1" }),
    "gateway 10.12.0.1 is not in subnet 10.13.0.0/24",
  );
  configError(
    () => parseHostLocalConfig({ ...base, rangeStart: "10.13.0.50", rangeEnd: "10.13.0.40" }),
    "rangeEnd 10.13.0.40 is before rangeStart 10.13.0.50",
  );
});

Deno.test("parseHostLocalConfig() rejects overlapping ranges in a set, naming both", () => {
  configError(
    () =>
      parseHostLocalConfig({
        type: "host-local",
        ranges: [[
          { subnet: "10.0.0.0/24" },
          { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" },
        ]],
      }),
    "Ranges 10.0.0.1-10.0.0.254 and 10.0.0.10-10.0.0.20 overlap",
    `field "ranges[0]"`,
  );
});

Deno.test("parseHostLocalConfig() accepts disjoint ranges of one subnet in a set", () => {
  const cfg = parseHostLocalConfig({
    type: "host-local",
    ranges: [[
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" },
      { subnet: "10.0.0.0/24", rangeStart: "10.0.0.20", rangeEnd: "10.0.0.29" },
    ]],
  });
  assert.equal(formatRangeSet(cfg.ranges[0]!), "10.0.0.10-10.0.0.19,10.0.0.20-10.0.0.29");
});

Deno.test("parseHostLocalConfig() rejects range sets that overlap each other", () => {
  configError(
    () =>
      parseHostLocalConfig({
        type: "host-local",
        subnet: "10.0.0.0/16",
        ranges: [[{ subnet: "10.0.5.0/24" }]],
      }),
    "Range set 0 (10.0.0.1-10.0.255.254) overlaps with range set 1 (10.0.5.1-10.0.5.254)",
  );
});

Deno.test("parseHostLocalConfig() requires at least one range", () => {
  configError(
    () => parseHostLocalConfig({ type: "host-local" }),
    `IPAM config has no IP ranges: set "subnet" or "ranges"`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", ranges: [[]] }),
    `IPAM config field "ranges[0]" is an empty range set`,
  );
  configError(
    () => parseHostLocalConfig({ type: "host-local", rangeStart: "10.0.0.1", ranges: [] }),
    `IPAM config field "rangeStart" requires "subnet"`,
  );
});

Deno.test("parseHostLocalConfig() keeps routes as configured, gw only when given", () => {
  const cfg = parseHostLocalConfig({
    type: "host-local",
    subnet: "10.0.0.0/24",
    routes: [{ dst: "0.0.0.0/0" }, { dst: "192.168.0.1/16", gw: "10.0.0.1", mtu: 1400 }],
  });
  assert.deepEqual(cfg.routes, [
    { dst: "0.0.0.0/0" },
    { dst: "192.168.0.1/16", gw: "10.0.0.1", mtu: 1400 },
  ]);
});

Deno.test("ipamType() refuses plugin names with a slash", () => {
  assert.equal(ipamType({ type: "dhcp" }), "dhcp");
  configError(() => ipamType({ type: "../bin/sh" }), /is not a plain plugin name/);
});

Deno.test("parseDataDir() defaults to /var/lib/cni/networks", () => {
  assert.equal(parseDataDir({ type: "host-local" }), "/var/lib/cni/networks");
  assert.equal(parseDataDir({ type: "host-local", dataDir: "/run/x" }), "/run/x");
});

Deno.test("parseResolvConf() reads nameserver, domain, search and options like host-local", () => {
  const dns = parseResolvConf(
    [
      "# comment",
      "; also a comment",
      "nameserver 10.0.0.10",
      "  nameserver   10.0.0.11  # trailing words ignored",
      "domain example.com",
      "search a.example b.example",
      "search c.example",
      "options ndots:5 edns0",
      "nameserver",
      "sortlist 10.0.0.0",
      "",
    ].join("\n"),
  );
  assert.deepEqual(dns, {
    nameservers: ["10.0.0.10", "10.0.0.11"],
    domain: "example.com",
    search: ["a.example", "b.example", "c.example"],
    options: ["ndots:5", "edns0"],
  });
  assert.deepEqual(parseResolvConf(""), {});
});

Deno.test('"subnet": "usePodCidr" (any case, also in ranges) stands for the node\'s pod CIDR', async () => {
  const { parseIpamConf, withPodCidr, awaitsPodCidr } = await import("./ipam_conf.ts");
  const { parseCidr } = await import("../spec/ipv4.ts");
  const cidr = parseCidr("10.244.3.0/24");
  for (
    const ipam of [
      { type: "host-local", subnet: "usePodCidr" },
      { type: "host-local", subnet: "USEPODCIDR" },
      { type: "host-local", ranges: [[{ subnet: "usepodcidr" }]] },
    ]
  ) {
    const conf = parseIpamConf(ipam, false);
    assert.ok(conf.builtIn);
    if (!conf.builtIn) return;
    assert.ok(awaitsPodCidr(conf), JSON.stringify(ipam));
    // Without the CIDR: code 11 (try again once the agent has it), not a config error.
    assert.ok(conf.config instanceof CniError && conf.config.code === 11);
    assert.equal(conf.dataDir, "/var/lib/cni/networks");
    const done = withPodCidr(conf, cidr);
    assert.ok(!(done.config instanceof CniError));
    if (done.config instanceof CniError) return;
    const r = done.config.ranges[0]![0]!;
    assert.equal(formatIpv4(r.subnet.network), "10.244.3.0");
    assert.equal(r.subnet.prefix, 24);
    assert.equal(formatIpv4(r.gateway), "10.244.3.1");
    assert.equal(formatIpv4(r.rangeEnd), "10.244.3.254");
  }
});

Deno.test('"usePodCidr" with a bad other field is still code 7, before any CIDR is known', async () => {
  const { parseIpamConf, awaitsPodCidr } = await import("./ipam_conf.ts");
  const conf = parseIpamConf({ type: "host-local", subnet: "usePodCidr", routes: [{}] }, false);
  assert.ok(conf.builtIn && !awaitsPodCidr(conf));
  assert.ok(conf.builtIn && conf.config instanceof CniError && conf.config.code === 7);
});
