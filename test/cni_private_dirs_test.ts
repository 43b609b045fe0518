// Writes never follow a symlink someone planted (the record's temporary, the lease store's
// and the attachment's lock files), and state or lease directories others could write into
// are refused, saying why, before anything is written in them.
import assert from "node:assert/strict";
import { containerId, type TestNetwork, withNetwork } from "./_cni.ts";

/** A file outside the plugin's directories, and what it holds. */
function outsideFile(net: TestNetwork): { path: string; text: string } {
  const path = `${net.dir}/outside`;
  Deno.writeTextFileSync(path, "not the plugin's");
  return { path, text: "not the plugin's" };
}

Deno.test("ADD does not write through a symlink planted at the record's temporary file", async () => {
  await withNetwork(async (net) => {
    const id = containerId("link-tmp");
    const dir = `${net.stateDir}/${net.name}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const outside = outsideFile(net);
    Deno.symlinkSync(outside.path, `${dir}/${id}_eth0.json.tmp`);

    await net.add(id, await net.netns(), { args: "EBPFCNI_IDENTITY=1001" });
    assert.equal(Deno.readTextFileSync(outside.path), outside.text);
    assert.equal(JSON.parse(Deno.readTextFileSync(`${dir}/${id}_eth0.json`)).containerId, id);
  });
});

for (const target of ["an existing file", "a missing file"] as const) {
  Deno.test(`ADD refuses a lease store lock file that is a symlink to ${target}`, async () => {
    await withNetwork(async (net) => {
      const dir = `${net.dataDir}/${net.name}`;
      Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const outside = target === "an existing file"
        ? outsideFile(net)
        : { path: `${net.dir}/made-through-a-link`, text: undefined };
      Deno.symlinkSync(outside.path, `${dir}/lock`);

      // The node's datapath may be loaded before the store is opened: that stays.
      const attachment = async () => {
        const { pins: _, pinParent: __, ...rest } = await net.snapshot();
        return rest;
      };
      const before = await attachment();
      const r = await net.run({
        command: "ADD",
        containerId: containerId("link-lock"),
        netns: await net.netns(),
        ifname: "eth0",
      });
      assert.equal(r.json?.code, 5, r.stdout + r.stderr);
      assert.match(String(r.json?.msg), /lock file .*: it is a symbolic link/);
      if (outside.text === undefined) {
        assert.throws(() => Deno.lstatSync(outside.path), Deno.errors.NotFound);
      } else {
        assert.equal(Deno.readTextFileSync(outside.path), outside.text);
      }
      assert.deepEqual(await attachment(), before);
    });
  });
}

Deno.test("ADD refuses an attachment lock file that is a symlink", async () => {
  await withNetwork(async (net) => {
    const id = containerId("link-alock");
    const dir = `${net.stateDir}/${net.name}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const missing = `${net.dir}/made-through-a-link`;
    Deno.symlinkSync(missing, `${dir}/${id}_eth0.lock`);

    const r = await net.run({
      command: "ADD",
      containerId: id,
      netns: await net.netns(),
      ifname: "eth0",
    });
    assert.equal(r.json?.code, 5, r.stdout + r.stderr);
    assert.match(String(r.json?.msg), /symlink/);
    assert.throws(() => Deno.lstatSync(missing), Deno.errors.NotFound);
    assert.deepEqual(net.leases(), []);
  });
});

const UNSAFE = [
  { how: "world-writable", mode: 0o777, uid: 0, why: /world-writable \(mode 777\)/ },
  { how: "group-writable", mode: 0o775, uid: 0, why: /group-writable \(mode 775\)/ },
  { how: "owned by another user", mode: 0o755, uid: 65534, why: /owned by uid 65534/ },
] as const;

for (const { how, mode, uid, why } of UNSAFE) {
  for (const which of ["stateDir", "dataDir"] as const) {
    Deno.test(`ADD refuses a ${which} that is ${how} with code 7 saying why, and changes nothing`, async () => {
      await withNetwork(async (net) => {
        const dir = which === "stateDir" ? net.stateDir : net.dataDir;
        Deno.mkdirSync(dir);
        Deno.chmodSync(dir, mode);
        Deno.chownSync(dir, uid, 0);

        const before = await net.snapshot();
        const r = await net.run({
          command: "ADD",
          containerId: containerId("unsafe"),
          netns: await net.netns(),
          ifname: "eth0",
        });
        assert.equal(r.json?.code, 7, r.stdout + r.stderr);
        const msg = String(r.json?.msg);
        assert.ok(msg.startsWith(`Refusing ${which} "${dir}": `), msg);
        assert.match(msg, why);
        assert.match(msg, /owned by root and writable by its owner only/);
        assert.deepEqual(await net.snapshot(), before);
        assert.deepEqual([...Deno.readDirSync(dir)], [], `something was made in ${dir}`);
      });
    });
  }
}

Deno.test("STATUS with a world-writable dataDir exits with code 50 saying why", async () => {
  await withNetwork(async (net) => {
    Deno.mkdirSync(net.dataDir);
    Deno.chmodSync(net.dataDir, 0o777);
    const r = await net.run({ command: "STATUS" });
    assert.equal(r.json?.code, 50, r.stdout + r.stderr);
    assert.match(String(r.json?.msg), /Refusing dataDir .*world-writable/);
  });
});
