// The pinned-object contract: what a map pinned under the pin directory must look like to
// be ours (type, key and value sizes, max entries, flags), checked the way cilium/ebpf's
// MapSpec.Compatible does, reporting every difference rather than the first.

export interface MapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** map_flags the map is created with (BPF_F_NO_PREALLOC for LPM tries, ...). */
  flags: number;
}

/** What the kernel reports of a map (bpf_map_info), as far as the contract goes. */
export interface PinnedMapInfo {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

/** Every way `info` differs from `spec`, e.g. `key size 8, expected 4`; empty when it fits. */
export function mapDifferences(spec: MapSpec, info: PinnedMapInfo): string[] {
  const out: string[] = [];
  const cmp = (what: string, have: number, want: number, fmt = (n: number) => String(n)) => {
    if (have !== want) out.push(`${what} ${fmt(have)}, expected ${fmt(want)}`);
  };
  cmp("type", info.type, spec.type);
  cmp("key size", info.keySize, spec.keySize);
  cmp("value size", info.valueSize, spec.valueSize);
  cmp("max entries", info.maxEntries, spec.maxEntries);
  cmp("flags", info.flags, spec.flags, (n) => `0x${n.toString(16)}`);
  return out;
}

/** The pin of `name` under `pinDir`. */
export function pinPath(pinDir: string, name: string): string {
  return pinDir === "/" ? `/${name}` : `${pinDir}/${name}`;
}
