import assert from "node:assert/strict";
import { ObjectError, parseObject } from "./mod.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

const node = (spec: unknown, status: unknown, name = "n1") => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name },
  spec,
  status,
});

Deno.test("parseObject() reads a Node's podCIDRs and its InternalIP", () => {
  const o = parseObject(node(
    { podCIDR: "10.244.9.0/24", podCIDRs: ["10.244.1.0/24", "fd00:1::/64"] },
    {
      addresses: [
        { type: "Hostname", address: "n1" },
        { type: "ExternalIP", address: "203.0.113.1" },
        { type: "InternalIP", address: "fd00::1" },
        { type: "InternalIP", address: "192.168.1.1" },
      ],
    },
  ));
  assert.deepEqual(o, {
    kind: "Node",
    value: {
      name: "n1",
      podCidrs: [{ network: parseIpv4("10.244.1.0"), prefix: 24 }],
      address: parseIpv4("192.168.1.1"),
    },
  });
});

Deno.test("parseObject() falls back to spec.podCIDR and the ExternalIP", () => {
  const o = parseObject(node({ podCIDR: "10.244.2.0/24" }, {
    addresses: [{ type: "ExternalIP", address: "203.0.113.2" }],
  }));
  assert.equal(o.kind, "Node");
  if (o.kind !== "Node") return;
  assert.deepEqual(o.value.podCidrs, [{ network: parseIpv4("10.244.2.0"), prefix: 24 }]);
  assert.equal(o.value.address, parseIpv4("203.0.113.2"));
});

Deno.test("parseObject() keeps a Node without a pod CIDR or an address (not assigned yet)", () => {
  const o = parseObject(node(undefined, undefined));
  assert.deepEqual(o, { kind: "Node", value: { name: "n1", podCidrs: [] } });
});

Deno.test("parseObject() refuses a Node's bad pod CIDR or address naming the field", () => {
  assert.throws(
    () => parseObject(node({ podCIDRs: ["10.244.1.0/33"] }, undefined)),
    (e: unknown) =>
      e instanceof ObjectError && e.path === "spec.podCIDRs[0]" &&
      /^Invalid Node "n1": spec\.podCIDRs\[0\]: must be a valid CIDR/.test(e.message),
  );
  assert.throws(
    () => parseObject(node({}, { addresses: [{ type: "InternalIP", address: "192.168.1" }] })),
    (e: unknown) => e instanceof ObjectError && e.path === "status.addresses[0].address",
  );
  assert.throws(
    () => parseObject(node({}, undefined, "Bad_Name")),
    (e: unknown) => e instanceof ObjectError && e.path === "metadata.name",
  );
});
