import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hex, sha1, sha256 } from "./hash.ts";

const inputs = [
  "",
  "abc",
  "a".repeat(55),
  "a".repeat(56),
  "a".repeat(64),
  "x".repeat(1000),
  "ünï\u{1F600}",
];

Deno.test("sha1() matches node:crypto on block-boundary and unicode inputs", () => {
  for (const s of inputs) assert.equal(hex(sha1(s)), createHash("sha1").update(s).digest("hex"));
});

Deno.test("sha256() matches node:crypto on block-boundary and unicode inputs", () => {
  for (const s of inputs) {
    assert.equal(hex(sha256(s)), createHash("sha256").update(s).digest("hex"));
  }
});
