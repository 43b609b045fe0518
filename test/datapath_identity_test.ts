// Identity mode on real traffic between pods the plugin attached: conntrack (replies of
// allowed connections pass, the other side cannot initiate, entries expire), L4 rules and
// port ranges, the node as "host", and IPv6 and forged sources refused.
import assert from "node:assert/strict";
import { ping, pingEventually, sh, withNetwork } from "./_cni.ts";
import { addPod, cli, counters } from "./_pods.ts";
import { probeUntil, startServers } from "./_traffic.ts";
import { mapUpdate } from "../ffi/bpf.ts";
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { CtMap } from "../src/datapath/maps.ts";
import { CT_EST_MAP, CT_FLAGS, CT_QUOTA_MAP, encodeU32 } from "../src/spec/bpf_layout.ts";
import { parseIpv4 } from "../src/spec/ipv4.ts";

const SHORT_CT = { tcpSyn: 2, tcpEstablished: 3, tcpClose: 2, udp: 2, other: 2 };

Deno.test("identity mode with conntrack: a one-way rule passes replies and nothing else", async () => {
  await withNetwork(async (net) => {
    const config = net.config({ conntrack: true, conntrackTimeouts: SHORT_CT });
    const a = await addPod(net, 100, { config });
    const b = await addPod(net, 200, { config });
    await cli(net, "policy", "allow", "--src", "100", "--dst", "200");
    const servers = await startServers([
      { netns: a.netns, tcp: [80], udp: [] },
      { netns: b.netns, tcp: [80], udp: [] },
    ]);
    try {
      assert.ok(await pingEventually(a.netns, b.ip), "A pings B (the reply comes back)");
      assert.deepEqual(
        probeUntil([{ from: a.netns, to: b.ip, port: 80, proto: "tcp" }], [true]),
        [true],
        "A connects to B",
      );
      assert.equal(await ping(b.netns, a.ip), false, "B cannot ping A");
      assert.deepEqual(
        probeUntil([{ from: b.netns, to: a.ip, port: 80, proto: "tcp" }], [false]),
        [false],
        "B cannot connect to A",
      );
      const ct = JSON.parse(await cli(net, "ct", "list", "--json")) as {
        src: string;
        dst: string;
        proto: string;
        state: string;
      }[];
      assert.ok(
        ct.some((c) => c.src === a.ip && c.dst === b.ip && c.proto === "icmp"),
        JSON.stringify(ct),
      );
      assert.ok(ct.every((c) => c.src === a.ip), "B's attempts made no entry");

      // A reply-direction packet alone, after the entry expired: dropped. The echo reply of
      // a ping A sent is exactly that: B's kernel answers, A's ping stopped waiting.
      await cli(net, "ct", "flush");
      const before = await counters(net);
      await sh("ip", ["netns", "exec", b.name, "ping", "-c", "1", "-W", "1", a.ip]);
      const after = await counters(net);
      assert.equal(after.drop_policy! - before.drop_policy!, 1, "B's echo request is refused");
      assert.equal(after.allow_ct! - before.allow_ct!, 0, "and not taken for a reply");
    } finally {
      await servers.stop();
    }
  });
});

Deno.test("identity mode with conntrack: once an entry expires, a reply-direction packet is dropped", async () => {
  await withNetwork(async (net) => {
    const config = net.config({ conntrack: true, conntrackTimeouts: SHORT_CT });
    const a = await addPod(net, 100, { config });
    const b = await addPod(net, 200, { config });
    await cli(net, "policy", "allow", "--src", "100", "--dst", "200");
    const servers = await startServers([{ netns: b.netns, tcp: [], udp: [53] }]);
    try {
      assert.deepEqual(
        probeUntil([{ from: a.netns, to: b.ip, port: 53, proto: "udp" }], [true]),
        [true],
        "UDP with its reply",
      );
      const ct = (JSON.parse(await cli(net, "ct", "list", "--json")) as {
        proto: string;
        sport: number;
        expiresIn: number;
      }[]).filter((c) => c.proto === "udp");
      assert.equal(ct.length, 1);
      assert.ok(ct[0]!.expiresIn <= SHORT_CT.udp, `expires in ${ct[0]!.expiresIn}s`);
      // A datagram of the reply direction (B:53 -> A's port), sent by hand from B.
      const reply = udpFrame(await macOf(a.name), b.ip, a.ip, 53, ct[0]!.sport);
      let before = await counters(net);
      await sendRaw(b.name, [reply]);
      let after = await counters(net);
      // (A's port is closed by now: A's ICMP error back is related, and passes too.)
      assert.ok(after.allow_ct! - before.allow_ct! >= 1, "a reply while the entry lives");
      await new Promise((r) => setTimeout(r, (SHORT_CT.udp + 1) * 1000));
      before = after;
      await sendRaw(b.name, [reply]);
      after = await counters(net);
      assert.equal(after.allow_ct! - before.allow_ct!, 0, "not a reply any more");
      assert.equal(after.drop_policy! - before.drop_policy!, 1, "and B -> A is not allowed");
    } finally {
      await servers.stop();
    }
  });
});

Deno.test("L4 rules: tcp/80 passes, tcp/81, udp/80 and icmp do not; a range admits both ends only", async () => {
  await withNetwork(async (net) => {
    const config = net.config({ conntrack: true });
    const a = await addPod(net, 100, { config });
    const b = await addPod(net, 200, { config });
    await cli(
      net,
      "policy",
      "allow",
      "--src",
      "100",
      "--dst",
      "200",
      "--proto",
      "tcp",
      "--port",
      "80",
    );
    await cli(
      net,
      "policy",
      "allow",
      "--src",
      "100",
      "--dst",
      "200",
      "--proto",
      "tcp",
      "--port",
      "8000-8100",
    );
    const servers = await startServers([
      { netns: b.netns, tcp: [80, 81, 7999, 8000, 8100, 8101], udp: [80] },
    ]);
    try {
      const probe = (port: number, proto: "tcp" | "udp" = "tcp") => ({
        from: a.netns,
        to: b.ip,
        port,
        proto,
      });
      const probes = [
        probe(80),
        probe(81),
        probe(80, "udp"),
        probe(7999),
        probe(8000),
        probe(8100),
        probe(8101),
      ];
      const want = [true, false, false, false, true, true, false];
      assert.deepEqual(probeUntil(probes, want), want);
      assert.equal(await ping(a.netns, b.ip), false, "icmp is not tcp");
      const list = await cli(net, "policy", "list");
      assert.match(list, /^ *100 +200 +tcp +80$/m);
      assert.match(list, /^ *100 +200 +tcp +8000-8100$/m);
    } finally {
      await servers.stop();
    }
  });
});

Deno.test("host: a pod reaches the gateway only once --dst host is allowed", async () => {
  await withNetwork(async (net) => {
    const config = net.config({ conntrack: true });
    const a = await addPod(net, 100, { config });
    const listener = Deno.listen({ hostname: net.gateway, port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const accepting = (async () => {
      for await (const c of listener) c.close();
    })();
    try {
      const probe = [{ from: a.netns, to: net.gateway, port, proto: "tcp" as const }];
      assert.deepEqual(probeUntil(probe, [false]), [false], "default deny covers the node");
      await cli(
        net,
        "policy",
        "allow",
        "--src",
        "100",
        "--dst",
        "host",
        "--proto",
        "tcp",
        "--port",
        String(port),
      );
      assert.deepEqual(probeUntil(probe, [true]), [true], "allowed to the host on that port");
      assert.equal(await ping(a.netns, net.gateway), false, "but not icmp");
      assert.match(
        await cli(net, "policy", "list"),
        new RegExp(`^ *100 +host +tcp +${port}$`, "m"),
      );
    } finally {
      listener.close();
      await accepting.catch(() => {});
    }
  });
});

Deno.test("IPv6 between pods is dropped, neighbour discovery still works", async () => {
  await withNetwork(async (net) => {
    const a = await addPod(net, 100);
    const b = await addPod(net, 200);
    // Even an all-allowing identity rule does not open IPv6: the maps hold IPv4 only.
    await cli(net, "policy", "allow", "--src", "100", "--dst", "200", "--symmetric");
    const linkLocal = async (ns: string) => {
      for (let i = 0; i < 50; i++) {
        const r = await sh("ip", [
          "-n",
          ns,
          "-j",
          "-6",
          "addr",
          "show",
          "dev",
          "eth0",
          "scope",
          "link",
        ]);
        const addr = JSON.parse(r.stdout)[0]?.addr_info?.find((x: { tentative?: boolean }) =>
          !x.tentative
        )?.local;
        if (addr) return addr as string;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no link-local address in ${ns}`);
    };
    const target = await linkLocal(b.name);
    await linkLocal(a.name);
    assert.ok(await pingEventually(a.netns, b.ip), "IPv4 is allowed");
    const before = await counters(net);
    const r = await sh("ip", [
      "netns",
      "exec",
      a.name,
      "ping",
      "-6",
      "-c",
      "2",
      "-W",
      "1",
      `${target}%eth0`,
    ]);
    assert.notEqual(r.code, 0, `ping6 to ${target} went through: ${r.stdout}`);
    const after = await counters(net);
    assert.ok(after.drop_ipv6! - before.drop_ipv6! >= 2, JSON.stringify(after));
    // Neighbour solicitations and advertisements passed: A resolved B's link-local address.
    const neigh = await sh("ip", ["-n", a.name, "-6", "neigh", "show", "dev", "eth0"]);
    assert.match(neigh.stdout, new RegExp(`^${target} lladdr`, "m"));
  });
});

Deno.test("a forged source address is dropped at the sender's veth", async () => {
  await withNetwork(async (net) => {
    const a = await addPod(net, 100);
    const b = await addPod(net, 200);
    const c = await addPod(net, 300);
    await cli(net, "policy", "allow", "--src", "200", "--dst", "300");
    const cMac = await macOf(c.name);
    const received = async () => {
      const snmp = (await sh("ip", ["netns", "exec", c.name, "cat", "/proc/net/snmp"])).stdout;
      // UDP datagrams to a port nothing listens on: only the test's frames.
      const [names, values] = snmp.split("\n").filter((l) => l.startsWith("Udp:"));
      const i = names!.split(/\s+/).indexOf("NoPorts");
      return Number(values!.split(/\s+/)[i]);
    };
    const forged = udpFrame(cMac, b.ip, c.ip);
    const own = udpFrame(cMac, a.ip, c.ip);
    const before = await counters(net);
    const r0 = await received();
    await sendRaw(a.name, [forged, forged, forged]);
    const after = await counters(net);
    assert.equal(after.drop_spoofed! - before.drop_spoofed!, 3);
    assert.equal(await received(), r0, "C received nothing");
    // The same frame with A's own address is delivered once A may talk to C: the frame is
    // deliverable, only the borrowed identity was refused.
    await cli(net, "policy", "allow", "--src", "100", "--dst", "300");
    await sendRaw(a.name, [own]);
    assert.equal(await received(), r0 + 1);
  });
});

async function macOf(netnsName: string): Promise<string> {
  const r = await sh("ip", ["-n", netnsName, "-j", "link", "show", "dev", "eth0"]);
  return (JSON.parse(r.stdout)[0] as { address: string }).address;
}

/** An Ethernet + IPv4 + UDP frame to `dstMac`, with a valid IP checksum (no UDP checksum). */
function udpFrame(dstMac: string, src: string, dst: string, sport = 40000, dport = 9): Uint8Array {
  const f = new Uint8Array(14 + 20 + 12);
  dstMac.split(":").forEach((h, i) => f[i] = parseInt(h, 16));
  f.set([0x02, 0, 0, 0, 0, 0x01], 6);
  const v = new DataView(f.buffer);
  v.setUint16(12, 0x0800);
  v.setUint8(14, 0x45);
  v.setUint16(16, 32);
  v.setUint8(22, 64);
  v.setUint8(23, 17);
  src.split(".").forEach((o, i) => f[26 + i] = Number(o));
  dst.split(".").forEach((o, i) => f[30 + i] = Number(o));
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(24, ~sum & 0xffff);
  v.setUint16(34, sport);
  v.setUint16(36, dport);
  v.setUint16(38, 12);
  return f;
}

async function sendRaw(netnsName: string, frames: Uint8Array[]): Promise<void> {
  const { sendFrames } = await import("./_kernel.ts");
  await sendFrames(netnsName, "eth0", frames);
}

Deno.test("monitor: a denied ping is a drop event naming both identities; counters count packets", async () => {
  await withNetwork(async (net) => {
    const a = await addPod(net, 100);
    const b = await addPod(net, 200);
    const { BIN } = await import("./_cli.ts");
    const monitor = new Deno.Command(BIN, {
      args: ["monitor", "--json", "--pin-dir", net.pinDir],
      stdout: "piped",
      stderr: "piped",
      env: { EBPFCNI_PIN_DIR: "" },
    }).spawn();
    const done = monitor.output();
    // Events from before the monitor started are skipped: ping until it has reported some,
    // then end it as a user does, with Ctrl-C.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 5; i++) await ping(a.netns, b.ip);
    await new Promise((r) => setTimeout(r, 300));
    monitor.kill("SIGINT");
    const out = await done;
    assert.equal(out.code, 0, `Ctrl-C ends it cleanly: ${new TextDecoder().decode(out.stderr)}`);
    const events = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l))
      .filter((e) => e.proto === "icmp");
    assert.ok(events.length >= 1, "the denied pings were reported");
    for (const e of events) {
      assert.equal(e.verdict, "drop");
      assert.equal(e.reason, "drop_policy");
      assert.equal(e.srcIdentity, "100");
      assert.equal(e.dstIdentity, "200");
      assert.equal(e.src, a.ip);
      assert.equal(e.dst, b.ip);
      assert.equal(e.hook, "from-pod");
      assert.equal(e.interface, net.hostVeth(a.id));
    }
    // Allowed both ways (no conntrack): five pings are five packets each way.
    await cli(net, "policy", "allow", "--src", "100", "--dst", "200", "--symmetric");
    assert.ok(await pingEventually(a.netns, b.ip));
    const stats = async () =>
      new Map(
        (JSON.parse(await cli(net, "policy", "list", "--stats", "--json")) as {
          src: number;
          dst: number;
          packets: number;
        }[]).map((r) => [`${r.src}->${r.dst}`, r.packets]),
      );
    const before = await stats();
    const r = await sh("ip", ["netns", "exec", a.name, "ping", "-c", "5", "-i", "0.05", b.ip]);
    assert.equal(r.code, 0, r.stdout);
    const after = await stats();
    assert.equal(after.get("100->200")! - before.get("100->200")!, 5);
    assert.equal(after.get("200->100")! - before.get("200->100")!, 5);
  });
});

Deno.test("identity mode with conntrack: an ADD gives back the slots of established connections that expired unseen", async () => {
  await withNetwork(async (net) => {
    const config = net.config({ conntrack: true });
    const a = await addPod(net, 100, { config });
    {
      using dp = openPinnedMaps(net.pinDir)!;
      // A's connection whose peer vanished: kept, past its deadline, never met again.
      const key = new Uint8Array(16);
      const k = new DataView(key.buffer);
      k.setUint32(0, parseIpv4(a.ip), true);
      k.setUint32(4, parseIpv4("192.0.2.7"), true);
      k.setUint16(8, 40000, true);
      k.setUint16(10, 443, true);
      k.setUint8(12, 6);
      const entry = new Uint8Array(CT_EST_MAP.valueSize);
      const e = new DataView(entry.buffer);
      e.setBigUint64(0, 1n, true); // expires: long ago
      e.setUint32(24, 100, true);
      e.setUint32(32, CT_FLAGS.seenReply | CT_FLAGS.atSrc, true);
      mapUpdate(dp.fd(CT_EST_MAP), key, entry);
      mapUpdate(dp.fd(CT_QUOTA_MAP), encodeU32(parseIpv4(a.ip)), encodeU32(1));
      assert.equal(CtMap.of(dp).list().length, 1);
    }
    await addPod(net, 200, { config });
    using dp = openPinnedMaps(net.pinDir)!;
    const ct = CtMap.of(dp);
    assert.deepEqual(ct.list(), []);
    assert.deepEqual(ct.quotas(), []);
  });
});
