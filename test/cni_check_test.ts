// CHECK verifies what ADD built: it passes on an intact attachment and fails, naming what is
// missing, when a piece is broken behind the plugin's back.
import assert from "node:assert/strict";
import { containerId, sh, type TestNetwork, withNetwork } from "./_cni.ts";

interface Pod {
  id: string;
  ns: string;
  nsName: string;
  ip: string;
  result: Record<string, unknown>;
}

async function addPod(net: TestNetwork): Promise<Pod> {
  const id = containerId("chk");
  const ns = await net.netns();
  const result = await net.add(id, ns, { args: "EBPFCNI_IDENTITY=7001" });
  const ip = (result.ips as { address: string }[])[0]!.address.split("/")[0]!;
  return { id, ns, nsName: ns.split("/").pop()!, ip, result };
}

function check(net: TestNetwork, p: Pod) {
  return net.check(p.id, p.ns, p.result);
}

async function assertCheckFails(net: TestNetwork, p: Pod, msg: RegExp): Promise<void> {
  const r = await check(net, p);
  assert.notEqual(r.code, 0, "CHECK passed on a broken attachment");
  assert.ok(r.json, `stdout is not JSON: ${r.stdout}`);
  assert.notEqual(r.json.code, 0);
  assert.match(String(r.json.msg), msg);
}

const escape = (s: string) => s.replaceAll(".", "\\.");

Deno.test("CHECK passes on an intact attachment", async () => {
  await withNetwork(async (net) => {
    const p = await addPod(net);
    const r = await check(net, p);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
  });
});

Deno.test("CHECK fails naming the address after it is flushed from the container", async () => {
  await withNetwork(async (net) => {
    const p = await addPod(net);
    await sh("ip", ["netns", "exec", p.nsName, "ip", "addr", "flush", "dev", "eth0"], {
      check: true,
    });
    await assertCheckFails(net, p, new RegExp(`${escape(p.ip)}.*missing`));
  });
});

Deno.test("CHECK fails naming the classifier after the tc filter is removed", async () => {
  await withNetwork(async (net) => {
    const p = await addPod(net);
    const veth = net.hostVeth(p.id);
    const shown = await sh("tc", ["filter", "show", "dev", veth, "ingress"], { check: true });
    assert.match(shown.stdout, /bpf/);
    await sh("tc", ["filter", "del", "dev", veth, "ingress"], { check: true });
    await assertCheckFails(net, p, new RegExp(`[Cc]lassifier.*${veth}`));
  });
});

Deno.test("CHECK fails naming the default route after it is deleted", async () => {
  await withNetwork(async (net) => {
    const p = await addPod(net);
    await sh("ip", ["netns", "exec", p.nsName, "ip", "route", "del", "default"], { check: true });
    await assertCheckFails(net, p, /[Rr]oute to 0\.0\.0\.0\/0.*missing/);
  });
});

Deno.test("CHECK fails naming the host veth after it is deleted", async () => {
  await withNetwork(async (net) => {
    const p = await addPod(net);
    const veth = net.hostVeth(p.id);
    await sh("ip", ["link", "del", veth], { check: true });
    await assertCheckFails(net, p, new RegExp(`${veth}.*missing`));
  });
});

Deno.test("CHECK fails naming the address when its endpoint_map entry is removed", async () => {
  await withNetwork(async (net) => {
    const p = await addPod(net);
    const key = p.ip.split(".").reverse(); // host byte order on a little-endian machine
    await sh("bpftool", ["map", "delete", "pinned", `${net.pinDir}/endpoint_map`, "key", ...key], {
      check: true,
    });
    assert.deepEqual(await net.endpointIps(), {});
    await assertCheckFails(net, p, new RegExp(`${escape(p.ip)}.*endpoint_map`));
  });
});

Deno.test("CHECK fails when the lease was released behind the plugin's back", async () => {
  await withNetwork(async (net) => {
    const p = await addPod(net);
    Deno.removeSync(`${net.dataDir}/${net.name}/${p.ip}`);
    const r = await check(net, p);
    assert.notEqual(r.code, 0);
    assert.match(String(r.json?.msg), new RegExp(p.id));
  });
});

/** The pod's ADD result with interface `index` changed by `edit`. */
function withInterface(
  p: Pod,
  index: number,
  edit: (i: Record<string, unknown>) => void,
): Pod {
  const result = structuredClone(p.result);
  edit((result.interfaces as Record<string, unknown>[])[index]!);
  return { ...p, result };
}

const INTERFACE_CASES = [
  {
    what: "container MAC",
    index: 2,
    edit: (i: Record<string, unknown>) => (i.mac = "02:00:00:00:00:01"),
    msg: /^Interface "eth0" has MAC .*, not 02:00:00:00:00:01 as in prevResult$/,
  },
  {
    what: "container sandbox",
    index: 2,
    edit: (i: Record<string, unknown>) => (i.sandbox = "/var/run/netns/elsewhere"),
    msg: /^Sandbox "\/var\/run\/netns\/elsewhere" of "eth0" in prevResult is not CNI_NETNS/,
  },
  {
    what: "host veth name",
    index: 1,
    edit: (i: Record<string, unknown>) => (i.name = "vethdeadbeef"),
    msg: /^Host interface "vethdeadbeef" in prevResult is missing$/,
  },
  {
    what: "host veth MAC",
    index: 1,
    edit: (i: Record<string, unknown>) => (i.mac = "02:00:00:00:00:02"),
    msg: /^Host veth "veth.*" has MAC .*, not 02:00:00:00:00:02 as in prevResult$/,
  },
] as const;

for (const { what, index, edit, msg } of INTERFACE_CASES) {
  Deno.test(`CHECK fails when prevResult's ${what} is not the attachment's`, async () => {
    await withNetwork(async (net) => {
      const p = await addPod(net);
      const ok = await check(net, p);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      await assertCheckFails(net, withInterface(p, index, edit), msg);
    });
  });
}
