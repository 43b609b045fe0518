# Sourced by the scripts (with ROOT set to the repository): picks the deno they run and
# exports it as DENO. $DENO when set; else the pinned one scripts/bootstrap.sh installs
# (.deno/bin/deno); else the deno running `deno task` (deno.json passes it as TASK_DENO), or
# deno on PATH. Without any, says how to get one and exits. DENO_DIR defaults to the pinned
# deno's cache when that exists, else stays deno's own default.
if [ -z "${DENO:-}" ]; then
  if [ -x "$ROOT/.deno/bin/deno" ]; then
    DENO=$ROOT/.deno/bin/deno
  elif [ -n "${TASK_DENO:-}" ] && [ -x "$TASK_DENO" ]; then
    DENO=$TASK_DENO
  elif command -v deno >/dev/null 2>&1; then
    DENO=$(command -v deno)
  else
    echo "$(basename "$0"): no deno found: run \`bash scripts/bootstrap.sh\` as root (it installs the pinned deno into .deno/), or put deno on PATH" >&2
    exit 1
  fi
fi
export DENO
if [ -z "${DENO_DIR:-}" ] && [ -d "$ROOT/.deno/cache" ]; then
  DENO_DIR=$ROOT/.deno/cache
  export DENO_DIR
fi
