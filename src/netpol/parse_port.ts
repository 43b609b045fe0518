// Ports as the API server validates them: a NetworkPolicyPort (protocol defaulted to TCP; a
// numeric port 1-65535 with an optional endPort >= port, or an IANA_SVC_NAME port name; endPort
// only with a numeric port), and the protocol and number rules Pod containerPorts share.
import { portNameProblem } from "./_k8s_names.ts";
import { child, describeValue, field, type JsonObject, type Reader } from "./_reader.ts";
import { type PortSpec, type Protocol, PROTOCOLS } from "./model.ts";

export function readPort(r: Reader, value: unknown, path: string): PortSpec {
  const o = r.object(value, path);
  r.onlyFields(o, ["protocol", "port", "endPort"], path);
  const spec: PortSpec = { protocol: readProtocol(r, o, path) };
  const port = field(o, "port");
  const portPath = child(path, "port");
  if (typeof port === "number") {
    if (!Number.isInteger(port)) r.fail(portPath, `must be an integer or a port name, got ${port}`);
    checkPortNumber(r, port, portPath);
    spec.port = port;
  } else if (typeof port === "string") {
    // intstr: a JSON string is always a name, even "80" (which then fails the name rules).
    const why = portNameProblem(port);
    if (why !== undefined) r.fail(portPath, `${why}, got ${describeValue(port)}`);
    spec.port = port;
  } else if (port !== undefined) {
    r.fail(portPath, `must be a port number or a port name, got ${describeValue(port)}`);
  }
  const endPort = r.optInteger(o, "endPort", path);
  if (endPort !== undefined) {
    const endPath = child(path, "endPort");
    if (spec.port === undefined) {
      r.fail(endPath, `must not be set when port is not set, got ${endPort}`);
    }
    if (typeof spec.port === "string") {
      r.fail(endPath, `must not be set when port is a named port (${describeValue(spec.port)})`);
    }
    if (endPort < spec.port) {
      r.fail(endPath, `must be greater than or equal to port ${spec.port}, got ${endPort}`);
    }
    checkPortNumber(r, endPort, endPath);
    spec.endPort = endPort;
  }
  return spec;
}

/** `protocol`, defaulted to TCP; shared with Pod containerPorts. */
export function readProtocol(r: Reader, o: JsonObject, path: string): Protocol {
  const protocol = r.optString(o, "protocol", path);
  if (protocol === undefined) return "TCP";
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
    r.fail(
      child(path, "protocol"),
      `must be "TCP", "UDP" or "SCTP", got ${describeValue(protocol)}`,
    );
  }
  return protocol as Protocol;
}

/** A port number 1-65535; shared with Pod containerPorts. */
export function checkPortNumber(r: Reader, port: number, path: string): void {
  if (port < 1 || port > 65535) r.fail(path, `must be between 1 and 65535, got ${port}`);
}
