// Loads an agent source module. Both pull in npm code (the Kubernetes client, the YAML
// parser) that deno bundle turns from CommonJS into ESM with a `createRequire` shim from
// node:module; in the launcher's code-split bundle that shim would land in a chunk every
// CNI call loads (~20 ms). So scripts/build.sh bundles each source apart into the bundle's
// agent/ directory, and the agent imports it from there by a URL the bundler does not follow;
// running from source (tests, deno compile with --include) it is the module beside this one.
import type * as Kube from "./source_kube.ts";
import type * as Manifests from "./source_manifests.ts";

export interface Sources {
  source_kube: typeof Kube;
  source_manifests: typeof Manifests;
}

export async function importSource<K extends keyof Sources>(name: K): Promise<Sources[K]> {
  const here = import.meta.url;
  const url = here.endsWith(".ts")
    ? new URL(`./${name}.ts`, here)
    : new URL(`./agent/${name}.js`, here);
  return await import(url.href) as Sources[K];
}
