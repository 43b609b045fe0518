// Tests for the identity rule.
import assert from "node:assert/strict";
import { isIdentity, parseIdentityText } from "./identity_rule.ts";

Deno.test("isIdentity() accepts integers from 1 to 2^32-1 only", () => {
  for (const ok of [1, 1001, 4294967295]) assert.equal(isIdentity(ok), true);
  for (const bad of [0, -1, 1.5, 4294967296, NaN, "1", null, undefined, 1n]) {
    assert.equal(isIdentity(bad), false, String(bad));
  }
});

Deno.test("parseIdentityText() reads decimal digits in range only", () => {
  assert.equal(parseIdentityText("1"), 1);
  assert.equal(parseIdentityText("0042"), 42);
  assert.equal(parseIdentityText("4294967295"), 4294967295);
  for (const bad of ["0", "4294967296", "-1", "+5", "1e3", "0x10", " 5", "5.0", "abc", ""]) {
    assert.equal(parseIdentityText(bad), undefined, bad);
  }
});
