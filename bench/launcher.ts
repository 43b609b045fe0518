// Running other scripts exactly the way dist/ebpfcni runs its entry point: same deno, same
// DENO_DIR, same flags. While dist/ebpfcni is the launcher script that scripts/build.sh
// writes (running src/main.ts or its bundle), its text is copied with the entry script
// replaced, so the copy pays the same /bin/sh exec and deno start-up. For a compiled binary
// the flags of scripts/build.sh are used (that floor then only approximates the binary's).
import { BINARY, ROOT, run } from "./lib.ts";

export interface Launcher {
  /** "launcher" when dist/ebpfcni is a shell launcher, "compiled" otherwise. */
  kind: "launcher" | "compiled";
  /** The script the launcher runs (undefined for a compiled binary). */
  entry?: string;
  /** The `deno run ...` line used, for the report. */
  commandLine: string;
  /** Writes an executable that runs `script` like dist/ebpfcni runs its entry. */
  make(script: string, outDir: string, name: string): string;
}

export function readLauncher(): Launcher {
  const bytes = Deno.readFileSync(BINARY);
  const head = new TextDecoder().decode(bytes.subarray(0, 4096));
  // The launcher's last line ends with: "<entry script>" "$@"
  const entry = head.startsWith("#!") ? /"([^"]+)" "\$@"\s*$/.exec(head)?.[1] : undefined;
  if (entry !== undefined) {
    const full = new TextDecoder().decode(bytes);
    const execLine = full.split("\n").filter((l) => !l.startsWith("#")).join("\n").trim();
    return {
      kind: "launcher",
      entry,
      commandLine: execLine.replace(/\\\n\s*/g, ""),
      make(script, outDir, name) {
        const path = `${outDir}/${name}`;
        Deno.writeTextFileSync(path, full.replaceAll(`"${entry}"`, `"${script}"`));
        Deno.chmodSync(path, 0o755);
        return path;
      },
    };
  }
  const deno = `${ROOT}/.deno/bin/deno`;
  const denoDir = Deno.env.get("DENO_DIR") ?? `${ROOT}/.deno/cache`;
  const flags = "--quiet --no-prompt --cached-only --no-config --allow-all --v8-flags=--no-lazy";
  return {
    kind: "compiled",
    commandLine: `DENO_DIR=${denoDir} ${deno} run ${flags} <script>`,
    make(script, outDir, name) {
      const path = `${outDir}/${name}`;
      Deno.writeTextFileSync(
        path,
        `#!/bin/sh\nDENO_DIR="${denoDir}" exec "${deno}" run ${flags} "${script}" "$@"\n`,
      );
      Deno.chmodSync(path, 0o755);
      return path;
    },
  };
}

/** Runs the launcher-made executable once so the module cache has the script. */
export async function warm(path: string, args: string[] = []): Promise<void> {
  await run(path, args, { timeoutMs: 60_000 });
}
