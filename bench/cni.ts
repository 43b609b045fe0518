// Driving the two plugins the way a container runtime does (CNI_* env, config on stdin):
// ebpfcni (dist/ebpfcni) and the reference, Debian's bridge plugin with host-local IPAM.
// Each BenchNet is one network of one plugin: its own bridge, /24 subnet, lease directory
// (and for ebpfcni its own pin and state directories), all removed at the end of the run.
import {
  BINARY,
  CNI_PATH,
  linkToDelete,
  netns,
  pinDir,
  type ProcResult,
  REF_PLUGIN,
  run,
  RUN_ID,
  tempDir,
} from "./lib.ts";

export type Kind = "ebpfcni" | "bridge";

export const CNI_VERSION = "1.0.0";
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface Pod {
  id: string;
  netns: string;
  identity: number;
  /** Filled after a successful ADD. */
  ip?: string | undefined;
  hostVeth?: string | undefined;
}

export class BenchNet {
  readonly name: string;
  readonly bridge: string;
  readonly pinDir: string | undefined;
  readonly dir: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly pods: Pod[] = [];

  /** `octet`: the X of 10.X.Y.0/24; `third`: Y. */
  constructor(readonly kind: Kind, readonly tag: string, octet: number, third: number) {
    const k = kind === "ebpfcni" ? "e" : "r";
    this.name = `bench-${RUN_ID}-${tag}-${k}`;
    this.bridge = `eb${RUN_ID}${tag}${k}`.slice(0, 15);
    this.pinDir = kind === "ebpfcni" ? pinDir(`${tag}`) : undefined;
    this.dir = tempDir(`${tag}-${k}`);
    this.subnet = `10.${octet}.${third}.0/24`;
    this.gateway = `10.${octet}.${third}.1`;
    linkToDelete(this.bridge);
  }

  config(): Record<string, unknown> {
    const ipam = {
      type: "host-local",
      subnet: this.subnet,
      routes: [{ dst: "0.0.0.0/0" }],
      dataDir: `${this.dir}/ipam`,
    };
    if (this.kind === "ebpfcni") {
      return {
        cniVersion: CNI_VERSION,
        name: this.name,
        type: "ebpfcni",
        bridge: this.bridge,
        pinDir: this.pinDir,
        stateDir: `${this.dir}/state`,
        ipam,
      };
    }
    // Same topology as ebpfcni's defaults: the bridge holds the gateway address.
    return {
      cniVersion: CNI_VERSION,
      name: this.name,
      type: "bridge",
      bridge: this.bridge,
      isGateway: true,
      ipam,
    };
  }

  /** Creates `n` more pods' netns (beforehand, outside any measurement). */
  async makePods(n: number, identityBase = 1001): Promise<Pod[]> {
    const made: Pod[] = [];
    for (let i = 0; i < n; i++) {
      const idx = this.pods.length;
      const ns = await netns(`${this.bridge}-${idx}`);
      const pod = { id: `${this.name}-${idx}`, netns: ns, identity: identityBase + idx };
      this.pods.push(pod);
      made.push(pod);
    }
    return made;
  }

  /** The plugin command, its arguments and env for one CNI call. */
  invocation(
    command: string,
    pod: Pod,
  ): { cmd: string; args: string[]; env: Record<string, string> } {
    const env: Record<string, string> = {
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.id,
      CNI_NETNS: `/var/run/netns/${pod.netns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH,
      PATH,
    };
    if (this.kind === "ebpfcni") env.CNI_ARGS = `EBPFCNI_IDENTITY=${pod.identity}`;
    return { cmd: this.kind === "ebpfcni" ? BINARY : REF_PLUGIN, args: [], env };
  }

  /** One CNI call, timed from spawn to exit; throws when the plugin fails. `binary` runs
   * instead of dist/ebpfcni (a launcher variant, bench/levers.ts). */
  async call(command: "ADD" | "DEL", pod: Pod, binary?: string): Promise<ProcResult> {
    const inv = this.invocation(command, pod);
    const { args, env } = inv;
    const cmd = binary ?? inv.cmd;
    const res = await run(cmd, args, {
      env,
      clearEnv: true,
      stdin: JSON.stringify(this.config()),
      timeoutMs: 60_000,
    });
    if (res.code !== 0) {
      throw new Error(
        `${this.kind} ${command} ${pod.id} failed (${res.code}): ${res.stdout.trim()} ${res.stderr.trim()}`,
      );
    }
    if (command === "ADD") {
      const r = JSON.parse(res.stdout) as {
        ips?: { address: string }[];
        interfaces?: { name: string; sandbox?: string }[];
      };
      pod.ip = r.ips?.[0]?.address.split("/")[0];
      pod.hostVeth = r.interfaces?.find((i) => i.sandbox === undefined && i.name !== this.bridge)
        ?.name;
    } else {
      delete pod.ip;
      delete pod.hostVeth;
    }
    return res;
  }
}

/** DELs every pod that is still added (cleanup between sections); errors ignored. */
export async function delAll(net: BenchNet): Promise<void> {
  for (const p of net.pods) {
    if (p.ip === undefined) continue;
    try {
      await net.call("DEL", p);
    } catch { /* cleanup deletes the netns and bridge anyway */ }
  }
}
