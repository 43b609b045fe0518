// A fake kube-apiserver for tests: HTTPS (node:https, so it can ask for client certificates)
// on 127.0.0.1 with a fresh CA, server and client certificate made by openssl in a temp dir.
// It serves what the agent's Kubernetes source and kubectl need for Pods, Namespaces, Nodes and
// NetworkPolicies (networking.k8s.io/v1): discovery (/api, /apis, group versions, /version),
// get, list and watch, cluster-wide and namespaced, with the API server's resourceVersion
// rules: one global counter; a list answers at the current RV; a watch from an RV replays the
// later events it still remembers, or answers 410 Gone (an ERROR event, or the HTTP status
// with `goneAs: "status"`) when that RV is older than its history; BOOKMARK events when asked
// for with allowWatchBookmarks=true; timeoutSeconds ends a watch server-side.
//
// Test controls: put(), delete(), bookmark(), closeWatches(), compact(), stop()/restart()
// (an outage on the same port, with the same certificates and state), the request log, and
// kubeconfig / in-cluster files. close() (or `await using`) ends everything and removes the
// temp dir.
//
// Not modelled: writes through the API, label/field selectors, pagination (`limit` is
// ignored and every list is complete), namespace deletion cascading to its objects, no-op
// updates keeping the RV (every put() is a new RV).
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

export type Kind = "Pod" | "Namespace" | "NetworkPolicy" | "Node";
type Obj = Record<string, unknown>;

interface Resource {
  kind: Kind;
  plural: string;
  singular: string;
  shortNames: string[];
  group: string;
  version: string;
  namespaced: boolean;
}

const RESOURCES: readonly Resource[] = [
  {
    kind: "Pod",
    plural: "pods",
    singular: "pod",
    shortNames: ["po"],
    group: "",
    version: "v1",
    namespaced: true,
  },
  {
    kind: "Namespace",
    plural: "namespaces",
    singular: "namespace",
    shortNames: ["ns"],
    group: "",
    version: "v1",
    namespaced: false,
  },
  {
    kind: "Node",
    plural: "nodes",
    singular: "node",
    shortNames: ["no"],
    group: "",
    version: "v1",
    namespaced: false,
  },
  {
    kind: "NetworkPolicy",
    plural: "networkpolicies",
    singular: "networkpolicy",
    shortNames: ["netpol"],
    group: "networking.k8s.io",
    version: "v1",
    namespaced: true,
  },
];

function resourceOf(kind: Kind): Resource {
  const r = RESOURCES.find((r) => r.kind === kind);
  if (r === undefined) throw new Error(`Unknown kind "${kind}"`);
  return r;
}

function apiVersionOf(r: Resource): string {
  return r.group === "" ? r.version : `${r.group}/${r.version}`;
}

/** One request as the fake saw it. */
export interface RequestRecord {
  method: string;
  /** The path without the query. */
  path: string;
  query: Record<string, string>;
  /** Set for list, get and watch requests on one of the three kinds. */
  kind?: Kind;
  namespace?: string;
  verb?: "get" | "list" | "watch";
  /** "token", "cert" (a client certificate signed by the fake's CA) or "none". */
  auth: "token" | "cert" | "none";
  /** The HTTP status answered. */
  status: number;
}

export interface FakeApiServerOptions {
  /** How a watch from a compacted RV is refused: an ERROR event with code 410 on a 200
   * stream (what kube-apiserver does; the default) or an HTTP 410 response. */
  goneAs?: "event" | "status";
}

export interface KubeconfigOptions {
  /** "token": a bearer token; "cert": the client certificate and key. */
  auth: "token" | "cert";
  /** Embed the CA, certificate and key (`*-data`) instead of naming files (relative paths,
   * resolved against the kubeconfig's directory as kubectl does). Default true. */
  embed?: boolean;
  /** With auth "token": name a file holding the token (`tokenFile`) instead of `token`. */
  tokenFile?: boolean;
  /** The file name inside the fake's temp dir; default a random one. */
  name?: string;
}

interface Event {
  type: "ADDED" | "MODIFIED" | "DELETED";
  kind: Kind;
  namespace: string | undefined;
  rv: number;
  object: Obj;
}

interface Watcher {
  kind: Kind;
  namespace: string | undefined;
  bookmarks: boolean;
  res: ServerResponse;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const encoder = new TextEncoder();

function randomHex(bytes = 4): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => {
    return b.toString(16).padStart(2, "0");
  }).join("");
}

function b64(text: string): string {
  let bin = "";
  for (const byte of encoder.encode(text)) bin += String.fromCharCode(byte);
  return btoa(bin);
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/** CA, server certificate (127.0.0.1, localhost) and client certificate, all X.509 v3
 * (Deno's rustls refuses v1 client certificates). The CA and server keys are P-256; the
 * client key is RSA in the PKCS#1 form ("RSA PRIVATE KEY") kubeadm and kind write. */
async function makeCertificates(dir: string): Promise<void> {
  const args = (line: string) => line.trim().split(/\s+/);
  const ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  await openssl(dir, [
    ...args(`req -x509 ${ec} -keyout ca.key -out ca.crt -subj /CN=fake-apiserver-ca -days 2`),
    ...args("-addext basicConstraints=critical,CA:TRUE"),
    ...args("-addext keyUsage=critical,keyCertSign,cRLSign"),
  ]);
  const sign = async (name: string, ext: string) => {
    Deno.writeTextFileSync(`${dir}/${name}.ext`, ext);
    await openssl(dir, [
      ...args(`x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -out ${name}.crt -days 2`),
      ...args(`-set_serial 0x${randomHex(8)} -extfile ${name}.ext`),
    ]);
  };
  await openssl(dir, [
    ...args(`req -new ${ec} -keyout server.key -out server.csr -subj /CN=fake-apiserver`),
  ]);
  await sign(
    "server",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n" +
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
  );
  await openssl(dir, args("genrsa -traditional -out client.key 2048"));
  await openssl(dir, [
    ...args("req -new -key client.key -out client.csr"),
    "-subj",
    "/O=system:masters/CN=ebpfcni-test",
  ]);
  await sign(
    "client",
    "subjectAltName=DNS:ebpfcni-test\nextendedKeyUsage=clientAuth\n" +
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
  );
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function metadataOf(obj: Obj): Obj {
  const m = obj.metadata;
  if (typeof m !== "object" || m === null || Array.isArray(m)) {
    throw new Error("Object has no metadata");
  }
  return m as Obj;
}

function status(code: number, reason: string, message: string): Obj {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

/** The fake API server. Make one with FakeApiServer.start(). */
export class FakeApiServer {
  /** The temp dir holding certificates, kubeconfigs and in-cluster files. */
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The bearer token it accepts. */
  readonly token: string;
  /** Every request since start (or since clearRequests()), in arrival order. */
  readonly requests: RequestRecord[] = [];

  #port = 0;
  #server: https.Server | undefined;
  #tls: { cert: string; key: string; ca: string };
  #goneAs: "event" | "status";
  #rv = 1000;
  /** A watch from an RV below this one is refused with 410. */
  #oldestRv = 1000;
  #objects = new Map<string, Obj>();
  #history: Event[] = [];
  #watchers = new Set<Watcher>();
  #sockets = new Set<Socket>();
  #closed = false;

  private constructor(dir: string, goneAs: "event" | "status") {
    this.dir = dir;
    this.caFile = `${dir}/ca.crt`;
    this.certFile = `${dir}/client.crt`;
    this.keyFile = `${dir}/client.key`;
    this.token = `fake-token-${randomHex(16)}`;
    this.#goneAs = goneAs;
    this.#tls = {
      cert: Deno.readTextFileSync(`${dir}/server.crt`),
      key: Deno.readTextFileSync(`${dir}/server.key`),
      ca: Deno.readTextFileSync(`${dir}/ca.crt`),
    };
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const dir = Deno.makeTempDirSync({ prefix: "ebpfcni-fake-apiserver-" });
    try {
      await makeCertificates(dir);
      const fake = new FakeApiServer(dir, opts.goneAs ?? "event");
      await fake.#listen(0);
      return fake;
    } catch (err) {
      Deno.removeSync(dir, { recursive: true });
      throw err;
    }
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  /** How many watch streams are open now. */
  get openWatches(): number {
    return this.#watchers.size;
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /** Requests of one verb on one kind, for checking what a client did. */
  requestsFor(kind: Kind, verb?: "get" | "list" | "watch"): RequestRecord[] {
    return this.requests.filter((r) => r.kind === kind && (verb === undefined || r.verb === verb));
  }

  /** Creates or replaces an object (kind, apiVersion, metadata.name, and metadata.namespace
   * for Pods and NetworkPolicies): ADDED or MODIFIED with a new RV. Returns the stored copy. */
  put(obj: Obj): Obj {
    const kind = obj.kind as Kind;
    const r = resourceOf(kind);
    const stored = clone(obj);
    stored.apiVersion = apiVersionOf(r);
    const meta = metadataOf(stored);
    const name = meta.name;
    if (typeof name !== "string" || name === "") throw new Error("put(): metadata.name missing");
    if (r.namespaced) {
      if (typeof meta.namespace !== "string" || meta.namespace === "") {
        throw new Error(`put(): ${kind} "${name}" has no metadata.namespace`);
      }
    } else {
      delete meta.namespace;
    }
    const ns = meta.namespace as string | undefined;
    const key = this.#key(kind, ns, name);
    const old = this.#objects.get(key);
    const oldMeta = old === undefined ? undefined : metadataOf(old);
    meta.uid = oldMeta?.uid ?? crypto.randomUUID();
    meta.creationTimestamp = oldMeta?.creationTimestamp ??
      new Date().toISOString().replace(/\.\d+Z$/, "Z");
    if (kind === "Namespace") {
      // The API server labels every namespace with its name.
      meta.labels = { ...(meta.labels as Obj | undefined), "kubernetes.io/metadata.name": name };
    }
    meta.resourceVersion = String(++this.#rv);
    this.#objects.set(key, stored);
    this.#emit({
      type: old === undefined ? "ADDED" : "MODIFIED",
      kind,
      namespace: ns,
      rv: this.#rv,
      object: stored,
    });
    return clone(stored);
  }

  /** Deletes an object: DELETED (the last state, with a new RV). False when absent. */
  delete(kind: Kind, namespace: string | undefined, name: string): boolean {
    const ns = resourceOf(kind).namespaced ? namespace : undefined;
    const key = this.#key(kind, ns, name);
    const old = this.#objects.get(key);
    if (old === undefined) return false;
    this.#objects.delete(key);
    const gone = clone(old);
    metadataOf(gone).resourceVersion = String(++this.#rv);
    this.#emit({ type: "DELETED", kind, namespace: ns, rv: this.#rv, object: gone });
    return true;
  }

  /** The stored object, or undefined. */
  get(kind: Kind, namespace: string | undefined, name: string): Obj | undefined {
    const ns = resourceOf(kind).namespaced ? namespace : undefined;
    const o = this.#objects.get(this.#key(kind, ns, name));
    return o === undefined ? undefined : clone(o);
  }

  /** The stored objects of a kind (all namespaces), as a list would give them. */
  list(kind: Kind): Obj[] {
    return this.#select(kind, undefined).map(clone);
  }

  /** Sends a BOOKMARK at the current RV to every watch that allowed bookmarks. */
  bookmark(): void {
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue;
      const r = resourceOf(w.kind);
      this.#send(w, {
        type: "BOOKMARK",
        object: {
          kind: r.kind,
          apiVersion: apiVersionOf(r),
          metadata: { resourceVersion: String(this.#rv) },
        },
      });
    }
  }

  /** Ends every open watch cleanly, as the API server does when a watch times out. */
  closeWatches(): void {
    for (const w of [...this.#watchers]) this.#endWatch(w);
  }

  /** Forgets the event history: a watch from any RV before now gets 410 Gone. */
  compact(): void {
    this.#history = [];
    this.#oldestRv = this.#rv;
  }

  /** Takes the server down (connections dropped, port closed). State, port and certificates
   * are kept for restart(); put() and delete() still work meanwhile. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    for (const w of this.#watchers) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.res.destroy();
    }
    this.#watchers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    server.closeAllConnections();
    await closed;
  }

  /** Brings a stopped server back on the same port. */
  async restart(): Promise<void> {
    if (this.#closed) throw new Error("restart(): the fake API server is closed");
    if (this.#server !== undefined) return;
    await this.#listen(this.#port);
  }

  /** Stops the server for good and removes the temp dir. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.stop();
    Deno.removeSync(this.dir, { recursive: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Writes a kubeconfig for this server into its temp dir and returns its path. */
  writeKubeconfig(opts: KubeconfigOptions): string {
    const embed = opts.embed ?? true;
    const cluster: Obj = { server: this.url };
    if (embed) cluster["certificate-authority-data"] = b64(this.#tls.ca);
    else cluster["certificate-authority"] = "ca.crt";
    const user: Obj = {};
    if (opts.auth === "token") {
      if (opts.tokenFile) {
        const tokenName = `token-${randomHex()}`;
        // A trailing newline, as `echo` leaves it: clients trim it.
        Deno.writeTextFileSync(`${this.dir}/${tokenName}`, `${this.token}\n`);
        user.tokenFile = tokenName;
      } else {
        user.token = this.token;
      }
    } else if (embed) {
      user["client-certificate-data"] = b64(Deno.readTextFileSync(this.certFile));
      user["client-key-data"] = b64(Deno.readTextFileSync(this.keyFile));
    } else {
      user["client-certificate"] = "client.crt";
      user["client-key"] = "client.key";
    }
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "fake", cluster }],
      users: [{ name: "tester", user }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "tester" } }],
      "current-context": "fake",
    };
    const path = `${this.dir}/${opts.name ?? `kubeconfig-${randomHex()}`}`;
    // JSON is YAML: kubectl and every kubeconfig loader read it.
    Deno.writeTextFileSync(path, JSON.stringify(config, null, 2) + "\n");
    return path;
  }

  /** Writes the files a pod's service account mount holds under a fresh root
   * (`<root>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`) and
   * returns the root and the environment the kubelet would set. */
  writeInCluster(): { root: string; env: Record<string, string> } {
    const root = `${this.dir}/incluster-${randomHex()}`;
    const sa = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
    Deno.mkdirSync(sa, { recursive: true });
    Deno.writeTextFileSync(`${sa}/token`, this.token);
    Deno.writeTextFileSync(`${sa}/ca.crt`, this.#tls.ca);
    Deno.writeTextFileSync(`${sa}/namespace`, "kube-system");
    return {
      root,
      env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(this.#port) },
    };
  }

  // --- internals ---

  #key(kind: Kind, namespace: string | undefined, name: string): string {
    return `${kind}/${namespace ?? ""}/${name}`;
  }

  #select(kind: Kind, namespace: string | undefined): Obj[] {
    const out: Obj[] = [];
    for (const o of this.#objects.values()) {
      if (o.kind !== kind) continue;
      if (namespace !== undefined && metadataOf(o).namespace !== namespace) continue;
      out.push(o);
    }
    const key = (o: Obj) => {
      const m = metadataOf(o);
      return `${m.namespace ?? ""}/${m.name}`;
    };
    return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  }

  #emit(ev: Event): void {
    this.#history.push(ev);
    for (const w of this.#watchers) {
      if (w.kind !== ev.kind) continue;
      if (w.namespace !== undefined && w.namespace !== ev.namespace) continue;
      this.#send(w, { type: ev.type, object: ev.object });
    }
  }

  #send(w: Watcher, ev: Obj): void {
    w.res.write(JSON.stringify(ev) + "\n");
  }

  #endWatch(w: Watcher): void {
    if (!this.#watchers.delete(w)) return;
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.res.end();
  }

  #listen(port: number): Promise<void> {
    const server = https.createServer({
      cert: this.#tls.cert,
      key: this.#tls.key,
      ca: this.#tls.ca,
      // Ask for a client certificate but let token users in too; #authOf() decides.
      requestCert: true,
      rejectUnauthorized: false,
    }, (req, res) => this.#handle(req, res));
    server.on("connection", (s: Socket) => {
      this.#sockets.add(s);
      s.on("close", () => this.#sockets.delete(s));
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        this.#port = (server.address() as { port: number }).port;
        this.#server = server;
        resolve();
      });
    });
  }

  #authOf(req: IncomingMessage): "token" | "cert" | "none" {
    if (req.headers.authorization === `Bearer ${this.token}`) return "token";
    const socket = req.socket as TLSSocket;
    if (socket.authorized) return "cert";
    return "none";
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "https://fake");
    const record: RequestRecord = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      auth: this.#authOf(req),
      status: 0,
    };
    this.requests.push(record);
    const reply = (code: number, body: Obj) => {
      record.status = code;
      const text = JSON.stringify(body);
      res.writeHead(code, {
        "content-type": "application/json",
        "content-length": String(encoder.encode(text).length),
      });
      res.end(text);
    };
    if (record.auth === "none") {
      reply(401, status(401, "Unauthorized", "Unauthorized"));
      return;
    }
    if (record.method !== "GET") {
      reply(405, status(405, "MethodNotAllowed", `the fake API server only serves GET`));
      return;
    }
    const discovery = this.#discovery(url.pathname);
    if (discovery !== undefined) {
      reply(200, discovery);
      return;
    }
    const route = this.#route(url.pathname);
    if (route === undefined) {
      reply(404, status(404, "NotFound", "the server could not find the requested resource"));
      return;
    }
    const { r, namespace, name } = route;
    record.kind = r.kind;
    if (namespace !== undefined) record.namespace = namespace;
    const watch = url.searchParams.get("watch");
    if (watch === "true" || watch === "1") {
      record.verb = "watch";
      this.#watch(r, namespace, name, url.searchParams, record, res, reply);
      return;
    }
    if (name !== undefined) {
      record.verb = "get";
      const o = this.#objects.get(this.#key(r.kind, r.namespaced ? namespace : undefined, name));
      if (o === undefined) {
        reply(404, status(404, "NotFound", `${r.plural} "${name}" not found`));
      } else if (wantsTable(req)) {
        reply(200, table([o], String(this.#rv)));
      } else {
        reply(200, o);
      }
      return;
    }
    record.verb = "list";
    const items = this.#select(r.kind, namespace);
    if (wantsTable(req)) {
      reply(200, table(items, String(this.#rv)));
      return;
    }
    reply(200, {
      kind: `${r.kind}List`,
      apiVersion: apiVersionOf(r),
      metadata: { resourceVersion: String(this.#rv) },
      // As the API server encodes a typed list: the items carry no kind and apiVersion.
      items: items.map((o) => {
        const { kind: _k, apiVersion: _a, ...rest } = o;
        return rest;
      }),
    });
  }

  #watch(
    r: Resource,
    namespace: string | undefined,
    name: string | undefined,
    q: URLSearchParams,
    record: RequestRecord,
    res: ServerResponse,
    reply: (code: number, body: Obj) => void,
  ): void {
    if (name !== undefined) {
      reply(400, status(400, "BadRequest", "the fake API server watches collections only"));
      return;
    }
    const rvText = q.get("resourceVersion") ?? "";
    let events: Obj[];
    if (rvText === "" || rvText === "0") {
      // No RV: the current state as ADDED events, then the changes.
      events = this.#select(r.kind, namespace).map((o) => ({ type: "ADDED", object: o }));
    } else {
      if (!/^[0-9]+$/.test(rvText)) {
        reply(400, status(400, "BadRequest", `invalid resourceVersion "${rvText}"`));
        return;
      }
      const from = Number(rvText);
      if (from < this.#oldestRv) {
        const gone = status(
          410,
          "Expired",
          `too old resource version: ${from} (${this.#oldestRv})`,
        );
        if (this.#goneAs === "status") {
          reply(410, gone);
          return;
        }
        record.status = 200;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ type: "ERROR", object: gone }) + "\n");
        return;
      }
      events = this.#history
        .filter((e) => e.rv > from && e.kind === r.kind)
        .filter((e) => namespace === undefined || e.namespace === namespace)
        .map((e) => ({ type: e.type, object: e.object }));
    }
    record.status = 200;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    // The API server answers a watch at once; node would hold the headers until a write.
    res.flushHeaders();
    const w: Watcher = {
      kind: r.kind,
      namespace,
      bookmarks: q.get("allowWatchBookmarks") === "true",
      res,
      timer: undefined,
    };
    this.#watchers.add(w);
    res.on("close", () => this.#endWatch(w));
    for (const ev of events) this.#send(w, ev);
    const timeout = Number(q.get("timeoutSeconds") ?? "");
    if (Number.isInteger(timeout) && timeout > 0) {
      w.timer = setTimeout(() => this.#endWatch(w), timeout * 1000);
    }
  }

  #discovery(path: string): Obj | undefined {
    const p = path.replace(/\/$/, "");
    if (p === "/version") {
      return {
        major: "1",
        minor: "32",
        gitVersion: "v1.32.0-fake",
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.23.0",
        compiler: "gc",
        platform: "linux/amd64",
      };
    }
    if (p === "/api") {
      return {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{
          clientCIDR: "0.0.0.0/0",
          serverAddress: `127.0.0.1:${this.#port}`,
        }],
      };
    }
    const groupEntry = {
      name: "networking.k8s.io",
      versions: [{ groupVersion: "networking.k8s.io/v1", version: "v1" }],
      preferredVersion: { groupVersion: "networking.k8s.io/v1", version: "v1" },
    };
    if (p === "/apis") return { kind: "APIGroupList", apiVersion: "v1", groups: [groupEntry] };
    if (p === "/apis/networking.k8s.io") {
      return { kind: "APIGroup", apiVersion: "v1", ...groupEntry };
    }
    for (const gv of ["v1", "networking.k8s.io/v1"]) {
      if (p !== (gv === "v1" ? "/api/v1" : `/apis/${gv}`)) continue;
      return {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: gv,
        resources: RESOURCES.filter((r) => apiVersionOf(r) === gv).map((r) => ({
          name: r.plural,
          singularName: r.singular,
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: ["get", "list", "watch"],
          shortNames: r.shortNames,
        })),
      };
    }
    return undefined;
  }

  #route(
    path: string,
  ): { r: Resource; namespace: string | undefined; name: string | undefined } | undefined {
    let rest: string[] | undefined;
    let gv: string | undefined;
    if (path.startsWith("/api/v1/")) {
      gv = "v1";
      rest = path.slice("/api/v1/".length).split("/");
    } else if (path.startsWith("/apis/networking.k8s.io/v1/")) {
      gv = "networking.k8s.io/v1";
      rest = path.slice("/apis/networking.k8s.io/v1/".length).split("/");
    }
    if (rest === undefined || rest.some((s) => s === "")) return undefined;
    const find = (plural: string | undefined) => {
      return RESOURCES.find((r) => r.plural === plural && apiVersionOf(r) === gv);
    };
    const dec = decodeURIComponent;
    if (rest.length <= 2) {
      // <plural> or <plural>/<name>: a cluster-wide list, or a cluster-scoped object.
      const r = find(rest[0]);
      if (r === undefined || (rest.length === 2 && r.namespaced)) return undefined;
      return { r, namespace: undefined, name: rest[1] === undefined ? undefined : dec(rest[1]) };
    }
    if (rest[0] !== "namespaces" || rest.length > 4) return undefined;
    const r = find(rest[2]);
    if (r === undefined || !r.namespaced) return undefined;
    return {
      r,
      namespace: dec(rest[1] as string),
      name: rest[3] === undefined ? undefined : dec(rest[3]),
    };
  }
}

function wantsTable(req: IncomingMessage): boolean {
  return /as=Table/.test(String(req.headers.accept ?? ""));
}

/** A server-side printed table (meta.k8s.io/v1 Table), as `kubectl get` asks for. */
function table(items: Obj[], rv: string): Obj {
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion: rv },
    columnDefinitions: [
      { name: "Name", type: "string", format: "name", description: "Name", priority: 0 },
      { name: "Age", type: "string", format: "", description: "Age", priority: 0 },
    ],
    rows: items.map((o) => {
      const m = metadataOf(o);
      const age = Math.max(
        0,
        Math.floor((Date.now() - Date.parse(String(m.creationTimestamp))) / 1000),
      );
      return {
        cells: [m.name, `${age}s`],
        object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: m },
      };
    }),
  };
}
