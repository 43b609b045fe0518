import assert from "node:assert/strict";
import { wallClockOf } from "./clock.ts";

const S = 1_000_000_000n;

Deno.test("wallClockOf() follows the wall clock when it moves against the kernel's", () => {
  let mono = 100n * S;
  let wall = 1_000_000;
  const clock = wallClockOf(() => mono, () => wall, 60n * S);
  assert.equal(clock.startMono, 100n * S);
  assert.equal(clock.wallMs(100n * S + 500_000_000n), 1_000_500);
  // Ten minutes on, the wall clock was set 2 s ahead (NTP).
  mono += 600n * S;
  wall += 600_000 + 2_000;
  assert.equal(clock.wallMs(mono), wall, "the offset taken at start is still used");
  // Within the minute that follows, the new offset stands.
  mono += 30n * S;
  wall += 30_000;
  assert.equal(clock.wallMs(mono - S), wall - 1_000);
});
