import assert from "node:assert/strict";
import { localView } from "./local_view.ts";
import type { Model, Pod } from "../netpol/model.ts";

function pod(namespace: string, name: string, ips: number[], node?: string): Pod {
  return { namespace, name, labels: {}, ips, node, namedPorts: [], hostNetwork: false };
}

function model(...pods: Pod[]): Model {
  return {
    namespaces: new Map(),
    pods: new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p])),
    policies: new Map(),
    nodes: new Map(),
  };
}

const att = (namespace: string, name: string, ips: number[]) => ({
  containerId: `c-${name}`,
  ifname: "eth0",
  namespace,
  name,
  ips,
});

Deno.test("local view: an attached pod is known by its attachment's addresses, whatever its status says", () => {
  const v = localView(model(pod("x", "a", [5])), [att("x", "a", [7])], "n1");
  assert.deepEqual(v.model.pods.get("x/a")!.ips, [7]);
  assert.ok(v.isLocal(v.model.pods.get("x/a")!));
  assert.deepEqual([...v.attached], [7]);
});

Deno.test("local view: a pod without attachment keeps its status addresses; it is local when scheduled here", () => {
  const v = localView(model(pod("x", "a", [5], "n1"), pod("x", "b", [6], "n2")), [], "n1");
  assert.deepEqual(v.model.pods.get("x/a")!.ips, [5]);
  assert.ok(v.isLocal(v.model.pods.get("x/a")!));
  assert.ok(!v.isLocal(v.model.pods.get("x/b")!));
});

Deno.test("local view: an address attached here belongs to the attached pod, not to a stale status naming it", () => {
  const v = localView(
    model(pod("x", "old", [9, 10], "n1"), pod("x", "new", [])),
    [att("x", "new", [9])],
    "n1",
  );
  assert.deepEqual(v.model.pods.get("x/old")!.ips, [10]);
  assert.deepEqual(v.model.pods.get("x/new")!.ips, [9]);
});

Deno.test("local view: an attachment whose pod the source does not show still holds its address", () => {
  const v = localView(model(), [att("x", "gone", [4])], "n1");
  assert.equal(v.model.pods.size, 0);
  assert.deepEqual([...v.attached], [4]);
});
