#!/usr/bin/env bash
# The kernel matrix: the datapath tests (or the test files given) on this machine's kernel
# and on Debian 12's 6.1 cloud kernel booted under qemu, with a per-kernel report in
# dist/kernel-matrix/. One command on a fresh Debian bookworm machine, as root: installs what
# it needs (bootstrap.sh's tools, qemu-system-x86, kmod, busybox), builds, then runs
# scripts/kernel-matrix/main.ts. Options: see `bash scripts/kernel-matrix.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
need=(qemu-system-x86 kmod)
# Any busybox will do (the guest gets its libraries too); the static one needs none.
command -v busybox >/dev/null || need+=(busybox-static)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "kernel-matrix: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export DENO_DIR="$PWD/.deno/cache"
bash scripts/build.sh
exec "$PWD/.deno/bin/deno" run --quiet --allow-all scripts/kernel-matrix/main.ts "$@"
