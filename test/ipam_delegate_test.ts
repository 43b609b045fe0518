// IPAM delegation, using small shell-script plugins in a temp CNI_PATH.

import assert from "node:assert/strict";
import { CniError } from "../src/spec/cni.ts";
import { delegateAdd, delegateCommand, findPlugin, parseIpamResult } from "../src/ipam/delegate.ts";

async function withPlugins(
  plugins: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ipam-delegate-" });
  try {
    for (const [name, body] of Object.entries(plugins)) {
      await Deno.writeTextFile(`${dir}/${name}`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const enc = (s: string) => new TextEncoder().encode(s);

function cniError(code: number, message: string | RegExp, details?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${err}`);
    assert.equal(err.code, code);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    if (details !== undefined) assert.equal(err.details, details);
    return true;
  };
}

Deno.test("findPlugin() takes the first CNI_PATH directory that has the plugin", async () => {
  await withPlugins({ fake: "exit 0" }, async (dir) => {
    assert.equal(await findPlugin("fake", `/nonexistent::${dir}/`), `${dir}/fake`);
  });
});

Deno.test("findPlugin() fails with code 7 listing the searched path", async () => {
  await assert.rejects(
    findPlugin("nope", "/nonexistent/a:/nonexistent/b"),
    cniError(7, `Failed to find plugin "nope" in path [/nonexistent/a /nonexistent/b]`),
  );
  await assert.rejects(findPlugin("../x", "/bin"), cniError(7, `Invalid plugin name "../x"`));
});

Deno.test("delegateAdd() passes stdin and CNI_COMMAND=ADD and normalises a 0.4.0 result", async () => {
  const script = `
cat > "$(dirname "$0")/stdin"
printf '%s\\n%s' "$CNI_COMMAND" "$CNI_CONTAINERID" > "$(dirname "$0")/env"
cat <<'EOF'
{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.9.0.5/24","gateway":"10.9.0.1"}],
 "routes":[{"dst":"0.0.0.0/0","gw":"10.9.0.1"}],"dns":{"nameservers":["10.9.0.53"]}}
EOF`;
  await withPlugins({ fake: script }, async (dir) => {
    const config = `{"cniVersion":"0.4.0","name":"n","ipam":{"type":"fake"}}`;
    const result = await delegateAdd("fake", enc(config), {
      CNI_PATH: dir,
      CNI_COMMAND: "CHECK", // the caller's command must not leak into the delegation
      CNI_CONTAINERID: "ctr1",
    });
    assert.deepEqual(result, {
      ips: [{ address: "10.9.0.5/24", gateway: "10.9.0.1" }],
      routes: [{ dst: "0.0.0.0/0", gw: "10.9.0.1" }],
      dns: { nameservers: ["10.9.0.53"] },
    });
    assert.equal(await Deno.readTextFile(`${dir}/stdin`), config);
    assert.equal(await Deno.readTextFile(`${dir}/env`), "ADD\nctr1");
  });
});

Deno.test("parseIpamResult() accepts 1.x and 0.2.0 result shapes", () => {
  assert.deepEqual(
    parseIpamResult({ cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24" }], dns: {} }, "x"),
    { ips: [{ address: "10.0.0.2/24" }], routes: [] },
  );
  assert.deepEqual(
    parseIpamResult({
      cniVersion: "0.2.0",
      ip4: { ip: "10.0.0.2/24", gateway: "10.0.0.1", routes: [{ dst: "0.0.0.0/0" }] },
    }, "x"),
    { ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }], routes: [{ dst: "0.0.0.0/0" }] },
  );
  assert.throws(
    () => parseIpamResult({ ips: [{ address: 5 }] }, "x"),
    cniError(6, `Cannot decode the result of IPAM plugin "x": ips[0].address must be a string`),
  );
});

Deno.test("delegateAdd() rethrows the plugin's error JSON with its code, msg and details", async () => {
  const script =
    `echo '{"cniVersion":"1.0.0","code":11,"msg":"try later","details":"busy"}'; exit 1`;
  await withPlugins({ fake: script }, async (dir) => {
    await assert.rejects(
      delegateAdd("fake", enc("{}"), { CNI_PATH: dir }),
      cniError(11, "try later", "busy"),
    );
  });
});

Deno.test("delegateCommand() reports stderr when a failing plugin prints no error JSON", async () => {
  await withPlugins({ fake: "echo boom >&2; exit 3" }, async (dir) => {
    await assert.rejects(
      delegateCommand("fake", "DEL", enc("{}"), { CNI_PATH: dir }),
      cniError(999, `IPAM plugin "fake" failed (exit status 3): boom`),
    );
  });
});

Deno.test("delegateAdd() fails with code 4 without CNI_PATH", async () => {
  await assert.rejects(delegateAdd("fake", enc("{}"), {}), cniError(4, /CNI_PATH is not set/));
});

Deno.test("delegateAdd() runs the reference static IPAM plugin", {
  ignore: !existsSync("/usr/lib/cni/static"),
}, async () => {
  const config = JSON.stringify({
    cniVersion: "1.0.0",
    name: "static-net",
    ipam: {
      type: "static",
      addresses: [{ address: "10.77.0.9/24", gateway: "10.77.0.1" }],
      routes: [{ dst: "0.0.0.0/0" }],
    },
  });
  const result = await delegateAdd("static", enc(config), {
    CNI_PATH: "/usr/lib/cni",
    CNI_CONTAINERID: "c1",
    CNI_NETNS: "/proc/self/ns/net",
    CNI_IFNAME: "eth0",
  });
  assert.deepEqual(result, {
    ips: [{ address: "10.77.0.9/24", gateway: "10.77.0.1" }],
    routes: [{ dst: "0.0.0.0/0" }],
  });
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
