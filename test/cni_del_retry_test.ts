// A DEL that dies after releasing its lease but before removing its record is retried (by the
// runtime) or finished by GC later. By then the address may be another pod's, with the same
// identity even: the retry must remove only what the lease store still gives the attachment.
import assert from "node:assert/strict";
import { containerId, HOST_LOCAL, linkExists, type TestNetwork, withNetwork } from "./_cni.ts";
import { resultIp } from "./_robust.ts";

const IDENTITY = 1001;

const CASES = [
  { finish: "the retried DEL", delegated: false },
  { finish: "GC", delegated: false },
  { finish: "the retried DEL", delegated: true },
] as const;

/** The network's config, its IPAM delegated to the reference host-local under another name
 * (so that it is not the built-in store, whose leases DEL can read) when `delegated`. */
function configOf(net: TestNetwork, delegated: boolean, extra: Record<string, unknown> = {}) {
  if (!delegated) return net.config(extra);
  const dir = `${net.dir}/plugins`;
  try {
    Deno.mkdirSync(dir);
    Deno.symlinkSync(HOST_LOCAL, `${dir}/delegated-host-local`);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  return net.config(
    extra,
    { type: "delegated-host-local", dataDir: `${net.dir}/delegated` },
    "1.0.0", // the newest host-local speaks
  );
}

for (const { finish, delegated } of CASES) {
  const how = delegated ? " (delegated IPAM)" : "";
  Deno.test(`${finish} after a DEL that died after the release leaves the address's new pod registered${how}`, async () => {
    await withNetwork(async (net) => {
      const env = delegated ? { CNI_PATH: `${net.dir}/plugins:/usr/lib/cni` } : {};
      const config = configOf(net, delegated);
      // host-local (delegated) refuses CNI_ARGS keys it does not know, as libcni does.
      const args = (more: string) => `IgnoreUnknown=1;EBPFCNI_IDENTITY=${IDENTITY}${more}`;
      const old = containerId("retry-old");
      const oldNs = await net.netns();
      const ip = resultIp(await net.add(old, oldNs, { args: args(""), env, config }));

      const died = await net.run({
        command: "DEL",
        containerId: old,
        netns: oldNs,
        ifname: "eth0",
        env: { ...env, EBPFCNI_FAULT: "fail:del-after-release" },
        config,
      });
      assert.notEqual(died.code, 0, `the DEL did not stop at the fault point: ${died.stdout}`);
      if (!delegated) assert.deepEqual(net.leases(), [], "the lease was not released");
      assert.ok(net.stateFiles().includes(`${old}_eth0.json`), "the record went with the lease");

      // The address goes to a new pod with the same identity.
      const next = containerId("retry-new");
      const nextNs = await net.netns();
      const added = await net.add(next, nextNs, { args: args(`;IP=${ip}`), env, config });
      assert.equal(resultIp(added), ip);
      assert.deepEqual(await net.endpointIps(), { [ip]: IDENTITY });

      const r = finish === "GC"
        ? await net.run({
          command: "GC",
          env,
          config: configOf(net, delegated, {
            "cni.dev/valid-attachments": [{ containerID: next, ifname: "eth0" }],
          }),
        })
        : await net.run({
          command: "DEL",
          containerId: old,
          netns: oldNs,
          ifname: "eth0",
          env,
          config,
        });
      assert.equal(r.code, 0, r.stdout + r.stderr);

      assert.deepEqual(await net.endpointIps(), { [ip]: IDENTITY }, "the new pod's entry went");
      if (!delegated) assert.deepEqual(net.leases(), [ip]);
      assert.deepEqual(net.stateFiles().filter((f) => f.endsWith(".json")), [`${next}_eth0.json`]);
      assert.equal(await linkExists(net.hostVeth(old)), false);
      assert.equal(await linkExists(net.hostVeth(next)), true);
      const check = await net.run({
        command: "CHECK",
        containerId: next,
        netns: nextNs,
        ifname: "eth0",
        args: args(""),
        env,
        config: configOf(net, delegated, { prevResult: added }),
      });
      assert.equal(check.code, 0, check.stdout + check.stderr);
    });
  });
}
