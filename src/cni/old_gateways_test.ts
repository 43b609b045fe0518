import assert from "node:assert/strict";
import { staleGateways } from "./old_gateways.ts";
import { parseCidr, parseIpv4 } from "../spec/ipv4.ts";

const ip = parseIpv4;

Deno.test("staleGateways() picks the gateways of subnets that are not current and hold no lease", () => {
  const addrs = [
    { ip: ip("10.244.1.1"), prefix: 24 }, // the current pod CIDR
    { ip: ip("10.244.7.1"), prefix: 24 }, // old, a pod still holds 10.244.7.5
    { ip: ip("10.244.8.1"), prefix: 24 }, // old, empty: goes
    { ip: ip("192.168.5.1"), prefix: 24 }, // another configured range
    { ip: ip("10.9.9.9"), prefix: 32 }, // no subnet's gateway
  ];
  const current = [parseCidr("10.244.1.0/24"), parseCidr("192.168.5.0/24")];
  assert.deepEqual(staleGateways(addrs, current, [ip("10.244.7.5"), ip("10.244.1.9")]), [
    { ip: ip("10.244.8.1"), prefix: 24 },
  ]);
});
