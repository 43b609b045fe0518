// Entry point of the ebpfcni binary: a CNI plugin when CNI_COMMAND is set (run by a
// container runtime), the operator's CLI otherwise.
import { readStdinSync } from "./stdin.ts";
import { decodeNetConf, type Obj } from "./spec/json.ts";

// Each mode is imported only when used: the CLI pulls in node:util, whose compatibility
// layer would cost every CNI call several milliseconds.

if (import.meta.main) {
  const env = Deno.env.toObject();
  let code: number;
  if (env.CNI_COMMAND !== undefined) {
    let stdin: Uint8Array | undefined;
    const io = {
      env,
      stdin: () => (stdin ??= readStdinSync()),
      stdout: (s: string) => {
        const bytes = new TextEncoder().encode(s);
        for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
      },
    };
    // Kubernetes mode hands ADD and CHECK to the warm agent when it is there; the config is
    // decoded once here and passed on. A config in identity mode loads nothing more.
    let config: Obj | undefined;
    if (env.CNI_COMMAND === "ADD" || env.CNI_COMMAND === "CHECK") {
      try {
        config = decodeNetConf(io.stdin());
      } catch {
        // not a JSON object: the in-process run reports it with the spec's error
      }
    }
    let handed: number | undefined;
    if (config?.policyMode === "kubernetes") {
      const { runHandoff } = await import("./cni/handoff.ts");
      handed = await runHandoff({ ...io, config });
    }
    if (handed !== undefined) code = handed;
    else {
      const { runCni } = await import("./cni/dispatch.ts");
      code = await runCni({
        ...io,
        stdin: () => Promise.resolve(io.stdin()),
        ...(config === undefined ? {} : { config }),
      });
    }
  } else {
    const { runCli } = await import("./cli/mod.ts");
    code = await runCli(Deno.args, env);
  }
  Deno.exit(code);
}
