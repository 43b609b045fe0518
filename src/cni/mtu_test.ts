import assert from "node:assert/strict";
import { podMtu } from "./mtu.ts";
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
