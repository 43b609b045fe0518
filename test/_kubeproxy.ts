// A stand-in for kube-proxy in tests: Service VIPs DNATed to backend pods by iptables rules in
// a chain of the test's own (nat PREROUTING and OUTPUT jump to it), with the host settings
// kube-proxy needs on a bridge CNI: IPv4 forwarding and bridge-nf-call-iptables (so replies
// of DNATed flows between pods of one bridge go back through conntrack). Everything is put
// back in `finally`; the sysctls only when the last test using them on this host is done.
import { randomHex, run, run as runHere, tryRun, tryRun as tryRunHere } from "./_kernel.ts";

export interface Service {
  vip: string;
  port: number;
  proto: "tcp" | "udp";
  backend: string;
  targetPort: number;
}

const SYSCTLS = ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"];
// The lock is the sysctl's own file: nothing to create, nothing left behind.
const LOCK = "/proc/sys/net/ipv4/ip_forward";
const STATE = "/run/ebpfcni-test-kubeproxy.json";

interface Shared {
  users: number;
  saved: Record<string, string>;
}

/** Runs `fn` holding an exclusive flock on LOCK (parallel test runs share the sysctls). */
async function locked<T>(fn: (state: Shared) => Promise<T> | T): Promise<T> {
  const f = await Deno.open(LOCK, { read: true });
  try {
    await f.lock(true);
    let state: Shared = { users: 0, saved: {} };
    try {
      state = JSON.parse(await Deno.readTextFile(STATE));
    } catch {
      // first user
    }
    const out = await fn(state);
    if (state.users === 0) await Deno.remove(STATE).catch(() => {});
    else await Deno.writeTextFile(STATE, JSON.stringify(state));
    return out;
  } finally {
    f.close();
  }
}

async function acquireSysctls(): Promise<void> {
  await locked(async (state) => {
    if (state.users === 0) {
      for (const name of SYSCTLS) {
        state.saved[name] = (await run("sysctl", ["-n", name])).trim();
        await run("sysctl", ["-qw", `${name}=1`]);
      }
    }
    state.users++;
  });
}

async function releaseSysctls(): Promise<void> {
  await locked(async (state) => {
    state.users = Math.max(0, state.users - 1);
    if (state.users === 0) {
      for (const [name, value] of Object.entries(state.saved)) {
        await tryRun("sysctl", ["-qw", `${name}=${value}`]);
      }
      state.saved = {};
    }
  });
}

export interface KubeProxy {
  chain: string;
  /** Adds (another) Service. */
  add(s: Service): Promise<void>;
}

/** Runs `fn` with the Services in place; `bridge` is the pods' bridge (forwarded traffic on
 * it is accepted, whatever the host's FORWARD policy is). With `netns` (an `ip netns` name:
 * iptables needs no /sys/fs/bpf) the rules and sysctls are that namespace's, a node of a test
 * cluster: the host is left alone, and the sysctls go with the namespace. */
export async function withKubeProxy<T>(
  bridge: string,
  services: Service[],
  fn: (kp: KubeProxy) => Promise<T>,
  netns?: string,
): Promise<T> {
  const inNs = netns === undefined ? [] : ["netns", "exec", netns];
  const run = (cmd: string, args: string[]) =>
    netns === undefined ? runHere(cmd, args) : runHere("ip", [...inNs, cmd, ...args]);
  const tryRun = (cmd: string, args: string[]) =>
    netns === undefined ? tryRunHere(cmd, args) : tryRunHere("ip", [...inNs, cmd, ...args]);
  const chain = `EBPFCNI-T-${randomHex(4).toUpperCase()}`;
  const jumps: string[][] = [
    ["-t", "nat", "PREROUTING", "-j", chain],
    ["-t", "nat", "OUTPUT", "-j", chain],
    ["-t", "filter", "FORWARD", "-i", bridge, "-j", "ACCEPT"],
    ["-t", "filter", "FORWARD", "-o", bridge, "-j", "ACCEPT"],
  ];
  const ipt = (op: string, rule: string[]) => {
    const [t, table, chainName, ...rest] = rule;
    return run("iptables", [t!, table!, op, chainName!, ...rest]);
  };
  if (netns === undefined) await acquireSysctls();
  else for (const name of SYSCTLS) await run("sysctl", ["-qw", `${name}=1`]);
  const added: string[][] = [];
  try {
    await run("iptables", ["-t", "nat", "-N", chain]);
    for (const j of jumps) {
      await ipt("-I", j);
      added.push(j);
    }
    const kp: KubeProxy = {
      chain,
      async add(s) {
        await run("iptables", [
          "-t",
          "nat",
          "-A",
          chain,
          "-d",
          `${s.vip}/32`,
          "-p",
          s.proto,
          "--dport",
          String(s.port),
          "-j",
          "DNAT",
          "--to-destination",
          `${s.backend}:${s.targetPort}`,
        ]);
      },
    };
    for (const s of services) await kp.add(s);
    return await fn(kp);
  } finally {
    for (const j of added.reverse()) {
      await tryRun("iptables", ["-t", j[1]!, "-D", j[2]!, ...j.slice(3)]);
    }
    await tryRun("iptables", ["-t", "nat", "-F", chain]);
    await tryRun("iptables", ["-t", "nat", "-X", chain]);
    if (netns === undefined) await releaseSysctls();
  }
}
