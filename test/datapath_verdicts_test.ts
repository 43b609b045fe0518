// The datapath's verdicts on crafted frames through BPF_PROG_TEST_RUN: what each mode does
// with each kind of packet, and which counter and event it leaves. Quick and needs no
// traffic, so the kernel matrix runs it on every kernel. The test run's device is the
// loopback (ifindex 1), registered as the pod's veth.
import assert from "node:assert/strict";
import { mapUpdate, progTestRun } from "../ffi/bpf.ts";
import { RingBuffer } from "../ffi/libbpf.ts";
import { type Datapath, ensureDatapath } from "../src/datapath/loader.ts";
import {
  CidrMap,
  ConfigMap,
  CtMap,
  EndpointMap,
  HostMap,
  IpcacheMap,
  IsolationMap,
  PolicyMap,
  readStats,
  RuleMap,
  VethMap,
} from "../src/datapath/maps.ts";
import {
  CFG_CONNTRACK,
  CIDR_MAP,
  CONFIG_MAP,
  CT_EST_MAP,
  CT_EST_PER_ADDR,
  CT_FLAGS,
  decodeEvent,
  DIR_EGRESS,
  DIR_INGRESS,
  DIR_PAIR,
  encodeU32,
  EVENTS_MAP,
  HOST_MAP,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  IPCACHE_LOCAL,
  IPCACHE_MAP,
  ISOLATE_EGRESS,
  ISOLATE_INGRESS,
  ISOLATION_MAP,
  MODE_KUBERNETES,
  RULE_MAP,
  STAT_NAMES,
  type StatName,
  VETH_MAP,
} from "../src/spec/bpf_layout.ts";
import { ruleKeys } from "../src/spec/rule_key.ts";
import { prefixMask } from "../src/spec/ipv4.ts";
import {
  arp,
  ipv4,
  type Ipv4Opts,
  ipv4Packet,
  ipv6,
  TCP_ACK,
  TCP_FIN,
  TCP_SYN,
} from "./_frames.ts";
import { ip4, withPinDir, withVeth } from "./_kernel.ts";
import { monotonicNs } from "../ffi/libc.ts";

const OK = 0;
const SHOT = 2;
const A = "10.77.0.2"; // the pod behind the test-run device
const B = "10.77.0.3";
const C = "10.77.0.4";
const GW = "10.77.0.1";
const ID_A = 100;
const ID_B = 200;
const ID_C = 300;

interface Maps {
  dp: Datapath;
  config: ConfigMap;
  veths: VethMap;
  endpoints: EndpointMap;
  policies: PolicyMap;
  hosts: HostMap;
  cidrs: CidrMap;
  rules: RuleMap;
  ipcache: IpcacheMap;
  isolation: IsolationMap;
  ct: CtMap;
}

async function withMaps(
  how: { mode?: "identity" | "kubernetes"; conntrack?: boolean; serviceCidr?: [string, number] },
  fn: (m: Maps) => void | Promise<void>,
): Promise<void> {
  await withPinDir(async (pinDir) => {
    using dp = ensureDatapath(pinDir);
    const m: Maps = {
      dp,
      config: new ConfigMap(dp.fd(CONFIG_MAP)),
      veths: new VethMap(dp.fd(VETH_MAP)),
      endpoints: new EndpointMap(dp.endpointFd),
      policies: new PolicyMap(dp.policyFd),
      hosts: new HostMap(dp.fd(HOST_MAP)),
      cidrs: new CidrMap(dp.fd(CIDR_MAP)),
      rules: new RuleMap(dp.fd(RULE_MAP)),
      ipcache: new IpcacheMap(dp.fd(IPCACHE_MAP)),
      isolation: new IsolationMap(dp.fd(ISOLATION_MAP)),
      ct: CtMap.of(dp),
    };
    const cfg = m.config.get();
    cfg.mode = how.mode === "kubernetes" ? MODE_KUBERNETES : 0;
    cfg.flags = how.conntrack || how.mode === "kubernetes" ? CFG_CONNTRACK : 0;
    if (how.serviceCidr) {
      const [net, prefix] = how.serviceCidr;
      cfg.serviceCidrs = [{ addr: ip4(net), mask: prefixMask(prefix) }];
    }
    m.config.set(cfg);
    m.veths.set(1, { ips: [ip4(A)], flags: 0 });
    m.hosts.set(ip4(GW), true);
    await fn(m);
  });
}

type Counts = Record<StatName, bigint>;

/** Runs `frames` through `prog` and returns the verdicts and the counters that moved. */
function run(
  m: Maps,
  prog: "ingress" | "egress" | "toNode",
  frames: Uint8Array<ArrayBuffer>[],
  ifindex?: number,
) {
  const before = readStats(m.dp.statsFd);
  const fd = m.dp[prog].fd;
  const verdicts = frames.map((f) => progTestRun(fd, f, 1, { ifindex }).retval);
  const after = readStats(m.dp.statsFd);
  const moved: Partial<Record<StatName, number>> = {};
  for (const n of STAT_NAMES) {
    const d = Number((after as Counts)[n] - (before as Counts)[n]);
    if (d !== 0 && n !== "events_lost") moved[n] = d;
  }
  return { verdicts, moved };
}

const tcp = (src: string, dst: string, dport: number, more: Partial<Ipv4Opts> = {}) =>
  ipv4({ src, dst, proto: "tcp", dport, ...more });

Deno.test("verdict: a frame from a veth with no registered pod is dropped, whatever it is", async () => {
  await withMaps({}, (m) => {
    m.veths.delete(1);
    const r = run(m, "ingress", [tcp(A, B, 80), arp(A, B), ipv6({})]);
    assert.deepEqual(r.verdicts, [SHOT, SHOT, SHOT]);
    assert.deepEqual(r.moved, { drop_no_veth: 3 });
  });
});

Deno.test("verdict: ARP must come from the pod's own address (or 0.0.0.0 when probing)", async () => {
  await withMaps({}, (m) => {
    const r = run(m, "ingress", [arp(A, B), arp("0.0.0.0", A), arp(B, A)]);
    assert.deepEqual(r.verdicts, [OK, OK, SHOT]);
    assert.deepEqual(r.moved, { pass_non_ipv4: 2, drop_spoofed: 1 });
  });
});

Deno.test("verdict: IPv6 passes only as neighbour discovery with hop limit 255", async () => {
  await withMaps({}, (m) => {
    const r = run(m, "ingress", [
      ipv6({ icmpType: 135 }), // neighbour solicitation
      ipv6({ icmpType: 133 }), // router solicitation
      ipv6({ icmpType: 135, hopLimit: 64 }), // off-link: not neighbour discovery
      ipv6({ icmpType: 128 }), // echo request
      ipv6({ nextHeader: 6 }), // TCP
    ]);
    assert.deepEqual(r.verdicts, [OK, OK, SHOT, SHOT, SHOT]);
    assert.deepEqual(r.moved, { pass_non_ipv4: 2, drop_ipv6: 3 });
  });
});

Deno.test("verdict: identity mode names the node host, a prefix its CIDR identity, the rest world", async () => {
  await withMaps({}, (m) => {
    m.endpoints.set(ip4(A), ID_A);
    m.cidrs.set({ addr: ip4("198.51.100.0"), prefix: 24 }, 500);
    m.cidrs.set({ addr: ip4("198.51.100.128"), prefix: 25 }, IDENTITY_WORLD); // an except: back to world
    m.policies.allow(ID_A, 500);
    const to = (dst: string) => tcp(A, dst, 80);
    const r = run(m, "ingress", [
      to("198.51.100.1"),
      to("198.51.100.127"),
      to("198.51.100.128"),
      to("198.51.101.1"),
      to(GW),
    ]);
    assert.deepEqual(r.verdicts, [OK, OK, SHOT, SHOT, SHOT]);
    // 198.51.101.1 is unknown to everything; the except and the node are known, not allowed.
    assert.deepEqual(r.moved, { allow: 2, drop_policy: 2, drop_unknown_dst: 1 });
    m.policies.allow(ID_A, IDENTITY_HOST);
    m.policies.allow(ID_A, IDENTITY_WORLD);
    assert.deepEqual(
      run(m, "ingress", [to(GW), to("198.51.101.1"), to("198.51.100.200")]).verdicts,
      [
        OK,
        OK,
        OK,
      ],
    );
  });
});

Deno.test("verdict: identity-mode L4 rules match their protocol and exact port range", async () => {
  await withMaps({}, (m) => {
    m.endpoints.set(ip4(A), ID_A);
    m.endpoints.set(ip4(B), ID_B);
    const add = (proto: number, from: number, to: number) => {
      for (
        const k of ruleKeys({
          subject: ID_A,
          dir: DIR_PAIR,
          peer: ID_B,
          proto,
          ports: { from, to },
        })
      ) {
        m.rules.set(k, true);
      }
    };
    add(6, 8000, 8100);
    add(132, 9000, 9000);
    const r = run(m, "ingress", [
      tcp(A, B, 7999),
      tcp(A, B, 8000),
      tcp(A, B, 8050),
      tcp(A, B, 8100),
      tcp(A, B, 8101),
      ipv4({ src: A, dst: B, proto: "udp", dport: 8000 }),
      ipv4({ src: A, dst: B, proto: "sctp", dport: 9000 }),
      ipv4({ src: A, dst: B, proto: "icmp" }),
    ]);
    assert.deepEqual(r.verdicts, [SHOT, OK, OK, OK, SHOT, SHOT, OK, SHOT]);
  });
});

Deno.test("verdict: identity mode with conntrack passes replies and related ICMP errors only", async () => {
  await withMaps({ conntrack: true }, (m) => {
    m.endpoints.set(ip4(A), ID_A);
    m.endpoints.set(ip4(B), ID_B);
    m.policies.allow(ID_A, ID_B);
    m.veths.set(1, { ips: [ip4(A), ip4(B)], flags: 0 }); // frames of both sides on one device
    const syn = tcp(A, B, 80, { sport: 5555, tcpFlags: TCP_SYN });
    const synAck = tcp(B, A, 5555, { sport: 80, tcpFlags: TCP_SYN | TCP_ACK });
    const newFromB = tcp(B, A, 5556, { sport: 80, tcpFlags: TCP_SYN });
    const echo = ipv4({ src: A, dst: B, proto: "icmp", icmpType: 8, icmpId: 7 });
    const echoReply = ipv4({ src: B, dst: A, proto: "icmp", icmpType: 0, icmpId: 7 });
    const strayReply = ipv4({ src: B, dst: A, proto: "icmp", icmpType: 0, icmpId: 8 });
    const quoted = ipv4Packet({ src: A, dst: B, proto: "udp", sport: 6000, dport: 53 }).slice(
      0,
      28,
    );
    const udp = ipv4({ src: A, dst: B, proto: "udp", sport: 6000, dport: 53 });
    const unreachable = ipv4({ src: B, dst: A, proto: "icmp", icmpType: 3, inner: quoted });
    const r = run(m, "ingress", [
      syn,
      synAck,
      newFromB,
      echo,
      echoReply,
      strayReply,
      udp,
      unreachable,
    ]);
    assert.deepEqual(r.verdicts, [OK, OK, SHOT, OK, OK, SHOT, OK, OK]);
    assert.deepEqual(r.moved, { allow: 3, allow_ct: 3, drop_policy: 2 });
    const entries = m.ct.list();
    assert.equal(entries.length, 3);
    const tcpEntry = entries.find((e) => e.key.proto === 6)!;
    assert.ok(tcpEntry.entry.flags & CT_FLAGS.seenReply, "the SYN-ACK marked it answered");
    assert.equal(tcpEntry.entry.srcId, ID_A);
    assert.equal(tcpEntry.entry.dstId, ID_B);
  });
});

Deno.test("verdict: a later IP fragment follows its first one, an unknown one is dropped", async () => {
  await withMaps({}, (m) => {
    m.endpoints.set(ip4(A), ID_A);
    m.endpoints.set(ip4(B), ID_B);
    for (
      const k of ruleKeys({
        subject: ID_A,
        dir: DIR_PAIR,
        peer: ID_B,
        proto: 17,
        ports: { from: 53, to: 53 },
      })
    ) {
      m.rules.set(k, true);
    }
    const first = ipv4({ src: A, dst: B, proto: "udp", dport: 53, ipId: 99, mf: true });
    const later = ipv4({ src: A, dst: B, proto: "udp", ipId: 99, fragOffset: 1 });
    const orphan = ipv4({ src: A, dst: B, proto: "udp", ipId: 100, fragOffset: 1 });
    const r = run(m, "ingress", [first, later, orphan]);
    assert.deepEqual(r.verdicts, [OK, OK, SHOT]);
    assert.deepEqual(r.moved, { allow: 2, drop_fragment: 1 });
  });
});

Deno.test("verdict: kubernetes mode passes Services and local pods on at the sender, judges the rest", async () => {
  await withMaps({ mode: "kubernetes", serviceCidr: ["10.96.0.0", 12] }, (m) => {
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(C), { identity: ID_C, flags: 0 }); // a pod on another node
    // And nothing allowed: only the sender's node judges its egress to the world and to a
    // remote pod (that node judges only C's ingress).
    m.isolation.set(ID_A, ISOLATE_EGRESS);
    const r = run(m, "ingress", [
      tcp(A, "10.96.0.10", 80),
      tcp(A, B, 80),
      tcp(A, C, 80),
      tcp(A, "203.0.113.9", 443),
      tcp(A, GW, 10250),
    ]);
    assert.deepEqual(r.verdicts, [OK, OK, SHOT, SHOT, SHOT]);
    assert.deepEqual(r.moved, { pass_service: 1, pass_to_pod: 1, drop_egress: 3 });
    const ct = m.ct.list().map((e) => ({ dst: e.key.daddr, flags: e.entry.flags }));
    assert.deepEqual(ct, [
      { dst: ip4("10.96.0.10"), flags: CT_FLAGS.pending | CT_FLAGS.service | CT_FLAGS.atSrc },
    ]);
    // Allowed to C on 80: judged here, recorded (not pending) so C's replies come back in.
    for (
      const k of ruleKeys({
        subject: ID_A,
        dir: DIR_EGRESS,
        peer: ID_C,
        proto: 6,
        ports: { from: 80, to: 80 },
      })
    ) {
      m.rules.set(k, true);
    }
    const toC = run(m, "ingress", [tcp(A, C, 80, { sport: 7000 }), tcp(A, C, 81)]);
    assert.deepEqual(toC.verdicts, [OK, SHOT]);
    assert.deepEqual(toC.moved, { allow: 1, drop_egress: 1 });
    assert.ok(
      m.ct.list().some((e) => e.key.daddr === ip4(C) && e.entry.flags === CT_FLAGS.atSrc),
    );
    // An egress rule to the world's CIDR identity lets A out on 443 only.
    m.cidrs.set({ addr: ip4("203.0.113.0"), prefix: 24 }, 0xff000001);
    for (
      const k of ruleKeys({
        subject: ID_A,
        dir: DIR_EGRESS,
        peer: 0xff000001,
        proto: 6,
        ports: { from: 443, to: 443 },
      })
    ) {
      m.rules.set(k, true);
    }
    assert.deepEqual(
      run(m, "ingress", [tcp(A, "203.0.113.9", 443), tcp(A, "203.0.113.9", 80)]).verdicts,
      [OK, SHOT],
    );
  });
});

Deno.test("verdict: kubernetes mode judges at delivery: source egress and destination ingress", async () => {
  await withMaps({ mode: "kubernetes", serviceCidr: ["10.96.0.0", 12] }, (m) => {
    // The test-run device is pod A's veth: frames to A.
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
    m.isolation.set(ID_A, ISOLATE_INGRESS);
    for (
      const k of ruleKeys({
        subject: ID_A,
        dir: DIR_INGRESS,
        peer: ID_B,
        proto: 6,
        ports: { from: 80, to: 80 },
      })
    ) {
      m.rules.set(k, true);
    }
    let r = run(m, "egress", [
      tcp(B, A, 80),
      tcp(B, A, 81),
      tcp(GW, A, 81),
      tcp("203.0.113.9", A, 80),
    ]);
    assert.deepEqual(r.verdicts, [OK, SHOT, OK, SHOT]);
    assert.deepEqual(r.moved, { allow: 1, drop_ingress: 2, allow_host: 1 });
    // B isolated for egress with no rule: denied although A allows it.
    m.isolation.set(ID_B, ISOLATE_EGRESS);
    m.ct.flush();
    r = run(m, "egress", [tcp(B, A, 80, { sport: 1234 })]);
    assert.deepEqual(r.verdicts, [SHOT]);
    assert.deepEqual(r.moved, { drop_egress: 1 });
  });
});

Deno.test("verdict: at delivery a remote pod's egress is its own node's: only the ingress is judged here", async () => {
  await withMaps({ mode: "kubernetes" }, (m) => {
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(C), { identity: ID_C, flags: 0 }); // on another node
    m.isolation.set(ID_C, ISOLATE_EGRESS); // were C's rules here, they would deny it
    m.isolation.set(ID_A, ISOLATE_INGRESS);
    for (const k of ruleKeys({ subject: ID_A, dir: DIR_INGRESS, peer: ID_C, proto: 6 })) {
      m.rules.set(k, true);
    }
    let r = run(m, "egress", [tcp(C, A, 80)]);
    assert.deepEqual(r.verdicts, [OK]);
    assert.deepEqual(r.moved, { allow: 1 });
    // A's ingress still holds for it.
    m.isolation.set(ID_A, ISOLATE_INGRESS);
    r = run(m, "egress", [ipv4({ src: C, dst: A, proto: "udp", dport: 53 })]);
    assert.deepEqual(r.verdicts, [SHOT]);
    assert.deepEqual(r.moved, { drop_ingress: 1 });
    // The same source as a pod of this node: its egress is judged here.
    m.ipcache.set(ip4(C), { identity: ID_C, flags: IPCACHE_LOCAL });
    m.ct.flush();
    r = run(m, "egress", [tcp(C, A, 80, { sport: 2222 })]);
    assert.deepEqual(r.verdicts, [SHOT]);
    assert.deepEqual(r.moved, { drop_egress: 1 });
  });
});

Deno.test("verdict: leaving the node, a local pod's egress is judged after DNAT; the rest and replies pass", async () => {
  await withMaps({ mode: "kubernetes", serviceCidr: ["10.96.0.0", 12] }, (m) => {
    const NODE2 = "192.168.50.2";
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(C), { identity: ID_C, flags: 0 }); // a pod on another node
    m.isolation.set(ID_A, ISOLATE_EGRESS);
    for (
      const k of ruleKeys({
        subject: ID_A,
        dir: DIR_EGRESS,
        peer: ID_C,
        proto: 6,
        ports: { from: 80, to: 80 },
      })
    ) {
      m.rules.set(k, true);
    }
    // A Service's request passed A's hook (recorded pending on the Service address); DNATed
    // by the node to the backend C, it is judged by A's egress as it leaves.
    assert.deepEqual(run(m, "ingress", [tcp(A, "10.96.0.10", 81, { sport: 4000 })]).verdicts, [
      OK,
    ]);
    let r = run(m, "toNode", [
      tcp(A, C, 81, { sport: 4000 }),
      tcp(A, C, 80, { sport: 4001 }),
      tcp(A, C, 80, { sport: 4001, tcpFlags: TCP_ACK }),
    ]);
    assert.deepEqual(r.verdicts, [SHOT, OK, OK]);
    assert.deepEqual(r.moved, { drop_egress: 1, allow: 1, allow_ct: 1 });
    // Not a local pod's: the node's own, forwarded or masqueraded traffic, a remote pod's,
    // a later fragment, ARP; all untouched and uncounted.
    r = run(m, "toNode", [
      tcp(GW, C, 81),
      tcp(NODE2, C, 81),
      tcp(C, "10.77.9.9", 81),
      ipv4({ src: NODE2, dst: C, proto: "udp", ipId: 7, fragOffset: 1 }),
      arp(GW, NODE2),
    ]);
    assert.deepEqual(r.verdicts, [OK, OK, OK, OK, OK]);
    assert.deepEqual(r.moved, {});
    // C's connection to A, recorded where A's node delivered it: A's replies go out though
    // A's egress allows nothing to C's port 5000.
    assert.deepEqual(run(m, "egress", [tcp(C, A, 22, { sport: 5000 })]).verdicts, [OK]);
    r = run(m, "toNode", [tcp(A, C, 5000, { sport: 22, tcpFlags: TCP_SYN | TCP_ACK })]);
    assert.deepEqual(r.verdicts, [OK]);
    assert.deepEqual(r.moved, { allow_ct: 1 });
    // A direct flow the sender's hook allowed passes on its entry; a denied one never gets here.
    assert.deepEqual(run(m, "ingress", [tcp(A, C, 80, { sport: 4100 })]).verdicts, [OK]);
    r = run(m, "toNode", [tcp(A, C, 80, { sport: 4100, tcpFlags: TCP_ACK })]);
    assert.deepEqual(r.moved, { allow_ct: 1 });
  });
});

Deno.test("verdict: the reply to a Service request passes where the request was recorded", async () => {
  await withMaps({ mode: "kubernetes", serviceCidr: ["10.96.0.0", 12] }, (m) => {
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.isolation.set(ID_A, ISOLATE_INGRESS | ISOLATE_EGRESS);
    const request = tcp(A, "10.96.0.10", 80, { sport: 4000 });
    const reply = tcp("10.96.0.10", A, 4000, { sport: 80, tcpFlags: TCP_SYN | TCP_ACK });
    const unsolicited = tcp("10.96.0.10", A, 4001, { sport: 80, tcpFlags: TCP_SYN });
    assert.deepEqual(run(m, "ingress", [request]).verdicts, [OK]);
    const r = run(m, "egress", [reply, unsolicited]);
    assert.deepEqual(r.verdicts, [OK, SHOT]);
    assert.deepEqual(r.moved, { allow_ct: 1, drop_ingress: 1 });
  });
});

Deno.test("verdict: a drop is reported on the events ring with both identities", async () => {
  await withMaps({}, (m) => {
    m.endpoints.set(ip4(A), ID_A);
    m.endpoints.set(ip4(B), ID_B);
    const events: ReturnType<typeof decodeEvent>[] = [];
    using ring = new RingBuffer(m.dp.fd(EVENTS_MAP), (d) => events.push(decodeEvent(d)));
    ring.consume(); // whatever an earlier test of this pin directory left (none)
    assert.deepEqual(run(m, "ingress", [tcp(A, B, 80)]).verdicts, [SHOT]);
    ring.consume();
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.deepEqual(
      {
        src: e.srcId,
        dst: e.dstId,
        verdict: e.verdict,
        reason: STAT_NAMES[e.reason],
        dport: e.dport,
      },
      { src: ID_A, dst: ID_B, verdict: 0, reason: "drop_policy", dport: 80 },
    );
  });
});

/** A TCP segment of the connection A:5000 -> B:80 (`fwd`) or of its reply direction. */
const seg = (fwd: boolean, flags: number, a = A, b = B) =>
  fwd
    ? tcp(a, b, 80, { sport: 5000, tcpFlags: flags })
    : tcp(b, a, 5000, { sport: 80, tcpFlags: flags });

/** Both ends on the test-run device; in kubernetes mode B is ingress-isolated and allows
 * A's identity on TCP 80. Returns how to revoke that (identity mode: the pair's rule). */
function serverAllowsA(m: Maps, mode: "identity" | "kubernetes"): () => void {
  m.veths.set(1, { ips: [ip4(A), ip4(B)], flags: 0 });
  const keys = ruleKeys({
    subject: mode === "kubernetes" ? ID_B : ID_A,
    dir: mode === "kubernetes" ? DIR_INGRESS : DIR_PAIR,
    peer: mode === "kubernetes" ? ID_A : ID_B,
    proto: 6,
    ports: { from: 80, to: 80 },
  });
  if (mode === "kubernetes") {
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
    m.isolation.set(ID_B, ISOLATE_INGRESS);
  } else {
    m.endpoints.set(ip4(A), ID_A);
    m.endpoints.set(ip4(B), ID_B);
  }
  keys.forEach((k) => m.rules.set(k, true));
  return () => keys.forEach((k) => m.rules.delete(k));
}

// Kubernetes mode judges A -> B where it is delivered to B (the egress hook); identity mode
// at the sender, on the one hook.
const HOOKS = {
  identity: { fwd: "ingress", rev: "ingress", denied: "drop_policy" },
  kubernetes: { fwd: "egress", rev: "ingress", denied: "drop_ingress" },
} as const;

for (const mode of ["identity", "kubernetes"] as const) {
  Deno.test(`verdict: ${mode} mode judges a SYN on the tuple of a closed or unanswered connection again`, async () => {
    await withMaps({ mode, conntrack: true }, (m) => {
      const revoke = serverAllowsA(m, mode);
      const h = HOOKS[mode];
      const step = (fwd: boolean, flags: number) =>
        run(m, fwd ? h.fwd : h.rev, [seg(fwd, flags)]).verdicts[0];
      // A whole connection, closed both ways.
      const steps: [boolean, number][] = [
        [true, TCP_SYN],
        [false, TCP_SYN | TCP_ACK],
        [true, TCP_ACK],
        [true, TCP_FIN | TCP_ACK],
        [false, TCP_FIN | TCP_ACK],
        [true, TCP_ACK],
      ];
      assert.deepEqual(steps.map(([fwd, f]) => step(fwd, f)), steps.map(() => OK));
      revoke();
      // The policy now denies it: a new connection on the same ports is judged and dropped.
      const again = run(m, h.fwd, [seg(true, TCP_SYN)]);
      assert.deepEqual(again.verdicts, [SHOT]);
      assert.deepEqual(again.moved, { [h.denied]: 1 });
      // A SYN retried on an entry never answered is judged too.
      m.ct.flush();
      const revokeAgain = serverAllowsA(m, mode);
      assert.deepEqual(run(m, h.fwd, [seg(true, TCP_SYN)]).verdicts, [OK]);
      revokeAgain();
      assert.deepEqual(run(m, h.fwd, [seg(true, TCP_SYN)]).verdicts, [SHOT]);
    });
  });

  Deno.test(`verdict: ${mode} mode passes nothing on a connection once its address has another identity`, async () => {
    await withMaps({ mode, conntrack: true }, (m) => {
      serverAllowsA(m, mode);
      const h = HOOKS[mode];
      assert.deepEqual(run(m, h.fwd, [seg(true, TCP_SYN)]).verdicts, [OK]);
      assert.deepEqual(run(m, h.rev, [seg(false, TCP_SYN | TCP_ACK)]).verdicts, [OK]);
      assert.deepEqual(run(m, h.fwd, [seg(true, TCP_ACK)]).verdicts, [OK]);
      // A's pod is gone and its address now belongs to a pod of other labels, which B's
      // policy does not allow: the old pod's connection is not the new pod's.
      const ID_X = 900;
      if (mode === "kubernetes") m.ipcache.set(ip4(A), { identity: ID_X, flags: IPCACHE_LOCAL });
      else m.endpoints.set(ip4(A), ID_X);
      const r = run(m, h.fwd, [seg(true, TCP_ACK)]);
      assert.deepEqual(r.verdicts, [SHOT]);
      assert.deepEqual(r.moved, { [h.denied]: 1 });
      assert.equal(m.ct.list().length, 0, "the stale entry is gone");
    });
  });
}

Deno.test("verdict: a pod behind a new veth with a reused address and identity gets none of the old pod's connections", async () => {
  await withVeth(async (veth) => {
    const newVeth = Number(await Deno.readTextFile(`/sys/class/net/${veth.host}/ifindex`));
    await withMaps({ mode: "kubernetes" }, (m) => {
      const W = "203.0.113.9";
      m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
      m.isolation.set(ID_A, ISOLATE_INGRESS); // nothing may connect to A
      const out = tcp(A, W, 443, { sport: 5000, tcpFlags: TCP_SYN });
      const back = tcp(W, A, 5000, { sport: 443, tcpFlags: TCP_SYN | TCP_ACK });
      assert.deepEqual(run(m, "ingress", [out]).verdicts, [OK]);
      assert.deepEqual(run(m, "egress", [back]).verdicts, [OK]);
      // DEL then ADD: the same address and labels, behind another veth.
      m.veths.delete(1);
      m.veths.set(newVeth, { ips: [ip4(A)], flags: 0 });
      const r = run(m, "egress", [tcp(W, A, 5000, { sport: 443, tcpFlags: TCP_ACK })], newVeth);
      assert.deepEqual(r.verdicts, [SHOT]);
      assert.deepEqual(r.moved, { drop_ingress: 1 });
    });
  });
});

Deno.test("verdict: a pod with a reused address and identity gets none of the replies of connections its peer's hook recorded", async () => {
  await withVeth(async (veth) => {
    const newVeth = Number(await Deno.readTextFile(`/sys/class/net/${veth.host}/ifindex`));
    await withMaps({ mode: "kubernetes" }, (m) => {
      m.veths.set(1, { ips: [ip4(A), ip4(B)], flags: 0 });
      m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
      m.ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
      m.isolation.set(ID_A, ISOLATE_INGRESS); // nothing may connect to A
      const ask = ipv4({ src: A, dst: B, proto: "udp", sport: 5000, dport: 53 });
      const answer = ipv4({ src: B, dst: A, proto: "udp", sport: 53, dport: 5000 });
      // Recorded where it reached B; B's answer goes through both pods' hooks.
      assert.deepEqual(run(m, "ingress", [ask]).verdicts, [OK]);
      assert.deepEqual(run(m, "egress", [ask]).verdicts, [OK]);
      assert.deepEqual(run(m, "ingress", [answer]).verdicts, [OK]);
      assert.deepEqual(run(m, "egress", [answer]).verdicts, [OK]);
      // DEL then ADD: A's address and labels, behind another veth.
      m.veths.set(1, { ips: [ip4(B)], flags: 0 });
      m.veths.set(newVeth, { ips: [ip4(A)], flags: 0 });
      assert.deepEqual(run(m, "ingress", [answer]).verdicts, [OK]); // B's own hook: B's entry
      const r = run(m, "egress", [answer], newVeth);
      assert.deepEqual(r.verdicts, [SHOT]);
      assert.deepEqual(r.moved, { drop_ingress: 1 });
    });
  });
});

Deno.test("verdict: an answered flow is kept apart and charged to its pod until flushed or swept", async () => {
  await withMaps({ mode: "kubernetes" }, (m) => {
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.isolation.set(ID_A, ISOLATE_INGRESS); // only replies reach A
    const W = "203.0.113.9";
    const out = (sport: number) => ipv4({ src: A, dst: W, proto: "udp", sport, dport: 53 });
    const back = (dport: number) => ipv4({ src: W, dst: A, proto: "udp", sport: 53, dport });
    // A flow, not a one-shot query: the initiator goes on after the answer.
    const converse = (port: number) => [
      run(m, "ingress", [out(port)]).verdicts[0],
      run(m, "egress", [back(port)]).verdicts[0],
      ...run(m, "ingress", [out(port), out(port)]).verdicts,
    ];
    assert.deepEqual([...converse(6000), ...converse(6001)], Array(8).fill(OK));
    const kept = m.ct.list().filter((r) => r.established);
    assert.deepEqual(kept.map((r) => r.key.sport).sort(), [6000, 6001]);
    assert.deepEqual(m.ct.quotas(), [{ ip: ip4(A), count: 2 }]);
    // Deleting one (as a revocation would) frees its slot; its next answer is judged.
    assert.equal(m.ct.delete(kept.find((r) => r.key.sport === 6000)!.raw), true);
    assert.deepEqual(m.ct.quotas(), [{ ip: ip4(A), count: 1 }]);
    assert.deepEqual(run(m, "egress", [back(6000)]).verdicts, [SHOT]);
    // Past its deadline, the sweep removes the other and the share is empty.
    assert.equal(m.ct.sweep(monotonicNs() + 3_600n * 1_000_000_000n), 1);
    assert.deepEqual(m.ct.quotas(), []);
    assert.deepEqual(run(m, "egress", [back(6001)]).verdicts, [SHOT]);
    // And flush reaches both maps.
    assert.deepEqual(converse(6002), Array(4).fill(OK));
    assert.equal(m.ct.flush(), 1);
    assert.deepEqual(m.ct.list(), []);
    assert.deepEqual(m.ct.quotas(), []);
  });
});

/** A TCP handshake from `src`:`sport` to `dst`:`dport`, each segment through the hook that
 * sees it; the verdicts. */
function handshake(
  m: Maps,
  [src, sport, there]: [string, number, "ingress" | "egress"],
  [dst, dport, back]: [string, number, "ingress" | "egress"],
): number[] {
  const go = (flags: number) => tcp(src, dst, dport, { sport, tcpFlags: flags });
  return [
    run(m, there, [go(TCP_SYN)]).verdicts[0]!,
    run(m, back, [tcp(dst, src, sport, { sport: dport, tcpFlags: TCP_SYN | TCP_ACK })])
      .verdicts[0]!,
    run(m, there, [go(TCP_ACK)]).verdicts[0]!,
  ];
}

const keptFrom = (m: Maps, src: string) =>
  m.ct.list().filter((r) => r.established && r.key.saddr === ip4(src));

Deno.test("verdict: connections from many remote addresses to one pod fill only that pod's share, not the node's", async () => {
  await withMaps({ mode: "kubernetes" }, (m) => {
    const W = "203.0.113.9";
    m.veths.set(1, { ips: [ip4(A), ip4(B)], flags: 0 });
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
    // As many answered connections to B as ct_est_map holds, from 16 world addresses.
    const perSource = CT_EST_MAP.maxEntries / 16;
    const syn = tcp("198.51.100.1", B, 80, { sport: 1, tcpFlags: TCP_SYN });
    const synAck = tcp(B, "198.51.100.1", 1, { sport: 80, tcpFlags: TCP_SYN | TCP_ACK });
    const ack = tcp("198.51.100.1", B, 80, { sport: 1, tcpFlags: TCP_ACK });
    // Rewritten in place: the source's last byte is under the IP checksum, so it is fixed
    // with it (+1 in one 16-bit word, -1 in the checksum); the ports are outside it.
    const set = (f: Uint8Array<ArrayBuffer>, host: number, port: number, out: boolean) => {
      const v = new DataView(f.buffer);
      const at = out ? 14 + 19 : 14 + 15; // daddr's last byte (B's frame) or saddr's
      const was = v.getUint8(at);
      v.setUint8(at, host);
      let sum = v.getUint16(14 + 10) + (was - host);
      sum = (sum & 0xffff) + (sum >> 16);
      v.setUint16(14 + 10, sum & 0xffff);
      v.setUint16(14 + 20 + (out ? 2 : 0), port);
    };
    const bad: number[] = [];
    for (let h = 1; h <= 16; h++) {
      for (let port = 1; port <= perSource; port++) {
        set(syn, h, port, false);
        set(synAck, h, port, true);
        set(ack, h, port, false);
        for (const [hook, f] of [["egress", syn], ["ingress", synAck], ["egress", ack]] as const) {
          const rc = progTestRun(hook === "ingress" ? m.dp.ingress.fd : m.dp.egress.fd, f).retval;
          if (rc !== OK) bad.push(rc);
        }
      }
    }
    assert.deepEqual(bad, []);
    // A's new connection to the world is still kept...
    assert.deepEqual(handshake(m, [A, 7000, "ingress"], [W, 443, "egress"]), [OK, OK, OK]);
    assert.equal(keptFrom(m, A).length, 1);
    // ...since B holds its share and no more, and no world address has one.
    const quotas = new Map(m.ct.quotas().map((q) => [q.ip, q.count]));
    assert.deepEqual(quotas, new Map([[ip4(A), 1], [ip4(B), CT_EST_PER_ADDR]]));
  });
});

Deno.test("verdict: one-shot UDP queries take no slot; a flow whose initiator goes on after the answer does", async () => {
  await withMaps({ conntrack: true }, (m) => {
    m.veths.set(1, { ips: [ip4(A), ip4(B)], flags: 0 });
    m.endpoints.set(ip4(A), ID_A);
    m.endpoints.set(ip4(B), ID_B);
    m.policies.allow(ID_A, ID_B);
    const q = (sport: number) => ipv4({ src: A, dst: B, proto: "udp", sport, dport: 53 });
    const r = (dport: number) => ipv4({ src: B, dst: A, proto: "udp", sport: 53, dport });
    // More queries than A's share, each answered once (A and AAAA on one socket: twice).
    const verdicts: number[] = [];
    for (let port = 10000; port < 10000 + CT_EST_PER_ADDR + 1; port++) {
      verdicts.push(...run(m, "ingress", [q(port), q(port), r(port), r(port)]).verdicts);
    }
    assert.ok(verdicts.every((v) => v === OK));
    assert.deepEqual(keptFrom(m, A), []);
    assert.deepEqual(m.ct.quotas(), []);
    // A flow that goes on is kept.
    assert.deepEqual(run(m, "ingress", [q(9000), r(9000), q(9000), q(9000)]).verdicts, [
      OK,
      OK,
      OK,
      OK,
    ]);
    assert.deepEqual(keptFrom(m, A).map((row) => row.key.sport), [9000]);
  });
});

Deno.test("verdict: a share count left below zero by racing CPUs does not block the pod's share", async () => {
  await withMaps({ mode: "kubernetes" }, (m) => {
    const W = "203.0.113.9";
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    // Two CPUs giving back the same last slot: 0 - 1, as the map holds it.
    mapUpdate(m.ct.quotaFd, encodeU32(ip4(A)), encodeU32(0xffffffff));
    assert.deepEqual(m.ct.quotas(), [{ ip: ip4(A), count: 0 }]);
    assert.deepEqual(handshake(m, [A, 7000, "ingress"], [W, 443, "egress"]), [OK, OK, OK]);
    assert.equal(keptFrom(m, A).length, 1);
  });
});

for (const mode of ["identity", "kubernetes"] as const) {
  Deno.test(`verdict: ${mode} mode keeps a connection whose peer is relabelled to an identity the policy still allows`, async () => {
    await withMaps({ mode, conntrack: true }, (m) => {
      serverAllowsA(m, mode);
      const h = HOOKS[mode];
      assert.deepEqual(handshake(m, [A, 5000, h.fwd], [B, 80, h.rev]), [OK, OK, OK]);
      // A is isolated for ingress (kubernetes) / has no rule from B (identity): B's packets
      // reach it only on the connection.
      if (mode === "kubernetes") m.isolation.set(ID_A, ISOLATE_INGRESS);
      const ID_B2 = 201;
      if (mode === "kubernetes") {
        m.ipcache.set(ip4(B), { identity: ID_B2, flags: IPCACHE_LOCAL }); // not isolated: A may still reach it
      } else {
        m.endpoints.set(ip4(B), ID_B2);
        m.policies.allow(ID_A, ID_B2);
      }
      const fromB = seg(false, TCP_ACK);
      const r = mode === "kubernetes"
        ? [...run(m, "ingress", [fromB]).verdicts, ...run(m, "egress", [fromB]).verdicts]
        : run(m, "ingress", [fromB]).verdicts;
      assert.deepEqual(r, r.map(() => OK));
      assert.deepEqual(m.ct.list().map((row) => [row.entry.srcId, row.entry.dstId]), [
        [ID_A, ID_B2],
      ]);
    });
  });
}

Deno.test("verdict: a bare SYN judges its connection anew only at the hook that recorded it, and only forwards", async () => {
  await withMaps({ mode: "kubernetes" }, (m) => {
    const W = "203.0.113.9";
    m.veths.set(1, { ips: [ip4(A), ip4(B)], flags: 0 });
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
    m.isolation.set(ID_A, ISOLATE_INGRESS); // A is reached only on its connections
    const fromB = (flags: number) => run(m, "egress", [seg(false, flags)]).verdicts[0];
    // Same node: A's SYN retransmitted through its own hook leaves B's record alone.
    assert.deepEqual(handshake(m, [A, 5000, "egress"], [B, 80, "egress"]), [OK, OK, OK]);
    assert.deepEqual(run(m, "ingress", [seg(true, TCP_SYN)]).verdicts, [OK]);
    assert.equal(fromB(TCP_ACK), OK);
    // Simultaneous open: B's SYN to A's unanswered one is its answer.
    m.ct.flush();
    assert.deepEqual(run(m, "egress", [seg(true, TCP_SYN)]).verdicts, [OK]);
    assert.equal(fromB(TCP_SYN), OK);
    assert.equal(m.ct.list().length, 1);
    // A SYN forged from the world on the reversed tuple of A's connection is judged (and
    // dropped), and the connection goes on.
    assert.deepEqual(handshake(m, [A, 7000, "ingress"], [W, 443, "egress"]), [OK, OK, OK]);
    const w = (flags: number) => tcp(W, A, 7000, { sport: 443, tcpFlags: flags });
    assert.deepEqual(run(m, "egress", [w(TCP_SYN), w(TCP_ACK)]).verdicts, [SHOT, OK]);
  });
});

Deno.test("verdict: an ICMP error about a connection passes from its peer or a router, not from another pod", async () => {
  await withMaps({ mode: "kubernetes" }, (m) => {
    const W = "203.0.113.9";
    const ROUTER = "192.0.2.1";
    m.veths.set(1, { ips: [ip4(A), ip4(C)], flags: 0 });
    m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    m.ipcache.set(ip4(C), { identity: ID_C, flags: IPCACHE_LOCAL });
    m.isolation.set(ID_A, ISOLATE_INGRESS);
    const out = { src: A, dst: W, proto: "udp", sport: 6000, dport: 53 } as const;
    assert.deepEqual(run(m, "ingress", [ipv4(out)]).verdicts, [OK]);
    const quoted = ipv4Packet(out).slice(0, 28);
    const error = (from: string) =>
      ipv4({ src: from, dst: A, proto: "icmp", icmpType: 3, inner: quoted });
    const r = run(m, "egress", [error(C), error(W), error(ROUTER)]);
    assert.deepEqual(r.verdicts, [SHOT, OK, OK]);
    assert.deepEqual(r.moved, { drop_ingress: 1, allow_ct: 2 });
  });
});

Deno.test("verdict: deleteByAddr forgets every connection naming a leaving pod's address and gives back its slots", async () => {
  await withVeth(async (veth) => {
    const newVeth = Number(await Deno.readTextFile(`/sys/class/net/${veth.host}/ifindex`));
    await withMaps({ mode: "kubernetes" }, (m) => {
      m.veths.set(1, { ips: [ip4(A), ip4(B)], flags: 0 });
      m.ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
      m.ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
      m.isolation.set(ID_A, ISOLATE_INGRESS);
      // A -> B, recorded at B's hook and charged to A, its initiator on this node.
      assert.deepEqual(handshake(m, [A, 5000, "egress"], [B, 80, "egress"]), [OK, OK, OK]);
      assert.deepEqual(m.ct.quotas(), [{ ip: ip4(A), count: 1 }]);
      // A leaves; a pod of the same labels gets its address behind another veth.
      m.veths.set(1, { ips: [ip4(B)], flags: 0 });
      m.veths.set(newVeth, { ips: [ip4(A)], flags: 0 });
      assert.equal(m.ct.deleteByAddr(ip4(A)), 1);
      assert.deepEqual(m.ct.quotas(), []);
      const r = run(m, "egress", [seg(false, TCP_ACK)], newVeth);
      assert.deepEqual(r.verdicts, [SHOT]);
      assert.deepEqual(r.moved, { drop_ingress: 1 });
    });
  });
});
