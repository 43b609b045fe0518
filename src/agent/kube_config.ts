// Where the agent's Kubernetes source finds the API server and its credentials: a kubeconfig
// file, or the pod's service account (in-cluster). The file is checked field by field first,
// so a mistake is reported with the file and the field at fault instead of surfacing later as
// a TLS or HTTP failure; then @kubernetes/client-node loads it (paths made absolute, CA,
// certificate and key read at each connection, the token sent).
//
// Supported: a CA (`certificate-authority` file or `-data`, or none for the system roots), a
// client certificate and key (files or `-data`), a bearer `token`, or a `tokenFile`. Refused:
// `insecure-skip-tls-verify`, `tls-server-name` and `proxy-url`, which the HTTP client
// (kube_http.ts) cannot honour. The library reads `token-file`, not kubeconfig's `tokenFile`,
// and does not trim the in-cluster token, so both token files go through one authenticator
// here that re-reads the file on every request (projected tokens rotate) and trims it, as
// client-go does. Other user forms (exec, auth-provider, basic) are left to the library
// unchecked.
import { KubeConfig, type User } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { errorMessage } from "../spec/text.ts";

export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

/** Where a pod's service account volume is mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

const TOKEN_FILE_PROVIDER = "ebpfcni-token-file";

type Obj = Record<string, unknown>;
/** The library's Authenticator interface (not exported by its index). */
type Authenticator = Parameters<KubeConfig["addAuthenticator"]>[0];

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function resolve(base: string, path: string): string {
  return path.startsWith("/") ? path : `${base}/${path}`;
}

function errorText(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return errorMessage(err);
}

function readToken(path: string): string {
  return Deno.readTextFileSync(path).trim();
}

/** Sends the token of a token file, read afresh for every request. */
const tokenFileAuth: Authenticator = {
  isAuthProvider(user: User): boolean {
    return user.authProvider?.name === TOKEN_FILE_PROVIDER;
  },
  applyAuthentication(user: User, opts: { headers?: unknown }): Promise<void> {
    const path = String(user.authProvider.config.path);
    const headers = (opts.headers ?? {}) as Record<string, string>;
    headers.Authorization = `Bearer ${readToken(path)}`;
    opts.headers = headers;
    return Promise.resolve();
  },
};

/** Checks one kubeconfig section and names its fields for error messages. */
class Checker {
  constructor(readonly file: string) {}

  fail(field: string, problem: string, cause?: unknown): never {
    throw new KubeConfigError(
      `Invalid kubeconfig "${this.file}": ${field}: ${problem}`,
      cause === undefined ? undefined : { cause },
    );
  }

  optString(o: Obj, key: string, field: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || v === "") this.fail(`${field}.${key}`, "not a non-empty string");
    return v;
  }

  /** Finds `name` in a named list (`clusters`, `users`, `contexts`) and returns its body. */
  entry(doc: Obj, list: string, body: string, name: string, from: string): [Obj, string] {
    const items = doc[list];
    if (items !== undefined && items !== null && !Array.isArray(items)) {
      this.fail(list, "not a list");
    }
    const arr = (items ?? []) as unknown[];
    const i = arr.findIndex((e) => isObj(e) && e.name === name);
    if (i < 0) this.fail(list, `no entry named "${name}" (named by ${from})`);
    const e = arr[i] as Obj;
    const field = `${list}[${i}]`;
    if (!isObj(e[body])) this.fail(`${field}.${body}`, "missing or not a mapping");
    return [e[body] as Obj, `${field}.${body}`];
  }

  /** A PEM file (path relative to the kubeconfig) or base64 PEM data; at most one of them. */
  pem(o: Obj, fileKey: string, dataKey: string, field: string): boolean {
    const file = this.optString(o, fileKey, field);
    const data = this.optString(o, dataKey, field);
    if (file !== undefined && data !== undefined) {
      this.fail(field, `both "${fileKey}" and "${dataKey}" are set`);
    }
    let text: string;
    if (file !== undefined) {
      const path = resolve(dirname(this.file), file);
      try {
        text = Deno.readTextFileSync(path);
      } catch (err) {
        this.fail(`${field}.${fileKey}`, `cannot read "${path}": ${errorText(err)}`, err);
      }
      if (!text.includes("-----BEGIN ")) this.fail(`${field}.${fileKey}`, `"${path}" is not PEM`);
      return true;
    }
    if (data !== undefined) {
      try {
        text = atob(data.replace(/\s+/g, ""));
      } catch (err) {
        this.fail(`${field}.${dataKey}`, "not base64", err);
      }
      if (!text.includes("-----BEGIN ")) this.fail(`${field}.${dataKey}`, "not base64 of PEM");
      return true;
    }
    return false;
  }
}

/** Loads and checks a kubeconfig file (its current context). */
export function loadKubeconfig(file: string): KubeConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    throw new KubeConfigError(`Cannot read kubeconfig "${file}": ${errorText(err)}`, {
      cause: err,
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KubeConfigError(`Cannot parse kubeconfig "${file}": ${errorText(err)}`, {
      cause: err,
    });
  }
  const c: Checker = new Checker(file);
  if (!isObj(doc)) c.fail("(top level)", "not a mapping");
  const current = c.optString(doc, "current-context", "(top level)");
  if (current === undefined) c.fail("current-context", "not set");
  const [context, contextField] = c.entry(doc, "contexts", "context", current, "current-context");
  const clusterName = c.optString(context, "cluster", contextField);
  if (clusterName === undefined) c.fail(`${contextField}.cluster`, "not set");
  const [cluster, clusterField] = c.entry(
    doc,
    "clusters",
    "cluster",
    clusterName,
    `${contextField}.cluster`,
  );
  const server = c.optString(cluster, "server", clusterField);
  if (server === undefined) c.fail(`${clusterField}.server`, "not set");
  let url: URL | undefined;
  try {
    url = new URL(server);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "https:") {
    c.fail(`${clusterField}.server`, `"${server}" is not an https URL`);
  }
  c.pem(cluster, "certificate-authority", "certificate-authority-data", clusterField);
  // Deno's HTTP client (kube_http.ts) can do none of these.
  if (cluster["insecure-skip-tls-verify"] === true) {
    c.fail(`${clusterField}.insecure-skip-tls-verify`, "not supported (give the CA instead)");
  }
  for (const key of ["tls-server-name", "proxy-url"]) {
    if (cluster[key] !== undefined && cluster[key] !== null && cluster[key] !== "") {
      c.fail(`${clusterField}.${key}`, "not supported");
    }
  }

  let tokenFile: string | undefined;
  const userName = c.optString(context, "user", contextField);
  if (userName !== undefined) {
    const [user, userField] = c.entry(doc, "users", "user", userName, `${contextField}.user`);
    const hasCert = c.pem(user, "client-certificate", "client-certificate-data", userField);
    const hasKey = c.pem(user, "client-key", "client-key-data", userField);
    if (hasCert !== hasKey) {
      c.fail(
        userField,
        hasCert
          ? `a client certificate without "client-key" or "client-key-data"`
          : `a client key without "client-certificate" or "client-certificate-data"`,
      );
    }
    const token = c.optString(user, "token", userField);
    const tf = c.optString(user, "tokenFile", userField);
    if (tf !== undefined && token === undefined) {
      // `token` wins when both are set, as in client-go.
      tokenFile = resolve(dirname(file), tf);
      try {
        if (readToken(tokenFile) === "") {
          c.fail(`${userField}.tokenFile`, `"${tokenFile}" is empty`);
        }
      } catch (err) {
        if (err instanceof KubeConfigError) throw err;
        c.fail(`${userField}.tokenFile`, `cannot read "${tokenFile}": ${errorText(err)}`, err);
      }
    }
  }

  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new KubeConfigError(`Invalid kubeconfig "${file}": ${errorText(err)}`, { cause: err });
  }
  if (tokenFile !== undefined) useTokenFile(kc, tokenFile);
  return kc;
}

/** The in-cluster configuration of a pod: KUBERNETES_SERVICE_HOST/PORT and the service
 * account's token and CA. `root` prefixes the service account path (for tests). */
export function loadInCluster(root = ""): KubeConfig {
  const fail = (problem: string, cause?: unknown): never => {
    throw new KubeConfigError(
      `In-cluster config: ${problem}`,
      cause === undefined ? undefined : { cause },
    );
  };
  for (const name of ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]) {
    if (!Deno.env.get(name)) fail(`${name} is not set (not running in a pod?)`);
  }
  const dir = `${root}${SERVICE_ACCOUNT_DIR}`;
  let ca = "";
  try {
    ca = Deno.readTextFileSync(`${dir}/ca.crt`);
  } catch (err) {
    fail(`cannot read the service account CA "${dir}/ca.crt": ${errorText(err)}`, err);
  }
  if (!ca.includes("-----BEGIN ")) fail(`the service account CA "${dir}/ca.crt" is not PEM`);
  try {
    if (readToken(`${dir}/token`) === "") fail(`the service account token "${dir}/token" is empty`);
  } catch (err) {
    if (err instanceof KubeConfigError) throw err;
    fail(`cannot read the service account token "${dir}/token": ${errorText(err)}`, err);
  }
  const kc = new KubeConfig();
  kc.loadFromCluster(root);
  useTokenFile(kc, `${dir}/token`);
  return kc;
}

/** Makes the current user authenticate with the token in `path` (see tokenFileAuth). */
function useTokenFile(kc: KubeConfig, path: string): void {
  const current = kc.getCurrentUser();
  if (current === null) throw new KubeConfigError("The kubeconfig has no current user");
  kc.loadFromOptions({
    clusters: kc.getClusters(),
    contexts: kc.getContexts(),
    currentContext: kc.getCurrentContext(),
    users: kc.getUsers().map((u) => {
      return u.name === current.name
        ? { ...u, authProvider: { name: TOKEN_FILE_PROVIDER, config: { path } } }
        : u;
    }),
  });
  kc.addAuthenticator(tokenFileAuth);
}
