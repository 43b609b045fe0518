// Tests for the pinned-map contract check.
import assert from "node:assert/strict";
import { mapDifferences, pinPath } from "./pinned.ts";

const SPEC = { name: "m", type: 1, keySize: 4, valueSize: 4, maxEntries: 16, flags: 0 };

Deno.test("mapDifferences() is empty for a matching map and lists every difference otherwise", () => {
  assert.deepEqual(mapDifferences(SPEC, { ...SPEC }), []);
  assert.deepEqual(
    mapDifferences(SPEC, { type: 2, keySize: 8, valueSize: 4, maxEntries: 32, flags: 1 }),
    [
      "type 2, expected 1",
      "key size 8, expected 4",
      "max entries 32, expected 16",
      "flags 0x1, expected 0x0",
    ],
  );
});

Deno.test("pinPath() joins without doubling the root's slash", () => {
  assert.equal(pinPath("/sys/fs/bpf/x", "endpoint_map"), "/sys/fs/bpf/x/endpoint_map");
  assert.equal(pinPath("/", "endpoint_map"), "/endpoint_map");
});
