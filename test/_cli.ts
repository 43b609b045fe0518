// Shared helpers for the CLI tests: they drive the built binary (dist/ebpfcni, made by
// scripts/build.sh) as an operator would, against maps pinned in a throwaway pin directory.
import assert from "node:assert/strict";
import { exists, randomHex, type RunResult } from "./_kernel.ts";

export const BIN = new URL("../dist/ebpfcni", import.meta.url).pathname;

const decoder = new TextDecoder();

/** Runs `ebpfcni args...`, with `stdin` piped in when given; never throws for an exit code. */
export async function ebpfcni(
  args: string[],
  stdin?: string | Uint8Array,
  env: Record<string, string> = {},
): Promise<RunResult> {
  if (!exists(BIN)) throw new Error(`${BIN} is missing: run "bash scripts/build.sh" first`);
  const child = new Deno.Command(BIN, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    // The pin directory always comes from --pin-dir unless a test sets it on purpose.
    env: { EBPFCNI_PIN_DIR: "", ...env },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Runs a command that must succeed and returns its stdout. */
export async function ok(args: string[], stdin?: string): Promise<string> {
  const r = await ebpfcni(args, stdin);
  assert.equal(r.code, 0, `ebpfcni ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A fresh pin directory name on bpffs that does not exist yet; removed afterwards. */
export async function withEmptyPinDir<T>(fn: (pinDir: string) => Promise<T>): Promise<T> {
  const pinDir = `/sys/fs/bpf/ebpfcni-test-${randomHex()}`;
  try {
    return await fn(pinDir);
  } finally {
    if (exists(pinDir)) Deno.removeSync(pinDir, { recursive: true });
  }
}

/** A fresh pin directory with the datapath loaded and pinned by `ebpfcni status --init`. */
export function withMaps<T>(fn: (pinDir: string) => Promise<T>): Promise<T> {
  return withEmptyPinDir(async (pinDir) => {
    await ok(["status", "--init", "--pin-dir", pinDir]);
    return await fn(pinDir);
  });
}

export interface EndpointRecord {
  ip: string;
  identity: number;
}
export interface PolicyRecord {
  src: number;
  dst: number;
}

export async function endpoints(pinDir: string): Promise<EndpointRecord[]> {
  return JSON.parse(await ok(["endpoint", "list", "--json", "--pin-dir", pinDir]));
}

export async function policies(pinDir: string): Promise<PolicyRecord[]> {
  return JSON.parse(await ok(["policy", "list", "--json", "--pin-dir", pinDir]));
}

/** Both maps as list --json prints them, to show a failed command changed nothing. */
export async function snapshot(pinDir: string): Promise<string> {
  const [e, p] = await Promise.all([
    ok(["endpoint", "list", "--json", "--pin-dir", pinDir]),
    ok(["policy", "list", "--json", "--pin-dir", pinDir]),
  ]);
  return e + p;
}

/** Asserts a failed command: its exit code, and one stderr line matching `message`. */
export function assertFails(r: RunResult, code: number, message: RegExp | string): void {
  assert.equal(r.code, code, `exit ${r.code}, stderr: ${r.stderr}`);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `expected one stderr line, got: ${r.stderr}`);
  const line = lines[0] ?? "";
  if (typeof message === "string") assert.equal(line, `ebpfcni: ${message}`);
  else assert.match(line, message);
}

/** Writes `data` as JSON to a temporary file for an import; the caller removes it. */
export async function jsonFile(data: unknown): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "ebpfcni-cli-", suffix: ".json" });
  await Deno.writeTextFile(path, typeof data === "string" ? data : JSON.stringify(data));
  return path;
}
