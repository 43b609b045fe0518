// Live upgrades: the pinned programs are replaced (a new build, or the original build's pin
// directory) while pods exchange a continuous flow. Every attached veth moves to the new
// programs, on both hooks, in place: no packet of the allowed flow is lost, no denied one is
// admitted, and CHECK passes for pods attached before and after.
import assert from "node:assert/strict";
import { sh, type TestNetwork, withNetwork } from "./_cni.ts";
import { addPod, cli, type Pod } from "./_pods.ts";
import { NetlinkSocket } from "../src/net/socket.ts";
import { Links } from "../src/net/link.ts";
import { attach, attachedProgramId } from "../src/datapath/tc.ts";
import { BpfObject } from "../ffi/libbpf.ts";
import { mapInfo, objGet, objPin, progInfo } from "../ffi/bpf.ts";
import { closeFd } from "../ffi/libc.ts";
import { EndpointMap, PolicyMap, VethMap } from "../src/datapath/maps.ts";
import { ensureDatapath } from "../src/datapath/loader.ts";
import { VETH_MAP } from "../src/spec/bpf_layout.ts";
import { ip4, randomHex, run, tryRun } from "./_kernel.ts";

/** A ping of `count` packets every 5 ms from `from` to `to`, running; resolves to how many
 * came back. */
function flow(
  from: Pod | { name: string },
  to: string,
  count: number,
): Promise<{ sent: number; received: number }> {
  return (async () => {
    const r = await sh("ip", [
      "netns",
      "exec",
      from.name,
      "ping",
      "-i",
      "0.005",
      "-c",
      String(count),
      "-W",
      "1",
      "-q",
      to,
    ]);
    const m = r.stdout.match(/(\d+) packets transmitted, (\d+) received/);
    if (!m) throw new Error(`ping output: ${r.stdout}${r.stderr}`);
    return { sent: Number(m[1]), received: Number(m[2]) };
  })();
}

function programOn(hostVeth: string, hook: "ingress" | "egress"): number {
  using nl = new NetlinkSocket();
  const link = new Links(nl).get(hostVeth);
  return link ? attachedProgramId(nl, link.index, hook) : 0;
}

function pinnedId(net: TestNetwork, pin: string): number {
  const fd = objGet(`${net.pinDir}/${pin}`);
  try {
    return progInfo(fd).id;
  } finally {
    closeFd(fd);
  }
}

for (const mode of ["identity", "kubernetes"] as const) {
  Deno.test(`upgrade (${mode} mode): a replaced program takes over every veth with no packet lost`, async () => {
    await withNetwork(async (net) => {
      const config = net.config(
        mode === "kubernetes" ? { policyMode: "kubernetes" } : { conntrack: true },
      );
      const a = await addPod(net, 100, { config });
      const b = await addPod(net, 200, { config });
      const c = await addPod(net, 300, { config });
      if (mode === "identity") {
        await cli(net, "policy", "allow", "--src", "100", "--dst", "200", "--symmetric");
      } else {
        // Kubernetes mode: C isolated for ingress with no rule; A and B open.
        using dp = ensureDatapath(net.pinDir);
        const { IsolationMap } = await import("../src/datapath/maps.ts");
        const { ISOLATION_MAP, ISOLATE_INGRESS } = await import("../src/spec/bpf_layout.ts");
        new IsolationMap(dp.fd(ISOLATION_MAP)).set(300, ISOLATE_INGRESS);
      }
      const warm = await flow(a, b.ip, 5);
      assert.equal(warm.received, 5, "the allowed path works before the upgrade");
      const oldIngress = pinnedId(net, "tc_prog");
      // Kubernetes mode: a device to other nodes running the to-node classifier (a bridge
      // here) moves too.
      const toNodeDev = `tnd${randomHex(4)}`;
      if (mode === "kubernetes") {
        await run("ip", ["link", "add", toNodeDev, "type", "bridge"]);
        using dp = ensureDatapath(net.pinDir);
        using nl = new NetlinkSocket();
        attach(nl, new Links(nl).get(toNodeDev)!.index, "egress", dp.toNode.fd, "to_node");
        assert.equal(programOn(toNodeDev, "egress"), pinnedId(net, "tc_prog_to_node"));
      }
      try {
        const allowed = flow(a, b.ip, 400);
        const denied = flow(a, c.ip, 400);
        await new Promise((r) => setTimeout(r, 500));
        // A new build: the pinned programs are gone; the next ADD loads and moves everyone.
        Deno.removeSync(`${net.pinDir}/tc_prog`);
        Deno.removeSync(`${net.pinDir}/tc_prog_egress`);
        Deno.removeSync(`${net.pinDir}/tc_prog_to_node`);
        const d = await addPod(net, 400, { config });
        const [ok, no] = await Promise.all([allowed, denied]);
        assert.deepEqual(ok, { sent: 400, received: 400 }, "no allowed packet was lost");
        assert.equal(no.received, 0, "no denied packet was admitted");

        const ingress = pinnedId(net, "tc_prog");
        const egress = pinnedId(net, "tc_prog_egress");
        assert.notEqual(ingress, oldIngress);
        for (const pod of [a, b, c, d]) {
          const veth = net.hostVeth(pod.id);
          assert.equal(programOn(veth, "ingress"), ingress, `${veth} ingress`);
          assert.equal(
            programOn(veth, "egress"),
            mode === "kubernetes" ? egress : 0,
            `${veth} egress`,
          );
          const check = await net.run({
            command: "CHECK",
            containerId: pod.id,
            netns: pod.netns,
            ifname: "eth0",
            config: { ...config, prevResult: pod.result },
          });
          assert.equal(check.code, 0, `CHECK of ${pod.id}: ${check.stdout}`);
        }
        if (mode === "kubernetes") {
          assert.equal(programOn(toNodeDev, "egress"), pinnedId(net, "tc_prog_to_node"), toNodeDev);
        }
      } finally {
        await tryRun("ip", ["link", "del", toNodeDev]);
      }
    });
  });
}

Deno.test("upgrade: the original build's pin directory keeps its maps and its pods keep flowing", async () => {
  await withNetwork(async (net) => {
    // Two pods attached the original's way: a bridge, veths, the phase-1 program on their
    // ingress hooks, endpoint_map and policy_map entries, and the CNI's records.
    const phase1 = await compilePhase1();
    const obj = BpfObject.openMem(phase1, "ebpfcni");
    try {
      for (const m of ["endpoint_map", "policy_map", "stats_map"]) {
        obj.setMapPinPath(m, `${net.pinDir}/${m}`);
      }
      Deno.mkdirSync(net.pinDir, { recursive: true });
      obj.load();
      objPin(obj.programFd("process_tc"), `${net.pinDir}/tc_prog`);
    } finally {
      obj.close();
    }
    const prefix = net.subnet.replace(/\.0\/24$/, "");
    await run("ip", ["link", "add", net.bridge, "type", "bridge"]);
    await run("ip", ["addr", "add", `${prefix}.1/24`, "dev", net.bridge]);
    await run("ip", ["link", "set", net.bridge, "up"]);
    const olds: { name: string; netns: string; ip: string; veth: string }[] = [];
    for (const n of [2, 3]) {
      const netns = await net.netns();
      const name = netns.split("/").pop()!;
      const veth = `veth${randomHex(5)}`;
      const ip = `${prefix}.${n}`;
      await run("ip", ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name]);
      await run("ip", ["link", "set", veth, "master", net.bridge, "up"]);
      await run("ip", ["-n", name, "addr", "add", `${ip}/24`, "dev", "eth0"]);
      await run("ip", ["-n", name, "link", "set", "eth0", "up"]);
      olds.push({ name, netns, ip, veth });
    }
    const fd = objGet(`${net.pinDir}/tc_prog`);
    try {
      using nl = new NetlinkSocket();
      for (const o of olds) {
        attach(nl, new Links(nl).get(o.veth)!.index, "ingress", fd, "process_tc");
      }
    } finally {
      closeFd(fd);
    }
    {
      const efd = objGet(`${net.pinDir}/endpoint_map`);
      const pfd = objGet(`${net.pinDir}/policy_map`);
      try {
        new EndpointMap(efd).set(ip4(olds[0]!.ip), 100);
        new EndpointMap(efd).set(ip4(olds[1]!.ip), 200);
        new PolicyMap(pfd).allow(100, 200);
        new PolicyMap(pfd).allow(200, 100);
      } finally {
        closeFd(efd);
        closeFd(pfd);
      }
    }
    Deno.mkdirSync(`${net.stateDir}/${net.name}`, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(`${net.dataDir}/${net.name}`, { recursive: true });
    olds.forEach((o, i) => {
      // The lease host-local gave it (the original delegated to host-local).
      Deno.writeTextFileSync(`${net.dataDir}/${net.name}/${o.ip}`, `old${i}\r\neth0`);
      Deno.writeTextFileSync(
        `${net.stateDir}/${net.name}/old${i}_eth0.json`,
        JSON.stringify({
          containerId: `old${i}`,
          ifname: "eth0",
          netns: o.netns,
          hostVeth: o.veth,
          bridge: net.bridge,
          ips: [o.ip],
          identity: 100 * (i + 1),
          pinDir: net.pinDir,
        }),
      );
    });
    const endpointMapId = pinnedMapId(net, "endpoint_map");
    const warm = await flow(olds[0]!, olds[1]!.ip, 5);
    assert.equal(warm.received, 5, "the phase-1 datapath passes the allowed pair");

    const flowing = flow(olds[0]!, olds[1]!.ip, 400);
    await new Promise((r) => setTimeout(r, 500));
    await addPod(net, 300); // this build's first ADD on the node
    const got = await flowing;
    assert.deepEqual(got, { sent: 400, received: 400 }, "no allowed packet was lost");

    assert.equal(pinnedMapId(net, "endpoint_map"), endpointMapId, "endpoint_map was kept");
    const ingress = pinnedId(net, "tc_prog");
    using dp = ensureDatapath(net.pinDir);
    const veths = new VethMap(dp.fd(VETH_MAP));
    for (const o of olds) {
      assert.equal(programOn(o.veth, "ingress"), ingress, `${o.veth} moved to the new program`);
      using nl = new NetlinkSocket();
      const index = new Links(nl).get(o.veth)!.index;
      assert.deepEqual(veths.get(index)?.ips, [ip4(o.ip)], `${o.veth} registered from its record`);
    }
    // And the new program enforces: a pair without a rule is dropped.
    new PolicyMap(dp.policyFd).deny(200, 100);
    assert.equal((await flow(olds[1]!, olds[0]!.ip, 3)).received, 0);
    for (const o of olds) await tryRun("ip", ["link", "del", o.veth]);
  });
});

function pinnedMapId(net: TestNetwork, name: string): number {
  const fd = objGet(`${net.pinDir}/${name}`);
  try {
    return mapInfo(fd).id;
  } finally {
    closeFd(fd);
  }
}

async function compilePhase1(): Promise<Uint8Array<ArrayBuffer>> {
  const dir = await Deno.makeTempDir({ prefix: "ebpfcni-phase1-" });
  try {
    const root = new URL("..", import.meta.url).pathname;
    await run("clang", [
      "-g",
      "-O2",
      "-target",
      "bpf",
      "-D__TARGET_ARCH_x86",
      "-Wall",
      `-I${root}bpf`,
      `-I${root}test/fixtures`,
      "-c",
      `${root}test/fixtures/phase1.bpf.c`,
      "-o",
      `${dir}/phase1.o`,
    ]);
    return await Deno.readFile(`${dir}/phase1.o`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
