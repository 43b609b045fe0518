// Revocation time (issue 19, item 5b): a NetworkPolicy that denies a live TCP connection is
// written to the agent's manifest directory; measured from the file's rename to the
// connection's conntrack entry being gone (the bench polls ct_map itself, ~µs a lookup), beside
// the time to the policy's isolation entry being written (the same change, enforced for new
// connections), with the live connection alone in ct_map and among --tracked others (allowed
// connections between the model's pods, each judged by the pass that finds the one to end).
// kube-network-policies' strict mode is the reference (~2.3 s measured by its authors). Also
// what DEL and GC add at that size: their pass over the tracked connections.
// Run: deno run -A bench/revoke.ts [--rounds=N] [--tracked=N] [--out=FILE] (as root, after
// scripts/build.sh). Prints a table on stdout, writes bench/results-revoke.json.
import {
  BINARY,
  cleanupAll,
  freeOctets,
  installSignalCleanup,
  linkToDelete,
  log,
  median,
  netns,
  numArg,
  onCleanup,
  p90,
  pinDir,
  ROOT,
  run,
  spawnAgent,
  tempDir,
  textArg,
} from "./lib.ts";
import { openConnection, startServers } from "../test/_traffic.ts";
import { openPinnedMaps } from "../src/datapath/loader.ts";
import { IpcacheMap } from "../src/datapath/maps.ts";
import { endConnectionsOf } from "../src/datapath/tracked.ts";
import { mapLookup, mapUpdateBatch } from "../ffi/bpf.ts";
import { monotonicNs } from "../ffi/libc.ts";
import {
  CT_EST_MAP,
  CT_FLAGS,
  CT_MAP,
  IPCACHE_MAP,
  ISOLATION_MAP,
  STRUCTS,
} from "../src/spec/bpf_layout.ts";
import { formatIpv4, parseIpv4 } from "../src/spec/ipv4.ts";

const ROUNDS = numArg("rounds", 15);
const TRACKED = numArg("tracked", 100_000);
const NAMESPACES = 50;
const PODS_PER_NS = 20;
const PORT = 8080;
const OUT = textArg("out") ?? `${ROOT}/bench/results-revoke.json`;
const NODE = "bench-node";

type Obj = Record<string, unknown>;

function writeJson(path: string, o: unknown): void {
  const tmp = `${path.replace(/[^/]+$/, "")}.tmp-${crypto.randomUUID()}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(o));
  Deno.renameSync(tmp, path);
}

/** The model: NAMESPACES x PODS_PER_NS pods on another node, each namespace's pods taking
 * port 80 from their own namespace only; and namespace "local" with this node's a and b. */
function cluster(): Obj[] {
  const out: Obj[] = [];
  const pod = (ns: string, name: string, labels: Obj, node: string, ip?: string): Obj => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels },
    spec: { nodeName: node, containers: [{ name: "c", image: "i" }] },
    ...(ip ? { status: { phase: "Running", podIP: ip, podIPs: [{ ip }] } } : {}),
  });
  for (let i = 0; i < NAMESPACES; i++) {
    const ns = `ns-${i}`;
    out.push({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
    for (let j = 0; j < PODS_PER_NS; j++) {
      out.push(pod(ns, `p-${j}`, { app: `a${j % 4}` }, "other-node", `10.64.${i}.${10 + j}`));
    }
    out.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "same-ns", namespace: ns },
      spec: {
        podSelector: {},
        ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 80 }] }],
      },
    });
  }
  out.push({ apiVersion: "v1", kind: "Namespace", metadata: { name: "local" } });
  out.push(pod("local", "a", { app: "a" }, NODE));
  out.push(pod("local", "b", { app: "b" }, NODE));
  return out;
}

const DENY_B: Obj = {
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name: "deny-b", namespace: "local" },
  spec: { podSelector: { matchLabels: { app: "b" } }, policyTypes: ["Ingress"] },
};

/** ct_key bytes (bpf/ebpfcni.h), host-order fields little-endian. */
function ctKey(saddr: number, daddr: number, sport: number, dport: number, proto: number) {
  const k = new Uint8Array(STRUCTS.ct_key.size);
  const v = new DataView(k.buffer);
  v.setUint32(0, saddr, true);
  v.setUint32(4, daddr, true);
  v.setUint16(8, sport, true);
  v.setUint16(10, dport, true);
  v.setUint8(12, proto);
  return k;
}

/** `n` allowed connections between pods of one namespace (as their node's hook would have
 * recorded them), written straight into ct_map. */
function fillTracked(dp: NonNullable<ReturnType<typeof openPinnedMaps>>, n: number): void {
  if (n === 0) return;
  const ipcache = new Map(new IpcacheMap(dp.fd(IPCACHE_MAP)).list());
  const ks = STRUCTS.ct_key.size;
  const vs = STRUCTS.ct_entry.size;
  const keys = new Uint8Array(n * ks);
  const values = new Uint8Array(n * vs);
  const v = new DataView(values.buffer);
  const expires = monotonicNs() + 3600n * 1_000_000_000n;
  for (let i = 0; i < n; i++) {
    const ns = i % NAMESPACES;
    const src = parseIpv4(`10.64.${ns}.${10 + (i % PODS_PER_NS)}`);
    const dst = parseIpv4(`10.64.${ns}.${10 + ((i + 1 + (i >> 8)) % PODS_PER_NS)}`);
    const sport = 1024 + Math.floor(i / NAMESPACES) % 60000;
    keys.set(ctKey(src, dst, sport, 80, 6), i * ks);
    v.setBigUint64(i * vs, expires, true);
    v.setUint32(i * vs + 24, ipcache.get(src)!.identity, true);
    v.setUint32(i * vs + 28, ipcache.get(dst)!.identity, true);
    v.setUint32(i * vs + 32, CT_FLAGS.seenReply, true);
  }
  for (let at = 0; at < n; at += 4096) {
    const c = Math.min(4096, n - at);
    mapUpdateBatch(
      dp.fd(CT_MAP),
      keys.slice(at * ks, (at + c) * ks),
      values.slice(at * vs, (at + c) * vs),
      c,
    );
  }
}

async function status(socket: string, wait?: number): Promise<Obj> {
  const extra = wait === undefined ? [] : ["--wait-synced", String(wait)];
  const r = await run(BINARY, ["agent", "status", "--json", "--socket", socket, ...extra]);
  if (r.code !== 0) throw new Error(`agent status: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function main(): Promise<void> {
  installSignalCleanup();
  const dir = tempDir("revoke");
  const manifests = `${dir}/manifests`;
  Deno.mkdirSync(manifests);
  const pins = pinDir("revoke");
  const socket = `${dir}/agent.sock`;
  writeJson(`${manifests}/cluster.json`, { apiVersion: "v1", kind: "List", items: cluster() });
  await spawnAgent(
    "the agent",
    BINARY,
    ["agent", "run", "--manifests", manifests, "--node", NODE, "--pin-dir", pins]
      .concat(["--state-dir", `${dir}/state`, "--socket", socket, "--log-level", "warn"]),
    socket,
  );
  await status(socket, 60);

  // Pods a and b on this node, attached as a runtime would.
  const [octet] = await freeOctets(1);
  const bridge = `br${crypto.randomUUID().slice(0, 6)}`;
  linkToDelete(bridge);
  const config = JSON.stringify({
    cniVersion: "1.1.0",
    name: "bench-revoke",
    type: "ebpfcni",
    bridge,
    pinDir: pins,
    stateDir: `${dir}/state`,
    policyMode: "kubernetes",
    agentSocket: socket,
    ipam: { type: "host-local", subnet: `10.${octet}.0.0/24`, dataDir: `${dir}/ipam` },
  });
  const pods: Record<string, { netns: string; ip: number }> = {};
  for (const name of ["a", "b"]) {
    const ns = await netns(`ebpfcni-bench-revoke-${name}-${crypto.randomUUID().slice(0, 6)}`);
    const r = await run(BINARY, [], {
      env: {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: `revoke-${name}`,
        CNI_NETNS: `/var/run/netns/${ns}`,
        CNI_IFNAME: "eth0",
        CNI_PATH: "/usr/lib/cni",
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=local;K8S_POD_NAME=${name}`,
      },
      stdin: config,
    });
    if (r.code !== 0) throw new Error(`ADD ${name}: ${r.stdout} ${r.stderr}`);
    const ip = (JSON.parse(r.stdout).ips as { address: string }[])[0]!.address.split("/")[0]!;
    pods[name] = { netns: `/var/run/netns/${ns}`, ip: parseIpv4(ip) };
  }
  const a = pods.a!;
  const b = pods.b!;
  const servers = await startServers([{ netns: b.netns, tcp: [], udp: [], tcpEcho: [PORT] }]);
  onCleanup("stop the echo server", () => servers.stop());

  using dp = openPinnedMaps(pins)!;
  // An answered connection is kept in ct_est_map, a new one in ct_map: tracked in either.
  const cts = [dp.fd(CT_MAP), dp.fd(CT_EST_MAP)];
  const isTracked = (key: Uint8Array<ArrayBuffer>) => cts.some((fd) => mapLookup(fd, key, scratch));
  const isolation = dp.fd(ISOLATION_MAP);
  const bId = new IpcacheMap(dp.fd(IPCACHE_MAP)).get(b.ip)!.identity;
  const idKey = new Uint8Array(4);
  new DataView(idKey.buffer).setUint32(0, bId, true);
  const scratch = new Uint8Array(64);

  const phases: { tracked: number; revokeMs: number[]; enforceMs: number[]; sweepMs: number[] }[] =
    [];
  let sport = 42000;
  for (const tracked of [0, TRACKED]) {
    fillTracked(dp, tracked);
    const phase = {
      tracked,
      revokeMs: [] as number[],
      enforceMs: [] as number[],
      sweepMs: [] as number[],
    };
    for (let r = 0; r < ROUNDS; r++) {
      sport++;
      const conn = openConnection(a.netns, formatIpv4(b.ip), PORT, { sport });
      if (!conn.roundTrip()) throw new Error("the live connection does not flow");
      const key = ctKey(a.ip, b.ip, sport, PORT, 6);
      if (!isTracked(key)) throw new Error("the live connection is not tracked");
      const start = performance.now();
      writeJson(`${manifests}/deny.json`, DENY_B);
      let enforced: number | undefined;
      while (isTracked(key)) {
        if (enforced === undefined && mapLookup(isolation, idKey, scratch)) {
          enforced = performance.now() - start;
        }
        if (performance.now() - start > 10_000) throw new Error("the connection was not revoked");
        await new Promise((res) => setTimeout(res, 0));
      }
      phase.revokeMs.push(performance.now() - start);
      phase.enforceMs.push(enforced ?? performance.now() - start);
      if (conn.roundTrip(500)) throw new Error("the revoked connection still flows");
      conn.close();
      const st = await status(socket);
      phase.sweepMs.push((st.revocation as { last: { ms: number } }).last.ms);
      Deno.removeSync(`${manifests}/deny.json`);
      await status(socket, 30);
    }
    phases.push(phase);
    log(`tracked ${tracked}: revoked in ${median(phase.revokeMs).toFixed(1)} ms (median)`);
  }
  // What DEL and GC add: a pass over the tracked connections for the addresses they release
  // (the ct_map still holds the TRACKED others; an address none of them has).
  const delPassMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    endConnectionsOf(dp, new Set([parseIpv4("10.99.99.99")]));
    delPassMs.push(performance.now() - start);
  }
  const results = {
    rounds: ROUNDS,
    delPass: { tracked: TRACKED, median: median(delPassMs), p90: p90(delPassMs) },
    pods: NAMESPACES * PODS_PER_NS + 2,
    policies: NAMESPACES,
    phases: phases.map((p) => ({
      ...p,
      tracked: p.tracked + 1,
      revoke: { median: median(p.revokeMs), p90: p90(p.revokeMs), max: Math.max(...p.revokeMs) },
      enforce: { median: median(p.enforceMs), p90: p90(p.enforceMs) },
      sweep: { median: median(p.sweepMs), p90: p90(p.sweepMs) },
    })),
  };
  Deno.writeTextFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
  const f = (x: number) => x.toFixed(1);
  console.log(
    `| tracked connections | policy written -> connection gone (median / p90 / max) | -> isolation written (median) | of which the pass over the connections (median) | vs kube-network-policies' 2.3 s |
| --- | --- | --- | --- | --- |`,
  );
  for (const p of results.phases) {
    console.log(
      `| ${p.tracked} | ${f(p.revoke.median)} / ${f(p.revoke.p90)} / ${f(p.revoke.max)} ms | ${
        f(p.enforce.median)
      } ms | ${f(p.sweep.median)} ms | ${(p.revoke.median / 2300).toFixed(3)}x |`,
    );
  }
  console.log(
    `DEL/GC's pass over ${TRACKED} tracked connections: ${f(results.delPass.median)} ms (median)`,
  );
}

try {
  await main();
} finally {
  await cleanupAll();
}
