// The deployment files (deploy/): the configs pass the plugin's own config parser (a conflist
// as libcni hands each plugin its entry, with name and cniVersion injected) and its host-local
// IPAM parser, and name the plugin's real default paths; the Kubernetes manifest is valid YAML
// with the shape the brief asks for (kube-system, hostNetwork, every taint tolerated, hostPath
// mounts of the CNI dirs, bpffs and /var/lib/cni, privilege only where needed, no RBAC); the
// ConfigMap carries the same conflist; the Dockerfile and README agree with both.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { DEFAULT_PIN_DIR, DEFAULT_STATE_DIR, parseNetConf } from "../src/cni/config.ts";
import { DEFAULT_DATA_DIR, parseHostLocalConfig } from "../src/ipam/config.ts";
import { VERSION } from "../src/version.ts";

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
    const ipam = parseHostLocalConfig(conf.ipam.raw);
    assert.equal(ipam.dataDir, DEFAULT_DATA_DIR);
    assert.deepEqual(ipam.routes.map((r) => r.dst), ["0.0.0.0/0"]);
    assert.equal(conf.ipam.raw.subnet, "10.13.0.0/24");
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

interface Container {
  name: string;
  image: string;
  command?: string[];
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

Deno.test("deploy: ebpfcni.yaml is ServiceAccount + ConfigMap + DaemonSet in kube-system, no RBAC", () => {
  const docs = manifests();
  assert.deepEqual(docs.map((d) => d.kind).sort(), ["ConfigMap", "DaemonSet", "ServiceAccount"]);
  for (const d of docs) {
    const meta = obj(d.metadata, "metadata");
    assert.equal(meta.namespace, "kube-system", `${d.kind} in kube-system`);
    assert.ok(typeof d.apiVersion === "string" && d.apiVersion !== "", `${d.kind} apiVersion`);
  }
  const sa = byKind(docs, "ServiceAccount");
  assert.equal(sa.automountServiceAccountToken, false);
  const spec = podSpec(docs);
  assert.equal(spec.serviceAccountName, obj(sa.metadata, "sa").name);
  assert.equal(spec.automountServiceAccountToken, false);
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
    ["/etc/cni/net.d", "/opt/cni/bin", "/sys/fs/bpf", "/var/lib/cni"],
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

  // The main container: the CLI's place on the node, CAP_BPF + CAP_NET_ADMIN only, with the
  // node's bpffs (pins made later must show up: HostToContainer) and /var/lib/cni.
  assert.equal(main.length, 1);
  const cli = main[0]!;
  assert.notEqual(cli.securityContext?.privileged, true);
  assert.deepEqual(cli.securityContext?.capabilities?.drop, ["ALL"]);
  assert.deepEqual([...(cli.securityContext?.capabilities?.add ?? [])].sort(), [
    "BPF",
    "NET_ADMIN",
  ]);
  assert.equal(mounts(cli).get("/sys/fs/bpf")?.mountPropagation, "HostToContainer");
  assert.equal(mounts(cli).get("/var/lib/cni")?.readOnly, true);
  assert.ok(!mounts(cli).has("/opt/cni/bin") && !mounts(cli).has("/etc/cni/net.d"));
  assert.match((cli.command ?? []).join(" "), /ebpfcni status --init/);
  assert.deepEqual(cli.env, [{ name: "EBPFCNI_PIN_DIR", value: DEFAULT_PIN_DIR }]);
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
});
