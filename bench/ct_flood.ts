// How hard one pod can flood the node's conntrack while another pod's established connection
// keeps passing (issue 19, item 2). Kubernetes mode, BPF_PROG_TEST_RUN on the loopback
// registered as every pod's veth: A (ingress-isolated) holds a connection to B; F first fills
// its share of ct_est_map with answered connections, then sends --flows new flows (default
// four times ct_map's size) as fast as the test run takes them, in rounds; after each round
// B's next packet to A must still pass on A's connection. Reported: the flood's rate
// (flows/s driven through the classifier, and the kernel's own ns per new flow, whose
// inverse is what one CPU can create), whether A's connection survived every round, and the
// per-packet cost of an established packet on a kept entry against one on an LRU entry.
// Run: deno run -A bench/ct_flood.ts [--flows=N] [--rounds=N] (as root).
import { progTestRun } from "../ffi/bpf.ts";
import { ensureDatapath } from "../src/datapath/loader.ts";
import { ConfigMap, CtMap, IpcacheMap, IsolationMap, VethMap } from "../src/datapath/maps.ts";
import {
  CFG_CONNTRACK,
  CONFIG_MAP,
  CT_EST_PER_ADDR,
  CT_MAP,
  IPCACHE_LOCAL,
  IPCACHE_MAP,
  ISOLATE_INGRESS,
  ISOLATION_MAP,
  MODE_KUBERNETES,
  VETH_MAP,
} from "../src/spec/bpf_layout.ts";
import { parseIpv4 } from "../src/spec/ipv4.ts";
import { ipv4, TCP_ACK, TCP_SYN } from "../test/_frames.ts";
import {
  cleanupAll,
  fmt,
  installSignalCleanup,
  log,
  median,
  numArg,
  pinDir,
  table,
} from "./lib.ts";

const FLOWS = numArg("flows", 4 * CT_MAP.maxEntries);
const ROUNDS = numArg("rounds", 4);
const REPEAT = 200_000;
const OK = 0;
const [A, B, F, W] = ["10.77.0.2", "10.77.0.3", "10.77.0.5", "203.0.113.9"];

const tcp = (src: string, dst: string, sport: number, dport: number, flags: number) =>
  ipv4({ src, dst, proto: "tcp", sport, dport, tcpFlags: flags });

installSignalCleanup();
try {
  using dp = ensureDatapath(pinDir("ct-flood"));
  const config = new ConfigMap(dp.fd(CONFIG_MAP));
  config.set({ ...config.get(), mode: MODE_KUBERNETES, flags: CFG_CONNTRACK });
  new VethMap(dp.fd(VETH_MAP)).set(1, { ips: [A, B, F].map(parseIpv4), flags: 0 });
  const ipcache = new IpcacheMap(dp.fd(IPCACHE_MAP));
  [A, B, F].forEach((ip, i) =>
    ipcache.set(parseIpv4(ip), { identity: 100 * (i + 1), flags: IPCACHE_LOCAL })
  );
  new IsolationMap(dp.fd(ISOLATION_MAP)).set(100, ISOLATE_INGRESS);
  const run = (hook: "ingress" | "egress", frame: Uint8Array<ArrayBuffer>, repeat = 1) =>
    progTestRun(hook === "ingress" ? dp.ingress.fd : dp.egress.fd, frame, repeat);
  const expect = (what: string, got: number) => {
    if (got !== OK) throw new Error(`${what}: verdict ${got}`);
  };

  expect("A's SYN", run("egress", tcp(A, B, 5000, 80, TCP_SYN)).retval);
  expect("B's SYN-ACK", run("egress", tcp(B, A, 80, 5000, TCP_SYN | TCP_ACK)).retval);
  expect("A's ACK", run("egress", tcp(A, B, 5000, 80, TCP_ACK)).retval);
  for (let i = 0; i < CT_EST_PER_ADDR + 64; i++) {
    expect("F's SYN", run("ingress", tcp(F, W, 1024 + i, 443, TCP_SYN)).retval);
    expect("W's SYN-ACK", run("egress", tcp(W, F, 443, 1024 + i, TCP_SYN | TCP_ACK)).retval);
    expect("F's ACK", run("ingress", tcp(F, W, 1024 + i, 443, TCP_ACK)).retval);
  }

  const syn = tcp(F, W, 1, 1, TCP_SYN);
  const ports = new DataView(syn.buffer, 14 + 20, 4);
  const perRound = Math.ceil(FLOWS / ROUNDS);
  const rates: number[] = [];
  const kernelNs: number[] = [];
  let survived = 0;
  let sent = 0;
  for (let r = 0; r < ROUNDS; r++) {
    log(`ct flood: round ${r + 1}/${ROUNDS}, ${perRound} new flows`);
    let ns = 0;
    const t0 = performance.now();
    for (let i = 0; i < perRound; i++, sent++) {
      ports.setUint16(0, 1 + (sent % 65535));
      ports.setUint16(2, 1000 + Math.floor(sent / 65535));
      ns += run("ingress", syn).durationNs;
    }
    rates.push(perRound / ((performance.now() - t0) / 1000));
    kernelNs.push(ns / perRound);
    if (run("egress", tcp(B, A, 80, 5000, TCP_ACK)).retval === OK) survived++;
  }

  // An established packet on its kept entry, and (after a flush) on an LRU entry.
  const hit = () =>
    median(
      Array.from(
        { length: 5 },
        () => run("egress", tcp(B, A, 80, 5000, TCP_ACK), REPEAT).durationNs,
      ),
    );
  const kept = hit();
  CtMap.of(dp).flush();
  expect("A's ACK again", run("egress", tcp(A, B, 5000, 80, TCP_ACK)).retval);
  const lru = hit();

  const rate = median(rates);
  const perSyn = median(kernelNs);
  console.log(table(["measure", "value"], [
    ["new flows sent by F (ct_map holds)", `${sent} (${CT_MAP.maxEntries})`],
    ["rounds A's connection survived", `${survived} of ${ROUNDS}`],
    ["flood rate driven (test runs, median per round)", `${fmt(rate / 1e6)} M flows/s`],
    [
      "kernel ns per new flow (its inverse: one CPU's rate)",
      `${fmt(perSyn, 0)} ns (${fmt(1e3 / perSyn)} M flows/s)`,
    ],
    ["established packet on a kept entry, ns", fmt(kept, 0)],
    ["established packet on an LRU entry, ns", fmt(lru, 0)],
    ["kept / LRU", fmt(kept / lru)],
  ]));
} finally {
  await cleanupAll();
}
