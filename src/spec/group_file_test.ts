import assert from "node:assert/strict";
import { groupIdIn } from "./group_file.ts";

Deno.test("groupIdIn() finds a group's GID by its name, and nothing for a prefix or a bad line", () => {
  const text = "root:x:0:\nnogroup:x:65534:\ncni:x:1500:alice,bob\nbroken:x:\n";
  assert.equal(groupIdIn(text, "cni"), 1500);
  assert.equal(groupIdIn(text, "root"), 0);
  assert.equal(groupIdIn(text, "cn"), undefined);
  assert.equal(groupIdIn(text, "broken"), undefined);
  assert.equal(groupIdIn(text, "x"), undefined);
});
