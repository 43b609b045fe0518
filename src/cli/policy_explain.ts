// `ebpfcni policy explain`: why a flow is allowed or dropped, asked of the policy agent
// (kubernetes mode); the identity-mode `policy` commands are policy.ts.
import { quote } from "../spec/text.ts";
import type { ExplainEnd, ExplainRequest } from "../spec/agent_wire.ts";
import { ipv4Problem } from "../spec/ipv4.ts";
import type { Explanation } from "../agent/agent_core.ts";
import type { Command } from "./command.ts";
import { EXIT_OK, UsageError } from "./errors.ts";
import { renderExplanation } from "./explain_view.ts";
import { ask, SOCKET_HELP, socketOf } from "./agent_ask.ts";

/** NS/POD or an IPv4 address. */
function endOf(text: string, flag: string): ExplainEnd {
  if (/^[0-9.]+$/.test(text)) {
    const problem = ipv4Problem(text);
    if (problem !== undefined) throw new UsageError(`Invalid ${flag} ${quote(text)}: ${problem}`);
    return { ip: text };
  }
  const m = text.match(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/);
  if (!m) {
    throw new UsageError(
      `Invalid ${flag} ${quote(text)}: must be NAMESPACE/POD or an IPv4 address`,
    );
  }
  return { namespace: m[1]!, name: m[3]! };
}

/** 80, 80/tcp, 53/UDP, 9000/sctp. */
export function parseFlowPort(
  text: string,
): { port: number; protocol: ExplainRequest["protocol"] } {
  const m = text.match(/^([0-9]{1,5})(?:\/(tcp|udp|sctp))?$/i);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(
      `Invalid --port ${quote(text)}: must be PORT[/tcp|udp|sctp], PORT 1-65535`,
    );
  }
  return { port, protocol: (m[2] ?? "tcp").toUpperCase() as ExplainRequest["protocol"] };
}

export const explainCommand: Command = {
  synopsis: "policy explain --from NS/POD --to NS/POD --port PORT[/PROTO] [--json] [--socket PATH]",
  summary: "why a flow is allowed or dropped (kubernetes mode, asks the agent)",
  help: `Asks the policy agent whether a connection from one pod (or address) to another is
allowed, and which NetworkPolicies and rules decide it, in each direction: the source pod's
egress and the destination pod's ingress. It also shows what the entries in the maps give
for it (the datapath's own lookups; the verdict is theirs), and names a policy deciding it
that is not enforced as written (its rules do not fit in rule_map). --port is the
destination pod's port (after a Service's translation), with its protocol (default tcp). --json prints the agent's answer as it is.
${SOCKET_HELP}`,
  flags: {
    from: { type: "string" },
    to: { type: "string" },
    port: { type: "string" },
    json: { type: "boolean" },
    socket: { type: "string" },
  },
  async run(ctx, { values }) {
    const need = (k: string) => {
      const v = values[k];
      if (typeof v !== "string") {
        throw new UsageError(
          `Missing required flag --${k} (usage: ebpfcni ${explainCommand.synopsis})`,
        );
      }
      return v;
    };
    const req: ExplainRequest = {
      op: "explain",
      from: endOf(need("from"), "--from"),
      to: endOf(need("to"), "--to"),
      ...parseFlowPort(need("port")),
    };
    const socket = socketOf(values, ctx.env);
    const e = (await ask(socket, req)).explanation as Explanation;
    ctx.io.out(values.json ? JSON.stringify(e, null, 2) + "\n" : renderExplanation(e));
    return EXIT_OK;
  },
};
