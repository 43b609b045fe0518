// Building and updating the Model from parsed objects, as sources (the API informer, a manifest
// directory) see them: create or replace by key, delete by key.
//
// Updates return a new Model and leave the old one as it was (only the map that changes is
// copied), so a Model is a snapshot: evaluate() may cache indexes per Model object, and a
// reader holding the old snapshot never sees half an update.
//
// Deleting a Namespace does not delete its pods and policies: the API server deletes those
// itself and each source reports each deletion. Until then the namespace's pods behave as the
// pods of a namespace with no Namespace object (see namespaceOf).
import {
  type Model,
  type Namespace,
  NAMESPACE_NAME_LABEL,
  objectKey,
  type Pod,
  type Policy,
} from "./model.ts";
import type { ParsedObject } from "./parse.ts";
import type { ClusterNode } from "../spec/node.ts";

/** An object to delete; the namespace of a namespaced kind defaults to "default". */
export interface ObjectRef {
  kind: "Namespace" | "Pod" | "NetworkPolicy" | "Node";
  namespace?: string | undefined;
  name: string;
}

export function emptyModel(): Model {
  return { namespaces: new Map(), pods: new Map(), policies: new Map(), nodes: new Map() };
}

/** A Model holding `objects`; a later object replaces an earlier one with the same key, and
 * objects of other kinds are ignored. */
export function buildModel(objects: Iterable<ParsedObject>): Model {
  const namespaces = new Map<string, Namespace>();
  const pods = new Map<string, Pod>();
  const policies = new Map<string, Policy>();
  const nodes = new Map<string, ClusterNode>();
  for (const o of objects) {
    switch (o.kind) {
      case "Namespace":
        namespaces.set(o.value.name, o.value);
        break;
      case "Pod":
        pods.set(objectKey(o.value.namespace, o.value.name), o.value);
        break;
      case "NetworkPolicy":
        policies.set(objectKey(o.value.namespace, o.value.name), o.value);
        break;
      case "Node":
        nodes.set(o.value.name, o.value);
        break;
      case "Other":
        break;
    }
  }
  return { namespaces, pods, policies, nodes };
}

/** `model` with `object` created or replaced (an "Other" object changes nothing). */
export function applyObject(model: Model, object: ParsedObject): Model {
  switch (object.kind) {
    case "Namespace":
      return { ...model, namespaces: withEntry(model.namespaces, object.value.name, object.value) };
    case "Pod": {
      const key = objectKey(object.value.namespace, object.value.name);
      return { ...model, pods: withEntry(model.pods, key, object.value) };
    }
    case "NetworkPolicy": {
      const key = objectKey(object.value.namespace, object.value.name);
      return { ...model, policies: withEntry(model.policies, key, object.value) };
    }
    case "Node":
      return { ...model, nodes: withEntry(model.nodes, object.value.name, object.value) };
    case "Other":
      return model;
  }
}

/** `model` without the object `ref` names (the same model when it holds no such object). */
export function deleteObject(model: Model, ref: ObjectRef): Model {
  const key = ref.kind === "Namespace" || ref.kind === "Node"
    ? ref.name
    : objectKey(ref.namespace ?? "default", ref.name);
  switch (ref.kind) {
    case "Namespace":
      return model.namespaces.has(key)
        ? { ...model, namespaces: withoutEntry(model.namespaces, key) }
        : model;
    case "Pod":
      return model.pods.has(key) ? { ...model, pods: withoutEntry(model.pods, key) } : model;
    case "NetworkPolicy":
      return model.policies.has(key)
        ? { ...model, policies: withoutEntry(model.policies, key) }
        : model;
    case "Node":
      return model.nodes.has(key) ? { ...model, nodes: withoutEntry(model.nodes, key) } : model;
  }
}

/**
 * The namespace `name` as selectors see it: its Namespace object, or, when the model has none
 * (a manifest directory without Namespace objects, or a pod seen before its namespace), a
 * namespace carrying only the kubernetes.io/metadata.name label, which is all the API server
 * would have given it.
 */
export function namespaceOf(model: Model, name: string): Namespace {
  return model.namespaces.get(name) ?? { name, labels: { [NAMESPACE_NAME_LABEL]: name } };
}

function withEntry<V>(map: ReadonlyMap<string, V>, key: string, value: V): Map<string, V> {
  const copy = new Map(map);
  copy.set(key, value);
  return copy;
}

function withoutEntry<V>(map: ReadonlyMap<string, V>, key: string): Map<string, V> {
  const copy = new Map(map);
  copy.delete(key);
  return copy;
}
