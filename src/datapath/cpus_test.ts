// Tests for the kernel CPU list parser.
import assert from "node:assert/strict";
import { parsePossibleCpus } from "./cpus.ts";

Deno.test("parsePossibleCpus() counts up to the highest CPU a list names", () => {
  assert.equal(parsePossibleCpus("0\n"), 1);
  assert.equal(parsePossibleCpus("0-1\n"), 2);
  assert.equal(parsePossibleCpus("0-3,6"), 7);
  assert.throws(() => parsePossibleCpus("x"), /Cannot parse CPU list "x"/);
});
