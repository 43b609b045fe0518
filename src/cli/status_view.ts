// The status report's shape and its two forms, text and JSON, and the one-line verdict for
// stderr. Pure; status_collect.ts fills it in from the kernel.
import { renderFields, renderTable } from "./text_table.ts";
import { createHint } from "./usage.ts";

export interface MapStatus {
  name: string;
  pinned: boolean;
  id?: number;
  entries?: number;
  maxEntries: number;
  /** Something is pinned under the name but is not this map (or cannot be read). */
  problem?: string;
}

export interface ProgramStatus {
  pinned: boolean;
  problem?: string;
  id?: number;
  tag?: string;
  /** The program is the one this binary embeds (else the next CNI ADD replaces it). */
  thisBuild?: boolean;
  /** The program uses the pinned maps (else it was loaded against other maps). */
  usesPinnedMaps?: boolean;
}

export interface AttachedLink {
  name: string;
  ifindex: number;
  kind: string;
  hook: "ingress" | "egress";
  programId: number;
  /** The attached program is the pinned one. */
  pinned: boolean;
}

export interface Status {
  version: string;
  pinDir: string;
  pinDirExists: boolean;
  bpffs: { mounted: boolean; mountPoint: string | null; fsType: string | null };
  /** What config_map says (null: not pinned). */
  mode: { policyMode: string; conntrack: boolean; serviceCIDRs: string[] } | null;
  maps: MapStatus[];
  /** The tc ingress classifier (tc_prog) and the tc egress one (tc_prog_egress). */
  program: ProgramStatus;
  egressProgram: ProgramStatus;
  counters: Record<string, number> | null;
  attached: AttachedLink[];
}

function fill(m: MapStatus): string {
  if (m.problem !== undefined) return "NOT OURS (see below)";
  if (m.entries === undefined) return "not pinned";
  if (m.name === "events") return "ring (bytes)";
  return `${(100 * m.entries / m.maxEntries).toFixed(1)}%`;
}

/** The human-readable form. */
export function renderStatus(s: Status): string {
  const bpffs = s.bpffs.mounted
    ? `mounted at ${s.bpffs.mountPoint}`
    : `NOT mounted: ${s.pinDirExists ? "it" : "its nearest existing parent"} is on ${
      s.bpffs.fsType ?? "an unknown filesystem"
    } at ${s.bpffs.mountPoint ?? "?"} (mount -t bpf bpf /sys/fs/bpf)`;
  const programText = (p: ProgramStatus) =>
    p.problem !== undefined ? `NOT OURS: ${p.problem}` : p.pinned
      ? `id ${p.id}, tag ${p.tag}` +
        (p.thisBuild ? ", this build" : ", from another build (the next CNI ADD replaces it)") +
        (p.usesPinnedMaps ? "" : ", NOT using the pinned maps")
      : "not pinned";
  const mode = s.mode
    ? `${s.mode.policyMode}, conntrack ${s.mode.conntrack ? "on" : "off"}` +
      (s.mode.policyMode === "kubernetes" ? `, services ${s.mode.serviceCIDRs.join(" ")}` : "")
    : "unknown (config_map not pinned)";
  const head = renderFields([
    ["version", s.version],
    ["pin directory", s.pinDir + (s.pinDirExists ? "" : " (does not exist)")],
    ["bpffs", bpffs],
    ["mode", mode],
    ["program", programText(s.program)],
    ["egress program", programText(s.egressProgram)],
  ]);
  const maps = renderTable(
    [
      { header: "MAP" },
      { header: "ID", align: "right" },
      { header: "ENTRIES", align: "right" },
      { header: "MAX", align: "right" },
      { header: "FILL", align: "right" },
    ],
    s.maps.map((m) => [
      m.name,
      m.id === undefined ? "-" : String(m.id),
      m.entries === undefined ? "-" : String(m.entries),
      String(m.maxEntries),
      fill(m),
    ]),
  );
  const counters = s.counters
    ? renderTable(
      [{ header: "COUNTER" }, { header: "PACKETS", align: "right" }],
      Object.entries(s.counters).map(([k, v]) => [k, String(v)]),
    )
    : "COUNTER\n(stats_map not pinned)\n";
  const attached = renderTable(
    [
      { header: "ATTACHED" },
      { header: "IFINDEX", align: "right" },
      { header: "KIND" },
      { header: "HOOK" },
      { header: "PROGRAM" },
    ],
    s.attached.map((a) => [
      a.name,
      String(a.ifindex),
      a.kind || "-",
      a.hook,
      `${a.programId}${
        a.pinned ? " (pinned)" : s.program.pinned ? " (NOT the pinned program)" : ""
      }`,
    ]),
  ) + (s.attached.length ? "" : "(no link has the program attached)\n");
  const problems = s.maps.filter((m) => m.problem !== undefined).map((m) => `${m.problem}\n`);
  return [head, maps + problems.join(""), counters, attached].join("\n");
}

/** The JSON form (documented in the command's help). */
export function statusJson(s: Status): string {
  return JSON.stringify(s, null, 2) + "\n";
}

/** Why the datapath is not usable, for the one stderr line and exit 1; undefined if it is. */
export function statusTrouble(s: Status): string | undefined {
  const bad = s.maps.find((m) => m.problem !== undefined);
  if (bad) return bad.problem;
  const missing = s.maps.filter((m) => !m.pinned).map((m) => m.name);
  if (missing.length === 0) return undefined;
  const what = missing.length === s.maps.length ? "No maps" : missing.join(" and ");
  return `${what} pinned under "${s.pinDir}": ${createHint(s.pinDir)}`;
}
