import assert from "node:assert/strict";
import type { RuleKey } from "../spec/bpf_layout.ts";
import type { CompiledRule } from "../netpol/compile.ts";
import {
  parseEnforcedSnapshot,
  type PolicyRules,
  RuleLedger,
  type RuleStore,
} from "./rule_ledger.ts";

/** A rule_map of `capacity` slots that refuses a new key when full (as the kernel does);
 * `lie` makes it refuse that many slots earlier than its capacity says. */
class FakeStore implements RuleStore {
  readonly map = new Map<string, RuleKey>();
  lie = 0;
  constructor(public capacity: number) {}
  entries(): ReadonlyMap<string, RuleKey> {
    return this.map;
  }
  add(id: string, key: RuleKey): void {
    if (!this.map.has(id) && this.map.size >= this.capacity - this.lie) {
      throw new Error("rule_map is full (test)");
    }
    this.map.set(id, key);
  }
  remove(id: string): void {
    this.map.delete(id);
  }
  ids(): string[] {
    return [...this.map.keys()].sort();
  }
}

function rules(policy: string, ...ids: string[]): PolicyRules {
  return new Map(ids.map((id): [string, CompiledRule] => [id, {
    key: { prefixlen: 96, subject: 1, peer: 2, dir: 0, proto: 6, port: Number(id.slice(1)) },
    sources: [{ policy, direction: "ingress", rule: 0 }],
  }]));
}

function pass(l: RuleLedger, s: FakeStore, desired: Map<string, PolicyRules>, full = false) {
  l.make(s, desired, full);
  l.sweep(s);
}

Deno.test("RuleLedger: an update that does not fit keeps the policy's old rules until the new ones are in", () => {
  const s = new FakeStore(4);
  const l = new RuleLedger();
  const d = new Map([["x/old", rules("x/old", "r1", "r2")], ["x/fill", rules("x/fill", "r3")]]);
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"]);
  // x/old now wants r4 and r5 instead: two new entries, one slot free.
  d.set("x/old", rules("x/old", "r4", "r5"));
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"], "old rules removed or half of the new written");
  const [w] = l.waiting();
  assert.equal(w?.policy, "x/old");
  assert.equal(w?.needed, 2);
  assert.equal(w?.free, 1);
  assert.equal(w?.keepsPrevious, true);
  // Room: x/fill goes; the update goes in, then the old rules go.
  d.delete("x/fill");
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r4", "r5"]);
  assert.deepEqual(l.waiting(), []);
});

Deno.test("RuleLedger: a policy the map refuses half-way is taken out again and waits", () => {
  const s = new FakeStore(4);
  const l = new RuleLedger();
  const d = new Map([["x/a", rules("x/a", "r1")]]);
  pass(l, s, d);
  s.lie = 1; // the map holds fewer than its capacity says (someone else's entries)
  d.set("x/new", rules("x/new", "r2", "r3", "r4"));
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1"], "a partly written policy holds slots");
  assert.equal(l.waiting()[0]?.policy, "x/new");
  assert.match(l.waiting()[0]!.reason, /rule_map is full/);
  assert.equal(l.waiting()[0]?.keepsPrevious, false);
  s.lie = 0;
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3", "r4"]);
  assert.deepEqual(l.waiting(), []);
});

Deno.test("RuleLedger: waiting policies get freed slots first come first served", () => {
  const s = new FakeStore(4);
  const l = new RuleLedger();
  const d = new Map([["f/fill", rules("f/fill", "r1", "r2", "r3", "r4")]]);
  pass(l, s, d);
  d.set("z/first", rules("z/first", "r5", "r6"));
  pass(l, s, d);
  d.set("a/second", rules("a/second", "r7"));
  pass(l, s, d);
  assert.deepEqual(l.waiting().map((w) => [w.policy, w.place]), [["z/first", 1], [
    "a/second",
    2,
  ]]);
  // One slot frees: not enough for the first in line, and the second may not take it.
  d.set("f/fill", rules("f/fill", "r1", "r2", "r3"));
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"]);
  assert.equal(l.waiting()[1]?.reason, "waiting behind z/first");
  // Two: the first goes in, the second still waits.
  d.set("f/fill", rules("f/fill", "r1", "r2"));
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r5", "r6"]);
  assert.deepEqual(l.waiting().map((w) => [w.policy, w.place]), [["a/second", 1]]);
  d.delete("f/fill");
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r5", "r6", "r7"]);
  assert.deepEqual(l.waiting(), []);
});

Deno.test("RuleLedger: an entry two policies share stays while one of them holds it", () => {
  const s = new FakeStore(8);
  const l = new RuleLedger();
  const d = new Map([["x/a", rules("x/a", "r1", "r2")], ["x/b", rules("x/b", "r2")]]);
  pass(l, s, d);
  assert.deepEqual(l.sources().get("r2")?.map((r) => r.policy).sort(), ["x/a", "x/b"]);
  d.delete("x/a");
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r2"]);
  d.delete("x/b");
  pass(l, s, d);
  assert.deepEqual(s.ids(), []);
});

Deno.test("RuleLedger: a full pass removes entries no policy holds and writes back missing ones", () => {
  const s = new FakeStore(8);
  const l = new RuleLedger();
  const d = new Map([["x/a", rules("x/a", "r1", "r2")]]);
  pass(l, s, d);
  s.map.delete("r1");
  s.map.set("r9", rules("x/gone", "r9").get("r9")!.key);
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r2", "r9"], "only a full pass looks at every entry");
  pass(l, s, d, true);
  assert.deepEqual(s.ids(), ["r1", "r2"]);
});

Deno.test("RuleLedger: a waiting policy that is deleted stops waiting and nothing of it stays", () => {
  const s = new FakeStore(2);
  const l = new RuleLedger();
  const d = new Map([["x/a", rules("x/a", "r1", "r2")]]);
  pass(l, s, d);
  d.set("x/b", rules("x/b", "r3"));
  pass(l, s, d);
  assert.equal(l.waiting().length, 1);
  d.delete("x/b");
  pass(l, s, d);
  assert.deepEqual(l.waiting(), []);
  assert.deepEqual(s.ids(), ["r1", "r2"]);
});

Deno.test("RuleLedger: after a restart an update that did not fit still keeps its old rules", () => {
  const s = new FakeStore(4);
  const before = new RuleLedger();
  const d = new Map([["x/p", rules("x/p", "r1", "r2")], ["x/fill", rules("x/fill", "r3")]]);
  pass(before, s, d);
  d.set("x/p", rules("x/p", "r4", "r5", "r6"));
  pass(before, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"]);
  const recorded = parseEnforcedSnapshot(JSON.parse(JSON.stringify(before.snapshot())));
  assert.ok(recorded !== undefined);
  // A new agent: its first pass reads the whole map.
  const after = new RuleLedger();
  after.adopt(recorded);
  pass(after, s, d, true);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"], "x/p's old rules were removed");
  assert.deepEqual(after.waiting().map((w) => [w.policy, w.keepsPrevious]), [["x/p", true]]);
  assert.deepEqual(after.sources().get("r1")?.map((r) => r.policy), ["x/p"]);
  // Room: the update goes in, then the old rules go.
  d.delete("x/fill");
  d.set("x/p", rules("x/p", "r4", "r5"));
  pass(after, s, d);
  assert.deepEqual(s.ids(), ["r4", "r5"]);
});

Deno.test("RuleLedger: after a restart the rules of a policy deleted meanwhile go", () => {
  const s = new FakeStore(4);
  const before = new RuleLedger();
  const d = new Map([["x/gone", rules("x/gone", "r1", "r2")], ["x/new", rules("x/new", "r3")]]);
  pass(before, s, d);
  const recorded = before.snapshot()!;
  before.recorded();
  assert.equal(before.snapshot(), undefined, "a snapshot with nothing changed since");
  d.delete("x/gone");
  d.set("x/new", rules("x/new", "r3", "r4", "r5", "r6"));
  const after = new RuleLedger();
  after.adopt(recorded);
  pass(after, s, d, true);
  assert.deepEqual(s.ids(), ["r3", "r4", "r5", "r6"]);
  assert.deepEqual(after.waiting(), []);
});

Deno.test("parseEnforcedSnapshot() refuses what is not a ledger's record", () => {
  assert.equal(parseEnforcedSnapshot([]), undefined);
  assert.equal(parseEnforcedSnapshot({ "x/a": "r1" }), undefined);
  assert.equal(parseEnforcedSnapshot({ "x/a": [[1, []]] }), undefined);
  assert.deepEqual(parseEnforcedSnapshot({ "x/a": [["r1", []]] }), { "x/a": [["r1", []]] });
});

Deno.test("RuleLedger: an enforced policy whose entry drifted away is written back even while another waits", () => {
  const s = new FakeStore(4);
  const l = new RuleLedger();
  const d = new Map([["x/a", rules("x/a", "r1", "r2")], ["x/fill", rules("x/fill", "r3")]]);
  pass(l, s, d);
  d.set("a/big", rules("a/big", "r4", "r5", "r6"));
  pass(l, s, d);
  assert.deepEqual(l.waiting().map((w) => w.policy), ["a/big"]);
  s.map.delete("r1"); // drift: someone removed x/a's entry
  pass(l, s, d, true);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"], "x/a's entry was not written back");
  assert.deepEqual(l.waiting().map((w) => w.policy), ["a/big"], "x/a made to wait in line");
});

Deno.test("RuleLedger: a rollback leaves an entry another policy holds", () => {
  const s = new FakeStore(4);
  const l = new RuleLedger();
  const d = new Map([["x/a", rules("x/a", "r1")]]);
  pass(l, s, d);
  s.lie = 2; // room for one more entry only, while the map says three
  d.set("x/b", rules("x/b", "r1", "r2", "r3"));
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1"], "x/b's rollback removed x/a's entry, or x/b is half in");
  assert.deepEqual(l.waiting().map((w) => w.policy), ["x/b"]);
  s.lie = 0;
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"]);
  d.delete("x/a");
  pass(l, s, d);
  assert.deepEqual(s.ids(), ["r1", "r2", "r3"], "r1 is x/b's too");
});
