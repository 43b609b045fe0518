import assert from "node:assert/strict";
import { expectedMatrix, peerMatches, ReachabilityError } from "./reachability.ts";
import type { ExpectOp, PodName } from "./format.ts";

const PODS: PodName[] = ["x", "y", "z"].flatMap((ns) => ["a", "b", "c"].map((p) => `${ns}/${p}`));

/** Cells upstream's way: one row per source in PODS order, "." allowed, "X" denied. */
function table(rows: string[]): Map<string, boolean> {
  const out = new Map<string, boolean>();
  rows.forEach((row, i) => {
    const marks = row.trim().split(/\s+/);
    assert.equal(marks.length, PODS.length, `row ${i} has ${marks.length} cells`);
    marks.forEach((mark, j) => {
      const from = PODS[i] ?? "";
      const to = PODS[j] ?? "";
      if (from !== to) out.set(`${from}->${to}`, mark === ".");
    });
  });
  return out;
}

function denied(ops: ExpectOp[], def = true): string[] {
  const m = expectedMatrix(PODS, { default: def, ops });
  return [...m].filter(([, v]) => v !== def).map(([k]) => k);
}

Deno.test("expectedMatrix() fills every distinct pair with the default and omits self pairs", () => {
  const allowed = expectedMatrix(PODS, { default: true, ops: [] });
  assert.equal(allowed.size, 72);
  assert.ok([...allowed.values()].every((v) => v));
  assert.equal(allowed.has("x/a->x/a"), false);
  const blocked = expectedMatrix(PODS, { default: false, ops: [] });
  assert.ok([...blocked.values()].every((v) => !v));
});

Deno.test("expectedMatrix() keys run source-major in the order of the pods given", () => {
  const keys = [...expectedMatrix(["y/b", "x/a", "z/c"], { default: true, ops: [] }).keys()];
  assert.deepEqual(keys, ["y/b->x/a", "y/b->z/c", "x/a->y/b", "x/a->z/c", "z/c->y/b", "z/c->x/a"]);
});

Deno.test("expect() sets one cell only", () => {
  assert.deepEqual(denied([{ op: "expect", from: "x/b", to: "y/c", connected: false }]), [
    "x/b->y/c",
  ]);
});

Deno.test("expectAllIngress() sets the pod's column and expectAllEgress() its row", () => {
  const column = denied([{ op: "expectAllIngress", pod: "y/b", connected: false }]);
  assert.deepEqual(column, PODS.filter((p) => p !== "y/b").map((p) => `${p}->y/b`));
  const row = denied([{ op: "expectAllEgress", pod: "y/b", connected: false }]);
  assert.deepEqual(row, PODS.filter((p) => p !== "y/b").map((p) => `y/b->${p}`));
});

Deno.test("expectPeer() with empty peers matches every pod", () => {
  assert.equal(denied([{ op: "expectPeer", from: {}, to: {}, connected: false }]).length, 72);
});

Deno.test("expectPeer() with a namespace only matches every pod of that namespace", () => {
  const cells = denied([{ op: "expectPeer", from: {}, to: { namespace: "z" }, connected: false }]);
  assert.equal(cells.length, 9 * 3 - 3);
  assert.ok(cells.every((k) => k.split("->")[1]?.startsWith("z/")));
});

Deno.test("expectPeer() with a pod name only matches that pod in every namespace", () => {
  const cells = denied([{
    op: "expectPeer",
    from: { pod: "c" },
    to: { pod: "a" },
    connected: false,
  }]);
  assert.deepEqual(cells, [
    "x/c->x/a",
    "x/c->y/a",
    "x/c->z/a",
    "y/c->x/a",
    "y/c->y/a",
    "y/c->z/a",
    "z/c->x/a",
    "z/c->y/a",
    "z/c->z/a",
  ]);
});

Deno.test("peerMatches() treats empty strings as absent, as Go's zero value", () => {
  assert.ok(peerMatches({ namespace: "", pod: "" }, "y/b"));
  assert.ok(peerMatches({ namespace: "y", pod: "" }, "y/b"));
  assert.ok(!peerMatches({ namespace: "y", pod: "a" }, "y/b"));
  assert.ok(!peerMatches({ namespace: "x" }, "y/b"));
});

Deno.test("expectPeer() that matches no pod changes nothing", () => {
  const ops: ExpectOp[] = [
    { op: "expectPeer", from: { namespace: "nowhere" }, to: {}, connected: false },
  ];
  assert.deepEqual(denied(ops), []);
});

Deno.test("later operations overwrite earlier ones, as upstream applies them in order", () => {
  // The order of "should support denying of egress traffic on the client side": x/a may only
  // reach y/a, y/a admits only x/a, y/b admits nobody; the last op wins x/a->y/b.
  const ops: ExpectOp[] = [
    { op: "expectPeer", from: { namespace: "x", pod: "a" }, to: {}, connected: false },
    { op: "expectPeer", from: {}, to: { namespace: "y", pod: "a" }, connected: false },
    {
      op: "expectPeer",
      from: { namespace: "x", pod: "a" },
      to: { namespace: "y", pod: "a" },
      connected: true,
    },
    { op: "expectPeer", from: {}, to: { namespace: "y", pod: "b" }, connected: false },
  ];
  assert.deepEqual(
    expectedMatrix(PODS, { default: true, ops }),
    table([
      "X X X . X X X X X",
      ". . . X X . . . .",
      ". . . X X . . . .",
      ". . . X X . . . .",
      ". . . X X . . . .",
      ". . . X X . . . .",
      ". . . X X . . . .",
      ". . . X X . . . .",
      ". . . X X . . . .",
    ]),
  );
});

Deno.test("expectedMatrix() throws on a pod it does not know, as upstream's Failf", () => {
  const bad: ExpectOp[] = [
    { op: "expect", from: "x/a", to: "w/a", connected: false },
    { op: "expect", from: "w/a", to: "x/a", connected: false },
    { op: "expectAllIngress", pod: "x/q", connected: false },
    { op: "expectAllEgress", pod: "x/q", connected: false },
  ];
  for (const op of bad) {
    assert.throws(() => expectedMatrix(PODS, { default: true, ops: [op] }), ReachabilityError);
  }
});

Deno.test("expectedMatrix() throws on a pod name that is not namespace/pod", () => {
  assert.throws(
    () => expectedMatrix(["x/a", "xb"], { default: true, ops: [] }),
    /Cannot parse pod name "xb": expected namespace\/pod/,
  );
});
