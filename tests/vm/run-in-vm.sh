#!/bin/sh
# Boot a throw-away QEMU guest and run one shell command in it.
#
#   tests/vm/run-in-vm.sh CACHE_DIR WORKDIR 'command'
#
# CACHE_DIR holds vmlinux + initrd.gz from setup.sh. The guest sees the host's /
# read-only and WORKDIR read-write at the same path, and runs the command there
# as root. The exit status is the command's; 255 means the guest gave no result
# (crash, or killed by the timeout).
# env: LDVM_UDEV=1        start systemd-udevd in the guest
#      LDVM_TIMEOUT=180   hard limit in seconds for the whole VM
#      LDVM_ACCEL=auto|tcg|kvm
#      LDVM_LOG=FILE      also keep the console output there
set -u
CACHE=$1
WORK=$(cd "$2" && pwd)
CMD=$3
ACCEL=${LDVM_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
  # A writable /dev/kvm is not enough: PVM-backed /dev/kvm (no vmx/svm flag)
  # hangs a stock distro kernel. Use KVM only with real hardware virtualisation.
  if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; else ACCEL=tcg; fi
fi
case $ACCEL in
  kvm) ACCEL_OPTS="-accel kvm -cpu host" ;;
  *) ACCEL_OPTS="-accel tcg,thread=multi -cpu max" ;;
esac
case $WORK in *" "*) echo "run-in-vm: WORKDIR must not contain spaces" >&2; exit 2;; esac
B64=$(printf '%s' "$CMD" | base64 -w0)
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
# shellcheck disable=SC2086
timeout -k 5 "${LDVM_TIMEOUT:-180}" qemu-system-x86_64 $ACCEL_OPTS -M q35 -smp 2 -m 1G \
  -nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot \
  -kernel "$CACHE/vmlinux" -initrd "$CACHE/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 ldvm.udev=${LDVM_UDEV:-0} ldvm.work=$WORK ldvm.cmd=$B64" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev local,id=work,path="$WORK",security_model=none,multidevs=remap \
  -device virtio-9p-pci,fsdev=work,mount_tag=work \
  < /dev/null 2>&1 | tr -d '\r' | tee "$LOG"
[ -n "${LDVM_LOG:-}" ] && cp "$LOG" "$LDVM_LOG"
RC=$(sed -n 's/^LDVM-RC=\([0-9][0-9]*\).*/\1/p' "$LOG" | tail -n 1)
if [ -z "$RC" ]; then
  echo "run-in-vm: the guest produced no result (crashed, or killed after ${LDVM_TIMEOUT:-180} s)" >&2
  exit 255
fi
exit "$RC"
