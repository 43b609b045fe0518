// Unit tests for NetworkPolicyPort validation and defaulting.
import assert from "node:assert/strict";
import { objectErrorOf, policyObj } from "./_test_util.ts";
import type { PortSpec } from "./model.ts";
import { parseNetworkPolicy } from "./parse.ts";

const withPort = (port: unknown) => policyObj("ns/p", { ingress: [{ ports: [port] }] });
const portOf = (port: unknown): PortSpec | undefined =>
  parseNetworkPolicy(withPort(port)).ingress[0]?.ports[0];
const portError = (port: unknown) => objectErrorOf(() => parseNetworkPolicy(withPort(port)));

Deno.test("readPort() defaults the protocol to TCP and keeps numbers, names and ranges", () => {
  assert.deepEqual(portOf({}), { protocol: "TCP" });
  assert.deepEqual(portOf({ port: 80 }), { protocol: "TCP", port: 80 });
  assert.deepEqual(portOf({ protocol: "UDP", port: "dns" }), { protocol: "UDP", port: "dns" });
  assert.deepEqual(portOf({ protocol: "SCTP", port: 80, endPort: 90 }), {
    protocol: "SCTP",
    port: 80,
    endPort: 90,
  });
  assert.deepEqual(portOf({ port: 80, endPort: 80 }), { protocol: "TCP", port: 80, endPort: 80 });
  assert.deepEqual(portOf({ protocol: null, port: null }), { protocol: "TCP" });
});

Deno.test("readPort() refuses an endPort below the port, with the exact message", () => {
  assert.equal(
    portError({ port: 80, endPort: 79 }).message,
    `Invalid NetworkPolicy "ns/p": spec.ingress[0].ports[0].endPort: must be greater than or equal to port 80, got 79`,
  );
});

Deno.test("readPort() refuses an endPort without a numeric port", () => {
  const none = portError({ endPort: 90 });
  assert.equal(none.path, "spec.ingress[0].ports[0].endPort");
  assert.equal(none.detail, "must not be set when port is not set, got 90");
  assert.equal(
    portError({ port: "http", endPort: 90 }).detail,
    `must not be set when port is a named port ("http")`,
  );
});

Deno.test("readPort() refuses port numbers outside 1-65535", () => {
  assert.equal(portError({ port: 0 }).detail, "must be between 1 and 65535, got 0");
  assert.equal(portError({ port: 65536 }).detail, "must be between 1 and 65535, got 65536");
  assert.equal(portError({ port: 80.5 }).detail, "must be an integer or a port name, got 80.5");
  assert.equal(portError({ port: true }).detail, "must be a port number or a port name, got true");
  const end = portError({ port: 80, endPort: 70000 });
  assert.equal(end.path, "spec.ingress[0].ports[0].endPort");
  assert.equal(end.detail, "must be between 1 and 65535, got 70000");
  assert.equal(portError({ port: 80, endPort: "90" }).detail, `must be an integer, got "90"`);
});

Deno.test("readPort() refuses port names that are not IANA_SVC_NAMEs, a quoted number included", () => {
  const quoted = portError({ port: "80" });
  assert.equal(quoted.path, "spec.ingress[0].ports[0].port");
  assert.equal(quoted.detail, `must contain at least one letter (a-z), got "80"`);
  assert.match(portError({ port: "HTTP" }).detail, /only lowercase alphanumeric/);
  assert.match(portError({ port: "a-very-long-port-name" }).detail, /no more than 15 characters/);
});

Deno.test("readPort() refuses protocols other than TCP, UDP and SCTP", () => {
  const err = portError({ protocol: "ICMP" });
  assert.equal(err.path, "spec.ingress[0].ports[0].protocol");
  assert.equal(err.detail, `must be "TCP", "UDP" or "SCTP", got "ICMP"`);
  assert.equal(portError({ protocol: "tcp" }).detail, `must be "TCP", "UDP" or "SCTP", got "tcp"`);
});

Deno.test("readPort() refuses unknown fields", () => {
  assert.equal(
    portError({ prot: "TCP" }).detail,
    `unknown field "prot" (known: protocol, port, endPort)`,
  );
});
