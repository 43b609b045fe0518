// The policy agent's socket protocol, shared by its server (src/agent/server.ts), the CNI
// plugin (src/cni/agent_client.ts) and the CLI: one JSON request per connection, one line,
// answered by one JSON line. A request that is not one of these is refused with the field at
// fault. Pure.
import type { Cidr } from "./ipv4.ts";
import type { RoutingMode } from "./routing.ts";
import { isObject } from "./json.ts";
import { describeValue, errorMessage, quote } from "./text.ts";
import { ipv4Problem } from "./ipv4.ts";
import { ID_RE, ifNameProblem, MAX_CONTAINER_ID } from "./name_rules.ts";

/** Where the agent listens unless told otherwise (and where the CNI config's agentSocket
 * points by default). */
export const DEFAULT_AGENT_SOCKET = "/run/ebpfcni/agent.sock";

/** A request is at most this long (an explain or an add is a few hundred bytes; a CNI call
 * handed over carries the runtime's environment and network config, a few KiB). */
export const MAX_REQUEST_BYTES = 256 * 1024;

/** The CNI commands a plugin process may hand to the agent (kubernetes mode). Not DEL: its
 * time is mostly the kernel's wait for the veth's deletion, which the agent would spend on
 * its one thread, one DEL after another (bench/RESULTS.md). */
export const HANDOFF_COMMANDS = ["ADD", "CHECK"] as const;

/** CNI ADD: the pod is being attached with these addresses; answer with its identity once its
 * entries (and the rules its policies need) are in the maps. */
export interface AddRequest {
  op: "add";
  namespace: string;
  name: string;
  containerId: string;
  ifname: string;
  /** The pod's IPv4 addresses (dotted quads). */
  ips: string[];
}

/** CNI DEL (and ADD's rollback): the attachment is gone. */
export interface DelRequest {
  op: "del";
  namespace?: string;
  name?: string;
  containerId: string;
  ifname: string;
  ips: string[];
}

/** One end of a flow to explain: a pod by name, or an address. */
export type ExplainEnd = { namespace: string; name: string } | { ip: string };

export interface ExplainRequest {
  op: "explain";
  from: ExplainEnd;
  to: ExplainEnd;
  protocol: "TCP" | "UDP" | "SCTP";
  port: number;
}

/** A whole CNI call handed over by the plugin process (kubernetes mode): the agent runs it
 * as the plugin would, warm, and answers with the plugin's exit code and stdout; or with
 * `fallback` (why) when it cannot, and the process runs it itself. */
export interface CniRequest {
  op: "cni";
  /** The plugin's environment (CNI_COMMAND one of HANDOFF_COMMANDS). */
  env: Record<string, string>;
  /** The network config as the runtime wrote it on stdin. */
  stdin: string;
  /** The plugin's build (src/build_stamp.ts): the agent runs only its own build's calls. */
  build?: string;
}

/** `ebpfcni monitor` through the agent, the one reader of the events ring buffer while it
 * runs: answered by `{"monitor": {...}}` then one line per verdict (FlowRecord, or
 * `{"lost": N}` where the client fell behind), until the client hangs up; or by
 * `{"declined": why}` when the agent does not read that ring buffer (another pin directory). */
export interface MonitorRequest {
  op: "monitor";
  verdict: "drop" | "allow" | "all";
  /** The id of the client's `events` map: the agent streams only its own. */
  eventsMapId: number;
}

/** This node's pod CIDR (the network config's "subnet": "usePodCidr"), from the agent's own
 * Node object: answered by `{"podCidr": "10.244.1.0/24", "node": name, "routing": mode}` (its
 * --routing, "none" when it does not route), or an error saying
 * why there is none (node unknown, no CIDR assigned yet, CIDR withheld). */
export interface PodCidrRequest {
  op: "podcidr";
}

export type CniReply = { code: number; stdout: string } | { fallback: string };

/** The plugin process a handed-over CNI call runs for: its pid (SO_PEERCRED; 0 when it is of
 * another PID namespace) and a signal aborted when the process is gone (the runtime gave up on
 * it) or a DEL of the same attachment came first: an ADD must then not complete. */
export interface CniCaller {
  /** The plugin process (SO_PEERCRED; 0 when it is of another PID namespace). */
  pid: number;
  /** Aborted when the process is gone (the runtime gave up on it) or a DEL of the same
   * attachment came first: an ADD must then not complete. */
  signal: AbortSignal;
  /** This node's pod CIDR, straight from the agent running the call ("usePodCidr"); throws
   * why there is none. */
  podCidr?: () => Promise<Cidr>;
  /** The agent's --routing ("none" when it does not route). */
  routing?: RoutingMode;
}

/** Runs one CNI call as the plugin process would (src/cni/dispatch.ts `runCni`): the agent
 * is handed it by its composition root (src/cli/agent.ts), so it imports nothing of cni/. */
export type CniRunner = (io: {
  env: Record<string, string>;
  stdin: () => Promise<Uint8Array>;
  stdout: (s: string) => void;
  caller?: CniCaller;
}) => Promise<number>;

export type AgentRequest =
  | CniRequest
  | AddRequest
  | DelRequest
  | { op: "status" }
  /** Re-read the source where that can be asked (a manifest directory), then reconcile;
   * answered with the status once the maps hold what was read. */
  | { op: "sync" }
  | ExplainRequest
  | MonitorRequest
  | PodCidrRequest;

export class RequestError extends Error {
  override name = "RequestError";
}

/** Kubernetes object names (DNS-1123 subdomain) and namespaces (DNS-1123 label). */
const SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function str(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== "string") {
    throw new RequestError(`"${key}" must be a string, not ${describeValue(v)}`);
  }
  return v;
}

function namespaceOf(o: Record<string, unknown>, key = "namespace"): string {
  const v = str(o, key);
  if (v.length > 63 || !LABEL_RE.test(v)) {
    throw new RequestError(`"${key}" ${quote(v)} is not a namespace name`);
  }
  return v;
}

function podName(o: Record<string, unknown>, key = "name"): string {
  const v = str(o, key);
  if (v.length > 253 || !SUBDOMAIN_RE.test(v)) {
    throw new RequestError(`"${key}" ${quote(v)} is not a pod name`);
  }
  return v;
}

function attachment(o: Record<string, unknown>): { containerId: string; ifname: string } {
  const containerId = str(o, "containerId");
  if (!ID_RE.test(containerId) || containerId.length > MAX_CONTAINER_ID) {
    throw new RequestError(`"containerId" ${quote(containerId)} is not a container ID`);
  }
  const ifname = str(o, "ifname");
  const problem = ifNameProblem(ifname);
  if (problem !== undefined) throw new RequestError(`"ifname" ${quote(ifname)} ${problem}`);
  return { containerId, ifname };
}

function ips(o: Record<string, unknown>): string[] {
  const v = o.ips;
  if (!Array.isArray(v)) throw new RequestError(`"ips" must be a list, not ${describeValue(v)}`);
  if (v.length > 16) throw new RequestError(`"ips" holds ${v.length} addresses (at most 16)`);
  return v.map((ip, i) => {
    if (typeof ip !== "string") {
      throw new RequestError(`"ips[${i}]" must be a string, not ${describeValue(ip)}`);
    }
    const problem = ipv4Problem(ip);
    if (problem !== undefined) throw new RequestError(`"ips[${i}]" ${quote(ip)}: ${problem}`);
    return ip;
  });
}

function end(o: Record<string, unknown>, key: string): ExplainEnd {
  const v = o[key];
  if (!isObject(v)) throw new RequestError(`"${key}" must be an object, not ${describeValue(v)}`);
  if (v.ip !== undefined) {
    const ip = str(v, "ip");
    const problem = ipv4Problem(ip);
    if (problem !== undefined) throw new RequestError(`"${key}.ip" ${quote(ip)}: ${problem}`);
    return { ip };
  }
  return { namespace: namespaceOf(v), name: podName(v) };
}

/** Parses one request line; throws a RequestError naming the field at fault. */
export function parseRequest(line: string): AgentRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    throw new RequestError(`not valid JSON: ${errorMessage(err)}`);
  }
  if (!isObject(v)) throw new RequestError(`a request is a JSON object, not ${describeValue(v)}`);
  switch (v.op) {
    case "add":
      return {
        op: "add",
        namespace: namespaceOf(v),
        name: podName(v),
        ...attachment(v),
        ips: ips(v),
      };
    case "del": {
      const pod = v.namespace === undefined && v.name === undefined
        ? {}
        : { namespace: namespaceOf(v), name: podName(v) };
      return { op: "del", ...pod, ...attachment(v), ips: ips(v) };
    }
    case "status":
    case "sync":
    case "podcidr":
      return { op: v.op };
    case "cni": {
      const env = v.env;
      if (!isObject(env)) {
        throw new RequestError(`"env" must be an object, not ${describeValue(env)}`);
      }
      for (const [k, x] of Object.entries(env)) {
        if (typeof x !== "string") {
          throw new RequestError(`"env.${k}" must be a string, not ${describeValue(x)}`);
        }
      }
      const command = env.CNI_COMMAND;
      if (!(HANDOFF_COMMANDS as readonly unknown[]).includes(command)) {
        throw new RequestError(
          `"env.CNI_COMMAND" must be one of ${HANDOFF_COMMANDS.join(", ")}, not ${
            describeValue(command)
          }`,
        );
      }
      const req: CniRequest = {
        op: "cni",
        env: env as Record<string, string>,
        stdin: str(v, "stdin"),
      };
      if (v.build !== undefined) req.build = str(v, "build");
      return req;
    }
    case "explain": {
      const protocol = v.protocol ?? "TCP";
      if (protocol !== "TCP" && protocol !== "UDP" && protocol !== "SCTP") {
        throw new RequestError(
          `"protocol" must be TCP, UDP or SCTP, not ${describeValue(protocol)}`,
        );
      }
      const port = v.port;
      if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
        throw new RequestError(
          `"port" must be an integer from 1 to 65535, not ${describeValue(port)}`,
        );
      }
      return { op: "explain", from: end(v, "from"), to: end(v, "to"), protocol, port };
    }
    case "monitor": {
      const verdict = v.verdict ?? "drop";
      if (verdict !== "drop" && verdict !== "allow" && verdict !== "all") {
        throw new RequestError(
          `"verdict" must be drop, allow or all, not ${describeValue(verdict)}`,
        );
      }
      const id = v.eventsMapId;
      if (typeof id !== "number" || !Number.isInteger(id) || id < 1 || id > 0xffffffff) {
        throw new RequestError(`"eventsMapId" must be a map id, not ${describeValue(id)}`);
      }
      return { op: "monitor", verdict, eventsMapId: id };
    }
    default:
      throw new RequestError(
        `"op" must be cni, add, del, status, sync, explain, monitor or podcidr, not ${
          describeValue(v.op)
        }`,
      );
  }
}
