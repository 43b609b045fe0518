// What the agent's sources (the Kubernetes API, a manifest directory) hand on: raw objects as
// the API gives them, their removal, and when the source holds everything it can see.

export type KubeKind = "Pod" | "Namespace" | "NetworkPolicy" | "Node";

export interface SourceSink {
  /** An object was added or changed (the full object). */
  upsert(obj: Record<string, unknown>): void;
  /** An object is gone (also for deletes found by diffing after a relist). */
  remove(kind: KubeKind, namespace: string | undefined, name: string): void;
  /** Called once every kind has completed its initial list, and again after each relist
   * completes (a manifest directory: after every rescan). */
  synced(): void;
  /** Trouble worth logging (the source keeps going: retrying, or keeping the last good
   * version of a file). */
  problem(message: string): void;
  /** The source reaches its API server or directory (true), or lost it and retries (false).
   * For metrics and the readiness probe. */
  health?(up: boolean): void;
  /** The Kubernetes source opened a list or a watch of `resource` (`again`: not its first). */
  request?(resource: string, what: "list" | "watch", again: boolean): void;
  /** The problems one source of objects (a file) has now, replacing those it had: an empty
   * list clears them (the file was fixed or removed). */
  problems?(source: string, messages: string[]): void;
  /** Changes until commit() are one change: readers see the model from before them until
   * commit (a manifest file's objects appear together), and it costs one reconcile. */
  begin?(): void;
  commit?(): void;
}
