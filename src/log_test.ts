import assert from "node:assert/strict";
import { log, logTo } from "./log.ts";

Deno.test("logTo() hands every line, whatever its level, to the sink until reset", () => {
  const got: string[] = [];
  logTo((level, msg) => got.push(`${level} ${msg}`));
  try {
    log.debug("a");
    log.error("b");
  } finally {
    logTo(undefined);
  }
  log.debug("not handed over");
  assert.deepEqual(got, ["debug a", "error b"]);
});
