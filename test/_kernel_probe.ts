// What this kernel makes of the datapath, for the kernel matrix (scripts/kernel-matrix):
// the release, the tag the kernel gave the loaded program and which of gen_bpf's
// predictions it is (SHA-256 from Linux 6.18 on, SHA-1 before), load times (the first load
// in a process pays for opening libbpf; the second is the kernel's load and verification;
// reuse opens the pins), BPF_PROG_TEST_RUN verdicts for the basic cases, and whether the
// kernel runs the program on an IPv4 frame too short for an IP header (6.18 refuses it).
// Run as root with bpffs on /sys/fs/bpf: `deno run --allow-all test/_kernel_probe.ts`.
// Prints one JSON line; exits non-zero only when it cannot run at all.
import { BpfError } from "../ffi/errors.ts";
import { progInfo, progTestRun } from "../ffi/bpf.ts";
import { embeddedObject } from "../src/datapath/object.ts";
import { PROGRAM_PROCESS_TC } from "../src/spec/bpf_abi.gen.ts";
import { ensureDatapath } from "../src/datapath/loader.ts";
import { VETH_MAP } from "../src/spec/bpf_layout.ts";
import { EndpointMap, PolicyMap, VethMap } from "../src/datapath/maps.ts";
import { programTags, readElfSections } from "../scripts/elf.ts";
import { arpFrame, ETH_P_IP, ethFrame, exists, ip4, ipv4Frame, randomHex } from "./_kernel.ts";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const pinDirs = [1, 2].map(() => `/sys/fs/bpf/ebpfcni-probe-${randomHex()}`);

function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const v = fn();
  return [v, Math.round((performance.now() - t0) * 100) / 100];
}

try {
  const [first, coldLoadMs] = timed(() => ensureDatapath(pinDirs[0]));
  first.close();
  const [dp, loadMs] = timed(() => ensureDatapath(pinDirs[1]));
  const [again, reuseMs] = timed(() => ensureDatapath(pinDirs[1]));
  again.close();

  const tag = progInfo(dp.progFd).tag;
  const gen = embeddedObject();
  const bytes = gen.objectBytes();
  // programTags returns the SHA-256 based tag, then the SHA-1 based one.
  const [sha256, sha1] = programTags(bytes, readElfSections(bytes), PROGRAM_PROCESS_TC);
  const tagKind = tag === sha256 ? "sha256" : tag === sha1 ? "sha1" : "none";

  const A = ip4("127.77.0.1");
  const B = ip4("127.77.0.2");
  const C = ip4("127.77.0.3");
  // BPF_PROG_TEST_RUN runs the program on loopback (ifindex 1): register it as a pod veth
  // owning the test addresses, as ADD registers a pod's veth, or every frame drops.
  new VethMap(dp.fd(VETH_MAP)).set(1, { ips: [A, B, C], flags: 0 });
  new EndpointMap(dp.endpointFd).set(A, 1001);
  new EndpointMap(dp.endpointFd).set(B, 1002);
  new PolicyMap(dp.policyFd).allow(1001, 1002);
  const verdicts: Record<string, { want: number; got: number | string }> = {};
  const check = (name: string, frame: Uint8Array<ArrayBuffer>, want: number) => {
    try {
      verdicts[name] = { want, got: progTestRun(dp.progFd, frame).retval };
    } catch (err) {
      verdicts[name] = { want, got: String(err) };
    }
  };
  check("arp passes", arpFrame(A, B), TC_ACT_OK);
  check("allowed pair passes", ipv4Frame(A, B), TC_ACT_OK);
  check("reverse direction drops", ipv4Frame(B, A), TC_ACT_SHOT);
  check("unknown source drops", ipv4Frame(C, B), TC_ACT_SHOT);
  check("unknown destination drops", ipv4Frame(A, C), TC_ACT_SHOT);

  let runtIpv4TestRun: string;
  try {
    runtIpv4TestRun = `runs (retval ${progTestRun(dp.progFd, ethFrame(ETH_P_IP, 6)).retval})`;
  } catch (err) {
    runtIpv4TestRun = err instanceof BpfError ? `refused (errno ${err.errno})` : String(err);
  }
  dp.close();

  let jitEnabled = "unknown";
  try {
    jitEnabled = Deno.readTextFileSync("/proc/sys/net/core/bpf_jit_enable").trim();
  } catch {
    // no such sysctl: the JIT is always on (CONFIG_BPF_JIT_ALWAYS_ON) or absent
  }
  console.log(JSON.stringify({
    release: Deno.osRelease(),
    tag,
    tagKind,
    tagInGenerated: gen.PROGRAM_TAGS.includes(tag),
    coldLoadMs,
    loadMs,
    reuseMs,
    verdicts,
    verdictsOk: Object.values(verdicts).every((v) => v.got === v.want),
    runtIpv4TestRun,
    jitEnabled,
  }));
} finally {
  for (const d of pinDirs) if (exists(d)) Deno.removeSync(d, { recursive: true });
}
