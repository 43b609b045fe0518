#!/usr/bin/env bash
# Builds the datapath object (CO-RE, against a vmlinux.h made from this kernel's BTF) and
# generates src/datapath/bpf_object.gen.ts, which embeds it the way bpf2go does for Go, and
# src/spec/bpf_abi.gen.ts (committed), the contract read from the object's BTF.
# --check: compare the committed src/spec/bpf_abi.gen.ts instead of rewriting it, and fail
# when it is stale (CI: scripts/test.sh).
set -euo pipefail
check=()
case "${1:-}" in
--check) check=(--check) ;;
"") ;;
*)
  echo "usage: gen-bpf.sh [--check]" >&2
  exit 2
  ;;
esac
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source scripts/_deno.sh
out=${BPF_OUT_DIR:-dist/bpf}
mkdir -p "$out"
btf=${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}
if [ ! -s bpf/vmlinux.h ] || [ "$btf" -nt bpf/vmlinux.h ]; then
  bpftool btf dump file "$btf" format c >bpf/vmlinux.h.tmp
  mv bpf/vmlinux.h.tmp bpf/vmlinux.h
fi
clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -Ibpf \
  -c bpf/ebpfcni.bpf.c -o "$out/ebpfcni.bpf.o"
# Like bpf2go: drop DWARF, keep BTF (the loader and CO-RE need it).
llvm-strip -g "$out/ebpfcni.bpf.o"
"$DENO" run --quiet --allow-read --allow-write scripts/gen_bpf.ts "${check[@]}" \
  "$out/ebpfcni.bpf.o" src/datapath/bpf_object.gen.ts src/spec/bpf_abi.gen.ts
