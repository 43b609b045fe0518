import assert from "node:assert/strict";
import { needsRotation, rotationRenames } from "./flow_log.ts";

Deno.test("needsRotation() rotates before a line would pass the limit, never an empty file", () => {
  assert.equal(needsRotation(90, 10, 100), false, "exactly at the limit stays");
  assert.equal(needsRotation(91, 10, 100), true);
  assert.equal(needsRotation(0, 500, 100), false, "a line longer than the limit goes in alone");
  assert.equal(needsRotation(500, 1, 100), true, "a file already past the limit (a restart)");
});

Deno.test("rotationRenames() shifts the old files up from the oldest, the oldest overwritten", () => {
  assert.deepEqual(rotationRenames("/var/log/f", 3), [
    ["/var/log/f.2", "/var/log/f.3"],
    ["/var/log/f.1", "/var/log/f.2"],
    ["/var/log/f", "/var/log/f.1"],
  ]);
  assert.deepEqual(rotationRenames("/f", 1), [["/f", "/f.1"]]);
  assert.deepEqual(rotationRenames("/f", 0), [], "keep 0: nothing renamed (the file is emptied)");
});
