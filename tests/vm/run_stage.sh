#!/bin/sh
# The VM test stage: boots a throw-away QEMU guest (TCG), runs tests/vm/guest_stage.sh
# in it and reports one line per check, then a summary.
#
#   tests/vm/setup.sh && tests/vm/run_stage.sh        (root; .ci/vm-stage does both)
#
# In the guest, with systemd-udevd running: `libre-dump simulate --gadget` puts an
# echo device and then the virtual reader on a dummy_hcd USB bus; every backend
# (hidraw file I/O, hidapi's hidraw and libusb modules, pyusb) must exchange
# byte-identical reports with it, `libre-dump dump` through hidraw:, hidapi: and
# usb: must equal the in-process `--device sim:...` dump, user nobody must be
# refused without our udev rules (dump exit 3, doctor names the fix) and let in
# with them (uaccess tag -> ACL for the seat user), and uhid must work too.
#
# env: LIBRE_DUMP_SKIP_VM=1   skip (exit 0) when the VM cannot run here, instead of failing
#      LIBRE_DUMP_PYTHON      the interpreter with libre-dump's dependencies (default python3)
#      LIBRE_DUMP_VM_CACHE    where setup.sh put the kernel (default ~/.cache/libre-dump-vm)
#      LIBRE_DUMP_VM_TIMEOUT  hard limit for the VM in seconds (default 420)
#      LD_SIM_OPTS, LD_VM_FULL_DUMP   see guest_stage.sh
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${LIBRE_DUMP_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/libre-dump-vm}
START=$(date +%s)

cannot_run() {
  echo "##################################################################" >&2
  echo "vm-stage: CANNOT RUN: $*" >&2
  echo "vm-stage: the USB/hidraw/udev tests did NOT run." >&2
  if [ "${LIBRE_DUMP_SKIP_VM:-0}" = 1 ]; then
    echo "vm-stage: LIBRE_DUMP_SKIP_VM=1: skipping (exit 0)" >&2
    echo "##################################################################" >&2
    exit 0
  fi
  echo "vm-stage: failing; set LIBRE_DUMP_SKIP_VM=1 to skip on a machine without QEMU" >&2
  echo "##################################################################" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || cannot_run "needs root (the guest shares the host's / and runs as root)"
command -v qemu-system-x86_64 > /dev/null || cannot_run "qemu-system-x86_64 is not installed (run tests/vm/setup.sh)"
for tool in udevadm setpriv getfacl tcpdump; do
  command -v $tool > /dev/null || cannot_run "$tool is not installed (run tests/vm/setup.sh)"
done
[ -s "$CACHE/vmlinux" ] && [ -s "$CACHE/initrd.gz" ] || cannot_run "no kernel in $CACHE (run tests/vm/setup.sh)"
PY=$(${LIBRE_DUMP_PYTHON:-python3} -c 'import sys; print(sys.executable)' 2> /dev/null) \
  || cannot_run "no Python interpreter '${LIBRE_DUMP_PYTHON:-python3}'"
if ! out=$(cd "$REPO" && PYTHONPATH="$REPO" "$PY" -c 'import libre_usb.cli, hid, hidraw, usb, libusb_package' 2>&1); then
  echo "$out" >&2
  echo "vm-stage: FAIL: $PY lacks libre-dump's dependencies (pip install -e '.[dev]')" >&2
  exit 1
fi
case $REPO in *" "*) cannot_run "the repository path contains a space: $REPO";; esac
# directories under /root (mode 0700 here) that the interpreter needs: the guest
# makes just these reachable for user nobody
ROOTS=$("$PY" -c 'import os, sys
home = os.path.realpath(os.path.expanduser("~")) + "/"
print(" ".join(sorted({home + p[len(home):].split("/")[0] for p in (os.path.realpath(x) for x in
      (sys.executable, sys.prefix, sys.base_prefix, *sys.path) if x) if p.startswith(home)})))')

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
echo "vm-stage: booting $(cat "$CACHE/kver" 2>/dev/null) under QEMU ($PY, repo $REPO)"
LDVM_UDEV=1 LDVM_TIMEOUT=${LIBRE_DUMP_VM_TIMEOUT:-420} sh "$HERE/run-in-vm.sh" "$CACHE" "$REPO" \
  "LD_PY=$PY LD_ROOTS='$ROOTS' LD_SIM_OPTS='${LD_SIM_OPTS:-days=2}' LD_VM_FULL_DUMP=${LD_VM_FULL_DUMP:-0} sh tests/vm/guest_stage.sh" \
  > "$LOG" 2>&1
RC=$?
cat "$LOG"
ELAPSED=$(( $(date +%s) - START ))
if ! grep -q '^=== ' "$LOG"; then
  cannot_run "the guest did not start the stage (exit $RC after ${ELAPSED}s; console output above)"
fi
PASS=$(grep -c '^RESULT [^ ]* PASS' "$LOG")
FAIL=$(grep -c '^RESULT [^ ]* FAIL' "$LOG")
PENDING=$(grep -c '^RESULT [^ ]* PENDING' "$LOG")
echo
echo "vm-stage summary (${ELAPSED}s wall, guest exit $RC):"
grep '^RESULT ' "$LOG" | sed 's/^RESULT /  /'
if [ "$PENDING" -gt 0 ]; then
  echo "vm-stage: $PENDING check(s) PENDING, NOT passed:"
  grep '^RESULT [^ ]* PENDING' "$LOG" | sed 's/^RESULT /  /'
fi
if [ $RC -ne 0 ] && [ "$FAIL" -eq 0 ]; then
  FAIL=1
  echo "vm-stage: the guest exited $RC (timeout or crash) before finishing"
fi
echo "vm-stage: $PASS passed, $FAIL failed, $PENDING skipped"
[ "$FAIL" -eq 0 ]
