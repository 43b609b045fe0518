// Test harness for driving dist/ebpfcni exactly as a container runtime does: env vars and
// a JSON config on stdin. Every network gets random names (bridge, subnet, pin, state and
// lease directories) and is removed in `cleanup()`, so tests can run twice and in parallel.
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
export const BINARY = Deno.env.get("EBPFCNI_BINARY") ?? `${ROOT}/dist/ebpfcni`;

export function rand(n = 6): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => (b % 36).toString(36)).join(
    "",
  );
}

/** Runs a command (observation tools only: ip, tc, bpftool, ping). */
export async function sh(
  cmd: string,
  args: string[],
  opts: { check?: boolean; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await p.output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (opts.check && res.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${res.code}): ${res.stderr}`);
  }
  return res;
}

export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  /** Extra/overriding env entries; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  /** Config object (defaults to the network's); a string is sent as is. */
  config?: Record<string, unknown> | string;
}

export interface CniReply {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is. */
  json: Record<string, unknown> | undefined;
}

export async function runPlugin(
  call: CniCall,
  defaults?: Record<string, unknown>,
): Promise<CniReply> {
  const env: Record<string, string> = {
    CNI_COMMAND: call.command,
    CNI_PATH: "/usr/lib/cni",
  };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  for (const [k, v] of Object.entries(call.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const config = call.config ?? defaults ?? {};
  const stdin = typeof config === "string" ? config : JSON.stringify(config);
  const p = new Deno.Command(BINARY, {
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await p.output();
  const stdout = new TextDecoder().decode(out.stdout);
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: out.code, stdout, stderr: new TextDecoder().decode(out.stderr), json };
}

/** A throwaway network: random bridge, /24 subnet, pin dir, state and lease dirs. */
export class TestNetwork {
  readonly name = `tn-${rand()}`;
  readonly bridge = `tbr${rand(5)}`;
  readonly pinDir = `/sys/fs/bpf/ebpfcni-test-${rand()}`;
  readonly dir = Deno.makeTempDirSync({ prefix: "ebpfcni-test-" });
  readonly subnetOctet = 10 + Math.floor(Math.random() * 240);
  readonly subnet: string;
  readonly netnses: string[] = [];

  constructor(readonly subnetBase = `10.${200 + Math.floor(Math.random() * 50)}`) {
    this.subnet = `${subnetBase}.${this.subnetOctet}.0/24`;
  }

  get gateway(): string {
    return `${this.subnetBase}.${this.subnetOctet}.1`;
  }

  get dataDir(): string {
    return `${this.dir}/ipam`;
  }

  get stateDir(): string {
    return `${this.dir}/state`;
  }

  /** The network config; `extra` is merged over it, `ipam` extra merged into ipam. */
  config(
    extra: Record<string, unknown> = {},
    ipam: Record<string, unknown> = {},
    cniVersion = "1.1.0",
  ): Record<string, unknown> {
    return {
      cniVersion,
      name: this.name,
      type: "ebpfcni",
      bridge: this.bridge,
      pinDir: this.pinDir,
      stateDir: this.stateDir,
      ipam: {
        type: "host-local",
        subnet: this.subnet,
        routes: [{ dst: "0.0.0.0/0" }],
        dataDir: this.dataDir,
        ...ipam,
      },
      ...extra,
    };
  }

  /** Creates a named netns owned by this network; returns its path. */
  async netns(): Promise<string> {
    const name = `tns-${rand()}`;
    await sh("ip", ["netns", "add", name], { check: true });
    this.netnses.push(name);
    return `/var/run/netns/${name}`;
  }

  run(call: CniCall): Promise<CniReply> {
    return runPlugin(call, this.config());
  }

  /** Lease files currently in the store (IP names only). */
  leases(): string[] {
    try {
      return [...Deno.readDirSync(`${this.dataDir}/${this.name}`)]
        .map((e) => e.name)
        .filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n))
        .sort();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /** endpoint_map entries as {key, value} from bpftool, [] when not pinned. */
  async endpoints(): Promise<{ key: number; value: number }[]> {
    const r = await sh("bpftool", ["-j", "map", "dump", "pinned", `${this.pinDir}/endpoint_map`]);
    if (r.code !== 0) return [];
    return JSON.parse(r.stdout).map((e: { key: number; value: number }) => ({
      key: e.key,
      value: e.value,
    }));
  }

  /** Host links whose name starts with "veth" and whose master is this bridge. */
  async bridgePorts(): Promise<string[]> {
    const r = await sh("ip", ["-j", "link", "show", "master", this.bridge]);
    if (r.code !== 0 || !r.stdout.trim()) return [];
    return JSON.parse(r.stdout).map((l: { ifname: string }) => l.ifname);
  }

  async cleanup(): Promise<void> {
    for (const n of this.netnses) await sh("ip", ["netns", "del", n]);
    await sh("ip", ["link", "del", this.bridge]);
    try {
      Deno.removeSync(this.pinDir, { recursive: true });
    } catch { /* not created */ }
    Deno.removeSync(this.dir, { recursive: true });
  }
}

/** Runs `fn` with a fresh network and always cleans it up. */
export async function withNetwork<T>(fn: (net: TestNetwork) => Promise<T>): Promise<T> {
  const net = new TestNetwork();
  try {
    return await fn(net);
  } finally {
    await net.cleanup();
  }
}

/** Allow {src,dst} in the network's policy_map with bpftool (observation-side helper). */
export async function allowPair(pinDir: string, src: number, dst: number): Promise<void> {
  const le = (n: number) =>
    [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255].map(String);
  await sh("bpftool", [
    "map",
    "update",
    "pinned",
    `${pinDir}/policy_map`,
    "key",
    ...le(src),
    ...le(dst),
    "value",
    "1",
  ], { check: true });
}

export async function ping(netnsPath: string, ip: string): Promise<boolean> {
  const name = netnsPath.split("/").pop()!;
  const r = await sh("ip", ["netns", "exec", name, "ping", "-c", "1", "-W", "1", ip]);
  return r.code === 0;
}
