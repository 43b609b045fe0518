// Builders for the engine's tests: Kubernetes objects as plain JSON (the shape kubectl prints
// and the upstream e2e manifests have), models made from them, and flows.
import assert from "node:assert/strict";
import { ObjectError } from "./errors.ts";
import type { Flow, Model, Protocol } from "./model.ts";
import { buildModel } from "./model_build.ts";
import { parseDocument } from "./parse.ts";
import { parseIpv4 } from "../spec/ipv4.ts";

export function namespaceObj(name: string, labels: Record<string, string> = {}): unknown {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

export interface PodOptions {
  ip?: string;
  nodeName?: string;
  hostNetwork?: boolean;
  /** containerPorts of one container. */
  ports?: { name?: string; containerPort: number; protocol?: string }[];
}

/** "x/a" with labels; `ip` goes into status.podIP as the e2e manifests have it. */
export function podObj(
  ref: string,
  labels: Record<string, string> = {},
  opts: PodOptions = {},
): unknown {
  const [namespace, name] = splitRef(ref);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace, name, labels },
    spec: {
      nodeName: opts.nodeName ?? "node-1",
      ...(opts.hostNetwork === undefined ? {} : { hostNetwork: opts.hostNetwork }),
      containers: [{ name: "c", image: "agnhost", ports: opts.ports ?? [] }],
    },
    status: opts.ip === undefined ? { phase: "Running" } : { phase: "Running", podIP: opts.ip },
  };
}

/** "x/name" with a spec. */
export function policyObj(ref: string, spec: Record<string, unknown>): unknown {
  const [namespace, name] = splitRef(ref);
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { namespace, name },
    spec,
  };
}

export function modelOf(...objects: unknown[]): Model {
  return buildModel(objects.flatMap((o) => parseDocument(o)));
}

/** A flow between two pods ("x/a"), or from/to an address ("10.0.0.1") or "node". */
export function flow(src: string, dst: string, port = 80, protocol: Protocol = "TCP"): Flow {
  return { src: end(src), dst: end(dst), protocol, port };
}

function end(text: string): Flow["src"] {
  if (text === "node") return { kind: "node" };
  if (/^[0-9.]+$/.test(text)) return { kind: "ip", ip: parseIpv4(text) };
  const [namespace, name] = splitRef(text);
  return { kind: "pod", namespace, name };
}

function splitRef(ref: string): [string, string] {
  const [namespace, name] = ref.split("/");
  assert.ok(namespace !== undefined && name !== undefined, `bad ref ${ref}`);
  return [namespace, name];
}

/** The ObjectError `fn` throws (failing the test when it throws none or another error). */
export function objectErrorOf(fn: () => unknown): ObjectError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ObjectError, `expected an ObjectError, got ${err}`);
    return err;
  }
  assert.fail("expected an ObjectError, nothing was thrown");
}
