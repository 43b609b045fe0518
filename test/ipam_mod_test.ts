// The IPAM façade on the built-in store (temp dataDir per test).

import assert from "node:assert/strict";
import { CniError } from "../src/spec/cni.ts";
import {
  ipamAdd,
  ipamCheck,
  type IpamContext,
  ipamDel,
  ipamGc,
  ipamStatus,
} from "../src/ipam/mod.ts";
import { parseIpamConf } from "../src/ipam/ipam_conf.ts";

type Ctx = IpamContext & { dir: string };

async function withDataDir(fn: (dataDir: string) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "ipam-mod-" });
  try {
    await fn(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

function ctx(
  dataDir: string,
  ipam: Record<string, unknown>,
  containerId = "c1",
  more: Partial<IpamContext> & { runtimeIpRanges?: unknown } = {},
): Ctx {
  const { runtimeIpRanges, ...rest } = more;
  return {
    network: "net1",
    containerId,
    ifname: "eth0",
    conf: parseIpamConf({ type: "host-local", dataDir, ...ipam }, false, runtimeIpRanges),
    rawConfig: new Uint8Array(),
    env: {},
    requestedIps: [],
    dir: `${dataDir}/net1`,
    ...rest,
  };
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

function cniError(code: number, message?: string | RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (typeof message === "string") assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  };
}

const SUBNET = { subnet: "10.13.0.0/24", routes: [{ dst: "0.0.0.0/0" }] };

Deno.test("ipamAdd() returns address with the subnet prefix, gateway and configured routes", async () => {
  await withDataDir(async (d) => {
    const r = await ipamAdd(ctx(d, SUBNET));
    assert.deepEqual(r, {
      ips: [{ address: "10.13.0.2/24", gateway: "10.13.0.1" }],
      routes: [{ dst: "0.0.0.0/0" }],
    });
    assert.deepEqual(await files(`${d}/net1`), ["10.13.0.2", "last_reserved_ip.0", "lock"]);
  });
});

Deno.test("ipamAdd() gives the same lease back to the same container and interface", async () => {
  await withDataDir(async (d) => {
    const first = await ipamAdd(ctx(d, SUBNET));
    await ipamAdd(ctx(d, SUBNET, "c2"));
    assert.deepEqual(await ipamAdd(ctx(d, SUBNET)), first);
    const other = await ipamAdd(ctx(d, SUBNET, "c1", { ifname: "eth1" }));
    assert.equal(other.ips[0]!.address, "10.13.0.4/24");
  });
});

Deno.test("ipamAdd() allocates one address from each range set", async () => {
  await withDataDir(async (d) => {
    const ipam = {
      ranges: [[{ subnet: "10.1.0.0/24" }], [{ subnet: "10.2.0.0/16", gateway: "10.2.0.254" }]],
    };
    const r = await ipamAdd(ctx(d, ipam));
    assert.deepEqual(r.ips, [
      { address: "10.1.0.2/24", gateway: "10.1.0.1" },
      { address: "10.2.0.1/16", gateway: "10.2.0.254" },
    ]);
    assert.deepEqual(await Deno.readTextFile(`${d}/net1/last_reserved_ip.1`), "10.2.0.1");
  });
});

Deno.test("ipamAdd() gives a requested IP and fails with code 101 when it is taken", async () => {
  await withDataDir(async (d) => {
    const r = await ipamAdd(ctx(d, SUBNET, "c1", { requestedIps: ["10.13.0.50"] }));
    assert.equal(r.ips[0]!.address, "10.13.0.50/24");
    await assert.rejects(
      ipamAdd(ctx(d, SUBNET, "c2", { requestedIps: ["10.13.0.50"] })),
      cniError(101, 'Requested IP address "10.13.0.50" is already allocated'),
    );
    await assert.rejects(
      ipamAdd(ctx(d, SUBNET, "c2", { requestedIps: ["10.99.0.1"] })),
      cniError(101, /^Requested IP addresses "10\.99\.0\.1" are not in any range set/),
    );
    await assert.rejects(
      ipamAdd(ctx(d, SUBNET, "c1", { requestedIps: ["10.13.0.60"] })),
      cniError(101, /conflicts with "10\.13\.0\.50", already leased to container "c1"/),
    );
    await assert.rejects(
      ipamAdd(ctx(d, SUBNET, "c2", { requestedIps: ["not-an-ip"] })),
      cniError(7),
    );
  });
});

Deno.test("ipamAdd() releases what it reserved when a later range set is exhausted", async () => {
  await withDataDir(async (d) => {
    const ipam = {
      ranges: [
        [{ subnet: "10.1.0.0/24" }],
        [{ subnet: "10.2.0.0/24", rangeStart: "10.2.0.5", rangeEnd: "10.2.0.5" }],
      ],
    };
    await ipamAdd(ctx(d, ipam, "c1"));
    await assert.rejects(
      ipamAdd(ctx(d, ipam, "c2")),
      cniError(100, "No IP addresses available in range set 10.2.0.5-10.2.0.5"),
    );
    assert.deepEqual(await files(`${d}/net1`), [
      "10.1.0.2",
      "10.2.0.5",
      "last_reserved_ip.0",
      "last_reserved_ip.1",
      "lock",
    ]);
  });
});

Deno.test("ipamAdd() adds DNS read from resolvConf", async () => {
  await withDataDir(async (d) => {
    await Deno.writeTextFile(`${d}/resolv.conf`, "nameserver 10.0.0.10\nsearch svc.local\n");
    const r = await ipamAdd(ctx(d, { ...SUBNET, resolvConf: `${d}/resolv.conf` }));
    assert.deepEqual(r.dns, { nameservers: ["10.0.0.10"], search: ["svc.local"] });
    await assert.rejects(
      ipamAdd(ctx(d, { ...SUBNET, resolvConf: `${d}/missing.conf` }, "c2")),
      cniError(5, /^Cannot read resolvConf/),
    );
  });
});

Deno.test("ipamAdd() refuses a network name that would escape the data directory", async () => {
  await withDataDir(async (d) => {
    await assert.rejects(ipamAdd({ ...ctx(d, SUBNET), network: "../etc" }), cniError(7));
    await assert.rejects(ipamAdd({ ...ctx(d, SUBNET), network: "a/b" }), cniError(7));
  });
});

Deno.test("ipamDel() releases the lease and succeeds again when nothing is leased", async () => {
  await withDataDir(async (d) => {
    await ipamAdd(ctx(d, SUBNET));
    await ipamDel(ctx(d, SUBNET));
    assert.deepEqual(await files(`${d}/net1`), ["last_reserved_ip.0", "lock"]);
    await ipamDel(ctx(d, SUBNET));
    await ipamDel({ ...ctx(d, SUBNET), network: "never-used" });
    await assert.rejects(Deno.stat(`${d}/never-used`), Deno.errors.NotFound);
  });
});

Deno.test("ipamCheck() accepts the lease and reports a missing or different one", async () => {
  await withDataDir(async (d) => {
    const r = await ipamAdd(ctx(d, SUBNET));
    await ipamCheck(ctx(d, SUBNET), r.ips);
    await ipamCheck(ctx(d, SUBNET), []);
    await assert.rejects(
      ipamCheck(ctx(d, SUBNET), [{ address: "10.13.0.9/24" }]),
      cniError(999, /10\.13\.0\.9 is not leased$/),
    );
    await assert.rejects(
      ipamCheck(ctx(d, SUBNET), [{ address: "10.13.0.2/16" }]),
      cniError(999, /should have prefix \/24$/),
    );
    await assert.rejects(
      ipamCheck(ctx(d, SUBNET, "c2"), []),
      cniError(3, /^No address is leased to container "c2" interface "eth0"/),
    );
  });
});

Deno.test("ipamGc() releases leases of attachments that are not valid", async () => {
  await withDataDir(async (d) => {
    await ipamAdd(ctx(d, SUBNET, "c1"));
    await ipamAdd(ctx(d, SUBNET, "c2"));
    await ipamAdd(ctx(d, SUBNET, "c3"));
    await Deno.writeTextFile(`${d}/net1/10.13.0.100`, "legacy");
    const released = await ipamGc("net1", ctx(d, SUBNET).conf, [
      { containerId: "c2", ifname: "eth0" },
      { containerId: "legacy", ifname: "eth0" },
    ]);
    assert.deepEqual(released.sort(), ["10.13.0.2", "10.13.0.4"]);
    assert.deepEqual(await files(`${d}/net1`), [
      "10.13.0.100",
      "10.13.0.3",
      "last_reserved_ip.0",
      "lock",
    ]);
    assert.deepEqual(await ipamGc("unused", ctx(d, SUBNET).conf, []), []);
  });
});

Deno.test("ipamStatus() passes on a writable store and fails with code 50 otherwise", async () => {
  await withDataDir(async (d) => {
    await ipamStatus("net1", ctx(d, SUBNET).conf);
    await Deno.writeTextFile(`${d}/file`, "");
    await assert.rejects(
      ipamStatus("net1", ctx(`${d}/file`, SUBNET).conf),
      cniError(
        50,
        /^IPAM store for network "net1" is not usable: Refusing dataDir ".*": it is not a directory/,
      ),
    );
  });
});

const haveStatic = (() => {
  try {
    return Deno.statSync("/usr/lib/cni/static").isFile;
  } catch {
    return false;
  }
})();

Deno.test("ipamAdd() delegates other IPAM types to their plugin", {
  ignore: !haveStatic,
}, async () => {
  const config = {
    cniVersion: "1.0.0",
    name: "static-net",
    ipam: { type: "static", addresses: [{ address: "10.77.0.9/24" }] },
  };
  const r = await ipamAdd({
    network: "static-net",
    containerId: "c1",
    ifname: "eth0",
    conf: parseIpamConf(config.ipam, false),
    rawConfig: new TextEncoder().encode(JSON.stringify(config)),
    env: { CNI_PATH: "/usr/lib/cni", CNI_CONTAINERID: "c1", CNI_NETNS: "/x", CNI_IFNAME: "eth0" },
    requestedIps: [],
  });
  assert.deepEqual(r, { ips: [{ address: "10.77.0.9/24" }], routes: [] });
});

Deno.test("ipamAdd() allocates from runtime ipRanges placed before the configured ranges", async () => {
  await withDataDir(async (d) => {
    const r = await ipamAdd(
      ctx(d, SUBNET, "c1", { runtimeIpRanges: [[{ subnet: "10.50.0.0/24" }]] }),
    );
    assert.deepEqual(r.ips.map((ip) => ip.address), ["10.50.0.2/24", "10.13.0.2/24"]);
  });
});

Deno.test("ipamAdd() refuses two requested IPs in one range set and writes nothing", async () => {
  await withDataDir(async (d) => {
    await assert.rejects(
      ipamAdd(ctx(d, SUBNET, "c1", { requestedIps: ["10.13.0.5", "10.13.0.6"] })),
      cniError(101, /only one address is allocated per range set$/),
    );
    await assert.rejects(Deno.stat(`${d}/net1/10.13.0.5`), Deno.errors.NotFound);
  });
});
