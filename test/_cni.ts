// Test harness for driving dist/ebpfcni exactly as a container runtime does: env vars and
// a JSON config on stdin. Every network gets random names (bridge, subnet, pin, state and
// lease directories) and is removed in `cleanup()`, so tests can run twice and in parallel.
import { fileURLToPath } from "node:url";
import { hostVethName } from "../src/net/veth_names.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
export const BINARY = Deno.env.get("EBPFCNI_BINARY") ?? `${ROOT}/dist/ebpfcni`;
/** The reference host-local IPAM plugin (containernetworking/plugins). */
export const HOST_LOCAL = "/usr/lib/cni/host-local";

export function rand(n = 6): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => (b % 36).toString(36)).join(
    "",
  );
}

/** A container ID unique on this host: host veth names derive from it, and other tests (and
 * other test files running at the same time) must not derive the same name. */
export function containerId(prefix = "c"): string {
  return `${prefix}-${rand(8)}`;
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

export function runPlugin(
  call: CniCall,
  defaults?: Record<string, unknown>,
): Promise<CniReply> {
  return runBinary(BINARY, call, defaults);
}

/** Runs any CNI plugin binary the way runPlugin runs ours. */
export async function runBinary(
  binary: string,
  call: CniCall,
  defaults?: Record<string, unknown>,
): Promise<CniReply> {
  const env = pluginEnv(call);
  const stdin = stdinOf(call, defaults);
  const p = new Deno.Command(binary, {
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(stdin);
  await w.close();
  return toReply(await p.output());
}

/** The environment a runtime gives the plugin for `call` (env entries set to undefined are
 * removed). */
export function pluginEnv(
  call: Pick<CniCall, "command" | "containerId" | "netns" | "ifname" | "args" | "env">,
): Record<string, string> {
  const env: Record<string, string> = { CNI_COMMAND: call.command, CNI_PATH: "/usr/lib/cni" };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  for (const [k, v] of Object.entries(call.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** The stdin for `call`: its config (object, text or raw bytes), else `defaults`. */
export function stdinOf(
  call: { config?: Record<string, unknown> | string | Uint8Array },
  defaults?: Record<string, unknown>,
): Uint8Array<ArrayBuffer> {
  const config = call.config ?? defaults ?? {};
  if (config instanceof Uint8Array) return Uint8Array.from(config);
  return new TextEncoder().encode(typeof config === "string" ? config : JSON.stringify(config));
}

/** A finished plugin process as a CniReply (stdout parsed as JSON when it is). */
export function toReply(out: Deno.CommandOutput): CniReply {
  const stdout = new TextDecoder().decode(out.stdout);
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: out.code, stdout, stderr: new TextDecoder().decode(out.stderr), json };
}

interface LinkAddr {
  local: string;
  prefixlen: number;
}

/** What `TestNetwork.snapshot()` records; equal snapshots mean the host was not changed. */
export interface HostSnapshot {
  links: string[];
  /** Which of the lease and state directories exist. */
  dirs: string[];
  leases: string[];
  state: string[];
  pins: string[];
  pinParent: string[];
  endpoints: Record<string, number>;
}

/** A bpftool map key/value: a number (with BTF) or hex bytes, little-endian (without). */
function u32Of(v: unknown): number {
  if (typeof v === "number") return v;
  if (Array.isArray(v)) {
    return v.slice(0, 4).reduce((n: number, b, i) => n + parseInt(String(b), 16) * 256 ** i, 0);
  }
  throw new Error(`unexpected bpftool value ${JSON.stringify(v)}`);
}

/** A host-order u32 IPv4 address as dotted quad. */
export function ipText(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
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

  /** endpoint_map entries as {key, value} from bpftool, [] when not pinned. Without BTF,
   * bpftool prints keys and values as hex byte arrays; they are decoded (little-endian u32). */
  async endpoints(): Promise<{ key: number; value: number }[]> {
    const r = await sh("bpftool", ["-j", "map", "dump", "pinned", `${this.pinDir}/endpoint_map`]);
    if (r.code !== 0) return [];
    return JSON.parse(r.stdout).map((e: { key: unknown; value: unknown }) => ({
      key: u32Of(e.key),
      value: u32Of(e.value),
    }));
  }

  /** endpoint_map as dotted-quad IP → identity, sorted by IP text. */
  async endpointIps(): Promise<Record<string, number>> {
    const out: [string, number][] = (await this.endpoints()).map((e) => [ipText(e.key), e.value]);
    return Object.fromEntries(out.sort(([a], [b]) => a.localeCompare(b)));
  }

  /** The host-side veth name the plugin derives for an attachment. */
  hostVeth(containerId: string, ifname = "eth0"): string {
    return hostVethName(containerId, ifname);
  }

  /** Per-attachment state files the plugin keeps for this network (names only). */
  stateFiles(): string[] {
    try {
      // Lock files (<id>_<ifname>.lock) live beside the records as long as the attachment.
      return [...Deno.readDirSync(`${this.stateDir}/${this.name}`)].map((e) => e.name)
        .filter((n) => !n.endsWith(".lock")).sort();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /** The attachments' lock files in the state directory. */
  lockFiles(): string[] {
    try {
      return [...Deno.readDirSync(`${this.stateDir}/${this.name}`)].map((e) => e.name)
        .filter((n) => n.endsWith(".lock")).sort();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /** ADD with the network's config; throws with the plugin's output unless it succeeds. */
  async add(
    containerId: string,
    netns: string,
    opts: Partial<CniCall> = {},
  ): Promise<Record<string, unknown>> {
    const r = await this.run({ command: "ADD", containerId, netns, ifname: "eth0", ...opts });
    if (r.code !== 0 || !r.json) {
      throw new Error(`ADD ${containerId} failed (${r.code}): ${r.stdout}${r.stderr}`);
    }
    return r.json;
  }

  /** CHECK of an attachment on eth0 against the result its ADD returned. */
  check(
    containerId: string,
    netns: string,
    prevResult: Record<string, unknown>,
  ): Promise<CniReply> {
    return this.run({
      command: "CHECK",
      containerId,
      netns,
      ifname: "eth0",
      config: this.config({ prevResult }),
    });
  }

  /** Runs the reference host-local IPAM binary on this network's ipam section (same name and
   * dataDir), as version 1.0.0, the newest it speaks. */
  hostLocal(command: string, containerId: string, ifname = "eth0"): Promise<CniReply> {
    return runBinary(HOST_LOCAL, {
      command,
      containerId,
      ifname,
      netns: "/proc/self/ns/net", // host-local never enters it, but skel requires it
    }, this.config({}, {}, "1.0.0"));
  }

  /** What a CNI command can change on the host for this network: the bridge and the host veth
   * of `containerIds`, links in `netnses`, the lease and state directories, leases, state
   * files, the pin dir and endpoint_map.
   * Other links on the host are not ours (other tests run at the same time), and every link
   * the plugin makes has one of these derived names. */
  async snapshot(containerIds: string[] = [], netnses: string[] = []): Promise<HostSnapshot> {
    // Name, master, admin state (not operstate: carrier comes up asynchronously) and IPv4
    // addresses (IPv6 link-local ones appear asynchronously too).
    const describe = async (pre: string[], prefix: string, name?: string): Promise<string[]> => {
      const dev = name === undefined ? [] : ["dev", name];
      const l = await sh("ip", [...pre, "-j", "link", "show", ...dev]);
      if (l.code !== 0) return [];
      const a = await sh("ip", [...pre, "-j", "-4", "addr", "show", ...dev], { check: true });
      const v4 = new Map<string, string[]>(
        (JSON.parse(a.stdout || "[]") as { ifname: string; addr_info: LinkAddr[] }[])
          .map((i) => [i.ifname, i.addr_info.map((x) => `${x.local}/${x.prefixlen}`)]),
      );
      return (JSON.parse(l.stdout) as { ifname: string; flags: string[]; master?: string }[])
        .map((i) =>
          `${prefix}${i.ifname} master=${i.master ?? "-"} ${
            i.flags.includes("UP") ? "up" : "down"
          } ${(v4.get(i.ifname) ?? []).join(",")}`.trim()
        );
    };
    const links: string[] = [];
    for (const name of [this.bridge, ...containerIds.map((c) => this.hostVeth(c))]) {
      links.push(...await describe([], "", name));
    }
    // The classifier on each host veth.
    for (const name of containerIds.map((c) => this.hostVeth(c))) {
      const f = await sh("tc", ["filter", "show", "dev", name, "ingress"]);
      const m = f.stdout.match(/handle (\S+) .*?\bid (\d+)/);
      if (f.code === 0) {
        links.push(`${name} ingress: ${m ? `handle ${m[1]} prog ${m[2]}` : "none"}`);
      }
    }
    for (const ns of netnses) {
      links.push(...await describe(["-n", ns.split("/").pop()!], `${ns}: `));
    }
    let pins: string[] = [];
    try {
      pins = [...Deno.readDirSync(this.pinDir)].map((e) => e.name).sort();
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      pins = ["<no pin dir>"];
    }
    const base = this.pinDir.split("/").pop()!;
    const pinParent = [...Deno.readDirSync(this.pinDir.replace(/\/[^/]+$/, ""))]
      .map((e) => e.name).filter((n) => n.startsWith(base)).sort();
    const dirs = [this.dataDir, `${this.dataDir}/${this.name}`, this.stateDir].flatMap((d) => {
      try {
        return Deno.statSync(d).isDirectory ? [d] : [];
      } catch {
        return [];
      }
    });
    return {
      links,
      dirs,
      leases: this.leases(),
      state: this.stateFiles(),
      pins,
      pinParent,
      endpoints: await this.endpointIps(),
    };
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

/** Whether a link called `name` exists on the host (or in the named netns). */
export { linkExists } from "./_kernel.ts";

/** Ping that may succeed on any of `tries` attempts (the first can be lost to ARP resolution on
 * a loaded host); for asserting reachability. Use `ping` to assert unreachability. */
export async function pingEventually(netnsPath: string, ip: string, tries = 3): Promise<boolean> {
  for (let i = 0; i < tries; i++) if (await ping(netnsPath, ip)) return true;
  return false;
}
