// Unit tests for Pod parsing: IPs, node, hostNetwork and named ports.
import assert from "node:assert/strict";
import { objectErrorOf, podObj } from "./_test_util.ts";
import { parseObject, parsePod } from "./parse.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

const pod = (spec: unknown, status: unknown = {}) =>
  parsePod({ metadata: { name: "a", namespace: "x" }, spec, status });
const podError = (spec: unknown, status: unknown = {}) => objectErrorOf(() => pod(spec, status));

Deno.test("readPod() reads an upstream e2e pod with status.podIP", () => {
  const parsed = parseObject(podObj("x/a", { pod: "a" }, {
    ip: "10.244.1.5",
    ports: [
      { name: "serve-80-tcp", containerPort: 80 },
      { name: "serve-81-udp", containerPort: 81, protocol: "UDP" },
      { containerPort: 8080 },
    ],
  }));
  assert.deepEqual(parsed, {
    kind: "Pod",
    value: {
      namespace: "x",
      name: "a",
      labels: { pod: "a" },
      ips: [parseIpv4("10.244.1.5")],
      node: "node-1",
      namedPorts: [
        { name: "serve-80-tcp", port: 80, protocol: "TCP" },
        { name: "serve-81-udp", port: 81, protocol: "UDP" },
      ],
      hostNetwork: false,
    },
  });
});

Deno.test("readPod() takes IPv4 addresses from status.podIPs and skips IPv6 ones", () => {
  const p = pod({}, {
    podIP: "10.0.0.9",
    podIPs: [{ ip: "fd00::5" }, { ip: "10.0.0.5" }, { ip: "10.0.0.5" }, { ip: "10.0.0.6" }],
  });
  assert.deepEqual(p.ips, [parseIpv4("10.0.0.5"), parseIpv4("10.0.0.6")]);
  assert.deepEqual(pod({}, { podIPs: [], podIP: "10.0.0.9" }).ips, [parseIpv4("10.0.0.9")]);
  assert.deepEqual(pod({}, { podIP: "fd00::1" }).ips, []);
  assert.deepEqual(pod({}, {}).ips, []);
  assert.deepEqual(parsePod({ metadata: { name: "a" } }).ips, []);
});

Deno.test("readPod() refuses pod IPs that are not addresses", () => {
  const err = podError({}, { podIPs: [{ ip: "10.0.0.5" }, { ip: "10.0.0" }] });
  assert.equal(err.path, "status.podIPs[1].ip");
  assert.equal(
    err.detail,
    `must be a valid IP address (expected 4 dot-separated octets, found 3), got "10.0.0"`,
  );
  assert.equal(podError({}, { podIP: "pod" }).path, "status.podIP");
  assert.equal(podError({}, { podIPs: [{}] }).detail, "must be set");
});

Deno.test("readPod() drops the IPs of pods that have finished", () => {
  assert.deepEqual(pod({}, { phase: "Succeeded", podIP: "10.0.0.5" }).ips, []);
  assert.deepEqual(pod({}, { phase: "Failed", podIP: "10.0.0.5" }).ips, []);
  assert.deepEqual(pod({}, { phase: "Running", podIP: "10.0.0.5" }).ips, [parseIpv4("10.0.0.5")]);
  assert.deepEqual(pod({}, { phase: "Pending", podIP: "10.0.0.5" }).ips, [parseIpv4("10.0.0.5")]);
});

Deno.test("readPod() reads nodeName and hostNetwork", () => {
  assert.equal(pod({ nodeName: "n1" }).node, "n1");
  assert.equal(pod({}).node, undefined);
  assert.equal(pod({ nodeName: "" }).node, undefined);
  assert.equal(pod({ hostNetwork: true }).hostNetwork, true);
  assert.equal(pod({}).hostNetwork, false);
  assert.equal(podError({ hostNetwork: "true" }).detail, `must be a boolean, got "true"`);
  assert.equal(podError({ nodeName: 1 }).path, "spec.nodeName");
});

Deno.test("readPod() takes named ports from containers, then sidecars, not from init containers", () => {
  const p = pod({
    initContainers: [
      { name: "init", ports: [{ name: "init-port", containerPort: 9000 }] },
      {
        name: "proxy",
        restartPolicy: "Always",
        ports: [{ name: "proxy", containerPort: 15001 }],
      },
    ],
    containers: [
      { name: "web", ports: [{ name: "http", containerPort: 8080 }] },
      { name: "metrics", ports: [{ name: "http", containerPort: 9090, protocol: "TCP" }] },
    ],
  });
  assert.deepEqual(p.namedPorts, [
    { name: "http", port: 8080, protocol: "TCP" },
    { name: "http", port: 9090, protocol: "TCP" },
    { name: "proxy", port: 15001, protocol: "TCP" },
  ]);
});

Deno.test("readPod() refuses a port name used twice in one container", () => {
  const err = podError({
    containers: [{
      name: "web",
      ports: [{ name: "http", containerPort: 80 }, { name: "http", containerPort: 81 }],
    }],
  });
  assert.equal(
    err.message,
    `Invalid Pod "x/a": spec.containers[0].ports[1].name: duplicate port name "http"`,
  );
});

Deno.test("readPod() validates containerPorts as the API server does", () => {
  const port = (p: unknown) => podError({ containers: [{ name: "c", ports: [p] }] });
  assert.equal(port({ name: "http" }).path, "spec.containers[0].ports[0].containerPort");
  assert.equal(port({ name: "http" }).detail, "must be set");
  assert.equal(port({ containerPort: 0 }).detail, "must be between 1 and 65535, got 0");
  assert.equal(port({ containerPort: "80" }).detail, `must be an integer, got "80"`);
  assert.equal(port({ name: "HTTP", containerPort: 80 }).path, "spec.containers[0].ports[0].name");
  assert.equal(
    port({ containerPort: 80, protocol: "ICMP" }).detail,
    `must be "TCP", "UDP" or "SCTP", got "ICMP"`,
  );
  assert.equal(
    podError({ initContainers: [{ restartPolicy: "Always", ports: [{ name: "x" }] }] }).path,
    "spec.initContainers[0].ports[0].containerPort",
  );
  assert.equal(podError({ containers: {} }).detail, "must be an array, got an object");
});
