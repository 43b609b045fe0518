// Helpers for the robustness suite (test/robust_*_test.ts): observing what a network left on
// the host (state files, host veths, tc attachments, endpoint entries), running the plugin
// with a working directory of our choosing or until a fault point to kill it there, and
// running many plugin processes with bounded concurrency.
import assert from "node:assert/strict";
import {
  BINARY,
  type CniCall,
  type CniReply,
  pluginEnv,
  sh,
  stdinOf,
  type TestNetwork,
  toReply,
  withNetwork,
} from "./_cni.ts";
import { hostVethName } from "../src/net/veth_names.ts";

export { hostVethName };

/** A host-order u32 IPv4 address as dotted quad. */
export function ipText(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** A dotted quad as a host-order u32. */
export function ipNum(text: string): number {
  return text.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/** The bare address of the first IP of an ADD result. */
export function resultIp(json: Record<string, unknown> | undefined): string {
  const ips = json?.ips as { address: string }[] | undefined;
  const address = ips?.[0]?.address;
  assert.ok(address, `no IP in result ${JSON.stringify(json)}`);
  return address.split("/")[0]!;
}

/** endpoint_map of the network as dotted-quad IP -> identity. */
export async function endpointIps(net: TestNetwork): Promise<Map<string, number>> {
  return new Map((await net.endpoints()).map((e) => [ipText(e.key), e.value]));
}

/** Names of the per-attachment state files the plugin keeps for the network. */
export function stateFiles(net: TestNetwork): string[] {
  return net.stateFiles();
}

/** Entry names of a directory, sorted; [] when it does not exist. */
export function listDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** Every path under `dir` (relative, with "/" after directories) and each file's contents. */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of listDir(`${dir}/${rel}`)) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const info = Deno.lstatSync(`${dir}/${path}`);
      if (info.isDirectory) {
        out.push(`${path}/`);
        walk(path);
      } else if (info.isFile) {
        out.push(`${path}: ${JSON.stringify(Deno.readTextFileSync(`${dir}/${path}`))}`);
      } else {
        out.push(path);
      }
    }
  };
  walk("");
  return out;
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns ? ["-n", netns, "link", "show", "dev", name] : ["link", "show", "dev", name];
  return (await sh("ip", args)).code === 0;
}

/** Link names in a network namespace given by path (/var/run/netns/<name>). */
export async function netnsLinks(netnsPath: string): Promise<string[]> {
  const r = await sh("ip", ["-n", netnsPath.split("/").pop()!, "-j", "link", "show"], {
    check: true,
  });
  return JSON.parse(r.stdout).map((l: { ifname: string }) => l.ifname).sort();
}

/** The id of the network's pinned program, undefined when it is not loaded. */
export async function pinnedProgId(net: TestNetwork): Promise<number | undefined> {
  const r = await sh("bpftool", ["-j", "prog", "show", "pinned", `${net.pinDir}/tc_prog`]);
  return r.code === 0 ? JSON.parse(r.stdout).id : undefined;
}

/** tc attachments in the root namespace as "devname prog-id". */
export async function tcAttachments(): Promise<{ devname: string; id: number }[]> {
  const r = await sh("bpftool", ["-j", "net", "show"], { check: true });
  const all = JSON.parse(r.stdout) as { tc?: { devname: string; id: number }[] }[];
  return all.flatMap((s) => s.tc ?? []).map((t) => ({ devname: t.devname, id: t.id }));
}

/** Host links (root namespace) as names, "@peer" suffixes dropped. */
export async function hostLinks(): Promise<string[]> {
  const r = await sh("ip", ["-br", "link"], { check: true });
  return r.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]!.replace(/@.*$/, "")).sort();
}

export async function netnsList(): Promise<string[]> {
  const r = await sh("ip", ["netns", "list"], { check: true });
  return r.stdout.trim().split("\n").filter((l) => l).map((l) => l.split(" ")[0]!).sort();
}

/** A CNI call whose stdin may also be raw bytes (for invalid UTF-8). */
export type RawCniCall = Omit<CniCall, "config"> & {
  config?: Record<string, unknown> | string | Uint8Array;
};

function spawn(call: RawCniCall, cwd: string, defaults?: Record<string, unknown>) {
  const p = new Deno.Command(BINARY, {
    env: pluginEnv(call),
    clearEnv: true,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  const written = w.write(stdinOf(call, defaults)).then(() => w.close()).catch(
    () => {/* the plugin may exit before reading all of stdin */},
  );
  return { p, written };
}

/** runPlugin, but in working directory `cwd` (where relative paths would land) and with
 * raw-byte stdin allowed. */
export async function runPluginIn(
  cwd: string,
  call: RawCniCall,
  defaults?: Record<string, unknown>,
): Promise<CniReply> {
  const { p, written } = spawn(call, cwd, defaults);
  const out = await p.output();
  await written;
  return toReply(out);
}

/** Starts an ADD that stops at fault point `point`, waits until it is there, and kills it
 * with SIGKILL (the launcher execs deno, so the child's pid is the plugin's). */
export async function addAndKillAt(
  net: TestNetwork,
  call: CniCall,
  point: string,
): Promise<void> {
  const marker = `${net.dir}/marker-${point}-${crypto.randomUUID()}`;
  const { p, written } = spawn(
    {
      ...call,
      command: "ADD",
      env: { ...call.env, EBPFCNI_FAULT: `hang:${point}`, EBPFCNI_FAULT_MARKER: marker },
    },
    net.dir,
    net.config(),
  );
  let exited = false;
  const status = p.status.then((s) => {
    exited = true;
    return s;
  });
  // Not a timing assertion: only a bound so a plugin that never gets there fails the test
  // instead of hanging the suite.
  const deadline = Date.now() + 60_000;
  while (!exists(marker) && !exited && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const reached = exists(marker);
  if (!exited) p.kill("SIGKILL");
  const out = await p.output();
  await written;
  await status;
  if (reached) Deno.removeSync(marker);
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(reached, `ADD never reached ${point} (exit ${out.code}): ${text}`);
  assert.equal(out.signal, "SIGKILL", `ADD was not killed at ${point}: ${text}`);
}

/** A plugin call started and not awaited: `kill()` it as a runtime's timeout would; `reply`
 * settles when it exits. `bound` (not a timing assertion) kills a call that never ends, so a
 * hang fails the test instead of hanging the suite: `killed` says it came to that. */
export function startPlugin(
  call: RawCniCall,
  defaults: Record<string, unknown>,
  opts: { bound?: number; cwd?: string; wrap?: string[] } = {},
): { kill(): void; killed(): boolean; reply: Promise<CniReply> } {
  const { p, written } = opts.wrap === undefined
    ? spawn(call, opts.cwd ?? Deno.cwd(), defaults)
    : spawnWrapped(opts.wrap, call, defaults);
  let exited = false;
  let killed = false;
  const kill = () => {
    if (exited) return;
    killed = true;
    p.kill("SIGKILL");
  };
  const timer = setTimeout(kill, opts.bound ?? 120_000);
  const reply = (async () => {
    const out = await p.output();
    exited = true;
    clearTimeout(timer);
    await written;
    return toReply(out);
  })();
  return { kill, killed: () => killed, reply };
}

/** The plugin run by `wrap` (e.g. ip netns exec NAME), which execs it. */
function spawnWrapped(wrap: string[], call: RawCniCall, defaults?: Record<string, unknown>) {
  const p = new Deno.Command(wrap[0]!, {
    args: [...wrap.slice(1), BINARY],
    env: pluginEnv(call),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  const written = w.write(stdinOf(call, defaults)).then(() => w.close()).catch(() => {});
  return { p, written };
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order of results. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** withNetwork, then (when `fn` succeeded) a check that the cleanup left nothing of the
 * network behind: its netns, bridge, pin dir and directory (leases, state) are all gone. */
export async function withCheckedNetwork<T>(fn: (net: TestNetwork) => Promise<T>): Promise<T> {
  let net: TestNetwork | undefined;
  const out = await withNetwork((n) => {
    net = n;
    return fn(n);
  });
  const left: string[] = [];
  const netnses = await netnsList();
  for (const ns of net!.netnses) if (netnses.includes(ns)) left.push(`netns ${ns}`);
  if (await linkExists(net!.bridge)) left.push(`bridge ${net!.bridge}`);
  if (exists(net!.pinDir)) left.push(`pin dir ${net!.pinDir}`);
  if (exists(net!.dir)) left.push(`directory ${net!.dir}`);
  assert.deepEqual(left, [], "left behind");
  return out;
}
