#!/usr/bin/env bash
# Builds dist/ebpfcni: the datapath object is generated and embedded, then `deno compile`
# makes one executable. deno compile needs Deno's `denort` runtime: it uses $DENORT_BIN
# when set, else downloads it. When neither works (no route to Deno's server), a launcher
# is written at the same path instead: it runs the same entry point with the same
# permissions through the pinned deno, and this script says so.
# --check: fail when the committed src/spec/bpf_abi.gen.ts is stale instead of rewriting it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source scripts/_deno.sh
# Absolute: the launcher bakes it in (deno's own default when there is no pinned cache).
export DENO_DIR=$(realpath -m "${DENO_DIR:-$("$DENO" info --json | jq -r .denoDir)}")
OUT=${EBPFCNI_OUT:-$ROOT/dist/ebpfcni}
# Keep in step with the launcher below; both are what the binary may do.
# FFI is full access anyway, and Deno wants --allow-all to write under /sys (bpffs).
PERMS=(--allow-all)
# V8 flags for a process that lives for one CNI call. --no-lazy compiles every function of a
# module when it is first compiled, so the code cache Deno keeps (written right after that
# compile) holds the bytecode of all of them: without it, each function the call runs is
# parsed and compiled again in every process (~7 ms of an ADD, ~6 ms of CPU per DEL on the
# bench machine; bench/RESULTS.md, "levers").
V8_FLAGS=(--v8-flags=--no-lazy)

bash scripts/gen-bpf.sh "$@"
mkdir -p "$(dirname "$OUT")"

compile_log=$(mktemp)
# Everything is built beside the target and renamed into place, so a test or runtime using
# dist/ebpfcni meanwhile never finds it missing or half-written.
# The agent's sources are imported by computed URL (src/agent/load_source.ts): included by name.
if timeout 120 "$DENO" compile --quiet --no-check=remote "${PERMS[@]}" "${V8_FLAGS[@]}" --output "$OUT.new" \
  --include src/agent/source_kube.ts --include src/agent/source_manifests.ts \
  --include src/agent/manifest_worker.ts \
  src/main.ts >"$compile_log" 2>&1; then
  mv -f "$OUT.new" "$OUT"
  echo "build: compiled $OUT with deno compile ($( [ -n "${DENORT_BIN:-}" ] && echo "denort: $DENORT_BIN" || echo "denort downloaded"))" >&2
  rm -f "$compile_log"
  exit 0
fi
reason=$(NO_COLOR=1 grep -m1 -iE 'dns|lookup|denort|download|connect' "$compile_log" | sed 's/\x1b\[[0-9;]*m//g' | sed 's/^ *//' || true)
[ -n "$reason" ] || reason=$(tail -n 1 "$compile_log")
rm -f "$compile_log"
"$DENO" check --quiet src/main.ts
# The launcher runs the entry point bundled (one file per mode, code-split like the module
# graph): loading ~50 modules one by one costs a CNI call more time than the work itself.
LIB="$(dirname "$OUT")/ebpfcni.lib"
rm -rf "$LIB.new"
# The agent's sources (the Kubernetes client, the YAML parser) are bundled on their own:
# deno bundle turns their npm CommonJS into ESM with a `createRequire` shim from node:module,
# and in a code-split bundle that shim lands in a chunk every other chunk imports, which
# would load node:module on every CNI call (~20 ms). Bundled apart, each keeps its shim; the
# agent imports them from agent/ by a URL the bundler does not follow (load_source.ts). The
# manifest parser's worker (manifest_parser.ts) is found there the same way.
"$DENO" bundle --quiet --platform deno --outdir "$LIB.new/agent" \
  src/agent/source_kube.ts src/agent/source_manifests.ts src/agent/manifest_worker.ts
"$DENO" bundle --quiet --platform deno --code-splitting --outdir "$LIB.new" src/main.ts
cat >"$OUT.new" <<LAUNCHER
#!/bin/sh
# ebpfcni launcher, written by scripts/build.sh because deno compile could not get its
# denort runtime. Runs the same entry point (src/main.ts, bundled into $LIB) with the
# same permissions as the compiled binary.
DENO_DIR="$DENO_DIR" exec "$DENO" run --quiet --no-prompt --cached-only --no-config \\
  ${PERMS[*]} ${V8_FLAGS[*]} "$LIB/main.js" "\$@"
LAUNCHER
chmod 0755 "$OUT.new"
rm -rf "$LIB.old"
[ -d "$LIB" ] && mv "$LIB" "$LIB.old"
mv "$LIB.new" "$LIB"
mv -f "$OUT.new" "$OUT"
rm -rf "$LIB.old"
# Warm the code cache so the first real run pays no compile cost.
"$OUT" version >/dev/null
cat >&2 <<MSG
build: NOTE: deno compile could not get the denort runtime (${reason:-unknown reason}).
build: wrote a LAUNCHER at $OUT instead of a compiled binary: it runs src/main.ts
build: (bundled into $LIB) with the same permissions through $DENO. Set DENORT_BIN to a denort $("$DENO" --version | head -n1 | cut -d' ' -f2) binary to compile for real.
MSG
