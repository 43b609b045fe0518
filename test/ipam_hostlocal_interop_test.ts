// Interoperability with the reference host-local binary: both plugins must be able
// to share one lease directory (format, round-robin position, release and lock).

import assert from "node:assert/strict";
import { ipamAdd, ipamCheck, type IpamContext, ipamDel } from "../src/ipam/mod.ts";
import { parseIpamConf } from "../src/ipam/ipam_conf.ts";
import { LeaseStore } from "../src/ipam/lease_store.ts";

const HOST_LOCAL = "/usr/lib/cni/host-local";
const missing = (() => {
  try {
    return !Deno.statSync(HOST_LOCAL).isFile;
  } catch {
    return true;
  }
})();

interface Run {
  code: number;
  json: Record<string, unknown>;
}

function netConfig(ipam: Record<string, unknown>): Record<string, unknown> {
  return { cniVersion: "1.0.0", name: "net1", ipam };
}

function spawnHostLocal(
  command: string,
  containerId: string,
  ipam: Record<string, unknown>,
  ifname = "eth0",
): Deno.ChildProcess {
  const child = new Deno.Command(HOST_LOCAL, {
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: "/proc/self/ns/net", // host-local never enters it, but skel requires it
      CNI_IFNAME: ifname,
      CNI_PATH: "/usr/lib/cni",
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  w.write(new TextEncoder().encode(JSON.stringify(netConfig(ipam)))).then(() => w.close());
  return child;
}

async function finish(child: Deno.ChildProcess): Promise<Run> {
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return { code: out.code, json: text === "" ? {} : JSON.parse(text) };
}

function hostLocal(
  command: string,
  containerId: string,
  ipam: Record<string, unknown>,
  ifname = "eth0",
): Promise<Run> {
  return finish(spawnHostLocal(command, containerId, ipam, ifname));
}

function addresses(run: Run): string[] {
  assert.equal(run.code, 0, JSON.stringify(run.json));
  return (run.json.ips as { address: string }[]).map((ip) => ip.address);
}

function ours(ipam: Record<string, unknown>, containerId: string): IpamContext {
  return {
    network: "net1",
    containerId,
    ifname: "eth0",
    conf: parseIpamConf(ipam, false),
    rawConfig: new TextEncoder().encode(JSON.stringify(netConfig(ipam))),
    env: {},
    requestedIps: [],
  };
}

async function withIpam(
  fn: (ipam: Record<string, unknown>, dir: string) => Promise<void>,
  extra: Record<string, unknown> = { subnet: "10.30.0.0/24" },
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "ipam-interop-" });
  try {
    await fn({ type: "host-local", dataDir, ...extra }, `${dataDir}/net1`);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

const opts = { ignore: missing };

Deno.test("host-local allocates after our lease and does not reuse it", opts, async () => {
  await withIpam(async (ipam) => {
    const mine = await ipamAdd(ours(ipam, "c1"));
    assert.equal(mine.ips[0]!.address, "10.30.0.2/24");
    assert.deepEqual(addresses(await hostLocal("ADD", "c2", ipam)), ["10.30.0.3/24"]);
  });
});

Deno.test("host-local recognises our lease file as the container's own", opts, async () => {
  await withIpam(async (ipam) => {
    await ipamAdd(ours(ipam, "c1"));
    assert.equal((await hostLocal("CHECK", "c1", ipam)).code, 0);
    const dup = await hostLocal("ADD", "c1", ipam);
    assert.equal(dup.code, 1);
    assert.match(String(dup.json.msg), /10\.30\.0\.2 has been allocated to c1/);
  });
});

Deno.test("host-local DEL of our container releases our lease file", opts, async () => {
  await withIpam(async (ipam, dir) => {
    await ipamAdd(ours(ipam, "c1"));
    await ipamAdd(ours(ipam, "c2"));
    assert.equal((await hostLocal("DEL", "c1", ipam)).code, 0);
    await assert.rejects(Deno.stat(`${dir}/10.30.0.2`), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(`${dir}/10.30.0.3`), "c2\r\neth0");
  });
});

Deno.test("our ipamCheck and ipamAdd find a lease written by host-local", opts, async () => {
  await withIpam(async (ipam) => {
    const theirs = await hostLocal("ADD", "c1", ipam);
    assert.deepEqual(addresses(theirs), ["10.30.0.2/24"]);
    await ipamCheck(ours(ipam, "c1"), theirs.json.ips as { address: string }[]);
    // Same attachment: the existing lease comes back instead of a second address.
    assert.equal((await ipamAdd(ours(ipam, "c1"))).ips[0]!.address, "10.30.0.2/24");
  });
});

Deno.test("our allocator does not hand out an address host-local leased", opts, async () => {
  await withIpam(async (ipam) => {
    assert.deepEqual(addresses(await hostLocal("ADD", "c1", ipam)), ["10.30.0.2/24"]);
    assert.equal((await ipamAdd(ours(ipam, "c2"))).ips[0]!.address, "10.30.0.3/24");
    // Requesting it explicitly is refused too.
    await assert.rejects(
      ipamAdd({ ...ours(ipam, "c3"), requestedIps: ["10.30.0.2"] }),
      /already allocated/,
    );
  });
});

Deno.test("our ipamDel releases a lease written by host-local", opts, async () => {
  await withIpam(async (ipam, dir) => {
    addresses(await hostLocal("ADD", "c1", ipam));
    await ipamDel(ours(ipam, "c1"));
    await assert.rejects(Deno.stat(`${dir}/10.30.0.2`), Deno.errors.NotFound);
    assert.equal((await hostLocal("CHECK", "c1", ipam)).code, 1);
  });
});

Deno.test("alternating allocations follow one shared round-robin order", opts, async () => {
  await withIpam(async (ipam) => {
    const got: string[] = [];
    for (let i = 0; i < 6; i++) {
      got.push(
        i % 2 === 0
          ? (await ipamAdd(ours(ipam, `c${i}`))).ips[0]!.address
          : addresses(await hostLocal("ADD", `c${i}`, ipam))[0]!,
      );
    }
    assert.deepEqual(got, [2, 3, 4, 5, 6, 7].map((n) => `10.30.0.${n}/28`));
    // A released address is not reused before the range wraps, by either plugin.
    assert.equal((await hostLocal("DEL", "c0", ipam)).code, 0);
    assert.deepEqual(addresses(await hostLocal("ADD", "c6", ipam)), ["10.30.0.8/28"]);
    assert.equal((await ipamAdd(ours(ipam, "c7"))).ips[0]!.address, "10.30.0.9/28");
  }, { subnet: "10.30.0.0/28" });
});

Deno.test(
  "both plugins wrap around to released addresses once the range is used up",
  opts,
  async () => {
    await withIpam(async (ipam) => {
      // /29: .1 is the gateway, .2-.6 allocatable.
      for (let i = 0; i < 5; i++) await ipamAdd(ours(ipam, `c${i}`));
      await ipamDel(ours(ipam, "c1")); // frees .3
      assert.deepEqual(addresses(await hostLocal("ADD", "h1", ipam)), ["10.30.0.3/29"]);
      assert.equal((await hostLocal("DEL", "c3", ipam)).code, 0); // frees .5
      assert.equal((await ipamAdd(ours(ipam, "c9"))).ips[0]!.address, "10.30.0.5/29");
      const full = await hostLocal("ADD", "h2", ipam);
      assert.equal(full.code, 1);
      assert.match(String(full.json.msg), /no IP addresses available in range set/);
      await assert.rejects(ipamAdd(ours(ipam, "c10")), /No IP addresses available in range set/);
    }, { subnet: "10.30.0.0/29" });
  },
);

Deno.test("both plugins agree on range-set indexes with several range sets", opts, async () => {
  await withIpam(async (ipam, dir) => {
    const mine = await ipamAdd(ours(ipam, "c1"));
    assert.deepEqual(mine.ips.map((ip) => ip.address), ["10.30.0.2/24", "10.31.0.2/24"]);
    assert.deepEqual(addresses(await hostLocal("ADD", "c2", ipam)), [
      "10.30.0.3/24",
      "10.31.0.3/24",
    ]);
    assert.equal(await Deno.readTextFile(`${dir}/last_reserved_ip.1`), "10.31.0.3");
    assert.equal((await ipamAdd(ours(ipam, "c3"))).ips[1]!.address, "10.31.0.4/24");
  }, { ranges: [[{ subnet: "10.30.0.0/24" }], [{ subnet: "10.31.0.0/24" }]] });
});

Deno.test("host-local waits while we hold the store lock", opts, async () => {
  await withIpam(async (ipam) => {
    await ipamAdd(ours(ipam, "c1")); // creates the directory and lock file
    const store = await LeaseStore.open(ipam.dataDir as string, "net1");
    let child: Deno.ChildProcess | undefined;
    let exitedEarly = false;
    await store.locked(async () => {
      child = spawnHostLocal("ADD", "c2", ipam);
      const early = child.status.then(() => true);
      exitedEarly = await Promise.race([
        early,
        new Promise<boolean>((r) => setTimeout(() => r(false), 400)),
      ]);
    });
    const run = await finish(child!);
    assert.equal(exitedEarly, false, "host-local finished while we held the lock");
    assert.deepEqual(addresses(run), ["10.30.0.3/24"]);
  });
});
