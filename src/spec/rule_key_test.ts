// Tests for port ranges as rule_map prefixes.
import assert from "node:assert/strict";
import { keyCoverage, portPrefixes, ruleKeys } from "./rule_key.ts";

function covered(from: number, to: number): number[] {
  return portPrefixes(from, to).flatMap((p) =>
    Array.from({ length: 2 ** (16 - p.bits) }, (_, i) => p.port + i)
  );
}

Deno.test("portPrefixes() covers a range exactly, with few aligned blocks", () => {
  for (const [from, to] of [[80, 80], [8000, 8100], [1, 65535], [0, 65535], [1024, 2047], [3, 5]]) {
    const ports = covered(from!, to!);
    assert.equal(ports.length, to! - from! + 1, `${from}-${to}`);
    assert.equal(ports[0], from);
    assert.equal(ports.at(-1), to);
    assert.deepEqual(ports, [...ports].sort((a, b) => a - b));
  }
  assert.equal(portPrefixes(1, 65535).length, 16);
  assert.deepEqual(portPrefixes(0, 65535), [{ port: 0, bits: 0 }]);
  assert.deepEqual(portPrefixes(8000, 8100).length <= 2 * 16, true);
  assert.throws(() => portPrefixes(10, 9), RangeError);
});

Deno.test("ruleKeys() uses prefix 72 for any traffic, 80 for any port, longer for ports", () => {
  const base = { subject: 1, dir: 0, peer: 2 };
  assert.deepEqual(ruleKeys(base), [{ ...base, prefixlen: 72, proto: 0, port: 0 }]);
  assert.deepEqual(ruleKeys({ ...base, proto: 6 }), [{
    ...base,
    prefixlen: 80,
    proto: 6,
    port: 0,
  }]);
  assert.deepEqual(ruleKeys({ ...base, proto: 6, ports: { from: 80, to: 80 } }), [
    { ...base, prefixlen: 96, proto: 6, port: 80 },
  ]);
  const keys = ruleKeys({ ...base, proto: 17, ports: { from: 8000, to: 8100 } });
  const back = keys.map(keyCoverage);
  assert.equal(back[0]?.ports?.from, 8000);
  assert.equal(back.at(-1)?.ports?.to, 8100);
});
