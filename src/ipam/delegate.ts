// Runs an external IPAM plugin (any ipam.type but host-local) the way libcni does:
// looked up in CNI_PATH, given the network config on stdin and the CNI_* variables
// in its environment; its result (0.1.0 to 1.x shapes) is normalised to IpamResult
// and its error JSON is rethrown as a CniError with the same code, msg and details.

import { CniError, ErrCode } from "../spec/cni.ts";
import type { Dns, IpamResult, IpConfig, Route } from "../spec/cni.ts";

export type DelegateCommand = "ADD" | "DEL" | "CHECK" | "GC" | "STATUS";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The plugin's path: the first regular file named `name` in the colon-separated CNI_PATH. */
export async function findPlugin(name: string, cniPath: string): Promise<string> {
  if (name === "" || name.includes("/") || name === "." || name === "..") {
    throw new CniError(ErrCode.InvalidConfig, `Invalid plugin name "${name}"`);
  }
  const dirs = cniPath.split(":").filter((d) => d !== "");
  for (const dir of dirs) {
    const path = `${dir.replace(/\/+$/, "")}/${name}`;
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // Missing or unreadable: keep looking, like libcni's FindInPath.
    }
  }
  throw new CniError(
    ErrCode.InvalidConfig,
    `Failed to find plugin "${name}" in path [${dirs.join(" ")}]`,
  );
}

/** Rebuilds the plugin's error JSON as a CniError; falls back to its stderr like libcni. */
function pluginFailure(name: string, status: number, stdout: string, stderr: string): CniError {
  const from = `IPAM plugin "${name}" failed (exit status ${status})`;
  if (stdout.trim() === "") {
    const msg = stderr.trim() === ""
      ? `${from} with no error message`
      : `${from}: ${stderr.trim()}`;
    return new CniError(ErrCode.Internal, msg);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    return new CniError(
      ErrCode.Internal,
      `${from} and its error message is not JSON: ${JSON.stringify(stdout.trim())}`,
      stderr.trim(),
      { cause: err },
    );
  }
  if (!isObj(parsed)) {
    return new CniError(ErrCode.Internal, `${from}: ${stdout.trim()}`, stderr.trim());
  }
  const code = typeof parsed.code === "number" && parsed.code > 0 ? parsed.code : ErrCode.Internal;
  const msg = typeof parsed.msg === "string" && parsed.msg !== "" ? parsed.msg : from;
  const details = typeof parsed.details === "string" ? parsed.details : "";
  return new CniError(code, msg, details);
}

/**
 * Executes plugin `name` for `command`: the process environment plus `env`, with
 * CNI_COMMAND forced to `command`. Returns stdout on exit status 0.
 */
export async function execPlugin(
  name: string,
  command: DelegateCommand,
  rawConfig: Uint8Array,
  env: Record<string, string>,
): Promise<string> {
  const cniPath = env.CNI_PATH;
  if (cniPath === undefined || cniPath === "") {
    throw new CniError(ErrCode.InvalidEnv, `CNI_PATH is not set: cannot find plugin "${name}"`);
  }
  const path = await findPlugin(name, cniPath);
  let out: Deno.CommandOutput;
  try {
    const child = new Deno.Command(path, {
      env: { ...env, CNI_COMMAND: command },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    // A plugin may exit without reading stdin; the resulting EPIPE is not the failure to report.
    await writer.write(rawConfig).catch(() => {});
    await writer.close().catch(() => {});
    out = await child.output();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new CniError(ErrCode.IoFailure, `Cannot execute IPAM plugin "${path}": ${why}`, "", {
      cause: err,
    });
  }
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  const stderr = dec.decode(out.stderr);
  if (!out.success) throw pluginFailure(name, out.code, stdout, stderr);
  // Keep the plugin's diagnostics visible, as libcni does by sharing stderr.
  for (let rest = out.stderr; rest.length > 0;) {
    const n = await Deno.stderr.write(rest).catch(() => rest.length);
    rest = rest.subarray(n);
  }
  return stdout;
}

function decodeError(name: string, why: string): CniError {
  return new CniError(
    ErrCode.DecodeFailure,
    `Cannot decode the result of IPAM plugin "${name}": ${why}`,
  );
}

function str(v: unknown, what: string, name: string): string {
  if (typeof v !== "string") throw decodeError(name, `${what} must be a string`);
  return v;
}

const ROUTE_INTS = ["mtu", "advmss", "priority", "table", "scope"] as const;

function parseRoutes(v: unknown, name: string): Route[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw decodeError(name, `"routes" must be an array`);
  return v.map((r, i) => {
    if (!isObj(r)) throw decodeError(name, `routes[${i}] must be an object`);
    const route: Route = { dst: str(r.dst, `routes[${i}].dst`, name) };
    if (r.gw !== undefined && r.gw !== "") route.gw = str(r.gw, `routes[${i}].gw`, name);
    for (const key of ROUTE_INTS) {
      const n = r[key];
      if (typeof n === "number") route[key] = n;
    }
    return route;
  });
}

function parseDns(v: unknown, name: string): Dns | undefined {
  if (!isObj(v)) return undefined;
  const strings = (x: unknown, what: string): string[] | undefined => {
    if (x === undefined || x === null) return undefined;
    if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) {
      throw decodeError(name, `dns.${what} must be an array of strings`);
    }
    return x.length > 0 ? x : undefined;
  };
  const dns: Dns = {};
  const nameservers = strings(v.nameservers, "nameservers");
  const search = strings(v.search, "search");
  const options = strings(v.options, "options");
  if (nameservers) dns.nameservers = nameservers;
  if (typeof v.domain === "string" && v.domain !== "") dns.domain = v.domain;
  if (search) dns.search = search;
  if (options) dns.options = options;
  return Object.keys(dns).length > 0 ? dns : undefined;
}

/** Normalises a plugin's result: 0.3.x/0.4.0/1.x ("ips"; "version" dropped) or 0.1/0.2 ("ip4"/"ip6"). */
export function parseIpamResult(json: unknown, name: string): IpamResult {
  if (!isObj(json)) throw decodeError(name, "the result is not a JSON object");
  const ips: IpConfig[] = [];
  const routes: Route[] = [];
  if (json.ips !== undefined && json.ips !== null) {
    if (!Array.isArray(json.ips)) throw decodeError(name, `"ips" must be an array`);
    json.ips.forEach((ip, i) => {
      if (!isObj(ip)) throw decodeError(name, `ips[${i}] must be an object`);
      const cfg: IpConfig = { address: str(ip.address, `ips[${i}].address`, name) };
      if (ip.gateway !== undefined && ip.gateway !== "") {
        cfg.gateway = str(ip.gateway, `ips[${i}].gateway`, name);
      }
      if (typeof ip.interface === "number") cfg.interface = ip.interface;
      ips.push(cfg);
    });
    routes.push(...parseRoutes(json.routes, name));
  } else {
    for (const family of ["ip4", "ip6"] as const) {
      const old = json[family];
      if (old === undefined || old === null) continue;
      if (!isObj(old)) throw decodeError(name, `"${family}" must be an object`);
      const cfg: IpConfig = { address: str(old.ip, `${family}.ip`, name) };
      if (old.gateway !== undefined && old.gateway !== "") {
        cfg.gateway = str(old.gateway, `${family}.gateway`, name);
      }
      ips.push(cfg);
      routes.push(...parseRoutes(old.routes, name));
    }
  }
  const result: IpamResult = { ips, routes };
  const dns = parseDns(json.dns, name);
  if (dns) result.dns = dns;
  return result;
}

/** ADD through plugin `name`: its result, normalised. */
export async function delegateAdd(
  name: string,
  rawConfig: Uint8Array,
  env: Record<string, string>,
): Promise<IpamResult> {
  const stdout = await execPlugin(name, "ADD", rawConfig, env);
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (err) {
    throw new CniError(
      ErrCode.DecodeFailure,
      `Cannot decode the result of IPAM plugin "${name}": not JSON`,
      stdout.slice(0, 200),
      { cause: err },
    );
  }
  return parseIpamResult(json, name);
}

/** DEL, CHECK, GC or STATUS through plugin `name`; these print nothing on success. */
export async function delegateCommand(
  name: string,
  command: Exclude<DelegateCommand, "ADD">,
  rawConfig: Uint8Array,
  env: Record<string, string>,
): Promise<void> {
  await execPlugin(name, command, rawConfig, env);
}
