// CNI spec versions: which ones the plugin speaks, how they compare, and which commands each
// version allows (the rules of libcni's pkg/skel and pkg/version).

import { CniError, ErrCode } from "../spec/cni.ts";
import type { Command } from "./env.ts";
import { quote } from "../spec/text.ts";

/** The spec versions whose config and result shapes the plugin implements, oldest first. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type SupportedVersion = typeof SUPPORTED_VERSIONS[number];

/** The newest version, used for VERSION output and for errors when the request's is unusable. */
export const CURRENT_VERSION: SupportedVersion = "1.1.0";

/** The VERSION command's output (libcni's PluginInfo encoding). */
export interface VersionInfo {
  cniVersion: SupportedVersion;
  supportedVersions: SupportedVersion[];
}

/** Is `v` one of SUPPORTED_VERSIONS (exact string match, as libcni's reconciler does)? */
export function isSupportedVersion(v: string): v is SupportedVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/**
 * Parses "MAJOR[.MINOR[.PATCH]]" into three numbers. libcni accepts one to three decimal parts,
 * missing parts counting as 0, so "1.1" compares equal to "1.1.0".
 */
export function parseVersion(v: string): [number, number, number] {
  const parts = v.split(".");
  if (parts.length > 3 || parts.some((p) => !/^[0-9]{1,9}$/.test(p))) {
    throw new CniError(
      ErrCode.IncompatibleVersion,
      `Invalid CNI version ${quote(v)}: expected MAJOR.MINOR.PATCH with decimal parts`,
    );
  }
  const [major = 0, minor = 0, patch = 0] = parts.map(Number);
  return [major, minor, patch];
}

/** Compares two versions: negative if a < b, 0 if equal, positive if a > b. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Checks that the config's cniVersion is one the plugin implements and returns it typed. The
 * plugin answers in the requested version, so there is nothing else to negotiate.
 */
export function negotiate(cniVersion: string): SupportedVersion {
  if (isSupportedVersion(cniVersion)) return cniVersion;
  throw new CniError(
    ErrCode.IncompatibleVersion,
    `Incompatible CNI version ${quote(cniVersion)}: plugin supports ${
      SUPPORTED_VERSIONS.join(", ")
    }`,
  );
}

/** The first spec version that defines each command; absent commands exist in every version. */
const MIN_VERSION_FOR: Partial<Record<Command, string>> = {
  CHECK: "0.4.0",
  STATUS: "1.1.0",
  GC: "1.1.0",
};

/**
 * Throws code 1 when the config's version predates the command, as skel does: a 0.3.x config
 * must not be CHECKed, STATUS and GC need 1.1.0. VERSION never looks at a config.
 */
export function checkCommandAllowed(command: Command, cniVersion: string): void {
  const min = MIN_VERSION_FOR[command];
  if (min === undefined) return;
  if (compareVersions(cniVersion, min) < 0) {
    throw new CniError(
      ErrCode.IncompatibleVersion,
      `Config version ${quote(cniVersion)} does not allow ${command}: it needs ${min} or later`,
    );
  }
}

/**
 * The VERSION command's output. It takes no input on purpose: runtimes probe with placeholder
 * env values and a stdin of {"cniVersion":"x"}, and skel answers with the plugin's info anyway.
 */
export function versionInfo(): VersionInfo {
  return { cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
