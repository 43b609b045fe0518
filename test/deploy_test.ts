// The deployment files (deploy/): the configs pass the plugin's own config parser (a conflist
// as libcni hands each plugin its entry, with name and cniVersion injected) and its host-local
// IPAM parser, and name the plugin's real default paths; the Kubernetes manifest is valid YAML
// with the shape the brief asks for (kube-system, hostNetwork, every taint tolerated, hostPath
// mounts of the CNI dirs, bpffs, /var/lib/cni and the agent socket dir, privilege only where
// needed, RBAC only to read pods, namespaces, nodes and policies, the agent probed by HTTP GETs
// of /healthz and /readyz where it listens, routing and masquerading as its own flag parser reads
// them, forwarding turned on by the privileged init container); the
// ConfigMap carries the same conflist; the Dockerfile and README agree with both.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import {
  DEFAULT_AGENT_SOCKET,
  DEFAULT_PIN_DIR,
  DEFAULT_STATE_DIR,
  parseNetConf,
} from "../src/cni/net_conf.ts";
import { formatCidr, parseCidr } from "../src/spec/ipv4.ts";
import { DEFAULT_DATA_DIR, parseHostLocalConfig } from "../src/ipam/ipam_conf.ts";
import { VERSION } from "../src/version.ts";
import { DEFAULT_METRICS_ADDRESS, parseListenAddress } from "../src/agent/http_address.ts";
import { masqueradeOf, routingOf } from "../src/cli/agent.ts";
import { awaitsPodCidr } from "../src/ipam/ipam_conf.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const DEPLOY = `${ROOT}/deploy`;
const IMAGE = `ghcr.io/ebpfcni/ebpfcni:${VERSION}`;

type Obj = Record<string, unknown>;

function read(path: string): string {
  return Deno.readTextFileSync(`${DEPLOY}/${path}`);
}

function json(path: string): Obj {
  return JSON.parse(read(path));
}

/** What libcni hands plugin `i` of a conflist: its entry with name and cniVersion injected. */
function pluginConf(list: Obj, i: number): Obj {
  const plugins = list.plugins as Obj[];
  return { ...plugins[i], name: list.name, cniVersion: list.cniVersion };
}

function parse(conf: Obj) {
  return parseNetConf(new TextEncoder().encode(JSON.stringify(conf)));
}

function obj(v: unknown, what: string): Obj {
  assert.ok(typeof v === "object" && v !== null && !Array.isArray(v), `${what} is an object`);
  return v as Obj;
}

function list(v: unknown, what: string): Obj[] {
  assert.ok(Array.isArray(v), `${what} is a list`);
  return v as Obj[];
}

// ---- configs --------------------------------------------------------------------------------

Deno.test("deploy: 10-ebpfcni.conflist passes the plugin's parser, cniVersion 1.1.0", () => {
  const conflist = json("10-ebpfcni.conflist");
  assert.equal(conflist.cniVersion, "1.1.0");
  assert.equal(conflist.name, "ebpfcni");
  const plugins = list(conflist.plugins, "plugins");
  assert.equal(plugins.length, 1);
  plugins.forEach((_, i) => {
    const conf = parse(pluginConf(conflist, i));
    assert.equal(conf.cniVersion, "1.1.0");
    assert.equal(conf.type, "ebpfcni");
    assert.equal(conf.bridge, "cni0");
    assert.equal(conf.ipam.type, "host-local");
    // The paths are spelled out, and are the plugin's own defaults.
    assert.equal(conf.pinDir, DEFAULT_PIN_DIR);
    assert.equal(conf.stateDir, DEFAULT_STATE_DIR);
    // Kubernetes NetworkPolicy: the agent's mode, its socket (the plugin's default), the
    // cluster's default Service range.
    assert.equal(conf.datapath.mode, "kubernetes");
    assert.equal(conf.agentSocket, DEFAULT_AGENT_SOCKET);
    assert.deepEqual(conf.datapath.serviceCidrs.map(formatCidr), ["10.96.0.0/12"]);
    // As ADD parses it once the agent gave this node's pod CIDR.
    const ipam = parseHostLocalConfig(conf.ipam.raw, undefined, parseCidr("10.244.1.0/24"));
    assert.equal(ipam.dataDir, DEFAULT_DATA_DIR);
    assert.deepEqual(ipam.routes.map((r) => r.dst), ["0.0.0.0/0"]);
    // A cluster's nodes each take their own pod CIDR (Node spec.podCIDRs, through the agent).
    assert.equal(conf.ipam.raw.subnet, "usePodCidr");
    assert.ok(conf.ipam.builtIn && awaitsPodCidr(conf.ipam), "ADD asks the agent for the CIDR");
  });
  const text = read("10-ebpfcni.conflist");
  for (const path of ["/sys/fs/bpf", "/var/lib/cni"]) assert.ok(text.includes(path), path);
});

Deno.test("deploy: 10-ebpfcni.conf is the original 1.0.0 config and passes the parser", () => {
  const conf = json("10-ebpfcni.conf");
  assert.deepEqual(conf, {
    cniVersion: "1.0.0",
    name: "ebpfcni",
    type: "ebpfcni",
    ipam: { type: "host-local", subnet: "10.13.0.0/24", routes: [{ dst: "0.0.0.0/0" }] },
  });
  const parsed = parse(conf);
  assert.equal(parsed.cniVersion, "1.0.0");
  assert.equal(parsed.bridge, "cni0");
  assert.equal(parsed.pinDir, "/sys/fs/bpf/tc/globals");
  assert.equal(parseHostLocalConfig(parsed.ipam.raw).dataDir, "/var/lib/cni/networks");
});

// ---- Kubernetes -----------------------------------------------------------------------------

function manifests(): Obj[] {
  const docs = parseAllDocuments(read("kubernetes/ebpfcni.yaml"));
  assert.ok(Array.isArray(docs), "a multi-document YAML stream");
  for (const d of docs) assert.deepEqual(d.errors, [], "YAML parses without errors");
  return docs.map((d) => obj(d.toJS(), "document"));
}

function byKind(docs: Obj[], kind: string): Obj {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
}

interface Probe {
  exec?: unknown;
  httpGet?: { host?: string; port?: number | string; path?: string };
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  env?: { name: string; value: string }[];
  securityContext?: {
    privileged?: boolean;
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: {
    name: string;
    mountPath: string;
    mountPropagation?: string;
    readOnly?: boolean;
  }[];
}

function podSpec(docs: Obj[]): Obj {
  const ds = byKind(docs, "DaemonSet");
  return obj(obj(obj(ds.spec, "spec").template, "template").spec, "pod spec");
}

function containers(spec: Obj): { init: Container[]; main: Container[] } {
  return {
    init: (spec.initContainers ?? []) as Container[],
    main: (spec.containers ?? []) as Container[],
  };
}

/** Host path of each volume by name. */
function hostPaths(spec: Obj): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of list(spec.volumes, "volumes")) {
    const hp = v.hostPath as { path?: string } | undefined;
    if (hp?.path) out.set(String(v.name), hp.path);
  }
  return out;
}

Deno.test("deploy: ebpfcni.yaml is a ServiceAccount with read-only RBAC, a ConfigMap and a DaemonSet", () => {
  const docs = manifests();
  assert.deepEqual(docs.map((d) => d.kind).sort(), [
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "DaemonSet",
    "ServiceAccount",
  ]);
  for (const d of docs) {
    const meta = obj(d.metadata, "metadata");
    const clusterScoped = d.kind === "ClusterRole" || d.kind === "ClusterRoleBinding";
    assert.equal(meta.namespace, clusterScoped ? undefined : "kube-system", `${d.kind} namespace`);
    assert.ok(typeof d.apiVersion === "string" && d.apiVersion !== "", `${d.kind} apiVersion`);
  }
  const sa = byKind(docs, "ServiceAccount");
  const spec = podSpec(docs);
  assert.equal(spec.serviceAccountName, obj(sa.metadata, "sa").name);
  assert.notEqual(spec.automountServiceAccountToken, false, "the agent needs its token");
  // get/list/watch of pods, namespaces, nodes and networkpolicies: nothing more.
  const role = byKind(docs, "ClusterRole");
  const granted = list(role.rules, "rules").flatMap((r) =>
    (r.apiGroups as string[]).flatMap((g) =>
      (r.resources as string[]).flatMap((res) =>
        (r.verbs as string[]).map((v) => `${g || "core"}/${res}:${v}`)
      )
    )
  ).sort();
  assert.deepEqual(
    granted,
    [
      "core/namespaces:get",
      "core/namespaces:list",
      "core/namespaces:watch",
      "core/nodes:get",
      "core/nodes:list",
      "core/nodes:watch",
      "core/pods:get",
      "core/pods:list",
      "core/pods:watch",
      "networking.k8s.io/networkpolicies:get",
      "networking.k8s.io/networkpolicies:list",
      "networking.k8s.io/networkpolicies:watch",
    ],
  );
  const binding = byKind(docs, "ClusterRoleBinding");
  assert.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: obj(role.metadata, "role").name,
  });
  assert.deepEqual(binding.subjects, [
    { kind: "ServiceAccount", name: obj(sa.metadata, "sa").name, namespace: "kube-system" },
  ]);
});

Deno.test("deploy: the DaemonSet runs everywhere on the host network and mounts the plugin's paths", () => {
  const docs = manifests();
  const ds = byKind(docs, "DaemonSet");
  const dsSpec = obj(ds.spec, "spec");
  const labels = obj(obj(obj(dsSpec.template, "template").metadata, "meta").labels, "labels");
  for (const [k, v] of Object.entries(obj(obj(dsSpec.selector, "sel").matchLabels, "ml"))) {
    assert.equal(labels[k], v, "selector matches the pod template");
  }
  const spec = podSpec(docs);
  assert.equal(spec.hostNetwork, true);
  assert.ok(
    list(spec.tolerations, "tolerations").some((t) =>
      t.operator === "Exists" && t.key === undefined && t.effect === undefined
    ),
    "one toleration matches every taint",
  );
  const paths = hostPaths(spec);
  assert.deepEqual(
    [...paths.values()].sort(),
    [
      "/etc/cni/net.d",
      "/opt/cni/bin",
      "/run/ebpfcni",
      "/sys/fs/bpf",
      "/var/lib/cni",
      "/var/lib/ebpfcni",
    ],
  );
  const { init, main } = containers(spec);
  for (const c of [...init, ...main]) assert.equal(c.image, IMAGE, `${c.name} image`);
  const volumeNames = new Set(list(spec.volumes, "volumes").map((v) => v.name));
  for (const c of [...init, ...main]) {
    for (const m of c.volumeMounts ?? []) {
      assert.ok(volumeNames.has(m.name), `${c.name} mounts declared volume ${m.name}`);
    }
  }

  // Which container mounts which host path.
  const mounts = (c: Container) =>
    new Map(
      (c.volumeMounts ?? []).filter((m) => paths.has(m.name)).map((m) => [paths.get(m.name)!, m]),
    );

  // bpffs: the mount must reach the host, hence Bidirectional, hence privileged; the only one.
  const privileged = [...init, ...main].filter((c) => c.securityContext?.privileged === true);
  assert.equal(privileged.length, 1, "exactly one privileged container");
  const bpf = privileged[0]!;
  assert.ok(init.includes(bpf), "the privileged one is an init container");
  assert.equal(mounts(bpf).get("/sys/fs/bpf")?.mountPropagation, "Bidirectional");
  assert.equal(mounts(bpf).size, 1, "the privileged container mounts bpffs only");
  assert.match((bpf.command ?? []).join(" "), /mount -t bpf bpf \/sys\/fs\/bpf/);

  // The installer: copies the binary into /opt/cni/bin and the ConfigMap's conflist into
  // /etc/cni/net.d, by rename; root without capabilities.
  const installer = init.find((c) => {
    const m = mounts(c);
    return m.has("/opt/cni/bin") && m.has("/etc/cni/net.d");
  });
  assert.ok(installer, "an init container mounts /opt/cni/bin and /etc/cni/net.d");
  // Forwarding (the host's: hostNetwork) is turned on where /proc/sys is writable; the agent's
  // container sees it read-only and only checks it.
  assert.match((bpf.command ?? []).join(" "), /echo 1 > \/proc\/sys\/net\/ipv4\/ip_forward/);
  const sc = installer.securityContext ?? {};
  assert.notEqual(sc.privileged, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.deepEqual(sc.capabilities?.drop, ["ALL"]);
  assert.equal(sc.capabilities?.add, undefined);
  const script = (installer.command ?? []).join("\n");
  const bin = mounts(installer).get("/opt/cni/bin")!.mountPath;
  const netd = mounts(installer).get("/etc/cni/net.d")!.mountPath;
  assert.match(script, new RegExp(`mv -f \\S+ ${bin}/ebpfcni\\n`));
  assert.match(script, new RegExp(`mv -f \\S+ ${netd}/10-ebpfcni\\.conflist\\n`));
  assert.ok(
    script.indexOf(`${bin}/ebpfcni\n`) < script.indexOf(`${netd}/10-ebpfcni.conflist\n`),
    "binary before config",
  );
  const configVolume = list(spec.volumes, "volumes").find((v) => v.configMap !== undefined);
  assert.ok(configVolume, "a ConfigMap volume");
  const configMount = (installer.volumeMounts ?? []).find((m) => m.name === configVolume.name);
  assert.ok(configMount, "the installer mounts the ConfigMap");
  assert.ok(script.includes(`${configMount.mountPath}/10-ebpfcni.conflist`));
  assert.equal(
    obj(configVolume.configMap, "configMap").name,
    obj(byKind(docs, "ConfigMap").metadata, "cm").name,
  );

  // The main container: the node's agent (in-cluster, this node's name, the conflist's
  // agentSocket), CAP_BPF + CAP_NET_ADMIN only, with the node's bpffs (pins made later must
  // show up: HostToContainer), the plugin's records read-only, and the socket's directory.
  assert.equal(main.length, 1);
  const agent = main[0]!;
  assert.notEqual(agent.securityContext?.privileged, true);
  assert.deepEqual(agent.securityContext?.capabilities?.drop, ["ALL"]);
  assert.deepEqual([...(agent.securityContext?.capabilities?.add ?? [])].sort(), [
    "BPF",
    "NET_ADMIN",
  ]);
  assert.equal(mounts(agent).get("/sys/fs/bpf")?.mountPropagation, "HostToContainer");
  assert.equal(mounts(agent).get("/var/lib/cni")?.readOnly, true);
  assert.ok(!mounts(agent).has("/opt/cni/bin") && !mounts(agent).has("/etc/cni/net.d"));
  const command = (agent.command ?? []).join(" ");
  assert.match(command, /^ebpfcni agent run --in-cluster --node=\$\(NODE_NAME\)/);
  const conf = pluginConf(json("10-ebpfcni.conflist"), 0) as { agentSocket?: string };
  assert.ok(command.includes(`--socket=${conf.agentSocket}`), "the socket the plugin asks");
  // It cannot run CNI calls (records read-only, no view of the netns paths): the plugin
  // keeps them, and the agent declines any handed over.
  assert.ok(command.includes("--no-cni-handoff"));
  assert.equal((conf as { agentHandoff?: boolean }).agentHandoff, false);
  const socketDir = conf.agentSocket!.replace(/\/[^/]+$/, "");
  assert.equal(mounts(agent).get(socketDir)?.readOnly, undefined, "the socket's dir, writable");
  // Its own records (the rule ledger) go where it can write, not to the read-only records.
  const dataDir = command.match(/--data-dir=(\S+)/)?.[1];
  assert.ok(dataDir !== undefined && !dataDir.startsWith("/var/lib/cni"), command);
  assert.equal(mounts(agent).get(dataDir)?.readOnly, undefined, "the agent's data dir, writable");
  const env = agent.env as unknown as { name: string; value?: string; valueFrom?: unknown }[];
  assert.deepEqual(env.find((e) => e.name === "EBPFCNI_PIN_DIR")?.value, DEFAULT_PIN_DIR);
  assert.deepEqual(env.find((e) => e.name === "NODE_NAME")?.valueFrom, {
    fieldRef: { fieldPath: "spec.nodeName" },
  });
});

/** The agent container's `--flag=value` and `--flag` arguments, as the CLI's parser splits them. */
function agentFlags(agent: Container): {
  values: Record<string, string | boolean>;
  lists: Record<string, string[]>;
} {
  const values: Record<string, string | boolean> = {};
  const lists: Record<string, string[]> = {};
  for (const arg of (agent.command ?? []).slice(3)) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    assert.ok(m, `agent argument ${arg} is --flag or --flag=value`);
    const [, name, value] = m;
    values[name!] = value ?? true;
    if (value !== undefined) (lists[name!] ??= []).push(value);
  }
  return { values, lists };
}

Deno.test("deploy: the DaemonSet's agent routes between nodes over vxlan and masquerades", () => {
  const agent = containers(podSpec(manifests())).main[0]!;
  const { values, lists } = agentFlags(agent);
  assert.equal(values.routing, "vxlan", "--routing=vxlan spelled out (the default)");
  const routing = routingOf(values);
  assert.deepEqual(routing, { mode: "vxlan", vxlan: { port: 8472, vni: 1 } });
  assert.equal(values.masquerade, true, "--masquerade spelled out (the default)");
  assert.equal(values["no-masquerade"], undefined);
  assert.deepEqual(masqueradeOf(values, lists), { nonMasquerade: [] });
  // A vxlan device, routes, neighbours and an nftables table: CAP_NET_ADMIN, in the host's
  // network namespace.
  assert.ok(agent.securityContext?.capabilities?.add?.includes("NET_ADMIN"));
  assert.equal(podSpec(manifests()).hostNetwork, true);
});

Deno.test("deploy: the agent's liveness and readiness probes are HTTP GETs of /healthz and /readyz where it listens", () => {
  const agent = containers(podSpec(manifests())).main[0]!;
  const flag = (agent.command ?? []).find((a) => a.startsWith("--metrics-address="));
  const address = parseListenAddress(flag?.split("=")[1] ?? DEFAULT_METRICS_ADDRESS);
  assert.ok(!("problem" in address), `--metrics-address: ${JSON.stringify(address)}`);
  for (
    const [probe, path] of [[agent.livenessProbe, "/healthz"], [
      agent.readinessProbe,
      "/readyz",
    ]] as const
  ) {
    assert.equal(probe?.exec, undefined, `${path}: not an exec`);
    // hostNetwork: kubelet's GET reaches the agent's address in the node's namespace.
    assert.deepEqual(probe?.httpGet, { host: address.hostname, port: address.port, path });
  }
});

Deno.test("deploy: the ConfigMap carries deploy/10-ebpfcni.conflist", () => {
  const cm = byKind(manifests(), "ConfigMap");
  const data = obj(cm.data, "data");
  assert.deepEqual(Object.keys(data), ["10-ebpfcni.conflist"]);
  const fromCm = JSON.parse(String(data["10-ebpfcni.conflist"]));
  assert.deepEqual(fromCm, json("10-ebpfcni.conflist"));
  parse(pluginConf(fromCm, 0));
});

// ---- image and docs -------------------------------------------------------------------------

Deno.test("deploy: Dockerfile puts dist/ebpfcni and the conflist where the manifest expects", () => {
  const text = read("Dockerfile");
  assert.match(text, /bash scripts\/build\.sh/);
  assert.match(text, /COPY --from=\S+ \/src\/dist\/ebpfcni \/usr\/local\/bin\/ebpfcni/);
  assert.match(text, /COPY deploy\/10-ebpfcni\.conflist \/etc\/ebpfcni\/10-ebpfcni\.conflist/);
  assert.match(text, /libbpf1/);
  assert.match(text, /libmnl0/);
  // The agent's masquerade loads libnftables (nftables without the nft binary).
  assert.match(text, /apt-get install[^\n]*\n?[^\n]*libnftables1/);
  assert.ok(text.includes(`-t ${IMAGE}`), "documents the image name");
  assert.ok(text.includes(`version="${VERSION}"`), "labels the image with the product version");
  const deno = /DENO_VERSION=(\S+)/.exec(text)?.[1];
  const bootstrap = Deno.readTextFileSync(`${ROOT}/scripts/bootstrap.sh`);
  assert.equal(deno, /DENO_VERSION=(\S+)/.exec(bootstrap)?.[1], "same Deno as bootstrap.sh");
  const yaml = read("kubernetes/ebpfcni.yaml");
  assert.ok(yaml.includes("/usr/local/bin/ebpfcni"));
});

Deno.test("deploy: README covers installing by hand and with kubectl", () => {
  const text = read("README.md");
  assert.match(text, /## By hand/);
  assert.match(text, /## On a cluster/);
  assert.match(text, /kubectl apply -f deploy\/kubernetes\/ebpfcni\.yaml/);
  assert.match(text, /mount -t bpf bpf \/sys\/fs\/bpf/);
  for (const path of ["/opt/cni/bin", "/etc/cni/net.d", "/sys/fs/bpf", "/var/lib/cni"]) {
    assert.ok(text.includes(path), `README names ${path}`);
  }
  // What a cluster of several nodes takes: pod CIDRs, the routing choices, masquerade.
  for (const word of ["usePodCidr", "--routing=vxlan", "--routing=native", "--masquerade"]) {
    assert.ok(text.includes(word), `README says ${word}`);
  }
});
