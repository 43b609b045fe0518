import assert from "node:assert/strict";
import { FlowLog, needsRotation, rotationRenames } from "./flow_log.ts";

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

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const OPTS = { path: "-", maxBytes: 1e9, keep: 0 };

Deno.test("FlowLog: a line written as the queue has just been drained is still written", async () => {
  // The drain's last write resolving, then a line, `ticks` microtasks later.
  for (let ticks = 0; ticks < 12; ticks++) {
    const written: string[] = [];
    const out = {
      write: (
        b: Uint8Array,
      ) => (written.push(new TextDecoder().decode(b)), Promise.resolve(b.length)),
      close() {},
    };
    const fl = FlowLog.over(out, OPTS, quiet);
    fl.write("a\n");
    for (let i = 0; i < ticks; i++) await Promise.resolve();
    fl.write("b\n");
    await fl.close();
    assert.deepEqual(written, ["a\n", "b\n"], `line "b" stranded after ${ticks} tick(s)`);
    assert.equal(fl.stats.written, 2);
  }
});

Deno.test("FlowLog.close() gives up on an output that never takes a line: the rest is dropped", async () => {
  let closed = false;
  const out = { write: () => new Promise<number>(() => {}), close: () => void (closed = true) };
  const fl = FlowLog.over(out, OPTS, quiet);
  fl.write("a\n");
  fl.write("b\n");
  fl.write("c\n");
  await fl.close(10);
  assert.ok(closed);
  assert.deepEqual({ written: fl.stats.written, dropped: fl.stats.dropped }, {
    written: 0,
    dropped: 3,
  });
  fl.write("d\n");
  assert.equal(fl.stats.dropped, 4, "a line after close() is dropped");
});
