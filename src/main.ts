// Entry point of the ebpfcni binary: a CNI plugin when CNI_COMMAND is set (run by a
// container runtime), the operator's CLI otherwise.
// Each mode is imported only when used: the CLI pulls in node:util, whose compatibility
// layer would cost every CNI call several milliseconds.

async function readStdin(): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of Deno.stdin.readable) {
    chunks.push(c);
    total += c.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

if (import.meta.main) {
  const env = Deno.env.toObject();
  let code: number;
  if (env.CNI_COMMAND !== undefined) {
    const { runCni } = await import("./cni/dispatch.ts");
    code = await runCni({
      env,
      stdin: readStdin,
      stdout: (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s)),
    });
  } else {
    const { runCli } = await import("./cli/mod.ts");
    code = await runCli(Deno.args, env);
  }
  Deno.exit(code);
}
