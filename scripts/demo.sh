#!/usr/bin/env bash
# `deno task demo`: the original project's scenario end to end on this machine, as root.
# Installs what is missing (scripts/bootstrap.sh, idempotent), builds dist/ebpfcni
# (scripts/build.sh), then runs scripts/demo.ts, which holds all of the demo's logic and is
# what test/demo_test.ts runs too: it installs the binary into a temporary CNI bin dir, writes
# a conflist, creates the frontend and backend pods with CNI ADD, walks default deny ->
# register identities -> allow -> deny with real pings, DELs both and shows nothing is left;
# then two nodes (namespaces on an underlay, each with its agent routing over vxlan): pods on
# both from each node's pod CIDR, a NetworkPolicy across the nodes, masquerade to a "world".
# Everything it creates is demo-private (random pin dir, bridge, netns, temp dir) and removed
# on every exit, Ctrl-C included.
#
# Usage: bash scripts/demo.sh [--binary PATH] [--subnet A.B.C.0/24]
# EBPFCNI_DEMO_NO_BUILD=1 skips bootstrap and build (use the dist/ebpfcni already built).
# Exit status: 0 all checks passed, 1 a check failed, 128+N on signal N.
set -euo pipefail
# An absolute DENO_DIR: build.sh writes it into the launcher, which runs from anywhere.
DENO_DIR=$(realpath -m "${DENO_DIR:-$(dirname "$0")/../.deno/cache}")
export DENO_DIR
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: must run as root (it creates network namespaces, links and bpffs pins)" >&2
  exit 1
fi

if [ "${EBPFCNI_DEMO_NO_BUILD:-}" != 1 ]; then
  echo "demo: bootstrap (bash scripts/bootstrap.sh)" >&2
  bash scripts/bootstrap.sh
  echo "demo: build (bash scripts/build.sh)" >&2
  bash scripts/build.sh
fi

# exec: signals reach demo.ts directly, and its handler cleans up before exiting.
exec "${DENO:-$ROOT/.deno/bin/deno}" run --allow-all --no-prompt --cached-only \
  scripts/demo.ts "$@"
