// The network config on stdin: decoded, type-checked and defaulted into a NetConf, once, at the
// boundary (the IPAM section included); the commands get typed values. The raw bytes and
// object are kept because IPAM plugins are handed the config as the runtime sent it.

import { CniError, ErrCode } from "../spec/cni.ts";
import { describeValue } from "../spec/text.ts";
import { IDENTITY_RANGE, isIdentity } from "../spec/identity_rule.ts";
import { dirPathProblem, ifNameProblem, validateNetworkName } from "../spec/name_rules.ts";
import { normalizeRequestedIpv4, requestedIpsFromArgs } from "./cni_args.ts";
import { type Cidr, CidrError, parseCidr, parseIpPrefix } from "../spec/ipv4.ts";
import { MAX_SERVICE_CIDRS } from "../spec/bpf_layout.ts";
import { parsePrevResult } from "./result.ts";
import { parseDns } from "../spec/dns.ts";
import { contextStyle, decodeNetConf, FieldReader, isObject, type Obj } from "../spec/json.ts";
import { type IpamConf, parseIpamConf } from "../ipam/ipam_conf.ts";
export type { IpamConf };
import type { Dns, Result } from "../spec/cni.ts";
import { negotiate, type SupportedVersion } from "./spec_version.ts";

export const DEFAULT_BRIDGE = "cni0";
export const DEFAULT_MTU = 1500;
export const MIN_MTU = 68;
export const MAX_MTU = 65535;
export { DEFAULT_PIN_DIR } from "../spec/bpf_layout.ts";
import { DEFAULT_PIN_DIR } from "../spec/bpf_layout.ts";
export { DEFAULT_STATE_DIR } from "../spec/cni.ts";
import { DEFAULT_STATE_DIR } from "../spec/cni.ts";
export { DEFAULT_AGENT_SOCKET } from "../spec/agent_wire.ts";
import { DEFAULT_AGENT_SOCKET } from "../spec/agent_wire.ts";
export const DEFAULT_SERVICE_CIDRS = ["10.96.0.0/12"];
export const POLICY_MODES = ["identity", "kubernetes"] as const;
export type PolicyMode = typeof POLICY_MODES[number];

/** Conntrack lifetimes in seconds; absent ones keep the datapath's defaults. */
export interface ConntrackTimeouts {
  tcpSyn?: number;
  tcpEstablished?: number;
  tcpClose?: number;
  udp?: number;
  other?: number;
}
const TIMEOUT_KEYS = ["tcpSyn", "tcpEstablished", "tcpClose", "udp", "other"] as const;

/** How the pin directory's datapath behaves for this network. */
export interface DatapathConf {
  /** "identity": the original's default deny by identity pairs; "kubernetes": NetworkPolicy
   * semantics, programmed by the agent. */
  mode: PolicyMode;
  /** Track connections (replies pass): opt-in in identity mode, always in kubernetes mode. */
  conntrack: boolean;
  /** Service VIP ranges: flows to them are judged at the backend, after DNAT. */
  serviceCidrs: Cidr[];
  conntrackTimeouts: ConntrackTimeouts;
}

/** The plugin's part of the "args" convention: args.cni.{ips,identity,labels}. */
export interface ConfArgs {
  /** Requested addresses, each a bare IPv4 address (a prefix length given is dropped). */
  ips: string[];
  identity?: number;
  labels?: Record<string, string>;
}

export interface NetConf {
  cniVersion: SupportedVersion;
  name: string;
  type: string;
  bridge: string;
  mtu: number;
  /** Whether the config set "mtu" (else the plugin may take the overlay's, src/cni/mtu.ts). */
  mtuSet: boolean;
  /** Give the bridge the gateway address. Always true when isDefaultGateway is. */
  isGateway: boolean;
  /** Add a default route via the gateway in the container. */
  isDefaultGateway: boolean;
  hairpinMode: boolean;
  promiscMode: boolean;
  /** Masquerade the pod's traffic leaving the bridge's subnet (src/cni/ipmasq.ts). */
  ipMasq: boolean;
  pinDir: string;
  datapath: DatapathConf;
  /** The agent's unix socket (kubernetes mode). */
  agentSocket: string;
  /** Hand ADD and CHECK to the agent when it listens (kubernetes mode; src/cni/handoff.ts
   * reads it before this parse). */
  agentHandoff: boolean;
  /** Per-attachment records (what ADD changed), so DEL and GC can undo it. */
  stateDir: string;
  ipam: IpamConf;
  args: ConfArgs;
  /** runtimeConfig.ips (normalized like args.ips) and ipRanges as given, for the IPAM code. */
  runtimeConfig: { ips: string[]; ipRanges?: unknown };
  prevResult?: Result;
  /** prevResult exactly as given, for passing on unchanged. */
  prevResultRaw?: Record<string, unknown>;
  dns?: Dns;
  /** stdin as received. */
  raw: Uint8Array;
  /** stdin parsed, unknown fields included. */
  json: Record<string, unknown>;
}

/**
 * Options of the reference bridge plugin this plugin does not implement, with the reference
 * defaults. Setting one to anything else is code 2 rather than silently doing less than asked.
 */
const UNSUPPORTED_DEFAULTS: Record<string, unknown> = {
  vlan: 0,
  vlanTrunk: [],
  preserveDefaultVlan: true,
  forceAddress: false,
  enabledad: false,
  macspoofchk: false,
  disableContainerInterface: false,
  portIsolation: false,
};

const fields = new FieldReader(contextStyle("Invalid network config"));

function invalid(path: string, expected: string, value: unknown): CniError {
  return fields.invalid(path, expected, value);
}

// JSON null counts as absent throughout, as it does for Go's decoder.
function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** A string array of requested IPv4 addresses, normalized to bare addresses. */
function ipList(o: Obj, key: string, path: string): string[] {
  const v = o[key];
  if (!present(v)) return [];
  if (!Array.isArray(v)) throw invalid(path, "an array of IPv4 addresses", v);
  return v.map((item, i) => {
    const ip = typeof item === "string" ? normalizeRequestedIpv4(item) : undefined;
    if (ip === undefined) throw invalid(`${path}[${i}]`, "an IPv4 address", item);
    return ip;
  });
}

/**
 * Labels as an object of strings, or as the CONVENTIONS.md list of {"key","value"} objects.
 * Object.fromEntries defines own properties, so a "__proto__" label stays a plain label.
 */
function labels(v: unknown, path: string): Record<string, string> {
  if (Array.isArray(v)) {
    return Object.fromEntries(v.map((item, i) => {
      if (!isObject(item) || typeof item.key !== "string" || typeof item.value !== "string") {
        throw invalid(`${path}[${i}]`, 'an object with string "key" and "value"', item);
      }
      return [item.key, item.value];
    }));
  }
  if (!isObject(v)) throw invalid(path, "an object of strings", v);
  return Object.fromEntries(
    Object.entries(v).map(([k, val]) => {
      if (typeof val !== "string") throw invalid(`${path}.${k}`, "a string", val);
      return [k, val];
    }),
  );
}

/**
 * Parses stdin into a NetConf. Checks run in skel's order where skel has one: decoding (code 6),
 * the network name (7), the version (1); then the plugin's own fields (7) and finally options it
 * does not implement (2). Unknown fields are ignored, as the spec asks. `json` is stdin already
 * decoded (decodeNetConf), when the caller has it.
 */
export function parseNetConf(stdin: Uint8Array, json: Obj = decodeNetConf(stdin)): NetConf {
  const cniVersion = fields.string(json, "cniVersion");
  const name = fields.string(json, "name");
  validateNetworkName(name);
  const version = negotiate(cniVersion);

  const type = fields.string(json, "type", "", true);

  const bridge = fields.optString(json, "bridge") ?? DEFAULT_BRIDGE;
  const problem = ifNameProblem(bridge);
  if (problem !== undefined) {
    throw new CniError(
      ErrCode.InvalidConfig,
      `Invalid network config: "bridge" ${problem}, got ${describeValue(json.bridge)}`,
    );
  }

  const mtuGiven = fields.optInt(json, "mtu", "", MIN_MTU, MAX_MTU);
  const mtu = mtuGiven ?? DEFAULT_MTU;

  const isDefaultGateway = fields.optBool(json, "isDefaultGateway") ?? false;
  // As the reference bridge plugin: a default route via the gateway needs the gateway.
  const isGateway = (fields.optBool(json, "isGateway") ?? true) || isDefaultGateway;
  const hairpinMode = fields.optBool(json, "hairpinMode") ?? false;
  const promiscMode = fields.optBool(json, "promiscMode") ?? false;
  const ipMasq = fields.optBool(json, "ipMasq") ?? false;

  const pinDir = absPath(json, "pinDir", DEFAULT_PIN_DIR);
  const stateDir = absPath(json, "stateDir", DEFAULT_STATE_DIR);
  const datapath = parseDatapath(json);
  const agentSocket = absPath(json, "agentSocket", DEFAULT_AGENT_SOCKET);
  const agentHandoff = fields.optBool(json, "agentHandoff") ?? true;

  const runtimeConfig = fields.optObject(json, "runtimeConfig");
  const ipam = parseIpam(json, runtimeConfig?.ipRanges);
  const args = parseArgs(json);

  const conf: NetConf = {
    cniVersion: version,
    name,
    type,
    bridge,
    mtu,
    mtuSet: mtuGiven !== undefined,
    isGateway,
    isDefaultGateway,
    hairpinMode,
    promiscMode,
    ipMasq,
    pinDir,
    datapath,
    agentSocket,
    agentHandoff,
    stateDir,
    ipam,
    args,
    runtimeConfig: {
      ips: runtimeConfig ? ipList(runtimeConfig, "ips", "runtimeConfig.ips") : [],
    },
    raw: stdin,
    json,
  };
  if (runtimeConfig !== undefined && present(runtimeConfig.ipRanges)) {
    conf.runtimeConfig.ipRanges = runtimeConfig.ipRanges;
  }

  const prevResultRaw = fields.optObject(json, "prevResult");
  if (prevResultRaw !== undefined) {
    conf.prevResultRaw = prevResultRaw;
    conf.prevResult = parsePrevResult(prevResultRaw, version);
  }
  if (present(json.dns)) conf.dns = parseDns(json.dns, fields);

  const unsupported = Object.keys(UNSUPPORTED_DEFAULTS).filter((key) =>
    present(json[key]) && !isDefault(json[key], UNSUPPORTED_DEFAULTS[key])
  );
  if (unsupported.length > 0) {
    throw new CniError(
      ErrCode.UnsupportedField,
      `Unsupported config fields: ${
        unsupported.map((k) => `${k} ${shortJson(json[k])}`).join(", ")
      } (ebpfcni implements only the reference defaults of these)`,
    );
  }
  return conf;
}

function parseDatapath(json: Obj): DatapathConf {
  const modeText = fields.optString(json, "policyMode") ?? "identity";
  if (!(POLICY_MODES as readonly string[]).includes(modeText)) {
    throw invalid("policyMode", `one of ${POLICY_MODES.map((m) => `"${m}"`).join(", ")}`, modeText);
  }
  const mode = modeText as PolicyMode;
  const conntrackFlag = fields.optBool(json, "conntrack");
  if (mode === "kubernetes" && conntrackFlag === false) {
    throw new CniError(
      ErrCode.InvalidConfig,
      'Invalid network config: "conntrack" cannot be false with "policyMode": "kubernetes" ' +
        "(replies of allowed connections must pass)",
    );
  }
  const list = fields.optArray(json, "serviceCIDRs") ?? DEFAULT_SERVICE_CIDRS;
  if (list.length > MAX_SERVICE_CIDRS) {
    throw invalid("serviceCIDRs", `at most ${MAX_SERVICE_CIDRS} IPv4 subnets`, list);
  }
  const serviceCidrs = list.map((item, i) => {
    const path = `serviceCIDRs[${i}]`;
    if (typeof item !== "string") throw invalid(path, "an IPv4 subnet in CIDR notation", item);
    try {
      return parseCidr(item);
    } catch (err) {
      throw new CniError(
        ErrCode.InvalidConfig,
        `Invalid network config: "${path}" must be an IPv4 subnet in CIDR notation, got ${
          describeValue(item)
        } (${err instanceof CidrError ? err.message : String(err)})`,
      );
    }
  });
  const t = fields.optObject(json, "conntrackTimeouts");
  const conntrackTimeouts: ConntrackTimeouts = {};
  for (const key of TIMEOUT_KEYS) {
    const n = t ? fields.optInt(t, key, "conntrackTimeouts", 1, 2 ** 31 - 1) : undefined;
    if (n !== undefined) conntrackTimeouts[key] = n;
  }
  return {
    mode,
    conntrack: mode === "kubernetes" || (conntrackFlag ?? false),
    serviceCidrs,
    conntrackTimeouts,
  };
}

/** An optional absolute path field without ".." segments. */
function absPath(json: Obj, key: string, dflt: string): string {
  if (!present(json[key])) return dflt;
  const v = json[key];
  const what = 'an absolute path without ".." segments';
  if (typeof v !== "string") throw invalid(key, what, v);
  const problem = dirPathProblem(v);
  if (problem !== undefined) throw invalid(key, `${what} (${problem})`, v);
  return v;
}

/** A JSON value for a message, cut to 64 characters like quote(). */
function shortJson(v: unknown): string {
  const text = JSON.stringify(v);
  return text.length <= 64 ? text : `${text.slice(0, 64)}... (${text.length} characters)`;
}

/** Does `v` mean the same as the reference default `dflt` (an empty list for list options)? */
function isDefault(v: unknown, dflt: unknown): boolean {
  if (Array.isArray(dflt)) return Array.isArray(v) && v.length === 0;
  return v === dflt;
}

/** "ipam", or the legacy "podcidr" shorthand when there is no "ipam" (ipam wins if both). */
function parseIpam(json: Obj, runtimeIpRanges: unknown): IpamConf {
  const ipam = fields.optObject(json, "ipam");
  if (ipam !== undefined) {
    fields.string(ipam, "type", "ipam", true);
    return parseIpamConf(ipam, false, runtimeIpRanges);
  }
  const podcidr = json.podcidr;
  if (!present(podcidr)) throw fields.missing("ipam");
  if (typeof podcidr !== "string" || parseIpPrefix(podcidr)?.family !== 4) {
    throw invalid("podcidr", "an IPv4 subnet in CIDR notation", podcidr);
  }
  const raw = { type: "host-local", subnet: podcidr, routes: [{ dst: "0.0.0.0/0" }] };
  return parseIpamConf(raw, true, runtimeIpRanges);
}

function parseArgs(json: Obj): ConfArgs {
  const out: ConfArgs = { ips: [] };
  const args = fields.optObject(json, "args");
  const cni = args ? fields.optObject(args, "cni", "args") : undefined;
  if (cni === undefined) return out;
  out.ips = ipList(cni, "ips", "args.cni.ips");
  if (present(cni.identity)) {
    if (!isIdentity(cni.identity)) {
      throw invalid("args.cni.identity", IDENTITY_RANGE, cni.identity);
    }
    out.identity = cni.identity;
  }
  if (present(cni.labels)) out.labels = labels(cni.labels, "args.cni.labels");
  return out;
}

/**
 * The config to hand a delegated IPAM plugin: stdin unchanged, or with the "ipam" object that
 * the legacy podcidr stood for added, since the IPAM plugin cannot read podcidr.
 */
export function ipamStdin(conf: NetConf): Uint8Array {
  if (!conf.ipam.fromPodCidr) return conf.raw;
  return new TextEncoder().encode(JSON.stringify({ ...conf.json, ipam: conf.ipam.raw }));
}

/**
 * All addresses requested for the pod, in order CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips,
 * without duplicates. Config entries were checked by parseNetConf (code 7); CNI_ARGS ones are
 * checked here (code 4).
 */
export function requestedIps(conf: NetConf, cniArgs: Map<string, string>): string[] {
  return [
    ...new Set([...requestedIpsFromArgs(cniArgs), ...conf.args.ips, ...conf.runtimeConfig.ips]),
  ];
}
