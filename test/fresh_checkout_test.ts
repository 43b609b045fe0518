// A checkout that was never built (no dist/, no src/datapath/bpf_object.gen.ts, no clang or
// bpftool on PATH) type-checks and runs its unit tests: the datapath's contract is the
// committed src/spec/bpf_abi.gen.ts, and only src/datapath/object.ts asks for the object.
import assert from "node:assert/strict";
import { ROOT } from "./_cni.ts";

const TRACKED = ["src", "ffi", "scripts", "test", "bench", "deno.json", "deno.lock"];
/** Build output that git ignores. */
const UNTRACKED = ["src/datapath/bpf_object.gen.ts"];

/** A copy of the checkout's sources as a fresh clone has them; `fn` gets its root. */
async function withFreshCheckout(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "ebpfcni-fresh-" });
  try {
    const copy = (rel: string) => {
      if (UNTRACKED.includes(rel)) return;
      const from = `${ROOT}/${rel}`;
      if (Deno.statSync(from).isDirectory) {
        Deno.mkdirSync(`${root}/${rel}`, { recursive: true });
        for (const e of Deno.readDirSync(from)) copy(`${rel}/${e.name}`);
      } else {
        Deno.copyFileSync(from, `${root}/${rel}`);
      }
    };
    TRACKED.forEach(copy);
    Deno.mkdirSync(`${root}/bin`);
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("a checkout never built type-checks and passes its unit tests without clang or the object", async () => {
  await withFreshCheckout(async (root) => {
    const env = {
      // An empty PATH: no clang, no bpftool. The module cache is ours (no network).
      PATH: `${root}/bin`,
      HOME: root,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${ROOT}/.deno/cache`,
      NO_COLOR: "1",
    };
    const deno = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["--quiet", ...args],
        cwd: root,
        clearEnv: true,
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (b: Uint8Array) => new TextDecoder().decode(b);
      return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
    };
    const check = await deno(["check", "src/", "ffi/", "scripts/", "test/", "bench/"]);
    assert.equal(check.code, 0, check.stderr);
    const unit = await deno(["test", "src/"]);
    assert.equal(unit.code, 0, unit.stdout + unit.stderr);
    assert.match(unit.stdout, /ok \| \d+ passed \| 0 failed/);
  });
});
