// The datapath foundation against the real kernel: loading and pinning through
// ensureDatapath, verdicts through BPF_PROG_TEST_RUN and through a veth, tc attach/detach,
// map access through the FFI, and the errors a person sees when something is missing.
// Needs root, bpffs on /sys/fs/bpf, clang, bpftool, ip, tc, and `bash scripts/gen-bpf.sh`.
//
// Every test that touches libbpf in this process lives in this one file: libbpf's print
// callback is process-global but each test module (a separate isolate under --parallel)
// registers its own: when the module that registered last finishes, the next libbpf
// message from another module calls a freed callback and Deno aborts the whole run.

import assert from "node:assert/strict";
import { BpfError, Errno } from "../ffi/errors.ts";
import { BpfObject } from "../ffi/libbpf.ts";
import { mapInfo, mapUpdate, objGet, objPin, progInfo, progTestRun } from "../ffi/bpf.ts";
import { closeFd } from "../ffi/libc.ts";
import { NetlinkSocket } from "../src/net/socket.ts";
import { ifNameToIndex } from "../ffi/libc.ts";
import { embeddedObject } from "../src/datapath/object.ts";
import { PROGRAM_PROCESS_TC } from "../src/spec/bpf_abi.gen.ts";
import {
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_PROG_TYPE_SCHED_CLS,
  encodePolicyKey,
  ENDPOINT_MAP,
  PROGRAM_PIN,
  STAT_NAMES,
  VETH_MAP,
} from "../src/spec/bpf_layout.ts";
import { type Datapath, DatapathError, ensureDatapath } from "../src/datapath/loader.ts";
import {
  type Endpoint,
  EndpointMap,
  MapFullError,
  type Policy,
  PolicyMap,
  readStats,
  VethMap,
} from "../src/datapath/maps.ts";
import * as tc from "../src/datapath/tc.ts";
import {
  arpFrame,
  ETH_P_IP,
  ethFrame,
  exists,
  ip4,
  ipv4Frame,
  randomHex,
  run,
  runJson,
  sendFrames,
  tryRun,
  withPinDir,
  withVeth,
} from "./_kernel.ts";

// libbpf's warnings (expected ones, in the error tests) would otherwise go to stderr; what
// a test needs from them it reads from the errors.
/** The classifier attached on `ifindex` ingress; the id of what is attached there after. */
function attachIngress(ifindex: number, progFd: number): number {
  using nl = new NetlinkSocket();
  tc.attach(nl, ifindex, "ingress", progFd, PROGRAM_PROCESS_TC);
  return tc.attachedProgramId(nl, ifindex, "ingress");
}

function detachIngress(ifindex: number): boolean {
  using nl = new NetlinkSocket();
  return tc.detach(nl, ifindex, "ingress");
}

function attachedProgramId(ifindex: number): number {
  using nl = new NetlinkSocket();
  return tc.attachedProgramId(nl, ifindex, "ingress");
}

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

type Stats = ReturnType<typeof readStats>;
type StatName = (typeof STAT_NAMES)[number];

/** Loads a fresh datapath into a fresh pin directory and cleans both up afterwards. */
function withDatapath<T>(fn: (dp: Datapath) => T | Promise<T>): Promise<T> {
  return withPinDir(async (pinDir) => {
    const dp = ensureDatapath(pinDir);
    try {
      return await fn(dp);
    } finally {
      dp.close();
    }
  });
}

/** How much each counter moved from `before` to `after`. */
function delta(before: Stats, after: Stats): Record<StatName, number> {
  const out = {} as Record<StatName, number>;
  for (const name of STAT_NAMES) out[name] = Number(after[name] - before[name]);
  return out;
}

function zeroDelta(changes: Partial<Record<StatName, number>>): Record<StatName, number> {
  const out = {} as Record<StatName, number>;
  for (const name of STAT_NAMES) out[name] = changes[name] ?? 0;
  return out;
}

/** Opens the pin at `path`, gives its fd to `fn`, and closes it. */
function withPinned<T>(path: string, fn: (fd: number) => T): T {
  const fd = objGet(path);
  try {
    return fn(fd);
  } finally {
    closeFd(fd);
  }
}

/** Compiles a BPF C source with clang into `dir` and returns the object's bytes. */
async function compileBpf(
  dir: string,
  name: string,
  source: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const src = `${dir}/${name}.c`;
  const obj = `${dir}/${name}.o`;
  await Deno.writeTextFile(src, source);
  await run("clang", [
    "-g",
    "-O2",
    "-target",
    "bpf",
    // <linux/types.h> wants <asm/types.h>, which Debian keeps under the multiarch dir.
    `-I/usr/include/${Deno.build.arch}-linux-gnu`,
    "-c",
    src,
    "-o",
    obj,
  ]);
  return await Deno.readFile(obj) as Uint8Array<ArrayBuffer>;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `ebpfcni-test-${randomHex()}-` });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Addresses in frames are loopback-range: nothing here is meant to leave the machine, and
// the veth frames go to a MAC the host end does not own, so the stack discards what the
// program passes.
const A = ip4("127.77.0.1");
const B = ip4("127.77.0.2");
const C = ip4("127.77.0.3");
const D = ip4("127.77.0.4");
const ID_A = 1001;
const ID_B = 1002;
const ID_C = 1003;

// ---- loading and pinning ----

Deno.test("ensureDatapath loads the embedded program and pins maps of the documented type, sizes and limits", async () => {
  await withDatapath(async (dp) => {
    assert.equal(dp.loaded, true);
    const dir = dp.pinDir;
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      [
        "cidr_map",
        "config_map",
        "ct_est_map",
        "ct_map",
        "ct_quota_map",
        "endpoint_map",
        "events",
        "frag_map",
        "host_map",
        "ipcache_map",
        "isolation_map",
        "pair_stats_map",
        "policy_map",
        "rate_map",
        "rule_map",
        "stats_map",
        "tc_prog",
        "tc_prog_egress",
        "tc_prog_to_node",
        "veth_map",
      ],
    );

    // The documented numbers, written out rather than taken from layout.ts.
    const documented = [
      {
        name: "endpoint_map",
        type: BPF_MAP_TYPE_HASH,
        bpftool: "hash",
        key: 4,
        value: 4,
        max: 16384,
      },
      {
        name: "policy_map",
        type: BPF_MAP_TYPE_HASH,
        bpftool: "hash",
        key: 8,
        value: 1,
        max: 65536,
      },
      {
        name: "stats_map",
        type: BPF_MAP_TYPE_PERCPU_ARRAY,
        bpftool: "percpu_array",
        key: 4,
        value: 8,
        max: 18,
      },
      { name: "config_map", type: 2, bpftool: "array", key: 4, value: 104, max: 1 },
      { name: "veth_map", type: 1, bpftool: "hash", key: 4, value: 24, max: 4096 },
      { name: "host_map", type: 1, bpftool: "hash", key: 4, value: 4, max: 256 },
      { name: "ipcache_map", type: 1, bpftool: "hash", key: 4, value: 8, max: 65536 },
      { name: "cidr_map", type: 11, bpftool: "lpm_trie", key: 8, value: 4, max: 16384 },
      { name: "rule_map", type: 11, bpftool: "lpm_trie", key: 16, value: 4, max: 131072 },
      { name: "isolation_map", type: 1, bpftool: "hash", key: 4, value: 4, max: 65536 },
      { name: "ct_map", type: 9, bpftool: "lru_hash", key: 16, value: 40, max: 262144 },
      { name: "ct_est_map", type: 1, bpftool: "hash", key: 16, value: 40, max: 131072 },
      { name: "ct_quota_map", type: 1, bpftool: "hash", key: 4, value: 4, max: 65536 },
      { name: "frag_map", type: 9, bpftool: "lru_hash", key: 12, value: 4, max: 8192 },
      {
        name: "pair_stats_map",
        type: 10,
        bpftool: "lru_percpu_hash",
        key: 8,
        value: 16,
        max: 16384,
      },
      { name: "events", type: 27, bpftool: "ringbuf", key: 0, value: 0, max: 262144 },
      { name: "rate_map", type: 6, bpftool: "percpu_array", key: 4, value: 16, max: 1 },
    ];
    const mapIds: number[] = [];
    for (const want of documented) {
      const path = `${dir}/${want.name}`;
      const info = withPinned(path, mapInfo);
      assert.deepEqual(
        {
          name: info.name,
          type: info.type,
          key: info.keySize,
          value: info.valueSize,
          max: info.maxEntries,
        },
        { name: want.name, type: want.type, key: want.key, value: want.value, max: want.max },
        `${path} as the kernel reports it`,
      );
      mapIds.push(info.id);
      const shown = await runJson<Record<string, unknown>>("bpftool", [
        "map",
        "show",
        "pinned",
        path,
        "-j",
      ]);
      assert.deepEqual(
        {
          id: shown.id,
          name: shown.name,
          type: shown.type,
          key: shown.bytes_key,
          value: shown.bytes_value,
          max: shown.max_entries,
        },
        {
          id: info.id,
          name: want.name,
          type: want.bpftool,
          key: want.key,
          value: want.value,
          max: want.max,
        },
        `${path} as bpftool shows it`,
      );
    }
    assert.equal(mapInfo(dp.endpointFd).id, mapIds[0]);
    assert.equal(mapInfo(dp.policyFd).id, mapIds[1]);
    assert.equal(mapInfo(dp.statsFd).id, mapIds[2]);

    const progPath = `${dir}/${PROGRAM_PIN}`;
    assert.equal(progPath, `${dir}/tc_prog`);
    const prog = withPinned(progPath, progInfo);
    assert.equal(prog.type, BPF_PROG_TYPE_SCHED_CLS);
    assert.equal(prog.name, "process_tc");
    assert.equal(prog.id, dp.progId);
    assert.ok(
      prog.mapIds.every((id) => mapIds.includes(id)),
      "the program uses the pinned maps",
    );
    const shown = await runJson<Record<string, unknown>>("bpftool", [
      "prog",
      "show",
      "pinned",
      progPath,
      "-j",
    ]);
    assert.equal(shown.id, dp.progId);
    assert.equal(shown.type, "sched_cls");
    assert.equal(shown.name, "process_tc");
  });
});

Deno.test("the kernel's tag for the loaded program is one of the generated PROGRAM_TAGS", async () => {
  await withDatapath((dp) => {
    const tag = progInfo(dp.progFd).tag;
    assert.match(tag, /^[0-9a-f]{16}$/);
    assert.ok(
      embeddedObject().PROGRAM_TAGS.includes(tag),
      `kernel tag ${tag} in ${embeddedObject().PROGRAM_TAGS.join(", ")}`,
    );
  });
});

Deno.test("loading twice reuses the pinned maps and program", async () => {
  await withPinDir((pinDir) => {
    const first = ensureDatapath(pinDir);
    let second: Datapath | undefined;
    try {
      assert.equal(first.loaded, true);
      new EndpointMap(first.endpointFd).set(A, ID_A);
      new PolicyMap(first.policyFd).allow(ID_A, ID_B);
      second = ensureDatapath(pinDir);
      assert.equal(second.loaded, false);
      assert.equal(second.progId, first.progId);
      assert.equal(mapInfo(second.endpointFd).id, mapInfo(first.endpointFd).id);
      assert.equal(mapInfo(second.policyFd).id, mapInfo(first.policyFd).id);
      assert.equal(mapInfo(second.statsFd).id, mapInfo(first.statsFd).id);
      assert.equal(new EndpointMap(second.endpointFd).get(A), ID_A);
      assert.equal(new PolicyMap(second.policyFd).allowed(ID_A, ID_B), true);
    } finally {
      second?.close();
      first.close();
    }
  });
});

Deno.test("a removed program pin is reloaded and the endpoint and policy entries survive", async () => {
  await withPinDir((pinDir) => {
    const first = ensureDatapath(pinDir);
    const oldProgId = first.progId;
    const oldEndpointMapId = mapInfo(first.endpointFd).id;
    try {
      new EndpointMap(first.endpointFd).set(A, ID_A);
      new EndpointMap(first.endpointFd).set(B, ID_B);
      new PolicyMap(first.policyFd).allow(ID_A, ID_B);
    } finally {
      first.close();
    }
    Deno.removeSync(`${pinDir}/${PROGRAM_PIN}`);
    assert.equal(exists(`${pinDir}/${PROGRAM_PIN}`), false);

    const again = ensureDatapath(pinDir);
    try {
      assert.equal(again.loaded, true);
      assert.notEqual(again.progId, oldProgId);
      assert.equal(exists(`${pinDir}/${PROGRAM_PIN}`), true);
      assert.equal(mapInfo(again.endpointFd).id, oldEndpointMapId, "the endpoint map was kept");
      assert.ok(
        progInfo(again.progFd).mapIds.includes(oldEndpointMapId),
        "the new program uses it",
      );
      assert.equal(new EndpointMap(again.endpointFd).get(A), ID_A);
      assert.equal(new EndpointMap(again.endpointFd).get(B), ID_B);
      // The reloaded program reads the surviving entries.
      registerTestRunVeth(again);
      assert.equal(progTestRun(again.progFd, ipv4Frame(A, B)).retval, TC_ACT_OK);
    } finally {
      again.close();
    }
  });
});

Deno.test("a pinned program from another build is replaced and the maps are kept", async () => {
  await withTempDir(async (tmp) => {
    const other = await compileBpf(
      tmp,
      "other",
      `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tc")
int process_tc(struct __sk_buff *skb)
{
	return 2;
}
`,
    );
    await withPinDir((pinDir) => {
      const first = ensureDatapath(pinDir);
      const endpointMapId = mapInfo(first.endpointFd).id;
      try {
        new EndpointMap(first.endpointFd).set(A, ID_A);
      } finally {
        first.close();
      }
      // Put a different program (same name, other instructions) at the program pin.
      const obj = BpfObject.openMem(other, "other");
      let foreignId: number;
      try {
        obj.load();
        const fd = obj.programFd("process_tc");
        foreignId = progInfo(fd).id;
        assert.ok(!embeddedObject().PROGRAM_TAGS.includes(progInfo(fd).tag));
        Deno.removeSync(`${pinDir}/${PROGRAM_PIN}`);
        objPin(fd, `${pinDir}/${PROGRAM_PIN}`);
      } finally {
        obj.close();
      }

      const dp = ensureDatapath(pinDir);
      try {
        assert.equal(dp.loaded, true);
        assert.notEqual(dp.progId, foreignId);
        assert.ok(embeddedObject().PROGRAM_TAGS.includes(progInfo(dp.progFd).tag));
        assert.equal(withPinned(`${pinDir}/${PROGRAM_PIN}`, progInfo).id, dp.progId);
        assert.equal(mapInfo(dp.endpointFd).id, endpointMapId);
        assert.equal(new EndpointMap(dp.endpointFd).get(A), ID_A);
      } finally {
        dp.close();
      }
    });
  });
});

Deno.test("two processes loading into one fresh pin directory at once share one program", async () => {
  await withPinDir(async (pinDir) => {
    const loader = new URL("../src/datapath/loader.ts", import.meta.url).href;
    const code = `import { ensureDatapath } from ${JSON.stringify(loader)};
const dp = ensureDatapath(${JSON.stringify(pinDir)});
console.log(JSON.stringify({ loaded: dp.loaded, progId: dp.progId }));
dp.close();`;
    const results = await Promise.all(
      [1, 2].map(() => run(Deno.execPath(), ["eval", "--quiet", "--no-lock", code])),
    );
    const [a, b] = results.map((out) => JSON.parse(out) as { loaded: boolean; progId: number });
    assert.ok(a && b);
    assert.equal(a.progId, b.progId, "both ended with the same program");
    assert.equal([a.loaded, b.loaded].filter((x) => x).length, 1, "exactly one of them loaded it");
    assert.equal(withPinned(`${pinDir}/${PROGRAM_PIN}`, progInfo).id, a.progId);
  });
});

// ---- verdicts through BPF_PROG_TEST_RUN ----

/** BPF_PROG_TEST_RUN runs the program on the loopback device (ifindex 1): register it as a
 * pod veth owning the test addresses, as ADD registers a pod's veth. */
function registerTestRunVeth(dp: Datapath, ips = [A, B, C, D]): void {
  new VethMap(dp.fd(VETH_MAP)).set(1, { ips, flags: 0 });
}

Deno.test("test run: an ARP frame from the pod's address passes and counts as non-IPv4", async () => {
  await withDatapath((dp) => {
    registerTestRunVeth(dp);
    const before = readStats(dp.statsFd);
    assert.equal(progTestRun(dp.progFd, arpFrame(A, B)).retval, TC_ACT_OK);
    // Neither IPv4, ARP nor IPv6: dropped (the original passed every other ethertype).
    assert.equal(progTestRun(dp.progFd, ethFrame(0x1234, 46)).retval, TC_ACT_SHOT);
    assert.deepEqual(
      delta(before, readStats(dp.statsFd)),
      zeroDelta({ pass_non_ipv4: 1, drop_ethertype: 1 }),
    );
  });
});

Deno.test("test run: frames shorter than Ethernet or eth+IPv4 pass, or the kernel refuses them with EINVAL", async () => {
  await withDatapath((dp) => {
    registerTestRunVeth(dp);
    // Shorter than an Ethernet header: BPF_PROG_TEST_RUN refuses it before the program runs.
    const before = readStats(dp.statsFd);
    assert.throws(
      () => progTestRun(dp.progFd, new Uint8Array(10)),
      (err: unknown) =>
        err instanceof BpfError && err.errno === Errno.EINVAL &&
        /^test run: EINVAL/.test(err.message),
    );
    assert.deepEqual(
      delta(before, readStats(dp.statsFd)),
      zeroDelta({}),
      "the program did not run",
    );

    // IPv4 ethertype but shorter than eth + iphdr (14..33 bytes). Linux 6.18 refuses these
    // in test runs too (it parses the IP header itself); older kernels run the program,
    // which must then pass them. The veth test below sends such frames for real.
    for (const length of [14, 20, 33]) {
      const frame = ethFrame(ETH_P_IP, length - 14);
      const b = readStats(dp.statsFd);
      let retval: number | undefined;
      try {
        retval = progTestRun(dp.progFd, frame).retval;
      } catch (err) {
        assert.ok(err instanceof BpfError, `${length} bytes: ${err}`);
        assert.equal(err.errno, Errno.EINVAL, `${length} bytes: ${err.message}`);
      }
      const moved = delta(b, readStats(dp.statsFd));
      if (retval === undefined) {
        assert.deepEqual(moved, zeroDelta({}), `${length} bytes refused: the program did not run`);
      } else {
        assert.equal(retval, TC_ACT_OK, `${length} bytes pass`);
        assert.deepEqual(moved, zeroDelta({ pass_short: 1 }), `${length} bytes counted as short`);
      }
    }
  });
});

Deno.test("test run: IPv4 is dropped unless both endpoints are known and their pair is allowed", async () => {
  await withDatapath((dp) => {
    registerTestRunVeth(dp);
    const endpoints = new EndpointMap(dp.endpointFd);
    const policy = new PolicyMap(dp.policyFd);
    const verdict = (src: number, dst: number) =>
      progTestRun(dp.progFd, ipv4Frame(src, dst)).retval;
    const before = readStats(dp.statsFd);

    // Nothing registered: unknown source.
    assert.equal(verdict(A, B), TC_ACT_SHOT);
    endpoints.set(A, ID_A);
    // Known source, unknown destination.
    assert.equal(verdict(A, B), TC_ACT_SHOT);
    assert.equal(verdict(C, A), TC_ACT_SHOT, "unknown source, known destination");
    endpoints.set(B, ID_B);
    // Both known, no rule: default deny.
    assert.equal(verdict(A, B), TC_ACT_SHOT);
    policy.allow(ID_A, ID_B);
    assert.equal(verdict(A, B), TC_ACT_OK, "allowed pair passes");
    assert.equal(verdict(B, A), TC_ACT_SHOT, "the rule has a direction");
    assert.equal(policy.deny(ID_A, ID_B), true);
    assert.equal(verdict(A, B), TC_ACT_SHOT, "dropped again once the rule is removed");

    assert.deepEqual(
      delta(before, readStats(dp.statsFd)),
      zeroDelta({ drop_unknown_src: 2, drop_unknown_dst: 1, drop_policy: 3, allow: 1 }),
    );
  });
});

Deno.test("test run: a policy entry whose value is not POLICY_ALLOW drops", async () => {
  await withDatapath((dp) => {
    registerTestRunVeth(dp);
    const endpoints = new EndpointMap(dp.endpointFd);
    endpoints.set(A, ID_A);
    endpoints.set(C, ID_C);
    const before = readStats(dp.statsFd);
    for (const value of [0, 2, 255]) {
      mapUpdate(dp.policyFd, encodePolicyKey(ID_A, ID_C), new Uint8Array([value]));
      assert.equal(progTestRun(dp.progFd, ipv4Frame(A, C)).retval, TC_ACT_SHOT, `value ${value}`);
      assert.equal(new PolicyMap(dp.policyFd).allowed(ID_A, ID_C), false, `value ${value}`);
    }
    mapUpdate(dp.policyFd, encodePolicyKey(ID_A, ID_C), new Uint8Array([1]));
    assert.equal(progTestRun(dp.progFd, ipv4Frame(A, C)).retval, TC_ACT_OK, "value 1");
    assert.deepEqual(delta(before, readStats(dp.statsFd)), zeroDelta({ drop_policy: 3, allow: 1 }));
  });
});

// ---- tc attach / detach on a veth ----

interface TcFilter {
  kind?: string;
  options?: { "bpf_name"?: string; "direct-action"?: boolean; prog?: { id: number; name: string } };
}

async function ingressFilters(dev: string): Promise<TcFilter[]> {
  return await runJson<TcFilter[]>("tc", ["-j", "filter", "show", "dev", dev, "ingress"]);
}

function bpfFilters(filters: TcFilter[]): TcFilter[] {
  return filters.filter((f) => f.kind === "bpf" && f.options?.prog);
}

Deno.test("attach then detach on a veth's ingress leaves nothing attached", async () => {
  await withVeth(async (veth) => {
    await withDatapath(async (dp) => {
      const ifindex = ifNameToIndex(veth.host);
      assert.ok(ifindex > 0, `ifindex of ${veth.host}`);
      assert.equal(attachedProgramId(ifindex), 0, "nothing attached yet");

      assert.equal(attachIngress(ifindex, dp.progFd), dp.progId);
      assert.equal(attachedProgramId(ifindex), dp.progId);
      // Attaching again replaces our filter instead of stacking a second one.
      assert.equal(attachIngress(ifindex, dp.progFd), dp.progId);

      const attached = bpfFilters(await ingressFilters(veth.host));
      assert.equal(attached.length, 1, JSON.stringify(attached));
      assert.equal(attached[0]?.options?.prog?.name, "process_tc");
      assert.equal(attached[0]?.options?.prog?.id, dp.progId);
      assert.equal(attached[0]?.options?.["direct-action"], true);
      const text = await run("tc", ["filter", "show", "dev", veth.host, "ingress"]);
      assert.match(text, /process_tc.*direct-action/);

      assert.equal(detachIngress(ifindex), true);
      assert.equal(attachedProgramId(ifindex), 0);
      assert.equal(detachIngress(ifindex), false, "a second detach finds nothing");
      assert.deepEqual(bpfFilters(await ingressFilters(veth.host)), []);
      assert.doesNotMatch(
        await run("tc", ["filter", "show", "dev", veth.host, "ingress"]),
        /process_tc/,
      );
    });
  });
});

/** Reads the counters until `done` holds for them (frames a child process sent are
 * processed in softirq; normally before it has even exited). */
async function statsWhen(fd: number, done: (s: Stats) => boolean): Promise<Stats> {
  let s = readStats(fd);
  for (let i = 0; i < 100 && !done(s); i++) {
    await new Promise((r) => setTimeout(r, 20));
    s = readStats(fd);
  }
  return s;
}

Deno.test("on a veth, the attached program drops denied IPv4 and passes allowed, short and ARP frames", async () => {
  await withVeth(async (veth) => {
    await withDatapath(async (dp) => {
      const ifindex = ifNameToIndex(veth.host);
      // The veth's pod owns A and C (C is registered nowhere else).
      new VethMap(dp.fd(VETH_MAP)).set(ifindex, { ips: [A, C], flags: 0 });
      attachIngress(ifindex, dp.progFd);
      const endpoints = new EndpointMap(dp.endpointFd);
      endpoints.set(A, ID_A);
      endpoints.set(B, ID_B);
      new PolicyMap(dp.policyFd).allow(ID_A, ID_B);
      const before = readStats(dp.statsFd);

      const allowed = ipv4Frame(A, B);
      await sendFrames(veth.netns, veth.peer, [
        allowed,
        allowed,
        allowed,
        ipv4Frame(C, B), // unknown source
        ipv4Frame(C, A),
        ipv4Frame(A, D), // unknown destination
        ipv4Frame(B, A), // B's address is not this pod's: spoofed
        ethFrame(ETH_P_IP, 6), // IPv4 ethertype, 20 bytes: too short for an IP header
        ethFrame(ETH_P_IP, 19), // 33 bytes
        arpFrame(A, B),
        arpFrame(B, A), // ARP claiming B's address: spoofed
      ]);
      const expected = zeroDelta({
        pass_non_ipv4: 1,
        pass_short: 2,
        drop_unknown_src: 2,
        drop_unknown_dst: 1,
        drop_spoofed: 2,
        allow: 3,
      });
      const after = await statsWhen(dp.statsFd, (s) => {
        const d = delta(before, s);
        return STAT_NAMES.every((n) => d[n] >= expected[n]);
      });
      assert.deepEqual(delta(before, after), expected);

      // The drops are real: tc accounts the four shot frames on the ingress (clsact) qdisc.
      const qdiscs = await runJson<{ kind: string; drops: number }[]>(
        "tc",
        ["-s", "-j", "qdisc", "show", "dev", veth.host, "ingress"],
      );
      const clsact = qdiscs.find((q) => q.kind === "clsact");
      assert.ok(clsact, JSON.stringify(qdiscs));
      assert.equal(clsact.drops, 5);
      assert.equal(detachIngress(ifindex), true);
    });
  });
});

// ---- errors ----

Deno.test("a pin directory outside bpffs fails with a DatapathError naming it and saying to mount bpffs", async () => {
  await withTempDir((dir) => {
    assert.throws(
      () => ensureDatapath(dir),
      (err: unknown) => {
        assert.ok(err instanceof DatapathError, `got ${err}`);
        assert.ok(err.message.includes(`"${dir}"`), err.message);
        assert.match(err.message, /not on BPF FS/);
        assert.match(err.message, /mount -t bpf bpf \/sys\/fs\/bpf/);
        return true;
      },
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing was pinned there");
    return Promise.resolve();
  });
});

Deno.test("a missing libbpf fails with an error naming the library, its path and the Debian package", async () => {
  const loader = new URL("../src/datapath/loader.ts", import.meta.url).href;
  const pinDir = `/sys/fs/bpf/ebpfcni-test-${randomHex()}`;
  const code = `import { ensureDatapath } from ${JSON.stringify(loader)};
try {
  ensureDatapath(${JSON.stringify(pinDir)});
  console.log(JSON.stringify({ loaded: true }));
} catch (err) {
  console.log(JSON.stringify({ name: err.name, message: err.message }));
}`;
  try {
    const r = await tryRun(Deno.execPath(), ["eval", "--quiet", "--no-lock", code], {
      EBPFCNI_LIBBPF: "/nonexistent/libbpf.so.1",
      EBPFCNI_LOG_LEVEL: "error",
    });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { name?: string; message?: string };
    assert.equal(out.name, "DatapathError", r.stdout);
    assert.match(out.message ?? "", /libbpf/);
    assert.ok(out.message?.includes("/nonexistent/libbpf.so.1"), out.message);
    assert.match(out.message ?? "", /Debian package libbpf1/);
    assert.match(out.message ?? "", /EBPFCNI_LIBBPF/);
    assert.equal(exists(pinDir), false, "nothing was created");
  } finally {
    if (exists(pinDir)) Deno.removeSync(pinDir, { recursive: true });
  }
});

Deno.test("a program the verifier rejects fails with a BpfError carrying the verifier log", async () => {
  await withTempDir(async (tmp) => {
    const bytes = await compileBpf(
      tmp,
      "unchecked",
      `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tc")
int unchecked(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;
	/* No comparison with data_end: the verifier must refuse this read. */
	return data[20] == 1 ? 2 : 0;
}
`,
    );
    const obj = BpfObject.openMem(bytes, "unchecked");
    try {
      assert.throws(
        () => obj.load(),
        (err: unknown) => {
          assert.ok(err instanceof BpfError, `got ${err}`);
          assert.equal(err.op, "load BPF object");
          assert.match(err.log, /invalid access to packet|R\d invalid mem access/);
          assert.ok(err.message.includes(err.log), "the message includes the log");
          return true;
        },
      );
    } finally {
      obj.close();
    }
  });
});

// ---- map access through the FFI ----

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function byIp(a: Endpoint, b: Endpoint): number {
  return a.ip - b.ip;
}

function endpointsOf(m: EndpointMap): Endpoint[] {
  return m.list().map(([ip, identity]) => ({ ip, identity }));
}

function byPair(a: Policy, b: Policy): number {
  return a.src - b.src || a.dst - b.dst;
}

Deno.test("EndpointMap set/get/add/delete/list round-trip 1000 endpoints", async () => {
  await withDatapath((dp) => {
    const m = new EndpointMap(dp.endpointFd);
    const base = ip4("127.78.0.0");
    const eps = range(1000).map((i) => ({ ip: base + i, identity: 5000 + (i % 37) }));
    for (const e of eps) m.set(e.ip, e.identity);
    for (const e of eps) assert.equal(m.get(e.ip), e.identity);
    assert.deepEqual(endpointsOf(m).sort(byIp), eps);
    assert.equal(m.get(base + 5000), undefined);

    // add() only inserts; set() replaces.
    assert.equal(m.add(eps[0]!.ip, 1), false);
    assert.equal(m.get(eps[0]!.ip), eps[0]!.identity);
    m.set(eps[0]!.ip, 42);
    assert.equal(m.get(eps[0]!.ip), 42);
    assert.equal(m.add(base + 5000, 7), true);
    assert.equal(m.get(base + 5000), 7);

    const [gone, kept] = [eps.filter((_, i) => i % 2 === 0), eps.filter((_, i) => i % 2 === 1)];
    for (const e of gone) assert.equal(m.delete(e.ip), true);
    assert.equal(m.delete(gone[0]!.ip), false, "deleting twice finds nothing");
    for (const e of gone) assert.equal(m.get(e.ip), undefined);
    assert.deepEqual(endpointsOf(m).sort(byIp), [...kept, { ip: base + 5000, identity: 7 }]);

    // setMany writes in one batch and replaces existing entries.
    const again = eps.map((e) => ({ ip: e.ip, identity: e.identity + 1 }));
    m.setMany(again.map((e) => [e.ip, e.identity]));
    assert.deepEqual(endpointsOf(m).sort(byIp), [...again, { ip: base + 5000, identity: 7 }]);
  });
});

Deno.test("PolicyMap allowMany/pairs/deleteMany round-trip 1000 rules in batches", async () => {
  await withDatapath((dp) => {
    const m = new PolicyMap(dp.policyFd);
    const rules = range(1000).map((i) => ({ src: 100 + Math.floor(i / 40), dst: 9000 + (i % 40) }));
    m.allowMany(rules);
    assert.deepEqual(m.pairs().sort(byPair), rules);
    for (const r of rules) assert.equal(m.allowed(r.src, r.dst), true);
    assert.equal(m.allowed(rules[0]!.dst, rules[0]!.src), false, "rules have a direction");

    // An entry with another action is not listed as allowed.
    mapUpdate(dp.policyFd, encodePolicyKey(1, 2), new Uint8Array([0]));
    assert.equal(m.pairs().length, rules.length);

    m.deleteMany(rules.slice(0, 600));
    assert.deepEqual(m.pairs().sort(byPair), rules.slice(600));
    for (const r of rules.slice(0, 600)) assert.equal(m.allowed(r.src, r.dst), false);
    m.deleteMany(rules.slice(600));
    assert.deepEqual(m.pairs(), []);
    assert.equal(m.deny(rules[0]!.src, rules[0]!.dst), false);
    assert.equal(m.deny(1, 2), true, "the non-allow entry was still there");
  });
});

Deno.test("a full endpoint map refuses a new address with MapFullError but still replaces", async () => {
  await withDatapath((dp) => {
    const m = new EndpointMap(dp.endpointFd);
    const base = ip4("127.79.0.0");
    m.setMany(range(ENDPOINT_MAP.maxEntries).map((i) => [base + i, i]));
    assert.equal(m.list().length, ENDPOINT_MAP.maxEntries);
    assert.throws(() => m.set(base + ENDPOINT_MAP.maxEntries, 1), MapFullError);
    assert.throws(
      () => m.set(base + ENDPOINT_MAP.maxEntries, 1),
      /endpoint_map is full \(16384 entries\)/,
    );
    m.set(base, 77);
    assert.equal(m.get(base), 77);
  });
});
