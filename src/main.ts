// Entry point of the ebpfcni binary: a CNI plugin when CNI_COMMAND is set (run by a
// container runtime), the operator's CLI otherwise.
import { readStdinSync } from "./stdin.ts";

// Each mode is imported only when used: the CLI pulls in node:util, whose compatibility
// layer would cost every CNI call several milliseconds.

if (import.meta.main) {
  const env = Deno.env.toObject();
  let code: number;
  if (env.CNI_COMMAND !== undefined) {
    const { runCni } = await import("./cni/dispatch.ts");
    code = await runCni({
      env,
      stdin: () => Promise.resolve(readStdinSync()),
      stdout: (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s)),
    });
  } else {
    const { runCli } = await import("./cli/mod.ts");
    code = await runCli(Deno.args, env);
  }
  Deno.exit(code);
}
