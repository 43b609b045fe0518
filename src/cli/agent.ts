// `ebpfcni agent run|status`: the node's policy agent, and its status asked over its socket
// (agent_ask.ts; `policy explain` asks it too, policy_explain.ts).
import { quote } from "../spec/text.ts";
import { DEFAULT_STATE_DIR } from "../spec/cni.ts";
import { dirPathProblem } from "../spec/name_rules.ts";
import { type Cidr, CidrError, parseCidr } from "../spec/ipv4.ts";
import type { AgentStatus } from "../agent/agent_core.ts";
import { describeWait } from "../agent/rule_ledger.ts";
import type { LogLevel } from "../log.ts";
import { LOG_LEVELS } from "../log.ts";
import type { RoutingChoice, SourceChoice } from "../agent/run.ts";
import type { FlowLogOptions } from "../agent/flow_log.ts";
import {
  DEFAULT_VXLAN_PORT,
  DEFAULT_VXLAN_VNI,
  ROUTING_MODES,
  type RoutingMode,
  VXLAN_DEVICE,
} from "../spec/routing.ts";
import { FlagValueError, type ParsedFlags } from "./args.ts";
import { type Command, command } from "./command.ts";
import { CommandError, EXIT_FAILED, EXIT_NOT_ENFORCED, EXIT_OK, UsageError } from "./errors.ts";
import { renderStatus } from "./agent_status_view.ts";
import { ask, SOCKET_HELP, socketOf } from "./agent_ask.ts";
import { groupIdIn } from "../spec/group_file.ts";
import {
  DEFAULT_METRICS_ADDRESS,
  type ListenAddress,
  parseListenAddress,
} from "../agent/http_address.ts";

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
    throw new FlagValueError("not a node name (without --node it is the host name)");
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

/** --routing MODE, --vxlan-port PORT, --vxlan-vni VNI. */
export function routingOf(values: ParsedFlags["values"]): RoutingChoice {
  const v = values.routing;
  const mode = typeof v === "string" ? v : "vxlan";
  if (!(ROUTING_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`Invalid --routing ${quote(mode)}: must be ${ROUTING_MODES.join(", ")}`);
  }
  const number = (flag: string, max: number, fallback: number): number => {
    const text = values[flag];
    if (typeof text !== "string") return fallback;
    const n = /^[0-9]{1,8}$/.test(text) ? Number(text) : NaN;
    if (!(n >= 1 && n <= max)) {
      throw new UsageError(`Invalid --${flag} ${quote(text)}: must be a number from 1 to ${max}`);
    }
    if (mode !== "vxlan") throw new UsageError(`--${flag} needs --routing vxlan`);
    return n;
  };
  return {
    mode: mode as RoutingMode,
    vxlan: {
      port: number("vxlan-port", 65535, DEFAULT_VXLAN_PORT),
      vni: number("vxlan-vni", 2 ** 24 - 1, DEFAULT_VXLAN_VNI),
    },
  };
}

/** --masquerade (default) / --no-masquerade and --non-masquerade-cidr: the non-masquerade
 * CIDRs, or undefined when the agent does not masquerade. */
export function masqueradeOf(
  values: ParsedFlags["values"],
  lists: ParsedFlags["lists"],
): { nonMasquerade: Cidr[] } | undefined {
  if (values.masquerade === true && values["no-masquerade"] === true) {
    throw new UsageError("Give one of --masquerade and --no-masquerade, not both");
  }
  const cidrs = lists?.["non-masquerade-cidr"] ?? [];
  if (values["no-masquerade"] === true) {
    if (cidrs.length > 0) throw new UsageError("--non-masquerade-cidr needs --masquerade");
    return undefined;
  }
  return {
    nonMasquerade: cidrs.map((text) => {
      try {
        return parseCidr(text);
      } catch (err) {
        const why = err instanceof CidrError ? err.message.replace(/^[^:]*: /, "") : String(err);
        throw new UsageError(`Invalid --non-masquerade-cidr ${quote(text)}: ${why}`);
      }
    }),
  };
}

const run = command({
  synopsis:
    "agent run (--manifests DIR | --kubeconfig FILE | --in-cluster) [--node NAME] [--state-dir DIR] [--data-dir DIR] [--socket PATH] [--socket-group GROUP] [--resync SECONDS] [--add-wait SECONDS] [--no-cni-handoff] [--keep-established] [--routing vxlan|native|none [--vxlan-port PORT] [--vxlan-vni VNI]] [--metrics-address HOST:PORT] [--masquerade | --no-masquerade] [--non-masquerade-cidr CIDR]... [--flow-log FILE|- [--flow-log-max-size SIZE] [--flow-log-keep N]] [--log-level LEVEL]",
  summary: "run the node's NetworkPolicy agent",
  help:
    `Runs the policy agent of this node until SIGINT or SIGTERM. It reads Namespaces, Pods, Nodes
and NetworkPolicies (networking.k8s.io/v1) from its source, compiles them into the datapath's
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
  --data-dir DIR      where the agent keeps its own records, one file per pin directory
                      (which policy each rule_map entry is for, kept across restarts);
                      default: the state directory
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
  --routing MODE      how this node reaches other nodes' pod CIDRs (the Node objects'
                      spec.podCIDRs and InternalIP): vxlan (default), an overlay over the
                      nodes' addresses (device ${VXLAN_DEVICE}, MTU: the underlay's - 50, pods
                      get it unless the network config sets "mtu"); native, a route per
                      node via its address (nodes on one link; one that is not is reported
                      and not routed); none (BGP, cloud routes or another component route)
  --vxlan-port PORT   the overlay's UDP port (default ${DEFAULT_VXLAN_PORT}, the Linux default)
  --vxlan-vni VNI     the overlay's VXLAN network identifier (default ${DEFAULT_VXLAN_VNI})
  --metrics-address HOST:PORT
                      where to serve /metrics (Prometheus), /healthz and /readyz over
                      HTTP (default ${DEFAULT_METRICS_ADDRESS}; port 0: any free one, shown by
                      "agent status"; empty: none)
  --masquerade        (default) traffic from this node's pods (its pod CIDRs) to addresses
                      outside every node's pod CIDR, every node's address and every
                      --non-masquerade-cidr leaves with the node's address (nftables table
                      "ip ebpfcni", replaced as nodes change, kept when the agent stops;
                      "ebpfcni masquerade cleanup" removes it)
  --no-masquerade     leave nftables alone (another component masquerades)
  --non-masquerade-cidr CIDR
                      a destination range never masqueraded to (repeatable)
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
    // kubelet's default node name: the host name, lower case.
    node: { type: "string", parse: nodeName, default: () => Deno.hostname().toLowerCase() },
    "state-dir": { type: "string", parse: absolutePath, default: DEFAULT_STATE_DIR },
    "data-dir": { type: "string", parse: absolutePath },
    socket: { type: "string" },
    resync: { type: "string", parse: milliseconds, default: "30" },
    "add-wait": { type: "string", parse: milliseconds, default: "8" },
    "no-cni-handoff": { type: "boolean" },
    "flow-log": { type: "string", parse: flowLogPath },
    "flow-log-max-size": { type: "string", parse: flowLogSize },
    "flow-log-keep": { type: "string", parse: flowLogKeep },
    "keep-established": { type: "boolean" },
    "metrics-address": { type: "string", parse: metricsAddress, default: DEFAULT_METRICS_ADDRESS },
    routing: { type: "string" },
    "vxlan-port": { type: "string" },
    "vxlan-vni": { type: "string" },
    masquerade: { type: "boolean" },
    "no-masquerade": { type: "boolean" },
    "non-masquerade-cidr": { type: "string", multiple: true },
    "log-level": { type: "string", parse: logLevel, default: "info" },
    "socket-group": { type: "string", parse: groupOf },
  },
  async run(ctx, { values, lists }) {
    const source = sourceOf(values);
    const routing = routingOf(values);
    const masquerade = masqueradeOf(values, lists);
    const flowLog = flowLogOf(values);
    const socket = socketOf(values, ctx.env);
    const { node, "state-dir": stateDir, "socket-group": socketGroup } = values;
    const { runAgent, AgentStartError } = await import("../agent/run.ts");
    const { jsonLog } = await import("../log.ts");
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
        ...(values["data-dir"] === undefined ? {} : { dataDir: values["data-dir"] }),
        socket,
        ...(socketGroup === undefined ? {} : { socketGroup }),
        resyncMs: values.resync,
        addWaitMs: values["add-wait"],
        cniHandoff: values["no-cni-handoff"] !== true,
        // Loaded at the first handed-over call, as the plugin process would load it.
        runCni: async (io) => (await import("../cni/dispatch.ts")).runCni(io),
        ...(flowLog && { flowLog }),
        keepEstablished: values["keep-established"] === true,
        metricsAddress: values["metrics-address"],
        routing,
        ...(masquerade && { masquerade }),
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
