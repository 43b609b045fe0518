// Running host commands for the kernel matrix: output as text, failures as errors that say
// which command failed and what it printed.

const decoder = new TextDecoder();

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
}

export async function tryExec(
  cmd: string,
  args: string[],
  opts: ExecOptions = {},
): Promise<Output> {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

export async function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await tryExec(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}

/** Absolute path of `name` on PATH or in the sbin directories (root's tools live there). */
export function which(name: string): string | undefined {
  if (name.includes("/")) return name;
  const dirs = [
    ...(Deno.env.get("PATH") ?? "").split(":"),
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
  ];
  for (const d of dirs.filter(Boolean)) {
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111)) return `${d}/${name}`;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export function log(msg: string): void {
  console.error(`kernel-matrix: ${msg}`);
}

/** Children that must not outlive us; each runs under coreutils timeout, which passes a
 * SIGTERM on to its process group and enforces its own deadline if we die first. */
export const live = new Set<Deno.ChildProcess>();

/** Stops every child still running (for signal handlers). */
export function killAll(): void {
  for (const c of live) {
    try {
      c.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
}
