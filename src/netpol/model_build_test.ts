// Unit tests for building and updating models.
import assert from "node:assert/strict";
import { namespaceObj, podObj, policyObj } from "./_test_util.ts";
import { NAMESPACE_NAME_LABEL } from "./model.ts";
import { applyObject, buildModel, deleteObject, emptyModel, namespaceOf } from "./model_build.ts";
import { parseObject } from "./parse.ts";

const parsed = (obj: unknown) => parseObject(obj);

Deno.test("buildModel() keys pods and policies by namespace/name and namespaces by name", () => {
  const model = buildModel([
    parsed(namespaceObj("x")),
    parsed(podObj("x/a")),
    parsed(policyObj("x/p", {})),
    parsed({ apiVersion: "v1", kind: "Service", metadata: { name: "s" } }),
  ]);
  assert.deepEqual([...model.namespaces.keys()], ["x"]);
  assert.deepEqual([...model.pods.keys()], ["x/a"]);
  assert.deepEqual([...model.policies.keys()], ["x/p"]);
});

Deno.test("buildModel() lets a later object replace an earlier one with the same key", () => {
  const model = buildModel([parsed(podObj("x/a", { v: "1" })), parsed(podObj("x/a", { v: "2" }))]);
  assert.equal(model.pods.size, 1);
  assert.deepEqual(model.pods.get("x/a")?.labels, { v: "2" });
});

Deno.test("applyObject() creates and replaces without changing the model it was given", () => {
  const m0 = emptyModel();
  const m1 = applyObject(m0, parsed(podObj("x/a", { v: "1" })));
  const m2 = applyObject(m1, parsed(podObj("x/a", { v: "2" })));
  const m3 = applyObject(m2, parsed(namespaceObj("x")));
  const m4 = applyObject(m3, parsed(policyObj("x/p", {})));
  assert.equal(m0.pods.size, 0);
  assert.deepEqual(m1.pods.get("x/a")?.labels, { v: "1" });
  assert.deepEqual(m2.pods.get("x/a")?.labels, { v: "2" });
  assert.equal(m2.namespaces.size, 0);
  assert.equal(m3.namespaces.size, 1);
  assert.equal(m4.policies.size, 1);
  assert.equal(m4.pods, m3.pods, "maps that do not change are shared");
  const other = parsed({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" } });
  assert.equal(applyObject(m4, other), m4);
});

Deno.test("deleteObject() removes by key and leaves the given model as it was", () => {
  const m = buildModel([
    parsed(namespaceObj("x")),
    parsed(podObj("x/a")),
    parsed(podObj("default/a")),
    parsed(policyObj("x/p", {})),
  ]);
  const noPod = deleteObject(m, { kind: "Pod", namespace: "x", name: "a" });
  assert.deepEqual([...noPod.pods.keys()], ["default/a"]);
  assert.equal(m.pods.size, 2);
  assert.deepEqual([...deleteObject(m, { kind: "Pod", name: "a" }).pods.keys()], ["x/a"]);
  assert.equal(
    deleteObject(m, { kind: "NetworkPolicy", namespace: "x", name: "p" }).policies.size,
    0,
  );
  assert.equal(deleteObject(m, { kind: "Namespace", name: "x" }).namespaces.size, 0);
  assert.equal(deleteObject(m, { kind: "Pod", namespace: "y", name: "a" }), m);
});

Deno.test("deleteObject() of a Namespace keeps its pods and policies", () => {
  const m = buildModel([
    parsed(namespaceObj("x")),
    parsed(podObj("x/a")),
    parsed(policyObj("x/p", {})),
  ]);
  const after = deleteObject(m, { kind: "Namespace", name: "x" });
  assert.equal(after.pods.size, 1);
  assert.equal(after.policies.size, 1);
});

Deno.test("namespaceOf() gives a namespace without an object only its name label", () => {
  const m = buildModel([parsed(namespaceObj("x", { team: "a" }))]);
  assert.deepEqual(namespaceOf(m, "x").labels, { team: "a", [NAMESPACE_NAME_LABEL]: "x" });
  assert.deepEqual(namespaceOf(m, "y"), { name: "y", labels: { [NAMESPACE_NAME_LABEL]: "y" } });
});
