// Unit tests for the per-model lookups.
import assert from "node:assert/strict";
import { modelOf, podObj, policyObj } from "./_test_util.ts";
import { compareKeys, indexModel } from "./model_index.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

Deno.test("indexModel() groups policies by namespace, sorted by key", () => {
  const index = indexModel(
    modelOf(policyObj("x/b", {}), policyObj("y/a", {}), policyObj("x/a", {})),
  );
  assert.deepEqual(index.policiesByNamespace.get("x")?.map((e) => e.key), ["x/a", "x/b"]);
  assert.deepEqual(index.policiesByNamespace.get("y")?.map((e) => e.key), ["y/a"]);
});

Deno.test("indexModel() finds the pod of an address, but never a hostNetwork pod", () => {
  const index = indexModel(modelOf(
    podObj("x/a", {}, { ip: "10.0.0.1" }),
    podObj("x/h", {}, { ip: "192.168.0.10", hostNetwork: true }),
  ));
  assert.equal(index.podByIp.get(parseIpv4("10.0.0.1"))?.name, "a");
  assert.equal(index.podByIp.get(parseIpv4("192.168.0.10")), undefined);
});

Deno.test("indexModel() gives an address two pods report to the pod with the smaller key", () => {
  const ip = parseIpv4("10.0.0.1");
  const pods = [podObj("y/a", {}, { ip: "10.0.0.1" }), podObj("x/b", {}, { ip: "10.0.0.1" })];
  assert.equal(indexModel(modelOf(...pods)).podByIp.get(ip)?.namespace, "x");
  assert.equal(indexModel(modelOf(...pods.reverse())).podByIp.get(ip)?.namespace, "x");
});

Deno.test("indexModel() builds once per model object", () => {
  const model = modelOf(podObj("x/a"));
  assert.equal(indexModel(model), indexModel(model));
});

Deno.test("compareKeys() orders by code unit, not locale", () => {
  assert.deepEqual(["b", "B", "a", "A"].sort(compareKeys), ["A", "B", "a", "b"]);
});
