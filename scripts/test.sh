#!/usr/bin/env bash
# The test command: installs what it needs (idempotent), builds dist/ebpfcni, checks
# formatting, lint and types, then runs every test: the unit tests beside the code under src/
# with no permissions at all (which proves those modules pure), then the integration tests in
# test/ against the real kernel. Needs root. Extra args go to both `deno test` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export DENO_DIR="$PWD/.deno/cache"
DENO="$PWD/.deno/bin/deno"
# --check: the committed contract (src/spec/bpf_abi.gen.ts) must be what bpf/ builds to.
bash scripts/build.sh --check
"$DENO" fmt --check
"$DENO" lint
"$DENO" check src/ ffi/ scripts/ test/ bench/
unit=0
"$DENO" test "$@" src/ || unit=$?
"$DENO" test --allow-all "$@" test/
exit "$unit"
