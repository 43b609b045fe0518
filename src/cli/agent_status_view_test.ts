import assert from "node:assert/strict";
import { renderStatus } from "./agent_status_view.ts";
import type { AgentStatus } from "../agent/agent.ts";

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
  problems: [],
  problemsNotShown: 0,
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

Deno.test("agent status text: how many problems the list leaves out", () => {
  const text = renderStatus({ ...STATUS, problems: ["a: bad"], problemsNotShown: 7 });
  assert.match(text, /^problem: a: bad\nproblems not shown: 7$/m);
  assert.doesNotMatch(renderStatus(STATUS), /not shown/);
});
