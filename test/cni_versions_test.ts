// Every supported spec version end to end: ADD, CHECK (where the version has it), DEL, with
// the result in that version's shape, and STATUS/GC refused before 1.1.0.
import assert from "node:assert/strict";
import { containerId, withNetwork } from "./_cni.ts";

const VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
const LEGACY = new Set(["0.3.0", "0.3.1", "0.4.0"]);
const HAS_CHECK = new Set(["0.4.0", "1.0.0", "1.1.0"]);

for (const version of VERSIONS) {
  Deno.test(`cniVersion ${version}: ADD, CHECK, DEL with the ${version} result shape`, async () => {
    await withNetwork(async (net) => {
      const ns = await net.netns();
      const config = net.config({}, {}, version);
      const id = containerId("ver");
      const call = { containerId: id, netns: ns, ifname: "eth0", config };

      const add = await net.run({ command: "ADD", ...call });
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const result = add.json!;
      assert.equal(result.cniVersion, version);

      const ips = result.ips as Record<string, unknown>[];
      assert.equal(ips.length, 1);
      const ip = ips[0]!;
      assert.match(String(ip.address), /^\d+\.\d+\.\d+\.\d+\/24$/);
      assert.equal(ip.gateway, net.gateway);
      assert.equal(ip.interface, 2);
      if (LEGACY.has(version)) assert.equal(ip.version, "4");
      else {assert.equal(
          "version" in ip,
          false,
          `1.x ips carry no "version": ${JSON.stringify(ip)}`,
        );}

      const ifaces = result.interfaces as Record<string, unknown>[];
      assert.deepEqual(ifaces.map((i) => i.name), [net.bridge, net.hostVeth(id), "eth0"]);
      assert.equal(ifaces[2]!.sandbox, ns);
      for (const i of ifaces) assert.match(String(i.mac), /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      // Interface mtu only exists from 1.0.0 on.
      if (LEGACY.has(version)) assert.equal("mtu" in ifaces[2]!, false);
      else assert.equal(ifaces[2]!.mtu, 1500);
      assert.deepEqual(result.routes, [{ dst: "0.0.0.0/0" }]);

      const check = await net.run({
        command: "CHECK",
        ...call,
        config: { ...config, prevResult: result },
      });
      if (HAS_CHECK.has(version)) {
        assert.equal(check.code, 0, check.stdout + check.stderr);
      } else {
        assert.notEqual(check.code, 0);
        assert.equal(check.json?.code, 1, check.stdout);
        assert.equal(check.json?.cniVersion, version);
      }

      const del = await net.run({ command: "DEL", ...call });
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.equal(del.stdout, "");
      assert.deepEqual(net.leases(), []);
      assert.deepEqual(await net.endpoints(), []);
      assert.deepEqual(await net.bridgePorts(), []);
      assert.deepEqual(net.stateFiles(), []);
    });
  });

  Deno.test(
    `cniVersion ${version}: STATUS and GC ${
      version === "1.1.0" ? "succeed" : "are refused with code 1"
    }`,
    async () => {
      await withNetwork(async (net) => {
        const config = net.config({ "cni.dev/valid-attachments": [] }, {}, version);
        for (const command of ["STATUS", "GC"]) {
          const r = await net.run({ command, config });
          if (version === "1.1.0") {
            assert.equal(r.code, 0, `${command}: ${r.stdout}${r.stderr}`);
            assert.equal(r.stdout, "");
          } else {
            assert.notEqual(r.code, 0, command);
            assert.equal(r.json?.code, 1, `${command}: ${r.stdout}`);
            assert.match(String(r.json?.msg), new RegExp(command));
          }
        }
      });
    },
  );
}
