// Tests for config.ts: decoding, field types and defaults, unsupported options, requested IPs.

import assert from "node:assert/strict";
import { errorOf } from "./_test_util.ts";
import { parseCniArgs } from "./cni_args.ts";
import {
  DEFAULT_PIN_DIR,
  ipamStdin,
  type NetConf,
  parseNetConf,
  requestedIps,
} from "./net_conf.ts";

const enc = new TextEncoder();

const BASE = {
  cniVersion: "1.0.0",
  name: "k8s-pod-network",
  type: "ebpfcni",
  ipam: { type: "host-local", subnet: "10.13.0.0/24" },
};

function conf(overrides: Record<string, unknown> = {}): NetConf {
  return parseNetConf(enc.encode(JSON.stringify({ ...BASE, ...overrides })));
}

Deno.test("parseNetConf() fills in the defaults", () => {
  const c = conf();
  assert.equal(c.cniVersion, "1.0.0");
  assert.equal(c.name, "k8s-pod-network");
  assert.equal(c.type, "ebpfcni");
  assert.equal(c.bridge, "cni0");
  assert.equal(c.mtu, 1500);
  assert.equal(c.isGateway, true);
  assert.equal(c.isDefaultGateway, false);
  assert.equal(c.hairpinMode, false);
  assert.equal(c.promiscMode, false);
  assert.equal(c.pinDir, DEFAULT_PIN_DIR);
  assert.equal(c.agentHandoff, true);
  const { type, raw, fromPodCidr, builtIn } = c.ipam;
  assert.deepEqual({ type, raw, fromPodCidr, builtIn }, {
    type: "host-local",
    raw: { type: "host-local", subnet: "10.13.0.0/24" },
    fromPodCidr: false,
    builtIn: true,
  });
  // Parsed once, here: the ranges and dataDir are typed values already.
  assert.ok(c.ipam.builtIn && !(c.ipam.config instanceof Error));
  assert.equal(c.ipam.dataDir, "/var/lib/cni/networks");
  assert.deepEqual(c.args, { ips: [] });
  assert.deepEqual(c.runtimeConfig, { ips: [] });
  assert.equal(c.prevResult, undefined);
  assert.equal(c.dns, undefined);
});

Deno.test("parseNetConf() keeps the raw bytes and the whole parsed object", () => {
  const bytes = enc.encode(JSON.stringify({ ...BASE, custom: { x: 1 } }));
  const c = parseNetConf(bytes);
  assert.equal(c.raw, bytes);
  assert.deepEqual(c.json.custom, { x: 1 });
});

Deno.test("parseNetConf() reads every typed field", () => {
  const c = conf({
    bridge: "br-pods",
    mtu: 9000,
    isGateway: false,
    hairpinMode: true,
    promiscMode: true,
    pinDir: "/sys/fs/bpf/ebpfcni",
    dns: { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] },
    args: { cni: { ips: ["10.13.0.9"], identity: 77, labels: { app: "web" } } },
    runtimeConfig: {
      ips: ["10.13.0.10/24"],
      portMappings: [],
      ipRanges: [[{ subnet: "10.13.1.0/24" }]],
    },
  });
  assert.equal(c.bridge, "br-pods");
  assert.equal(c.mtu, 9000);
  assert.equal(c.isGateway, false);
  assert.equal(c.hairpinMode, true);
  assert.equal(c.promiscMode, true);
  assert.equal(c.pinDir, "/sys/fs/bpf/ebpfcni");
  assert.deepEqual(c.dns, { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] });
  assert.deepEqual(c.args, { ips: ["10.13.0.9"], identity: 77, labels: { app: "web" } });
  assert.deepEqual(c.runtimeConfig, {
    ips: ["10.13.0.10"],
    ipRanges: [[{ subnet: "10.13.1.0/24" }]],
  });
});

Deno.test("parseNetConf() turns isGateway on when isDefaultGateway is set", () => {
  const c = conf({ isGateway: false, isDefaultGateway: true });
  assert.equal(c.isGateway, true);
  assert.equal(c.isDefaultGateway, true);
});

Deno.test("parseNetConf() rejects a negative mtu with code 7", () => {
  const err = errorOf(() => conf({ mtu: -5 }));
  assert.equal(err.code, 7);
  assert.equal(
    err.message,
    'Invalid network config: "mtu" must be an integer from 68 to 65535, got "-5"',
  );
});

Deno.test("parseNetConf() tells a string mtu from a number in the message", () => {
  assert.match(errorOf(() => conf({ mtu: "1500" })).message, /got the string "1500"$/);
});

Deno.test("parseNetConf() builds host-local IPAM from the legacy podcidr", () => {
  const c = conf({ ipam: undefined, podcidr: "10.244.1.0/24" });
  const { type, raw, fromPodCidr } = c.ipam;
  assert.deepEqual({ type, raw, fromPodCidr }, {
    type: "host-local",
    raw: { type: "host-local", subnet: "10.244.1.0/24", routes: [{ dst: "0.0.0.0/0" }] },
    fromPodCidr: true,
  });
  const delegated = JSON.parse(new TextDecoder().decode(ipamStdin(c)));
  assert.deepEqual(delegated.ipam, c.ipam.raw);
  assert.equal(delegated.podcidr, "10.244.1.0/24");
});

Deno.test("parseNetConf() prefers ipam over podcidr and hands IPAM stdin unchanged", () => {
  const c = conf({ podcidr: "10.244.1.0/24" });
  assert.equal(c.ipam.fromPodCidr, false);
  assert.equal(ipamStdin(c), c.raw);
});

Deno.test("parseNetConf() accepts CONVENTIONS-style label lists", () => {
  const c = conf({ args: { cni: { labels: [{ key: "app", value: "web" }] } } });
  assert.deepEqual(c.args.labels, { app: "web" });
});

Deno.test("parseNetConf() keeps a __proto__ label as a plain label", () => {
  const c = parseNetConf(
    enc.encode(
      `{"cniVersion":"1.0.0","name":"n","type":"t","podcidr":"10.0.0.0/24",` +
        `"args":{"cni":{"labels":{"__proto__":"x"}}}}`,
    ),
  );
  assert.deepEqual(Object.keys(c.args.labels ?? {}), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(c.args.labels), Object.prototype);
});

Deno.test("parseNetConf() parses prevResult in either shape and keeps it raw", () => {
  const prev040 = {
    cniVersion: "0.4.0",
    ips: [{ version: "4", address: "10.13.0.5/24", gateway: "10.13.0.1", interface: 0 }],
  };
  const c = conf({ cniVersion: "0.4.0", prevResult: prev040 });
  assert.deepEqual(c.prevResultRaw, prev040);
  assert.deepEqual(c.prevResult, {
    cniVersion: "0.4.0",
    ips: [{ address: "10.13.0.5/24", gateway: "10.13.0.1", interface: 0 }],
  });
});

Deno.test("parseNetConf() ignores unknown fields and unsupported ones left at their defaults", () => {
  const c = conf({
    somethingNew: true,
    capabilities: { ips: true },
    ipMasq: false,
    vlan: 0,
    vlanTrunk: [],
    preserveDefaultVlan: true,
    forceAddress: false,
  });
  assert.equal(c.name, "k8s-pod-network");
});

Deno.test("parseNetConf() names every unsupported option with code 2", () => {
  const err = errorOf(() =>
    conf({
      vlan: 100,
      vlanTrunk: [{ id: 5 }],
      macspoofchk: true,
      portIsolation: true,
    })
  );
  assert.equal(err.code, 2);
  assert.equal(
    err.message,
    'Unsupported config fields: vlan 100, vlanTrunk [{"id":5}], macspoofchk true, ' +
      "portIsolation true (ebpfcni implements only the reference defaults of these)",
  );
});

Deno.test("parseNetConf() reports undecodable stdin with code 6 and the parser's message", () => {
  const badUtf8 = new Uint8Array([0x7b, 0xff, 0x7d]);
  const e1 = errorOf(() => parseNetConf(badUtf8));
  assert.equal(e1.code, 6);
  assert.ok(e1.details.length > 0);
  const e2 = errorOf(() => parseNetConf(enc.encode('{"cniVersion":')));
  assert.equal(e2.code, 6);
  assert.equal(e2.message, "Could not decode network config: not valid JSON");
  assert.ok(e2.details.length > 0);
  assert.ok(e2.cause instanceof SyntaxError);
});

// Each row: what to change in BASE (undefined removes the field), expected code, and a part of
// the message the runtime's user needs to see.
const BAD: [string, Record<string, unknown>, number, string][] = [
  ["array instead of object", { __raw: "[1,2]" }, 6, "expected a JSON object, got an array"],
  ["null document", { __raw: "null" }, 6, "got null"],
  ["empty stdin", { __raw: "" }, 6, "not valid JSON"],
  ["missing cniVersion", { cniVersion: undefined }, 7, '"cniVersion" is required'],
  ["numeric cniVersion", { cniVersion: 1 }, 7, '"cniVersion" must be a string'],
  ["unsupported cniVersion", { cniVersion: "0.2.0" }, 1, 'Incompatible CNI version "0.2.0"'],
  ["missing name", { name: undefined }, 7, '"name" is required'],
  ["invalid name", { name: "my net" }, 7, 'Invalid network name "my net"'],
  ["empty name", { name: "" }, 7, "Invalid network name"],
  ["missing type", { type: undefined }, 7, '"type" is required'],
  ["empty type", { type: "" }, 7, '"type" must be a non-empty string'],
  ["bridge too long", { bridge: "a-very-long-bridge" }, 7, '"bridge" must be at most 15 bytes'],
  ["bridge with slash", { bridge: "br/0" }, 7, '"bridge" must not contain'],
  ["bridge not a string", { bridge: 5 }, 7, '"bridge" must be a string'],
  ["mtu too small", { mtu: 67 }, 7, '"mtu" must be an integer from 68 to 65535, got "67"'],
  ["mtu too large", { mtu: 65536 }, 7, '"mtu"'],
  ["mtu fractional", { mtu: 1500.5 }, 7, '"mtu"'],
  ["isGateway string", { isGateway: "true" }, 7, '"isGateway" must be a boolean'],
  ["isDefaultGateway number", { isDefaultGateway: 1 }, 7, '"isDefaultGateway" must be a boolean'],
  ["hairpinMode string", { hairpinMode: "yes" }, 7, '"hairpinMode" must be a boolean'],
  ["promiscMode object", { promiscMode: {} }, 7, '"promiscMode" must be a boolean, got an object'],
  ["agentHandoff string", { agentHandoff: "no" }, 7, '"agentHandoff" must be a boolean'],
  ["relative pinDir", { pinDir: "sys/fs/bpf" }, 7, '"pinDir" must be an absolute path'],
  ["pinDir with ..", { pinDir: "/sys/fs/bpf/../../etc" }, 7, '"pinDir"'],
  ["no ipam, no podcidr", { ipam: undefined }, 7, '"ipam" is required'],
  ["ipam without type", { ipam: { subnet: "10.0.0.0/24" } }, 7, '"ipam.type" is required'],
  ["ipam not an object", { ipam: "host-local" }, 7, '"ipam" must be an object'],
  ["bad podcidr", { ipam: undefined, podcidr: "10.0.0.0" }, 7, '"podcidr" must be an IPv4 subnet'],
  ["IPv6 podcidr", { ipam: undefined, podcidr: "fd00::/64" }, 7, '"podcidr"'],
  ["args not an object", { args: [] }, 7, '"args" must be an object'],
  ["args.cni not an object", { args: { cni: 1 } }, 7, '"args.cni" must be an object'],
  ["args.cni.ips not a list", { args: { cni: { ips: "10.0.0.1" } } }, 7, '"args.cni.ips" must be'],
  ["args.cni.ips bad entry", { args: { cni: { ips: ["10.0.0.300"] } } }, 7, '"args.cni.ips[0]"'],
  ["args.cni.ips IPv6", { args: { cni: { ips: ["fd00::1"] } } }, 7, "must be an IPv4 address"],
  [
    "identity zero",
    { args: { cni: { identity: 0 } } },
    7,
    '"args.cni.identity" must be an integer',
  ],
  ["identity too big", { args: { cni: { identity: 4294967296 } } }, 7, '"args.cni.identity"'],
  ["identity string", { args: { cni: { identity: "5" } } }, 7, 'got the string "5"'],
  ["labels not strings", { args: { cni: { labels: { a: 1 } } } }, 7, '"args.cni.labels.a"'],
  ["labels list bad", { args: { cni: { labels: [{ key: "a" }] } } }, 7, '"args.cni.labels[0]"'],
  ["runtimeConfig list", { runtimeConfig: [] }, 7, '"runtimeConfig" must be an object'],
  ["runtimeConfig.ips bad", { runtimeConfig: { ips: [1] } }, 7, '"runtimeConfig.ips[0]"'],
  ["prevResult not object", { prevResult: "x" }, 7, '"prevResult" must be an object'],
  ["prevResult bad ip", { prevResult: { ips: [{ address: "10.0.0.1" }] } }, 7, "ips[0].address"],
  ["dns bad", { dns: { nameservers: "8.8.8.8" } }, 7, 'Invalid network config: "dns.nameservers"'],
  ["ipMasq not a boolean", { ipMasq: "yes" }, 7, '"ipMasq"'],
  ["vlan set", { vlan: 10 }, 2, "vlan 10"],
  ["preserveDefaultVlan off", { preserveDefaultVlan: false }, 2, "preserveDefaultVlan false"],
  ["forceAddress on", { forceAddress: true }, 2, "forceAddress"],
  ["enabledad on", { enabledad: true }, 2, "enabledad"],
  ["disableContainerInterface", { disableContainerInterface: true }, 2, "disableContainerInt"],
];

Deno.test("parseNetConf() rejects bad configs with the right code and message", () => {
  for (const [what, overrides, code, message] of BAD) {
    const raw = overrides.__raw;
    const bytes = typeof raw === "string"
      ? enc.encode(raw)
      : enc.encode(JSON.stringify({ ...BASE, ...overrides }));
    const err = errorOf(() => parseNetConf(bytes));
    assert.equal(err.code, code, `${what}: ${err.message}`);
    assert.ok(err.message.includes(message), `${what}: ${err.message}`);
    assert.ok(!err.message.endsWith("."), `${what}: trailing period`);
  }
});

Deno.test("requestedIps() merges CNI_ARGS, args and runtimeConfig without duplicates", () => {
  const c = conf({
    args: { cni: { ips: ["10.13.0.9", "10.13.0.5"] } },
    runtimeConfig: { ips: ["10.13.0.9/24", "10.13.0.10"] },
  });
  assert.deepEqual(requestedIps(c, parseCniArgs("IP=10.13.0.5")), [
    "10.13.0.5",
    "10.13.0.9",
    "10.13.0.10",
  ]);
  assert.deepEqual(requestedIps(conf(), parseCniArgs("")), []);
});

Deno.test("requestedIps() rejects a bad CNI_ARGS address with code 4", () => {
  assert.equal(errorOf(() => requestedIps(conf(), parseCniArgs("IP=nope"))).code, 4);
});
