#!/bin/sh
# Runs the kernel matrix's test files and probe on the running kernel, one `deno test` per
# file, and appends what happened as "KM ..." lines to OUT (in a guest its second serial
# port, on the host a file). The same script runs in every guest and on the host, so every
# kernel is tested and reported alike; scripts/kernel-matrix/report.ts reads the lines.
# Usage: run-tests.sh OUT CHECKOUT DENO PROBE [TEST_FILE...]   (DENO_DIR set by the caller)
set -u
out=$1 checkout=$2 deno=$3 probe=$4
shift 4
up() { cut -d' ' -f1 /proc/uptime; }
km() { printf 'KM %s\n' "$*" >>"$out"; }

km BEGIN "$(up)"
km UNAME "$(uname -r)"
if ! cd "$checkout"; then
  km ERROR "no checkout at $checkout"
  km END "$(up)"
  exit 1
fi
i=0
for f in "$@"; do
  i=$((i + 1))
  junit=$(mktemp)
  rcf=$(mktemp)
  km FILE-BEGIN "$i" "$(up)" "$f"
  # Type checking happened on the host; --cached-only: the guest has no network, so a
  # module missing from the prepared cache must fail here, not wait for a connection.
  # Through a pipe so deno sees no terminal (a serial console gets every line twice).
  {
    NO_COLOR=1 "$deno" test --allow-all --no-check --cached-only --junit-path="$junit" "$f" 2>&1
    echo $? >"$rcf"
  } | cat
  rc=$(cat "$rcf")
  km FILE-END "$i" "$(up)" "$rc"
  if [ -s "$junit" ]; then km JUNIT "$i" "$(base64 -w0 <"$junit")"; fi
  rm -f "$junit" "$rcf"
done
t0=$(up)
result=$(NO_COLOR=1 "$deno" run --allow-all --no-check --cached-only "$probe" 2>&1)
rc=$?
km PROBE "$rc" "$t0" "$(up)" "$(printf '%s' "$result" | base64 -w0)"
km MODULES "$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
km END "$(up)"
