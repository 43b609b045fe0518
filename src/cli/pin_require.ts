// What CLI commands require of the pins (datapath/pins.ts opens them): a map that must be
// there, and identity mode for the commands that write policy entries by hand.
import { CONFIG_MAP, type MapSpec, MODE_KUBERNETES } from "../spec/bpf_layout.ts";
import { ConfigMap } from "../datapath/maps.ts";
import { openMap, type PinnedMap } from "../datapath/pins.ts";
import { CommandError } from "./errors.ts";
import { createHint } from "./usage.ts";

/** Opens a map the command needs; its absence fails the command with how to create it. */
export function requireMap(pinDir: string, spec: MapSpec): PinnedMap {
  const map = openMap(pinDir, spec);
  if (map) return map;
  throw new CommandError(`No ${spec.name} pinned under "${pinDir}": ${createHint(pinDir)}`);
}

/** Refuses to write policy entries of a pin directory in kubernetes mode: the agent owns
 * them there, and would undo (or be confused by) what an operator writes by hand. */
export function requireIdentityMode(pinDir: string, what: string): void {
  using config = openMap(pinDir, CONFIG_MAP);
  if (!config) return;
  if (new ConfigMap(config.fd).get().mode === MODE_KUBERNETES) {
    throw new CommandError(
      `Cannot ${what}: "${pinDir}" is in kubernetes mode, where the policy agent owns the ` +
        `entries (write NetworkPolicies instead; "ebpfcni agent status" shows the agent)`,
    );
  }
}
