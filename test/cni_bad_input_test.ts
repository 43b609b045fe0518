// Bad input from the runtime: each case gets the spec's error code in the error JSON on stdout,
// a non-zero exit, and leaves the host exactly as it was (links of this network, lease files,
// state files, the pin dir and its parent, endpoint_map), both on a fresh network (nothing
// may be created) and on one with a live pod (nothing may be touched).
import assert from "node:assert/strict";
import { containerId, runPlugin, type TestNetwork, withNetwork } from "./_cni.ts";

interface Case {
  name: string;
  code: number;
  command?: string;
  /** Env overrides; undefined removes the variable. */
  env?: (ctx: Ctx) => Record<string, string | undefined>;
  /** The config: the network's, modified, or a raw string. */
  config?: (net: TestNetwork) => Record<string, unknown> | string;
  /** A regexp the error message must match. */
  msg?: RegExp;
}

interface Ctx {
  net: TestNetwork;
  /** An empty netns for ADD cases. */
  ns: string;
  /** The live pod's container ID (fresh network: an ID that was never added). */
  live: string;
  liveNs: string;
}

function without(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

const CASES: Case[] = [
  {
    name: "malformed JSON",
    code: 6,
    config: (net) => JSON.stringify(net.config()).slice(0, 40),
    msg: /not valid JSON/,
  },
  { name: "JSON that is not an object", code: 6, config: () => "[1, 2]" },
  { name: "empty stdin", code: 6, config: () => "" },
  {
    name: "missing name",
    code: 7,
    config: (net) => without(net.config(), "name"),
    msg: /"name" is required/,
  },
  { name: "missing type", code: 7, config: (net) => without(net.config(), "type") },
  { name: "missing ipam", code: 7, config: (net) => without(net.config(), "ipam") },
  {
    name: "missing ipam.type",
    code: 7,
    config: (net) => ({ ...net.config(), ipam: without(net.config().ipam as never, "type") }),
  },
  {
    name: "mtu as a string",
    code: 7,
    config: (net) => net.config({ mtu: "1500" }),
    msg: /"mtu"/,
  },
  { name: "bridge as a number", code: 7, config: (net) => net.config({ bridge: 42 }) },
  { name: "isGateway as a string", code: 7, config: (net) => net.config({ isGateway: "true" }) },
  { name: "name as a number", code: 7, config: (net) => net.config({ name: 7 }) },
  { name: "cniVersion as a number", code: 7, config: (net) => net.config({ cniVersion: 1 }) },
  {
    name: "an invalid ipam subnet",
    code: 7,
    config: (net) => net.config({}, { subnet: "10.1.2.0/33" }),
  },
  {
    name: "unknown cniVersion 9.9.9",
    code: 1,
    config: (net) => net.config({ cniVersion: "9.9.9" }),
    msg: /9\.9\.9/,
  },
  {
    name: "unsupported cniVersion 0.2.0",
    code: 1,
    config: (net) => net.config({ cniVersion: "0.2.0" }),
  },
  {
    name: "CNI_IFNAME longer than 15 bytes",
    code: 4,
    env: () => ({ CNI_IFNAME: "eth0123456789abc" }),
    msg: /CNI_IFNAME/,
  },
  { name: "CNI_IFNAME with '/'", code: 4, env: () => ({ CNI_IFNAME: "eth/0" }), msg: /CNI_IFNAME/ },
  { name: "CNI_IFNAME missing", code: 4, env: () => ({ CNI_IFNAME: undefined }) },
  {
    name: "CNI_NETNS missing on ADD",
    code: 4,
    env: () => ({ CNI_NETNS: undefined }),
    msg: /CNI_NETNS/,
  },
  {
    name: "CNI_NETNS that does not exist",
    code: 4,
    env: ({ net }) => ({ CNI_NETNS: `/var/run/netns/missing-${net.name}` }),
    msg: /does not exist/,
  },
  {
    name: "CNI_NETNS that is not a network namespace",
    code: 4,
    env: () => ({ CNI_NETNS: "/proc/self/ns/uts" }),
    msg: /not a network namespace/,
  },
  {
    name: "CNI_CONTAINERID missing",
    code: 4,
    env: () => ({ CNI_CONTAINERID: undefined }),
    msg: /CNI_CONTAINERID/,
  },
  {
    name: "CNI_CONTAINERID with a path separator",
    code: 4,
    env: () => ({ CNI_CONTAINERID: "../etc" }),
  },
  { name: "EBPFCNI_IDENTITY=0", code: 4, env: () => ({ CNI_ARGS: "EBPFCNI_IDENTITY=0" }) },
  {
    name: "a requested IP outside the subnet",
    code: 101,
    env: () => ({ CNI_ARGS: "IP=192.0.2.7" }),
  },
  {
    name: "unsupported options vlan:100, macspoofchk:true",
    code: 2,
    config: (net) => net.config({ vlan: 100, macspoofchk: true }),
    msg: /^Unsupported config fields: vlan 100, macspoofchk true \(/,
  },
  // DEL and CHECK of the live pod with bad input must not touch it either.
  {
    name: "DEL with malformed JSON",
    command: "DEL",
    code: 6,
    env: ({ live, liveNs }) => ({ CNI_CONTAINERID: live, CNI_NETNS: liveNs }),
    config: () => "{",
  },
  {
    name: "DEL with an unknown cniVersion",
    command: "DEL",
    code: 1,
    env: ({ live, liveNs }) => ({ CNI_CONTAINERID: live, CNI_NETNS: liveNs }),
    config: (net) => net.config({ cniVersion: "2.0.0" }),
  },
  {
    name: "DEL with CNI_IFNAME containing '/'",
    command: "DEL",
    code: 4,
    env: ({ live, liveNs }) => ({ CNI_CONTAINERID: live, CNI_NETNS: liveNs, CNI_IFNAME: "a/b" }),
  },
  {
    name: "DEL without CNI_CONTAINERID",
    command: "DEL",
    code: 4,
    env: ({ liveNs }) => ({ CNI_CONTAINERID: undefined, CNI_NETNS: liveNs }),
  },
  {
    name: "CHECK without prevResult",
    command: "CHECK",
    code: 7,
    env: ({ live, liveNs }) => ({ CNI_CONTAINERID: live, CNI_NETNS: liveNs }),
    msg: /prevResult/,
  },
  {
    name: "GC with valid-attachments that is not a list",
    command: "GC",
    code: 7,
    config: (net) => net.config({ "cni.dev/valid-attachments": { containerID: "x" } }),
  },
  {
    name: "an unknown CNI_COMMAND",
    command: "REMOVE",
    code: 4,
  },
];

async function runCase(c: Case, ctx: Ctx): Promise<void> {
  const { net } = ctx;
  const command = c.command ?? "ADD";
  const env: Record<string, string | undefined> = {
    CNI_CONTAINERID: containerId("bad"),
    CNI_NETNS: ctx.ns,
    CNI_IFNAME: "eth0",
    ...(c.env?.(ctx) ?? {}),
  };
  const ids = [ctx.live, env.CNI_CONTAINERID ?? ""].filter((id) => /^[\w.-]+$/.test(id));
  const before = await net.snapshot(ids, [ctx.ns, ctx.liveNs]);
  const r = await net.run({
    command,
    env,
    ...(c.config ? { config: c.config(net) } : {}),
  });
  const what = `${c.name}: ${r.stdout}${r.stderr}`;
  assert.notEqual(r.code, 0, what);
  assert.ok(r.json, `stdout is not JSON: ${what}`);
  assert.equal(r.json.code, c.code, what);
  assert.equal(typeof r.json.msg, "string", what);
  assert.equal(typeof r.json.cniVersion, "string", what);
  if (c.msg) assert.match(String(r.json.msg), c.msg, what);
  assert.deepEqual(await net.snapshot(ids, [ctx.ns, ctx.liveNs]), before, c.name);
}

for (const populated of [false, true]) {
  Deno.test(
    `bad input on ${
      populated ? "a network with a live pod" : "a fresh network"
    }: right code, host unchanged`,
    async () => {
      await withNetwork(async (net) => {
        const live = containerId("live");
        const liveNs = await net.netns();
        if (populated) await net.add(live, liveNs, { args: "EBPFCNI_IDENTITY=6001" });
        const ctx: Ctx = { net, ns: await net.netns(), live, liveNs };
        const before = await net.snapshot([live], [liveNs]);
        if (populated) {
          assert.equal(before.leases.length, 1);
          assert.equal(Object.keys(before.endpoints).length, 1);
        } else {
          assert.deepEqual(before.pins, ["<no pin dir>"]);
          assert.deepEqual(before.links, [`${liveNs}: lo master=- down`]);
        }
        for (const c of CASES) await runCase(c, ctx);

        if (populated) {
          const del = await net.run({
            command: "DEL",
            containerId: live,
            netns: liveNs,
            ifname: "eth0",
          });
          assert.equal(del.code, 0, del.stdout);
          assert.deepEqual(net.leases(), []);
        }
      });
    },
  );
}

Deno.test("VERSION answers libcni's probe with placeholder env and prints supportedVersions", async () => {
  for (const stdin of ['{"cniVersion":"1.1.0"}', '{"cniVersion":"0.4.0"}', ""]) {
    const r = await runPlugin({
      command: "VERSION",
      containerId: "dummy",
      netns: "dummy",
      ifname: "dummy",
      config: stdin,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(r.json, {
      cniVersion: "1.1.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  }
});
