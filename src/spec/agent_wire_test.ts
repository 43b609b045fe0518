import assert from "node:assert/strict";
import { parseRequest, RequestError } from "./agent_wire.ts";

const add = {
  op: "add",
  namespace: "x",
  name: "web-0",
  containerId: "abc123",
  ifname: "eth0",
  ips: ["10.1.2.3"],
};

Deno.test("agent requests: a well-formed cni, add, del, status, sync, explain and monitor parse", () => {
  assert.deepEqual(parseRequest(JSON.stringify(add)), add);
  assert.deepEqual(
    parseRequest(JSON.stringify({ op: "del", containerId: "abc", ifname: "eth0", ips: [] })),
    { op: "del", containerId: "abc", ifname: "eth0", ips: [] },
  );
  assert.deepEqual(parseRequest('{"op":"status"}'), { op: "status" });
  const cni = { op: "cni", env: { CNI_COMMAND: "ADD", CNI_NETNS: "/x" }, stdin: "{}" };
  assert.deepEqual(parseRequest(JSON.stringify(cni)), cni);
  assert.deepEqual(parseRequest('{"op":"sync"}'), { op: "sync" });
  assert.deepEqual(parseRequest('{"op":"monitor","eventsMapId":7}'), {
    op: "monitor",
    verdict: "drop",
    eventsMapId: 7,
  });
  assert.deepEqual(
    parseRequest(JSON.stringify({
      op: "explain",
      from: { ip: "10.0.0.1" },
      to: { namespace: "x", name: "a" },
      port: 80,
    })),
    {
      op: "explain",
      from: { ip: "10.0.0.1" },
      to: { namespace: "x", name: "a" },
      protocol: "TCP",
      port: 80,
    },
  );
});

Deno.test("agent requests: each malformed field is refused by name", () => {
  const cases: [unknown, RegExp][] = [
    [
      { ...add, op: "drop" },
      /"op" must be cni, add, del, status, sync, explain, monitor or podcidr, not the string "drop"/,
    ],
    [{ ...add, namespace: 5 }, /"namespace" must be a string, not "5"/],
    [{ op: "cni", env: [], stdin: "" }, /"env" must be an object/],
    [{ op: "cni", env: { CNI_COMMAND: "VERSION" }, stdin: "" }, /"env.CNI_COMMAND" must be one of/],
    [{ op: "cni", env: { CNI_COMMAND: "DEL" }, stdin: "" }, /must be one of ADD, CHECK, not/],
    [{ op: "cni", env: { CNI_COMMAND: "ADD", A: null }, stdin: "" }, /"env.A" must be a string/],
    [{ op: "cni", env: { CNI_COMMAND: "ADD" }, stdin: 1 }, /"stdin" must be a string/],
    [{ ...add, namespace: "a_b" }, /"namespace" "a_b" is not a namespace name/],
    [{ ...add, name: "-x" }, /"name" "-x" is not a pod name/],
    [{ ...add, containerId: "a/b" }, /"containerId" "a\/b" is not a container ID/],
    [{ ...add, ifname: "" }, /"ifname" "" must not be empty/],
    [{ ...add, ips: [1] }, /"ips\[0\]" must be a string/],
    [{ ...add, ips: ["::1"] }, /IPv6 addresses are not supported/],
    [{ ...add, ips: Array(17).fill("10.0.0.1") }, /at most 16/],
    [{ op: "monitor", verdict: "drops", eventsMapId: 1 }, /"verdict" must be drop, allow or all/],
    [{ op: "monitor" }, /"eventsMapId" must be a map id, not nothing/],
    [{ op: "monitor", eventsMapId: -1 }, /"eventsMapId" must be a map id, not "-1"/],
    [{ op: "explain", from: {}, to: { ip: "1.2.3.4" }, port: 1 }, /"namespace" must be a string/],
    [{ op: "explain", from: { ip: "1.2.3" }, to: { ip: "1.2.3.4" }, port: 1 }, /"from.ip" "1.2.3"/],
    [
      { op: "explain", from: { ip: "1.2.3.4" }, to: { ip: "1.2.3.4" }, port: 1, protocol: "ICMP" },
      /"protocol" must be TCP, UDP or SCTP/,
    ],
    [{ op: "explain", from: { ip: "1.2.3.4" }, to: { ip: "1.2.3.4" }, port: 1.5 }, /"port"/],
  ];
  for (const [req, want] of cases) {
    assert.throws(() => parseRequest(JSON.stringify(req)), (e: unknown) => {
      assert.ok(e instanceof RequestError);
      assert.match(e.message, want);
      return true;
    });
  }
  assert.throws(() => parseRequest("{"), /not valid JSON/);
  assert.throws(() => parseRequest("null"), /a request is a JSON object, not null/);
});
