import assert from "node:assert/strict";
import { handoffSocket } from "./handoff.ts";
import { DEFAULT_AGENT_SOCKET } from "../spec/agent_wire.ts";

const k8s = (more: Record<string, unknown> = {}) => ({
  cniVersion: "1.1.0",
  name: "n",
  type: "ebpfcni",
  policyMode: "kubernetes",
  ...more,
});

Deno.test("handoff: ADD and CHECK in kubernetes mode go to the config's agent socket", () => {
  for (const cmd of ["ADD", "CHECK"]) {
    assert.equal(handoffSocket({ CNI_COMMAND: cmd }, k8s()), DEFAULT_AGENT_SOCKET);
  }
  assert.equal(
    handoffSocket({ CNI_COMMAND: "ADD" }, k8s({ agentSocket: "/run/x/a.sock" })),
    "/run/x/a.sock",
  );
});

Deno.test("handoff: DEL and other commands, identity mode, agentHandoff false and bad configs run here", () => {
  for (const cmd of ["DEL", "GC", "STATUS", "VERSION", ""]) {
    assert.equal(handoffSocket({ CNI_COMMAND: cmd }, k8s()), undefined, cmd);
  }
  const add = { CNI_COMMAND: "ADD" };
  assert.equal(handoffSocket(add, k8s({ policyMode: "identity" })), undefined);
  assert.equal(handoffSocket(add, { name: "n" }), undefined);
  assert.equal(handoffSocket(add, k8s({ agentHandoff: false })), undefined);
  // Malformed: the in-process run gives the spec's error for it.
  assert.equal(handoffSocket(add, "kubernetes"), undefined);
  assert.equal(handoffSocket(add, ["kubernetes"]), undefined);
  assert.equal(handoffSocket(add, k8s({ agentSocket: "relative.sock" })), undefined);
  assert.equal(handoffSocket(add, k8s({ agentSocket: 5 })), undefined);
});
