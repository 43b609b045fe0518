#!/usr/bin/env bash
# The test command: installs what it needs (idempotent), builds dist/ebpfcni, checks
# formatting, lint and types, then runs every test (unit tests beside the code, integration
# tests in test/ against the real kernel). Needs root. Extra args go to `deno test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export DENO_DIR="$PWD/.deno/cache"
DENO="$PWD/.deno/bin/deno"
bash scripts/build.sh
"$DENO" fmt --check
"$DENO" lint
"$DENO" check src/ ffi/ scripts/ test/ bench/
exec "$DENO" test --allow-all "$@" src/ ffi/ test/
