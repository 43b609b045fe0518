#!/usr/bin/env bash
# Runs the benchmark suite (bench/run.ts): ebpfcni vs Debian's bridge + host-local plugins.
# Installs the tools it needs when absent, builds the binary with scripts/build.sh, then runs
# every benchmark. The build goes to a private directory (EBPFCNI_OUT) rather than dist/, so
# a rebuild of dist/ebpfcni by someone else during the run cannot swap the binary under it;
# set EBPFCNI_BINARY to benchmark an existing binary instead (no build then).
# Arguments go to bench/run.ts: --quick (smoke test), --sections=latency,levers,policy,datapath,
# --iperf-affinity=same|none, --out=FILE.
# Needs root. Tables on stdout, raw numbers in bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DENO=${DENO:-$ROOT/.deno/bin/deno}
export DENO_DIR=${DENO_DIR:-$ROOT/.deno/cache}

if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (network namespaces, bridges, BPF)" >&2
  exit 1
fi
if [ ! -x "$DENO" ]; then bash scripts/bootstrap.sh; fi

# Debian packages the suite runs: iperf3, /usr/bin/time, bpftool, ping, the reference plugins.
declare -A pkg_of=([iperf3]=iperf3 [/usr/bin/time]=time [bpftool]=bpftool [ping]=iputils-ping
  [tc]=iproute2 [/usr/lib/cni/bridge]=containernetworking-plugins
  [/usr/lib/cni/host-local]=containernetworking-plugins [sysctl]=procps)
missing=()
for tool in "${!pkg_of[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$tool" ]; then missing+=("${pkg_of[$tool]}"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "bench: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! mountpoint -q /sys/fs/bpf; then mount -t bpf bpf /sys/fs/bpf; fi

if [ -z "${EBPFCNI_BINARY:-}" ]; then
  build_dir=$(mktemp -d /tmp/ebpfcni-bench-build.XXXXXX)
  trap 'rm -rf "$build_dir"' EXIT
  EBPFCNI_OUT="$build_dir/ebpfcni" bash scripts/build.sh
  export EBPFCNI_BINARY="$build_dir/ebpfcni"
fi

"$DENO" run --quiet --no-prompt --cached-only --no-config --allow-all bench/run.ts "$@"
