// The product version, printed by `ebpfcni version` and `--version`.
export const VERSION = "0.1.0";
