// One pod flooding the node's conntrack cannot evict another pod's established connection:
// more new flows than ct_map holds go through the flooder's hook (BPF_PROG_TEST_RUN, the
// loopback registered as every pod's veth), after the flooder has also filled its whole
// share of ct_est_map with answered connections.
import assert from "node:assert/strict";
import { progTestRun } from "../ffi/bpf.ts";
import { ensureDatapath } from "../src/datapath/loader.ts";
import {
  ConfigMap,
  CtMap,
  IpcacheMap,
  IsolationMap,
  readStats,
  VethMap,
} from "../src/datapath/maps.ts";
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
import { ipv4, TCP_ACK, TCP_SYN } from "./_frames.ts";
import { ip4, withPinDir } from "./_kernel.ts";

const OK = 0;
const A = "10.77.0.2"; // client, isolated for ingress: a reply judged as new is dropped
const B = "10.77.0.3"; // server
const F = "10.77.0.5"; // the flooder
const W = "203.0.113.9"; // the world, which F may reach
const ID_A = 100;
const ID_B = 200;
const ID_F = 300;
/** SYNs of the flood: over four times ct_map's size. */
const FLOOD = 1_200_000;

Deno.test("conntrack: a pod flooding new flows after filling its share cannot evict another pod's established connection", async () => {
  await withPinDir((pinDir) => {
    using dp = ensureDatapath(pinDir);
    const config = new ConfigMap(dp.fd(CONFIG_MAP));
    const ct = CtMap.of(dp);
    assert.ok(FLOOD > 4 * CT_MAP.maxEntries);
    config.set({ ...config.get(), mode: MODE_KUBERNETES, flags: CFG_CONNTRACK });
    new VethMap(dp.fd(VETH_MAP)).set(1, { ips: [ip4(A), ip4(B), ip4(F)], flags: 0 });
    const ipcache = new IpcacheMap(dp.fd(IPCACHE_MAP));
    ipcache.set(ip4(A), { identity: ID_A, flags: IPCACHE_LOCAL });
    ipcache.set(ip4(B), { identity: ID_B, flags: IPCACHE_LOCAL });
    ipcache.set(ip4(F), { identity: ID_F, flags: IPCACHE_LOCAL });
    new IsolationMap(dp.fd(ISOLATION_MAP)).set(ID_A, ISOLATE_INGRESS);
    const hook = (h: "ingress" | "egress", frame: Uint8Array<ArrayBuffer>) =>
      progTestRun(h === "ingress" ? dp.ingress.fd : dp.egress.fd, frame).retval;

    // A -> B, judged where it reaches B; B's answers reach A on the entry only.
    const toB = (flags: number) =>
      ipv4({ src: A, dst: B, proto: "tcp", sport: 5000, dport: 80, tcpFlags: flags });
    const toA = (flags: number) =>
      ipv4({ src: B, dst: A, proto: "tcp", sport: 80, dport: 5000, tcpFlags: flags });
    assert.equal(hook("egress", toB(TCP_SYN)), OK);
    assert.equal(hook("egress", toA(TCP_SYN | TCP_ACK)), OK);
    assert.equal(hook("egress", toB(TCP_ACK)), OK);

    // F opens more answered connections than its share holds...
    const fw = (sport: number, flags: number) =>
      ipv4({ src: F, dst: W, proto: "tcp", sport, dport: 443, tcpFlags: flags });
    const wf = (dport: number, flags: number) =>
      ipv4({ src: W, dst: F, proto: "tcp", sport: 443, dport, tcpFlags: flags });
    for (let i = 0; i < CT_EST_PER_ADDR + 64; i++) {
      const port = 1024 + i;
      assert.equal(hook("ingress", fw(port, TCP_SYN)), OK);
      assert.equal(hook("egress", wf(port, TCP_SYN | TCP_ACK)), OK);
      assert.equal(hook("ingress", fw(port, TCP_ACK)), OK);
    }
    // ...then a flood of SYNs to the world, each a new allowed flow (rewritten in place:
    // the ports are outside the IP header, whose checksum stays right).
    const syn = ipv4({ src: F, dst: W, proto: "tcp", sport: 1, dport: 1, tcpFlags: TCP_SYN });
    const ports = new DataView(syn.buffer, 14 + 20, 4);
    for (let i = 0; i < FLOOD; i++) {
      ports.setUint16(0, 1 + (i % 65535));
      ports.setUint16(2, 1000 + Math.floor(i / 65535));
      if (hook("ingress", syn) !== OK) assert.fail(`flood SYN ${i} was dropped`);
    }

    // B's next packet still reaches the ingress-isolated A on its connection.
    const before = readStats(dp.statsFd);
    assert.equal(hook("egress", toA(TCP_ACK)), OK);
    const after = readStats(dp.statsFd);
    assert.equal(after.allow_ct - before.allow_ct, 1n);
    assert.equal(after.drop_ingress - before.drop_ingress, 0n);

    // F holds exactly its share of the kept connections; A's is kept, charged to A.
    const rows = ct.list();
    const kept = rows.filter((r) => r.established);
    assert.equal(kept.filter((r) => r.key.saddr === ip4(F)).length, CT_EST_PER_ADDR);
    assert.ok(kept.some((r) => r.key.saddr === ip4(A) && r.key.daddr === ip4(B)));
    const quotas = new Map(ct.quotas().map((q) => [q.ip, q.count]));
    assert.equal(quotas.get(ip4(F)), CT_EST_PER_ADDR);
    assert.equal(quotas.get(ip4(A)), 1);
  });
});
