// Runs an external IPAM plugin (any ipam.type but host-local) the way libcni does:
// looked up in CNI_PATH, given the network config on stdin and the CNI_* variables
// in its environment; its result (0.1.0 to 1.x shapes) is normalised to IpamResult
// and its error JSON is rethrown as a CniError with the same code, msg and details.

import { CniError, ErrCode } from "../spec/cni.ts";
import type { IpamResult, IpConfig, Route } from "../spec/cni.ts";
import { parseDns } from "../spec/dns.ts";
import { fieldPath, FieldReader, isObject, type Obj } from "../spec/json.ts";
import { errorMessage } from "../spec/text.ts";

export type DelegateCommand = "ADD" | "DEL" | "CHECK" | "GC" | "STATUS";

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
  if (!isObject(parsed)) {
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
    const why = errorMessage(err);
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

/** A reader whose errors say the plugin's result cannot be decoded (code 6). */
function resultReader(name: string): FieldReader {
  const prefix = `Cannot decode the result of IPAM plugin "${name}"`;
  return new FieldReader({
    code: ErrCode.DecodeFailure,
    invalid: (path, expected) => `${prefix}: ${path} must be ${expected}`,
    missing: (path) => `${prefix}: ${path} is missing`,
  });
}

const ROUTE_INTS = ["mtu", "advmss", "priority", "table", "scope"] as const;

function parseRoutes(o: Obj, path: string, r: FieldReader): Route[] {
  return (r.optArray(o, "routes", path) ?? []).map((v, i) => {
    const at = fieldPath(fieldPath(path, "routes"), i);
    const ro = r.object(v, at);
    const route: Route = { dst: r.string(ro, "dst", at) };
    const gw = r.optString(ro, "gw", at);
    if (gw) route.gw = gw;
    for (const key of ROUTE_INTS) {
      const n = ro[key];
      if (typeof n === "number") route[key] = n;
    }
    return route;
  });
}

/** Normalises a plugin's result: 0.3.x/0.4.0/1.x ("ips"; "version" dropped) or 0.1/0.2 ("ip4"/"ip6"). */
export function parseIpamResult(json: unknown, name: string): IpamResult {
  const r = resultReader(name);
  if (!isObject(json)) throw r.invalid("the result", "a JSON object", json);
  const ips: IpConfig[] = [];
  const routes: Route[] = [];
  const list = r.optArray(json, "ips");
  if (list !== undefined) {
    list.forEach((v, i) => {
      const at = `ips[${i}]`;
      const ip = r.object(v, at);
      const cfg: IpConfig = { address: r.string(ip, "address", at) };
      const gateway = r.optString(ip, "gateway", at);
      if (gateway) cfg.gateway = gateway;
      if (typeof ip.interface === "number") cfg.interface = ip.interface;
      ips.push(cfg);
    });
    routes.push(...parseRoutes(json, "", r));
  } else {
    for (const family of ["ip4", "ip6"] as const) {
      const old = r.optObject(json, family);
      if (old === undefined) continue;
      const cfg: IpConfig = { address: r.string(old, "ip", family) };
      const gateway = r.optString(old, "gateway", family);
      if (gateway) cfg.gateway = gateway;
      ips.push(cfg);
      routes.push(...parseRoutes(old, family, r));
    }
  }
  const result: IpamResult = { ips, routes };
  // Lenient like libcni: a dns that is not an object is dropped, an empty one left out.
  if (isObject(json.dns)) {
    const dns = parseDns(json.dns, r);
    if (Object.values(dns).some((v) => v !== "" && (!Array.isArray(v) || v.length > 0))) {
      result.dns = dns;
    }
  }
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
