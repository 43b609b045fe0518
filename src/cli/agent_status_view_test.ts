import assert from "node:assert/strict";
import { renderStatus } from "./agent_status_view.ts";
import type { AgentStatus } from "../agent/agent_core.ts";

const STATUS: AgentStatus = {
  synced: true,
  generation: 4,
  appliedGeneration: 4,
  node: "n1",
  attachments: 2,
  pods: 3,
  namespaces: 1,
  policies: 1,
  entries: { ipcache: 3, isolation: 1, rules: 2, cidrs: 0, hosts: 1 },
  lastReconcile: null,
  failed: [],
  notEnforced: [],
  problems: [],
  problemsNotShown: 0,
  nodes: [],
};

Deno.test("agent status text: the CNI calls the agent ran by command, and those it declined", () => {
  const text = renderStatus({
    ...STATUS,
    cni: { handled: { ADD: 2, DEL: 1 }, declined: 1, lastMs: { ADD: 5.5, DEL: 3 } },
  });
  assert.match(
    text,
    /^cni calls: +ADD 2 \(last 5.5 ms\), DEL 1 \(last 3 ms\) handled here, 1 declined$/m,
  );
  assert.match(
    renderStatus({ ...STATUS, cni: { handled: {}, declined: 0, lastMs: {} } }),
    /^cni calls: +none handled here, 0 declined$/m,
  );
  assert.doesNotMatch(renderStatus(STATUS), /cni calls/);
  assert.match(text, /^attachments: +2 on this node$/m);
});

Deno.test("agent status text: each policy not enforced with its pods and the room it needs", () => {
  assert.match(renderStatus(STATUS), /^enforced: +every policy$/m);
  const text = renderStatus({
    ...STATUS,
    notEnforced: [{
      policy: "x/new",
      needed: 3,
      free: 0,
      reason: "rule_map holds 131072 of 131072 entries",
      since: "2026-01-01T00:00:00.000Z",
      place: 1,
      keepsPrevious: false,
      pods: ["x/a", "x/b"],
      podCount: 5,
    }],
  });
  assert.match(text, /^enforced: +NOT 1 policy \(rule_map full; their pods are isolated\)$/m);
  assert.match(
    text,
    /^not enforced: x\/new \(#1 in line since 2026-01-01T00:00:00.000Z; selects pods x\/a, x\/b and 3 more\): needs 3 more rule_map entries, 0 free \(rule_map holds 131072 of 131072 entries\)$/m,
  );
});

Deno.test("agent status text: the flow log's path and counters, when there is one", () => {
  const text = renderStatus({
    ...STATUS,
    flowLog: { path: "/var/log/flows.log", written: 12, dropped: 1, rotations: 2 },
  });
  assert.match(
    text,
    /^flow log: +\/var\/log\/flows.log, 12 line\(s\) written, 1 dropped, 2 rotation\(s\)$/m,
  );
  assert.doesNotMatch(renderStatus(STATUS), /flow log/);
});

Deno.test("agent status text: whether connections are revoked, what ended by reason, and the last pass", () => {
  const text = renderStatus({
    ...STATUS,
    revocation: {
      mode: "revoke",
      ended: { denied: 3, "identity-changed": 1 },
      last: { at: "2026-12-07T22:00:00.000Z", ms: 1.25, checked: 40, ended: 2 },
    },
  });
  assert.match(
    text,
    /^connections: +revoked when no longer allowed; ended 3 denied, 1 identity changed; last pass 2026-12-07T22:00:00.000Z, 1.3 ms, 40 checked, 2 ended$/m,
  );
  const kept = renderStatus({
    ...STATUS,
    revocation: {
      mode: "keep-established",
      ended: { denied: 0, "identity-changed": 0 },
      last: null,
    },
  });
  assert.match(
    kept,
    /^connections: +established ones kept; ended 0 denied, 0 identity changed; no pass yet$/m,
  );
});

Deno.test("agent status text: the masquerade's state, or off", () => {
  assert.match(
    renderStatus({ ...STATUS, masquerade: { state: "applied", rules: "from 10.1.0.0/24 except" } }),
    /^masquerade: +table ip ebpfcni, from 10\.1\.0\.0\/24 except$/m,
  );
  assert.match(
    renderStatus({ ...STATUS, masquerade: { state: "waiting", reason: 'node "a" is not known' } }),
    /^masquerade: +waiting: node "a" is not known$/m,
  );
  assert.match(renderStatus({ ...STATUS, masquerade: null }), /^masquerade: +off$/m);
  assert.doesNotMatch(renderStatus(STATUS), /masquerade/);
});

Deno.test("agent status text: where the metrics are served, or off", () => {
  assert.match(
    renderStatus({ ...STATUS, metricsAddress: "127.0.0.1:9972" }),
    /^metrics: +http:\/\/127\.0\.0\.1:9972\/metrics$/m,
  );
  assert.match(renderStatus({ ...STATUS, metricsAddress: null }), /^metrics: +off$/m);
});

Deno.test("agent status text: an agent older than the rule_map ledger (no notEnforced) is shown", () => {
  const { notEnforced: _, ...older } = STATUS;
  assert.match(renderStatus(older as AgentStatus), /^enforced: +every policy$/m);
});

Deno.test("agent status text: a flow log whose events are not read says why", () => {
  const flowLog = { path: "/var/log/f", written: 3, dropped: 0, rotations: 0 };
  assert.match(
    renderStatus({ ...STATUS, flowLog }),
    /^flow log: +\/var\/log\/f, 3 line\(s\) written, 0 dropped, 0 rotation\(s\)$/m,
  );
  assert.match(
    renderStatus({ ...STATUS, flowLog: { ...flowLog, error: "epoll_wait: EBADF" } }),
    /^flow log: .*; NOT WRITING: the events are not read: epoll_wait: EBADF$/m,
  );
});

Deno.test("agent status text: how many problems the list leaves out", () => {
  const text = renderStatus({ ...STATUS, problems: ["a: bad"], problemsNotShown: 7 });
  assert.match(text, /^problem: a: bad\nproblems not shown: 7$/m);
  assert.doesNotMatch(renderStatus(STATUS), /not shown/);
});

Deno.test("agent status text: each node with its pod CIDR, address, routing state and problems", () => {
  const text = renderStatus({
    ...STATUS,
    nodes: [
      {
        name: "n1",
        podCidrs: ["10.244.1.0/24"],
        address: "192.168.1.1",
        self: true,
        routing: { routed: true, via: "this node" },
        problems: [],
      },
      {
        name: "n2",
        podCidrs: [],
        address: null,
        self: false,
        routing: { routed: false, reason: "routing not running" },
        problems: ['Node "n2": spec.podCIDRs: no IPv4 pod CIDR assigned (yet): not routed'],
      },
      {
        name: "n3",
        podCidrs: ["10.244.3.0/24"],
        address: "192.168.1.3",
        self: false,
        routing: { routed: true, via: "vxlan 192.168.1.3" },
        problems: [],
      },
    ],
  });
  assert.match(text, /^nodes: +3$/m);
  assert.match(
    text,
    /^node: +n1 \(this node\) +10\.244\.1\.0\/24 +192\.168\.1\.1 +this node$/m,
  );
  assert.match(text, /^node: +n2 +no pod CIDR +no address +not routed: routing not running$/m);
  assert.match(text, /^node problem: Node "n2": spec\.podCIDRs: no IPv4 pod CIDR/m);
  assert.match(
    text,
    /^node: +n3 +10\.244\.3\.0\/24 +192\.168\.1\.3 +routed via vxlan 192\.168\.1\.3$/m,
  );
});

Deno.test("agent status text: the routing mode, remote nodes routed, and why the others are not", () => {
  const text = renderStatus({
    ...STATUS,
    routing: {
      mode: "native",
      nodes: {
        n1: { routed: true, via: "this node" },
        n2: { routed: true, via: "10.0.0.2 dev eth0" },
        n3: {
          routed: false,
          reason: "its address 10.9.0.3 is not on a subnet this node is connected to",
        },
      },
      lastPass: { at: 1, writes: 1, errors: [] },
    },
  });
  assert.match(text, /^routing: +native, 1 of 2 remote node\(s\) routed$/m);
  assert.match(text, /^not routed: +n3: its address 10\.9\.0\.3 is not on a subnet/m);
  assert.doesNotMatch(text, /n2:/);
  assert.doesNotMatch(renderStatus(STATUS), /routing/);
});
