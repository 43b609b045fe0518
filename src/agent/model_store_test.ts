import assert from "node:assert/strict";
import { ModelStore } from "./model_store.ts";

function ns(name: string): Record<string, unknown> {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name } };
}

function store() {
  const events = { changed: 0, problems: [] as string[] };
  const s = new ModelStore({
    changed: () => events.changed++,
    problem: (m) => events.problems.push(m),
    problems: (source, m) => events.problems.push(...m.map((x) => `${source}: ${x}`)),
  });
  return { s, events };
}

Deno.test("ModelStore: a model handed out never changes afterwards", () => {
  const { s } = store();
  s.upsert(ns("a"));
  const before = s.model;
  s.upsert(ns("b"));
  s.remove("Namespace", undefined, "a");
  assert.deepEqual([...before.namespaces.keys()], ["a"]);
  assert.deepEqual([...s.model.namespaces.keys()], ["b"]);
  assert.equal(s.generation, 3);
});

Deno.test("ModelStore: a batch is one change, unseen by readers until it commits", () => {
  const { s, events } = store();
  s.upsert(ns("a"));
  const g = s.generation;
  const changed = events.changed;
  s.begin();
  for (let i = 0; i < 100; i++) s.upsert(ns(`n${i}`));
  s.remove("Namespace", undefined, "a");
  assert.deepEqual([...s.model.namespaces.keys()], ["a"], "readers see the model before it");
  assert.equal(s.generation, g);
  assert.equal(events.changed, changed);
  s.commit();
  assert.equal(s.model.namespaces.size, 100);
  assert.ok(!s.model.namespaces.has("a"));
  assert.equal(s.generation, g + 1);
  assert.equal(events.changed, changed + 1);
  // An empty batch changes nothing.
  s.begin();
  s.remove("Namespace", undefined, "nothing");
  s.commit();
  assert.equal(s.generation, g + 1);
});

Deno.test("ModelStore: an object that does not parse is reported and left out", () => {
  const { s, events } = store();
  s.upsert({ apiVersion: "v1", kind: "Namespace", metadata: { name: "Bad_Name" } });
  assert.equal(s.model.namespaces.size, 0);
  assert.equal(events.problems.length, 1);
});
