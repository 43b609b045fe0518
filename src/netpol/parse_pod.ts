// A v1 Pod into the model's Pod: labels, IPv4 pod IPs, node, hostNetwork and named container
// ports. Only those fields are read and checked (as ValidatePod checks them); the rest of the
// spec is not the engine's business.
//
// Named ports come from spec.containers and then from sidecars (spec.initContainers with
// restartPolicy Always), the containers and the order in which Kubernetes resolves a Service's
// named targetPort (podutil.FindPort). Ordinary init containers have exited before the pod
// serves, so their ports are not read. Port names are unique within a container, as the API
// server requires, but two containers may use one name for different numbers.
//
// Pod IPs: status.podIPs, or status.podIP when podIPs is absent; IPv6 ones are skipped (the
// product is IPv4-only). A pod in phase Succeeded or Failed has had its sandbox and address
// released (the address may already be another pod's), so its IPs are not kept.
import { dnsSubdomainProblem, portNameProblem } from "./_k8s_names.ts";
import { child, describeValue, index, type JsonObject, type Reader } from "./_reader.ts";
import type { NamedPort, Pod } from "./model.ts";
import { readMetadata } from "./parse_meta.ts";
import { checkPortNumber, readProtocol } from "./parse_port.ts";
import { ipv4Problem, isIpv6, parseIpv4 } from "../spec/ipv4.ts";

export function readPod(r: Reader, obj: JsonObject): Pod {
  const meta = readMetadata(r, obj, "namespaced", dnsSubdomainProblem);
  const spec = r.optObject(obj, "spec", "") ?? {};
  const status = r.optObject(obj, "status", "") ?? {};
  const node = r.optString(spec, "nodeName", "spec");
  const hostNetwork = r.optBoolean(spec, "hostNetwork", "spec") ?? false;
  const namedPorts = [
    ...readContainers(r, spec, "containers", false),
    ...readContainers(r, spec, "initContainers", true),
  ];
  const phase = r.optString(status, "phase", "status");
  const ips = readPodIps(r, status);
  return {
    namespace: meta.namespace ?? "default",
    name: meta.name,
    labels: meta.labels,
    ips: phase === "Succeeded" || phase === "Failed" ? [] : ips,
    node: node === undefined || node === "" ? undefined : node,
    namedPorts,
    hostNetwork,
  };
}

function readContainers(
  r: Reader,
  spec: JsonObject,
  key: "containers" | "initContainers",
  sidecarsOnly: boolean,
): NamedPort[] {
  const out: NamedPort[] = [];
  (r.optArray(spec, key, "spec") ?? []).forEach((value, i) => {
    const path = index(child("spec", key), i);
    const container = r.object(value, path);
    if (sidecarsOnly && r.optString(container, "restartPolicy", path) !== "Always") return;
    const names = new Set<string>();
    (r.optArray(container, "ports", path) ?? []).forEach((portValue, j) => {
      const portPath = index(child(path, "ports"), j);
      const o = r.object(portValue, portPath);
      const name = r.optString(o, "name", portPath) ?? "";
      if (name !== "") {
        const why = portNameProblem(name);
        if (why !== undefined) {
          r.fail(child(portPath, "name"), `${why}, got ${describeValue(name)}`);
        }
        if (names.has(name)) {
          r.fail(child(portPath, "name"), `duplicate port name ${describeValue(name)}`);
        }
        names.add(name);
      }
      const port = r.optInteger(o, "containerPort", portPath);
      if (port === undefined) r.fail(child(portPath, "containerPort"), "must be set");
      checkPortNumber(r, port, child(portPath, "containerPort"));
      const protocol = readProtocol(r, o, portPath);
      if (name !== "") out.push({ name, port, protocol });
    });
  });
  return out;
}

function readPodIps(r: Reader, status: JsonObject): number[] {
  const texts: [string, string][] = [];
  const list = r.optArray(status, "podIPs", "status");
  if (list !== undefined && list.length > 0) {
    list.forEach((value, i) => {
      const path = index("status.podIPs", i);
      texts.push([r.requiredString(r.object(value, path), "ip", path), child(path, "ip")]);
    });
  } else {
    const single = r.optString(status, "podIP", "status");
    if (single !== undefined && single !== "") texts.push([single, "status.podIP"]);
  }
  const ips: number[] = [];
  for (const [text, path] of texts) {
    if (isIpv6(text)) continue;
    const why = ipv4Problem(text);
    if (why !== undefined) {
      r.fail(path, `must be a valid IP address (${why}), got ${describeValue(text)}`);
    }
    const ip = parseIpv4(text);
    if (!ips.includes(ip)) ips.push(ip);
  }
  return ips;
}
