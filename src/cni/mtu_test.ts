import assert from "node:assert/strict";
import { podMtu, tunnelMtuMissing } from "./mtu.ts";
import type { Link } from "../net/rtnl_parse.ts";

const link = (name: string, kind: string, mtu: number): Link => ({
  index: 7,
  name,
  flags: 1,
  mtu,
  master: 0,
  mac: "",
  kind,
});
const links = (...ls: Link[]) => ({ get: (n: string) => ls.find((l) => l.name === n) });

Deno.test("podMtu() takes the vxlan device's MTU when the config sets none", () => {
  assert.equal(
    podMtu({ mtu: 1500, mtuSet: false }, links(link("ebpfcni.vxlan", "vxlan", 8950))),
    8950,
  );
});

Deno.test("podMtu() keeps the config's mtu over the vxlan device's", () => {
  assert.equal(
    podMtu({ mtu: 1400, mtuSet: true }, links(link("ebpfcni.vxlan", "vxlan", 1450))),
    1400,
  );
});

Deno.test("podMtu() uses the default without a vxlan device, or with a namesake of another kind", () => {
  assert.equal(podMtu({ mtu: 1500, mtuSet: false }, links()), 1500);
  assert.equal(
    podMtu({ mtu: 1500, mtuSet: false }, links(link("ebpfcni.vxlan", "dummy", 1000))),
    1500,
  );
});

Deno.test("tunnelMtuMissing() warns when the agent routes with vxlan, the config sets no mtu and the device is not there yet", () => {
  const conf = { mtu: 1500, mtuSet: false };
  const warning = tunnelMtuMissing(conf, "vxlan", links());
  assert.match(warning ?? "", /"ebpfcni\.vxlan" does not exist yet: the pod gets MTU 1500/);
  assert.equal(
    tunnelMtuMissing(conf, "vxlan", links(link("ebpfcni.vxlan", "vxlan", 1450))),
    undefined,
  );
  assert.equal(tunnelMtuMissing(conf, "native", links()), undefined);
  assert.equal(tunnelMtuMissing(conf, undefined, links()), undefined);
  assert.equal(tunnelMtuMissing({ mtu: 1400, mtuSet: true }, "vxlan", links()), undefined);
});
