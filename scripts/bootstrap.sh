#!/usr/bin/env bash
# Installs everything ebpfcni needs on a fresh Debian bookworm machine, as root. Idempotent:
# a second run only checks. Deno comes from npm at a pinned version into .deno/ in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO_VERSION=2.9.6
ROOT=$(pwd)

log() { printf 'bootstrap: %s\n' "$*" >&2; }

need_pkgs=(clang llvm libbpf-dev libbpf1 bpftool libmnl0 libmnl-dev iproute2 iputils-ping
  iperf3 containernetworking-plugins jq util-linux procps ca-certificates openssl prometheus
  libnftables1 nftables)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v npm >/dev/null; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # prometheus (and promtool) are for test/agent_metrics_test.ts, which starts its own server
  # on a free port: the package's service is not wanted.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi

DENO="$ROOT/.deno/bin/deno"
if [ ! -x "$DENO" ] || ! "$DENO" --version 2>/dev/null | grep -q "^deno $DENO_VERSION "; then
  log "installing deno $DENO_VERSION from npm (@deno/linux-x64-glibc)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@deno/linux-x64-glibc@$DENO_VERSION" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$ROOT/.deno/bin"
  install -m 0755 "$tmp/package/deno" "$DENO"
  rm -rf "$tmp"
fi

if ! mountpoint -q /sys/fs/bpf; then
  log "mounting bpffs on /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

export DENO_DIR="$ROOT/.deno/cache"
# Fill the module cache from deno.lock so later runs work with --cached-only.
"$DENO" install --quiet --frozen >/dev/null 2>&1 || "$DENO" install --quiet
log "ready: $("$DENO" --version | head -n 1), $(clang --version | head -n 1)"
