#!/km/bin/busybox sh
# /init of a kernel-matrix guest: mounts what the tests expect of a node (proc, sys, bpffs,
# devtmpfs, tmpfs on /run and /tmp unless the checkout is there), brings up lo, runs
# run-tests.sh with its results on the second serial port (ttyS1; the console, ttyS0, gets
# the tests' own output), and powers off. /km/env, written by guest.ts, sets CHECKOUT, DENO,
# DENO_DIR, PROBE, TESTS, MODPROBE and IP.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/km/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "KM-INIT $(cut -d' ' -f1 /proc/uptime)"
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t devpts devpts /dev/pts
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
. /km/env
# tmpfs on /run and /tmp, unless the checkout, deno or DENO_DIR came in under one of them (a
# checkout in /tmp): the initramfs's root is writable, so that directory is used as it is.
for d in /run /tmp; do
  mkdir -p "$d"
  case " $CHECKOUT/ $DENO $DENO_DIR/ " in
  *" $d/"*) ;;
  *) mount -t tmpfs tmpfs "$d" ;;
  esac
done
chmod 1777 /tmp
hostname km-guest
# The kernel runs this to load modules on first use (veth, sch_ingress, cls_bpf, ...).
# Full paths from /km/env: this busybox shell would prefer its own applets to PATH.
if [ -x "$MODPROBE" ]; then
  echo "$MODPROBE" >/proc/sys/kernel/modprobe
else
  echo "KM-WARNING no modprobe in the guest: modules will not load"
fi
"$IP" link set lo up
export DENO_DIR
stty -F /dev/ttyS1 raw -echo
# shellcheck disable=SC2086 # TESTS is a list of paths without spaces
sh /km/run-tests.sh /dev/ttyS1 "$CHECKOUT" "$DENO" "$PROBE" $TESTS
echo "KM-DONE $(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
