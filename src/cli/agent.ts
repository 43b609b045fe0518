// `ebpfcni agent run|status` and `ebpfcni policy explain`: the node's policy agent, and what
// the CLI asks it over its socket.
import { errorMessage, quote } from "../spec/text.ts";
import { DEFAULT_AGENT_SOCKET } from "../spec/agent.ts";
import type { ExplainEnd, ExplainRequest } from "../spec/agent.ts";
import { DEFAULT_STATE_DIR } from "../spec/cni.ts";
import { dirPathProblem } from "../spec/names.ts";
import { ipv4Problem } from "../spec/ipv4.ts";
import { requestLine, RpcError } from "../net/unix_rpc.ts";
import type { AgentStatus, Explanation } from "../agent/agent.ts";
import { describeWait } from "../agent/rule_ledger.ts";
import type { LogLevel } from "../agent/log.ts";
import { LOG_LEVELS } from "../agent/log.ts";
import type { SourceChoice } from "../agent/run.ts";
import type { FlowLogOptions } from "../agent/flow_log.ts";
import { FlagValueError } from "./args.ts";
import { type Command, command } from "./command.ts";
import { CommandError, EXIT_FAILED, EXIT_NOT_ENFORCED, EXIT_OK, UsageError } from "./errors.ts";
import { renderExplanation } from "./explain_view.ts";
import { renderStatus } from "./agent_status_view.ts";
import { groupIdIn } from "../spec/group_file.ts";
import {
  DEFAULT_METRICS_ADDRESS,
  type ListenAddress,
  parseListenAddress,
} from "../agent/http_address.ts";

const SOCKET_HELP = `--socket PATH is the agent's socket (default ${DEFAULT_AGENT_SOCKET}, or
EBPFCNI_AGENT_SOCKET).`;

function socketOf(values: { socket?: unknown }, env: Record<string, string>): string {
  const v = typeof values.socket === "string"
    ? values.socket
    : env.EBPFCNI_AGENT_SOCKET ?? DEFAULT_AGENT_SOCKET;
  const problem = dirPathProblem(v);
  if (problem !== undefined) throw new UsageError(`Invalid --socket ${quote(v)}: ${problem}`);
  return v;
}

/** Asks the agent; its error answers and an unreachable agent are failures (exit 1). */
async function ask(
  socket: string,
  req: unknown,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  let reply: unknown;
  try {
    reply = await requestLine(socket, req, timeoutMs);
  } catch (err) {
    if (err instanceof RpcError && err.kind === "unreachable") {
      throw new CommandError(
        `The policy agent is not reachable on ${quote(socket)}: is "ebpfcni agent run" running?`,
        { cause: err },
      );
    }
    throw new CommandError(`The policy agent on ${quote(socket)}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const r = reply as Record<string, unknown>;
  if (typeof r?.error === "string") throw new CommandError(`The policy agent: ${r.error}`);
  return r;
}

/** A group by GID or by its name in /etc/group. */
function groupOf(text: string): number {
  if (/^[0-9]{1,10}$/.test(text) && Number(text) < 2 ** 32 - 1) return Number(text);
  let groups = "";
  try {
    groups = Deno.readTextFileSync("/etc/group");
  } catch {
    // no group file: only GIDs
  }
  const gid = groupIdIn(groups, text);
  if (gid === undefined) throw new FlagValueError("no such group in /etc/group");
  return gid;
}

function positiveSeconds(text: string): number {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || !(Number(text) > 0) || Number(text) > 86400) {
    throw new FlagValueError("must be seconds, more than 0");
  }
  return Number(text);
}

const milliseconds = (text: string) => positiveSeconds(text) * 1000;

/** An absolute path (a directory, a socket). */
function absolutePath(text: string): string {
  const problem = dirPathProblem(text);
  if (problem !== undefined) throw new FlagValueError(problem);
  return text;
}

function nodeName(text: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(text) || text.length > 253) {
    throw new FlagValueError("not a node name");
  }
  return text;
}

function logLevel(text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) {
    throw new FlagValueError(`must be ${LOG_LEVELS.join(", ")}`);
  }
  return text as LogLevel;
}

function sourceOf(
  values: {
    manifests?: string | undefined;
    kubeconfig?: string | undefined;
    "in-cluster"?: true | undefined;
  },
): SourceChoice {
  const given = (["manifests", "kubeconfig", "in-cluster"] as const).filter((k) =>
    values[k] !== undefined
  );
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? "Missing source: give --manifests DIR, --kubeconfig FILE or --in-cluster"
        : `Give one source, not ${given.map((g) => `--${g}`).join(" and ")}`,
    );
  }
  if (values.manifests !== undefined) return { kind: "manifests", dir: values.manifests };
  if (values.kubeconfig !== undefined) {
    return { kind: "kubernetes", kubeconfig: values.kubeconfig };
  }
  return { kind: "kubernetes", inCluster: true };
}

const SIZE_UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

function flowLogPath(text: string): string {
  const problem = text === "-" ? undefined : dirPathProblem(text);
  if (problem !== undefined) throw new FlagValueError(`${problem} (a file, or - for stdout)`);
  return text;
}

function flowLogSize(text: string): number {
  const m = text.match(/^([0-9]{1,12})([KMG]?)$/);
  const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2]!]! : NaN;
  if (!(bytes >= 1 && bytes <= 1024 ** 4)) {
    throw new FlagValueError(
      "must be bytes (a suffix K, M or G multiplies by 1024s), from 1 to 1T",
    );
  }
  return bytes;
}

function flowLogKeep(text: string): number {
  const keep = /^[0-9]{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(keep <= 100)) throw new FlagValueError("must be a count from 0 to 100");
  return keep;
}

/** --flow-log FILE|- with its rotation flags; undefined without --flow-log. */
export function flowLogOf(
  values: {
    "flow-log"?: string | undefined;
    "flow-log-max-size"?: number | undefined;
    "flow-log-keep"?: number | undefined;
  },
): FlowLogOptions | undefined {
  const path = values["flow-log"];
  if (path === undefined) {
    const stray = (["flow-log-max-size", "flow-log-keep"] as const).find((k) =>
      values[k] !== undefined
    );
    if (stray !== undefined) throw new UsageError(`--${stray} needs --flow-log FILE`);
    return undefined;
  }
  // Their defaults live here: given without --flow-log, they are a mistake to report.
  return {
    path,
    maxBytes: values["flow-log-max-size"] ?? 16 * 1024 ** 2,
    keep: values["flow-log-keep"] ?? 3,
  };
}

/** --metrics-address: HOST:PORT, or empty for none. */
function metricsAddress(text: string): ListenAddress | undefined {
  if (text === "") return undefined;
  const a = parseListenAddress(text);
  if ("problem" in a) throw new FlagValueError(a.problem);
  return a;
}

const run = command({
  synopsis:
    "agent run (--manifests DIR | --kubeconfig FILE | --in-cluster) [--node NAME] [--state-dir DIR] [--socket PATH] [--socket-group GROUP] [--resync SECONDS] [--add-wait SECONDS] [--no-cni-handoff] [--keep-established] [--metrics-address HOST:PORT] [--flow-log FILE|- [--flow-log-max-size SIZE] [--flow-log-keep N]] [--log-level LEVEL]",
  summary: "run the node's NetworkPolicy agent",
  help: `Runs the policy agent of this node until SIGINT or SIGTERM. It reads Namespaces, Pods and
NetworkPolicies (networking.k8s.io/v1) from its source, compiles them into the datapath's
kubernetes-mode maps under the pin directory, and answers the CNI plugin's ADD (which asks
it for each pod's identity before the pod's interface is up) and DEL on its socket. It also
runs the plugin's ADD and CHECK calls handed over to it (kubernetes mode, config
"agentHandoff", default true), warm, so a call costs less; the plugin runs a call itself
when no agent listens.

Sources (one):
  --manifests DIR     every *.yaml, *.yml and *.json file in DIR (multi-document YAML and
                      lists); changes are picked up while running; a file that does not
                      parse is reported and changes nothing
  --kubeconfig FILE   the API server of FILE's current context (list and watch)
  --in-cluster        the pod's service account (in a DaemonSet)

  --node NAME         this node's name: pods whose spec.nodeName it is are local (default:
                      the host name)
  --state-dir DIR     the CNI plugin's "stateDir", where it records attachments (default
                      ${DEFAULT_STATE_DIR})
  --resync SECONDS    how often the maps are read again and drift repaired (default 30)
  --add-wait SECONDS  how long an ADD waits for its pod to show up in the source before
                      it fails with code 11 (default 8; the plugin gives up after 10)
  --no-cni-handoff    decline CNI calls handed over (the plugin then runs them itself): for
                      an agent that cannot see the host's network namespaces, CNI state and
                      lease directories and plugins (a container, as in the DaemonSet)
  --flow-log FILE|-   write every drop verdict as a JSON line (the fields of "ebpfcni
                      monitor --json") to FILE, or to stdout for -; as many as the
                      datapath reports (its rate limit per CPU, see "ebpfcni monitor")
  --flow-log-max-size SIZE
                      rotate FILE before it passes SIZE bytes (K, M, G: KiB, MiB, GiB;
                      default 16M): FILE becomes FILE.1, FILE.1 FILE.2, ...
  --flow-log-keep N   rotated files kept (default 3; 0: FILE is emptied instead)
  --keep-established  let tracked connections a policy, label or address change no longer
                      allows go on until they close; by default they end within the
                      reconcile that writes the change (their next packet is judged and
                      dropped). Connections whose ends changed identity end either way
  --metrics-address HOST:PORT
                      where to serve /metrics (Prometheus), /healthz and /readyz over
                      HTTP (default ${DEFAULT_METRICS_ADDRESS}; port 0: any free one, shown by
                      "agent status"; empty: none)
  --log-level LEVEL   debug, info (default), warn or error; logs are JSON lines on stderr
  --socket-group GROUP  a group (name or GID) whose members may use the socket besides
                      root (socket 0660): they can make the agent run CNI calls as root
  ${SOCKET_HELP}

When it stops, the maps keep what it wrote: the datapath goes on enforcing the last
policies, and ADD fails (code 11) until an agent runs again.`,
  flags: {
    manifests: { type: "string", parse: absolutePath },
    kubeconfig: { type: "string" },
    "in-cluster": { type: "boolean" },
    node: { type: "string", parse: nodeName, default: () => Deno.hostname() },
    "state-dir": { type: "string", parse: absolutePath, default: DEFAULT_STATE_DIR },
    socket: { type: "string" },
    "socket-group": { type: "string", parse: groupOf },
    resync: { type: "string", parse: milliseconds, default: "30" },
    "add-wait": { type: "string", parse: milliseconds, default: "8" },
    "no-cni-handoff": { type: "boolean" },
    "flow-log": { type: "string", parse: flowLogPath },
    "flow-log-max-size": { type: "string", parse: flowLogSize },
    "flow-log-keep": { type: "string", parse: flowLogKeep },
    "keep-established": { type: "boolean" },
    "metrics-address": { type: "string", parse: metricsAddress, default: DEFAULT_METRICS_ADDRESS },
    "log-level": { type: "string", parse: logLevel, default: "info" },
  },
  async run(ctx, { values }) {
    const source = sourceOf(values);
    const flowLog = flowLogOf(values);
    const socket = socketOf(values, ctx.env);
    const { node, "state-dir": stateDir, "socket-group": socketGroup } = values;
    const { runAgent, AgentStartError } = await import("../agent/run.ts");
    const { jsonLog } = await import("../agent/log.ts");
    const log = jsonLog(values["log-level"]);
    let stop = () => {};
    const stopSignal = new Promise<void>((resolve) => (stop = resolve));
    const onSignal = () => stop();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    try {
      await runAgent({
        source,
        node,
        pinDir: ctx.pinDir,
        stateDir,
        socket,
        ...(socketGroup === undefined ? {} : { socketGroup }),
        resyncMs: values.resync,
        addWaitMs: values["add-wait"],
        cniHandoff: values["no-cni-handoff"] !== true,
        ...(flowLog && { flowLog }),
        keepEstablished: values["keep-established"] === true,
        metricsAddress: values["metrics-address"],
        log,
        stopSignal,
      });
    } catch (err) {
      if (err instanceof AgentStartError) throw new CommandError(err.message, { cause: err });
      throw err;
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    }
    return EXIT_OK;
  },
});

const status = command({
  synopsis: "agent status [--json] [--wait-synced SECONDS] [--socket PATH]",
  summary: "what the policy agent holds and has applied",
  help: `Prints the agent's state: whether its source has synced, how many namespaces, pods and
policies it holds, the entries it keeps in the maps, its last reconcile, and the latest
problems its source reported. --json prints the same as an object.

--wait-synced SECONDS waits until the agent has applied everything its source held when the
call began (a manifest directory is read again first) and every policy is enforced: exit 0
once it is, 1 on timeout, 3 when it applied everything but some policies' rules do not fit
in rule_map (full) by the timeout (they are named; their pods are isolated).
${SOCKET_HELP}`,
  flags: {
    json: { type: "boolean" },
    "wait-synced": { type: "string", parse: positiveSeconds },
    socket: { type: "string" },
  },
  async run(ctx, { values }) {
    const socket = socketOf(values, ctx.env);
    const waitS = values["wait-synced"];
    let st: AgentStatus;
    let ok = true;
    let target: number | undefined;
    if (waitS === undefined) {
      st = (await ask(socket, { op: "status" })).status as AgentStatus;
    } else {
      const deadline = Date.now() + waitS * 1000;
      // The sync request re-reads a manifest directory and returns once that is applied; the
      // generation it reports is the target.
      st = (await ask(socket, { op: "sync" }, waitS * 1000 + 1000)).status as AgentStatus;
      target = st.generation;
      for (;;) {
        // An agent older than the rule_map ledger does not say (none then).
        ok = st.synced && st.appliedGeneration >= target && (st.notEnforced ?? []).length === 0;
        if (ok || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 50));
        st = (await ask(socket, { op: "status" })).status as AgentStatus;
      }
    }
    ctx.io.out(values.json ? JSON.stringify(st, null, 2) + "\n" : renderStatus(st));
    if (!ok && st.synced && st.appliedGeneration >= (target ?? 0)) {
      const n = (st.notEnforced ?? []).length;
      ctx.io.err(
        `ebpfcni: The agent applied its source, but ${n} polic${
          n === 1 ? "y is" : "ies are"
        } not enforced as written (rule_map full): ${
          (st.notEnforced ?? []).map((w) => `${w.policy} (${describeWait(w)})`).join("; ")
        }\n`,
      );
      return EXIT_NOT_ENFORCED;
    }
    if (!ok) {
      ctx.io.err(`ebpfcni: The agent has not applied its source within ${waitS} s\n`);
      return EXIT_FAILED;
    }
    return EXIT_OK;
  },
});

export const agentCommands: Record<string, Command> = { run, status };

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
