// The build scripts find a deno without the bootstrap's pinned one (.deno/bin/deno): the one
// running `deno task`, or deno on PATH; with none they say in one line how to get it. Run in a
// copy of the parts of the checkout that scripts/gen-bpf.sh needs, without .deno/.
import assert from "node:assert/strict";
import { ROOT } from "./_cni.ts";

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A checkout without .deno/: scripts, bpf sources, deno.json; `fn` gets its root. */
async function withBareCheckout(fn: (root: string) => Promise<void>): Promise<void> {
  const root = Deno.makeTempDirSync({ prefix: "ebpfcni-bare-" });
  try {
    const copy = (rel: string) => {
      const from = `${ROOT}/${rel}`;
      if (Deno.statSync(from).isDirectory) {
        Deno.mkdirSync(`${root}/${rel}`, { recursive: true });
        for (const e of Deno.readDirSync(from)) copy(`${rel}/${e.name}`);
      } else {
        Deno.copyFileSync(from, `${root}/${rel}`);
      }
    };
    for (const rel of ["scripts", "bpf", "deno.json", "deno.lock"]) copy(rel);
    Deno.mkdirSync(`${root}/src/datapath`, { recursive: true });
    Deno.mkdirSync(`${root}/src/spec`, { recursive: true });
    Deno.mkdirSync(`${root}/bin`);
    await fn(root);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
}

/** Runs in `root` with only `path`; the module cache is ours (deno task resolves the
 * config's npm imports first, and there may be no network). */
async function run(root: string, cmd: string, args: string[], path: string) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: root,
    clearEnv: true,
    env: { PATH: path, HOME: root, DENO_DIR: Deno.env.get("DENO_DIR") ?? `${root}/cache` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

function generated(root: string): string {
  return Deno.readTextFileSync(`${root}/src/datapath/bpf_object.gen.ts`).split("\n")[0]!;
}

Deno.test("gen-bpf.sh without .deno/ runs with the deno on PATH", async () => {
  await withBareCheckout(async (root) => {
    Deno.symlinkSync(Deno.execPath(), `${root}/bin/deno`);
    const r = await run(root, "bash", ["scripts/gen-bpf.sh"], `${root}/bin:${SYSTEM_PATH}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(generated(root), /Code generated .* DO NOT EDIT/);
  });
});

Deno.test("deno task gen without .deno/ runs with the deno running the task", async () => {
  await withBareCheckout(async (root) => {
    // Not on PATH: only the task knows it.
    const r = await run(root, Deno.execPath(), ["task", "gen"], SYSTEM_PATH);
    assert.equal(r.code, 0, r.stderr);
    assert.match(generated(root), /Code generated .* DO NOT EDIT/);
  });
});

Deno.test("gen-bpf.sh without any deno says in one line how to bootstrap", async () => {
  await withBareCheckout(async (root) => {
    const r = await run(root, "bash", ["scripts/gen-bpf.sh"], SYSTEM_PATH);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      /^gen-bpf\.sh: no deno found: run `bash scripts\/bootstrap\.sh` as root/,
    );
  });
});
