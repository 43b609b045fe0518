// Tests of the on-disk lease store: file format, release rules, locking and
// concurrent allocation from separate plugin processes.

import assert from "node:assert/strict";
import { CniError } from "../src/spec/cni.ts";
import type { IpamResult } from "../src/spec/cni.ts";
import { ipamAdd } from "../src/ipam/mod.ts";
import { parseIpamConf } from "../src/ipam/ipam_conf.ts";
import { LeaseStore } from "../src/ipam/lease_store.ts";

async function withDataDir(fn: (dataDir: string) => void | Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "ipam-store-" });
  try {
    await fn(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

function which(cmd: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

Deno.test("reserve() writes host-local's lease and last_reserved_ip files byte for byte", async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    await store.locked(async () => {
      assert.equal(await store.reserve("10.13.0.2", " ctr1 ", "eth0", 0), true);
      assert.equal(await store.reserve("10.13.0.2", "ctr2", "eth0", 0), false);
      assert.equal(await store.reserve("10.14.0.9", "ctr2", "eth1", 1), true);
    });
    assert.deepEqual(await files(`${d}/net1`), [
      "10.13.0.2",
      "10.14.0.9",
      "last_reserved_ip.0",
      "last_reserved_ip.1",
      "lock",
    ]);
    assert.equal(await Deno.readTextFile(`${d}/net1/10.13.0.2`), "ctr1\r\neth0");
    assert.equal(await Deno.readTextFile(`${d}/net1/10.14.0.9`), "ctr2\r\neth1");
    assert.equal(await Deno.readTextFile(`${d}/net1/last_reserved_ip.0`), "10.13.0.2");
    assert.equal(await Deno.readTextFile(`${d}/net1/last_reserved_ip.1`), "10.14.0.9");
    assert.equal((await Deno.stat(`${d}/net1/10.13.0.2`)).mode! & 0o777, 0o600);
  });
});

Deno.test("leases() parses current and legacy lease files and ignores bookkeeping files", async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    await store.locked(async () => {
      await store.reserve("10.13.0.2", "ctr1", "eth0", 0);
      await Deno.writeTextFile(`${d}/net1/10.13.0.3`, "old-ctr\n");
      await Deno.writeTextFile(`${d}/net1/10.13.0.4`, ""); // host-local crashed mid-write
      await Deno.writeTextFile(`${d}/net1/fd00::5`, "v6\r\neth0");
      assert.deepEqual(await store.leases(), [
        { ip: "10.13.0.2", containerId: "ctr1", ifname: "eth0" },
        { ip: "10.13.0.3", containerId: "old-ctr" },
        { ip: "10.13.0.4", containerId: "" },
      ]);
      assert.equal(await store.lastReservedIp(0), "10.13.0.2");
      assert.equal(await store.lastReservedIp(7), undefined);
    });
  });
});

Deno.test("findByAttachment() matches the interface and legacy container-only leases", async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    await store.locked(async () => {
      await store.reserve("10.13.0.2", "ctr1", "eth0", 0);
      await store.reserve("10.13.0.3", "ctr1", "eth1", 0);
      await Deno.writeTextFile(`${d}/net1/10.13.0.4`, "ctr1");
      const found = await store.findByAttachment("ctr1", "eth0");
      assert.deepEqual(found.map((l) => l.ip), ["10.13.0.2", "10.13.0.4"]);
      assert.deepEqual(await store.findByAttachment("ctr9", "eth0"), []);
    });
  });
});

Deno.test("releaseByAttachment() removes exact matches, and legacy files only when none match", async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    await store.locked(async () => {
      await store.reserve("10.13.0.2", "ctr1", "eth0", 0);
      await store.reserve("10.13.0.3", "ctr1", "eth1", 0);
      await Deno.writeTextFile(`${d}/net1/10.13.0.4`, "ctr1");
      assert.deepEqual(await store.releaseByAttachment("ctr1", "eth0"), ["10.13.0.2"]);
      assert.deepEqual(await store.releaseByAttachment("ctr1", "eth0"), ["10.13.0.4"]);
      assert.deepEqual(await store.releaseByAttachment("ctr1", "eth0"), []);
      assert.deepEqual((await store.leases()).map((l) => l.ip), ["10.13.0.3"]);
    });
  });
});

Deno.test("releaseByIp() removes one lease and reports whether it existed", async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    await store.locked(async () => {
      await store.reserve("10.13.0.2", "ctr1", "eth0", 0);
      assert.equal(await store.releaseByIp("10.13.0.2"), true);
      assert.equal(await store.releaseByIp("10.13.0.2"), false);
      assert.equal(await store.releaseByIp("lock"), false);
    });
    assert.deepEqual(await files(`${d}/net1`), ["last_reserved_ip.0", "lock"]);
  });
});

Deno.test("store operations refuse to run without the lock", async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    assert.throws(() => store.leases(), (e: unknown) => e instanceof CniError && e.code === 999);
    assert.throws(() => store.reserve("10.0.0.1", "c", "eth0", 0), CniError);
  });
});

Deno.test("open() refuses network names that are not a single path component", async () => {
  await withDataDir((d) => {
    for (const name of ["", ".", "..", "a/b", "../x", "x..y"]) {
      assert.throws(
        () => LeaseStore.open(d, name),
        (e: unknown) => e instanceof CniError && e.code === 7,
        name,
      );
    }
  });
});

Deno.test("locked() removes temporary files left by a crashed writer", async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    await Deno.writeTextFile(`${d}/net1/.ebpfcni-tmp.10.13.0.2.dead`, "ctr1\r\neth0");
    await store.locked(async () => {});
    assert.deepEqual(await files(`${d}/net1`), ["lock"]);
  });
});

Deno.test("locked() holds a flock(2) that the flock tool sees, and waits for it", {
  ignore: !which("flock"),
}, async () => {
  await withDataDir(async (d) => {
    const store = await LeaseStore.open(d, "net1");
    const lockPath = `${d}/net1/lock`;
    await store.locked(async () => {
      const probe = await new Deno.Command("flock", { args: ["-n", lockPath, "true"] }).output();
      assert.equal(probe.code, 1, "flock -n must fail while we hold the lock");
    });

    const holder = new Deno.Command("flock", {
      args: [lockPath, "-c", "echo held; sleep 0.6"],
      stdout: "piped",
    }).spawn();
    const reader = holder.stdout.getReader();
    await reader.read(); // "held": the other process owns the lock now
    const t0 = performance.now();
    await store.locked(async () => {});
    const waited = performance.now() - t0;
    reader.releaseLock();
    await holder.stdout.cancel();
    await holder.status;
    assert.ok(waited > 300, `locked() returned after ${waited} ms while flock held the lock`);
  });
});

function ipamFor(dataDir: string): Record<string, unknown> {
  return { type: "host-local", subnet: "10.20.0.0/27", dataDir };
}

Deno.test("16 concurrent ipamAdd processes all get distinct addresses", async () => {
  await withDataDir(async (d) => {
    const modUrl = new URL("../src/ipam/mod.ts", import.meta.url).href;
    const confUrl = new URL("../src/ipam/ipam_conf.ts", import.meta.url).href;
    const code = `
      const { ipamAdd } = await import(${JSON.stringify(modUrl)});
      const { parseIpamConf } = await import(${JSON.stringify(confUrl)});
      const r = await ipamAdd({
        network: "net1", containerId: Deno.args[0], ifname: "eth0",
        conf: parseIpamConf(${JSON.stringify(ipamFor(d))}, false),
        rawConfig: new Uint8Array(), env: {}, requestedIps: [],
      });
      console.log(JSON.stringify(r));`;
    const runs = Array.from({ length: 16 }, (_, i) =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--no-config", "--no-lock", code, `ctr${i}`],
        cwd: d,
        stdout: "piped",
        stderr: "piped",
      }).output());
    const outs = await Promise.all(runs);
    const addresses = outs.map((o, i) => {
      const stderr = new TextDecoder().decode(o.stderr);
      assert.ok(o.success, `process ${i} failed: ${stderr}`);
      const r = JSON.parse(new TextDecoder().decode(o.stdout)) as IpamResult;
      return r.ips[0]!.address;
    });
    assert.equal(new Set(addresses).size, 16, `duplicates in ${addresses}`);
    const leaseFiles = (await files(`${d}/net1`)).filter((f) => f.startsWith("10."));
    assert.equal(leaseFiles.length, 16);
    for (let i = 0; i < 16; i++) {
      const owner = addresses.findIndex((a) => a === `${leaseFiles[i]}/27`);
      assert.ok(owner >= 0);
      assert.equal(await Deno.readTextFile(`${d}/net1/${leaseFiles[i]}`), `ctr${owner}\r\neth0`);
    }
  });
});

Deno.test("16 concurrent ipamAdd calls in one process all get distinct addresses", async () => {
  await withDataDir(async (d) => {
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        ipamAdd({
          network: "net1",
          containerId: `ctr${i}`,
          ifname: "eth0",
          conf: parseIpamConf(ipamFor(d), false),
          rawConfig: new Uint8Array(),
          env: {},
          requestedIps: [],
        })),
    );
    const addresses = results.map((r) => r.ips[0]!.address);
    assert.equal(new Set(addresses).size, 16, `duplicates in ${addresses}`);
  });
});
