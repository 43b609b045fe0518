import assert from "node:assert/strict";
import { formatListenAddress, parseListenAddress } from "./http_address.ts";

Deno.test("parseListenAddress() takes IPv4, [IPv6] and localhost with a port, 0 included", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:9972"), { hostname: "127.0.0.1", port: 9972 });
  assert.deepEqual(parseListenAddress("0.0.0.0:0"), { hostname: "0.0.0.0", port: 0 });
  assert.deepEqual(parseListenAddress("[::1]:80"), { hostname: "::1", port: 80 });
  assert.deepEqual(parseListenAddress("localhost:1"), { hostname: "localhost", port: 1 });
});

Deno.test("parseListenAddress() names what is wrong", () => {
  assert.deepEqual(parseListenAddress("9972"), { problem: "must be HOST:PORT" });
  assert.ok("problem" in parseListenAddress(":9972"));
  assert.deepEqual(parseListenAddress("1.2.3.4:65536"), {
    problem: "port 65536 out of range (0-65535)",
  });
  assert.deepEqual(parseListenAddress("[nope]:1"), {
    problem: "not an IPv6 address in brackets",
  });
  assert.match(String((parseListenAddress("1.2.3:1") as { problem: string }).problem), /^host: /);
});

Deno.test("formatListenAddress() brackets IPv6", () => {
  assert.equal(formatListenAddress({ hostname: "::1", port: 5 }), "[::1]:5");
  assert.equal(formatListenAddress({ hostname: "10.0.0.1", port: 5 }), "10.0.0.1:5");
});
