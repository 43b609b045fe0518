// Tests for args.ts: CNI_ARGS parsing and the keys the plugin reads.

import assert from "node:assert/strict";
import { errorOf } from "./_test_util.ts";
import {
  identityArg,
  normalizeRequestedIpv4,
  parseCniArgs,
  podNameArg,
  podNamespaceArg,
  rejectUnknownArgs,
  requestedIpsFromArgs,
} from "./cni_args.ts";

const KUBELET =
  "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u";

Deno.test("parseCniArgs() reads what the kubelet passes", () => {
  const args = parseCniArgs(KUBELET);
  assert.equal(args.get("IgnoreUnknown"), "1");
  assert.equal(podNamespaceArg(args), "default");
  assert.equal(podNameArg(args), "web-0");
  assert.equal(args.size, 5);
});

Deno.test("parseCniArgs() returns an empty map for an empty string", () => {
  assert.equal(parseCniArgs("").size, 0);
});

Deno.test("parseCniArgs() keeps everything after the first = as the value", () => {
  assert.equal(parseCniArgs("K=a=b").get("K"), "a=b");
  assert.equal(parseCniArgs("K=").get("K"), "");
});

Deno.test("parseCniArgs() skips empty segments such as a trailing semicolon", () => {
  assert.deepEqual([...parseCniArgs("A=1;;B=2;").entries()], [["A", "1"], ["B", "2"]]);
});

Deno.test("parseCniArgs() rejects a pair without = with code 4 naming it", () => {
  const err = errorOf(() => parseCniArgs("A=1;oops;B=2"));
  assert.equal(err.code, 4);
  assert.equal(err.message, 'Invalid CNI_ARGS pair "oops": expected KEY=VALUE');
  assert.equal(errorOf(() => parseCniArgs("=v")).code, 4);
});

Deno.test("requestedIpsFromArgs() reads a comma-separated IPv4 list", () => {
  assert.deepEqual(requestedIpsFromArgs(parseCniArgs("IP=10.0.0.5,10.0.0.6/24")), [
    "10.0.0.5",
    "10.0.0.6",
  ]);
  assert.deepEqual(requestedIpsFromArgs(parseCniArgs("IP=")), []);
  assert.deepEqual(requestedIpsFromArgs(parseCniArgs("")), []);
});

Deno.test("requestedIpsFromArgs() rejects a bad address with code 4 naming it", () => {
  for (const bad of ["IP=10.0.0.256", "IP=10.0.0.1,", "IP=fd00::1", "IP=host", "IP=010.0.0.1"]) {
    assert.equal(errorOf(() => requestedIpsFromArgs(parseCniArgs(bad))).code, 4, bad);
  }
  assert.match(
    errorOf(() => requestedIpsFromArgs(parseCniArgs("IP=1.2.3"))).message,
    /^Invalid CNI_ARGS IP "1\.2\.3": must be an IPv4 address$/,
  );
});

Deno.test("identityArg() returns EBPFCNI_IDENTITY unparsed, empty meaning absent", () => {
  assert.equal(identityArg(parseCniArgs("EBPFCNI_IDENTITY=42")), "42");
  assert.equal(identityArg(parseCniArgs("EBPFCNI_IDENTITY=")), undefined);
  assert.equal(identityArg(parseCniArgs("")), undefined);
});

Deno.test("normalizeRequestedIpv4() drops a prefix length and refuses IPv6", () => {
  assert.equal(normalizeRequestedIpv4("10.0.0.7/24"), "10.0.0.7");
  assert.equal(normalizeRequestedIpv4("10.0.0.7"), "10.0.0.7");
  assert.equal(normalizeRequestedIpv4("fd00::7/64"), undefined);
});

Deno.test("rejectUnknownArgs() refuses an unknown key with code 999 naming it, unless IgnoreUnknown", () => {
  const err = errorOf(() => rejectUnknownArgs(parseCniArgs("IP=10.0.0.2;FOO=bar")));
  assert.equal(err.code, 999);
  assert.match(err.message, /^Unknown CNI_ARGS "FOO": .*IgnoreUnknown=1/);
  for (const yes of ["1", "true", "TRUE"]) {
    rejectUnknownArgs(parseCniArgs(`IgnoreUnknown=${yes};FOO=bar`));
  }
  for (const no of ["0", "false"]) {
    assert.equal(
      errorOf(() => rejectUnknownArgs(parseCniArgs(`IgnoreUnknown=${no};F=1`))).code,
      999,
    );
  }
  rejectUnknownArgs(parseCniArgs(KUBELET));
  rejectUnknownArgs(
    parseCniArgs("IP=10.0.0.2;EBPFCNI_IDENTITY=5;K8S_POD_NAMESPACE=a;K8S_POD_NAME=b"),
  );
});

Deno.test("rejectUnknownArgs() refuses an IgnoreUnknown that is not a boolean with code 4", () => {
  const err = errorOf(() => rejectUnknownArgs(parseCniArgs("IgnoreUnknown=yes")));
  assert.equal(err.code, 4);
  assert.match(err.message, /IgnoreUnknown "yes"/);
});
