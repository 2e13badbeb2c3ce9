#!/bin/sh
# The VM stage, INSIDE the guest: root, cwd = the repository, systemd-udevd
# running (LDVM_UDEV=1), modules loaded by the initramfs. Started by run_stage.sh.
#   env: LD_PY     the host's Python that has libre-dump's dependencies
#        LD_ROOTS  directories under /root that this Python needs (space-separated)
#        LD_SIM_OPTS, LD_VM_FULL_DUMP   see section D
# Prints "RESULT <check> PASS|FAIL|PENDING <detail>" lines; exits 1 on any FAIL.
# Python start-up dominates the time under TCG (~35x slower than the host), so
# independent commands run in parallel and each probe covers every backend.
set -u
REPO=$(pwd)
PY=${LD_PY:?LD_PY must name the Python interpreter}
export PYTHONPATH="$REPO" HOME=/root
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp"
LD_MAIN='import sys; sys.argv[0] = "libre-dump"; from libre_usb.cli import main; main()'
ld() { "$PY" -c "$LD_MAIN" "$@"; }
ld_nobody() { $NOBODY "$PY" -c "$LD_MAIN" "$@"; }
probe() { "$PY" "$REPO/tests/vm/probe.py" "$@"; }
probe_nobody() { $NOBODY "$PY" "$REPO/tests/vm/probe.py" "$@"; }
FAILED=0
result() {  # result NAME PASS|FAIL|PENDING DETAIL
  echo "RESULT $1 $2 $3"
  [ "$2" = FAIL ] && FAILED=1
  return 0
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
T0=$(uptime_s)
step() { echo "=== [$(uptime_s)s] $*"; }
probe_results() {  # probe_results PREFIX FILE: one RESULT per PROBE line
  if ! grep -q '^PROBE ' "$2"; then cat "$2"; result "$1" FAIL "the probe printed nothing"; return; fi
  grep '^PROBE ' "$2" | while read -r _ backend rest; do
    case $rest in
      *" OK "*) echo "RESULT $1-$backend PASS $rest" ;;
      *) echo "RESULT $1-$backend FAIL $rest" ;;
    esac
  done
  grep -q '^PROBE [^ ]* [^ ]* FAIL' "$2" && FAILED=1
  grep -v '^PROBE \|^hidraw:\|^hidapi:\|^usb:' "$2" | head -n 20
  return 0
}

# The host's Python may live under /root (mode 0700), which user nobody cannot
# enter. Put a world-traversable tmpfs on /root and bind back only what the
# interpreter needs (the host's / is read-only here, so nothing can be chmod'ed).
if [ -n "${LD_ROOTS:-}" ] && ! $NOBODY test -x /root; then
  for d in $LD_ROOTS; do mkdir -p "/run/ld-bind$d" && mount --bind "$d" "/run/ld-bind$d"; done
  mount -t tmpfs -o mode=755 tmpfs /root
  for d in $LD_ROOTS; do mkdir -p "$d" && mount --move "/run/ld-bind$d" "$d"; done
fi

SIM=""
start_sim() {  # start_sim COMMAND...: waits until the device is up and udev is done
  "$@" > /tmp/sim.log 2>&1 &
  SIM=$!
  i=0
  while ! grep -q "is up" /tmp/sim.log; do
    i=$((i + 1))
    if [ $i -gt 900 ] || ! kill -0 $SIM 2> /dev/null; then
      cat /tmp/sim.log; result "simulate" FAIL "the device did not come up: $*"; SIM=""; return 1
    fi
    sleep 0.1
  done
  udevadm settle -t 20
  cat /tmp/sim.log
}
stop_sim() {  # stop_sim NAME: SIGTERM, then check that the device and the gadget are gone
  [ -n "$SIM" ] || return 0
  kill -TERM $SIM; wait $SIM; rc=$?
  udevadm settle -t 20
  left=$(grep -il 1a61 /sys/bus/usb/devices/*/idVendor /sys/class/hidraw/*/device/uevent 2> /dev/null)
  gadgets=$(ls -d /sys/kernel/config/usb_gadget/libre-dump-* 2> /dev/null)
  if [ $rc -eq 0 ] && grep -q "device removed" /tmp/sim.log && [ -z "$left$gadgets" ]; then
    result "teardown-$1" PASS "SIGTERM: exit 0, USB/HID device and configfs gadget removed"
  else
    tail -n 3 /tmp/sim.log
    result "teardown-$1" FAIL "exit $rc, left behind: ${left:-no device} ${gadgets:-no gadget}"
  fi
  SIM=""
}
uri_of() { sed -n "s/^$1://p" /tmp/uris; }

# usbmon captures of the dumps below: tcpdump on usbmon0 (every bus) from before the
# virtual reader is plugged in (so the capture holds its descriptors) until it is gone;
# `libre-dump dump --device capture:FILE` must then give the very same JSON as the dump
# through the kernel. The capture: backend picks the reader by its captured vendor id.
USBMON=""
start_usbmon() {  # start_usbmon FILE
  USBMON=""
  if [ ! -c /dev/usbmon0 ]; then
    echo "no /dev/usbmon0 (usbmon module missing from the initramfs?)"; return 1
  fi
  tcpdump -i usbmon0 -U -s 0 -w "$1" > "$1.log" 2>&1 &
  USBMON=$!
  i=0
  while ! grep -q "listening on" "$1.log" 2> /dev/null; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 $USBMON 2> /dev/null; then
      cat "$1.log"; USBMON=""; return 1
    fi
    sleep 0.1
  done
}
stop_usbmon() {  # stop_usbmon FILE
  [ -n "$USBMON" ] || return 1
  sleep 0.5
  kill -INT $USBMON; wait $USBMON
  USBMON=""
  tail -n 2 "$1.log"
}
check_capture() {  # check_capture NAME FILE REFERENCE.json [DUMP OPTIONS...]
  name=$1 file=$2 want=$3
  shift 3
  s0=$(uptime_s)
  timeout -k 5 "${LD_DUMP_TIMEOUT:-60}" "$PY" -c "$LD_MAIN" dump --device "capture:$file" "$@" --format json > "$file.json" 2> "$file.err"; rc=$?
  set -- "$name" "$file" "$want"
  took=$(echo "$(uptime_s) $s0" | awk '{printf "%.1f", $1 - $2}')
  if [ $rc -eq 0 ] && cmp -s "$3" "$2.json"; then
    result "capture-$1" PASS "usbmon capture ($(wc -c < "$2") bytes) decoded passively in ${took}s: $(wc -c < "$2.json") bytes of JSON, byte-identical to the dump"
  else
    tail -n 5 "$2.err"
    diff "$3" "$2.json" | head -n 20
    "$PY" -c "$LD_MAIN" capture -q "$2" 2>&1 | tail -n 8
    result "capture-$1" FAIL "capture:$2: exit $rc, not identical to $3"
  fi
}

HAVE_DUMP=0
grep -qsE 'def dump\(|"dump"' "$REPO"/libre_usb/cli/*.py && HAVE_DUMP=1

REFP=""
if [ $HAVE_DUMP = 1 ] && [ "${LD_VM_FULL_DUMP:-0}" != 1 ]; then
  # the in-process reference dump for section D needs no device: start it now
  ld dump --device "sim:libre?seed=0&${LD_SIM_OPTS:-days=2}" --format json > /tmp/ref.json 2> /tmp/ref.err &
  REFP=$!
fi

step "A. echo device as a USB gadget (dummy_hcd); every backend as root"
start_sim "$PY" "$REPO/tests/vm/probe.py" serve libre || exit 1
probe echo --count 20 --uris > /tmp/probe.txt 2>&1
probe_results echo-root /tmp/probe.txt
grep '^hidraw:\|^hidapi:\|^usb:' /tmp/probe.txt > /tmp/uris
HIDRAW=$(uri_of hidraw)
USBNODE=$(uri_of usb | awk -F: '{printf "/dev/bus/usb/%03d/%03d", $1, $2}')

step "B. our udev rules not installed: user nobody"
ls -l "$HIDRAW" "$USBNODE"
probe_nobody echo --expect-denied > /tmp/denied.txt 2>&1 &
P1=$!
ld_nobody doctor > /tmp/doctor.txt 2>&1 &
P2=$!
if [ $HAVE_DUMP = 1 ]; then
  ld_nobody dump --device "hidraw:$HIDRAW" --format json > /tmp/d1.json 2> /tmp/d1.err &
  P3=$!
  ld_nobody dump --device "usb:$(uri_of usb)" --format json > /tmp/d2.json 2> /tmp/d2.err &
  P4=$!
fi
wait $P1; rc=$?
cat /tmp/denied.txt
if [ $rc -eq 0 ]; then
  result "denied-without-rules" PASS "nobody cannot open $HIDRAW or $USBNODE through any backend"
else
  result "denied-without-rules" FAIL "see above"
fi
wait $P2; rc=$?
sed -n '/^Readers/,$p' /tmp/doctor.txt
if [ $rc -eq 3 ] && grep -q "cannot open" /tmp/doctor.txt \
   && grep -qE "fix: .*udev (install|show)" /tmp/doctor.txt; then
  result "doctor-names-fix" PASS "exit 3; $(grep -m1 'fix: ' /tmp/doctor.txt | sed 's/^ *//')"
else
  result "doctor-names-fix" FAIL "exit $rc"
fi
if [ $HAVE_DUMP = 1 ]; then
  for n in 3 4; do
    if [ $n = 3 ]; then wait $P3; rc=$?; f=d1; uri="hidraw:$HIDRAW"; else wait $P4; rc=$?; f=d2; uri="usb:$(uri_of usb)"; fi
    lines=$(wc -l < /tmp/$f.err)
    if [ $rc -eq 3 ] && [ "$lines" -eq 1 ] && [ ! -s /tmp/$f.json ]; then
      result "dump-denied-${uri%%:*}" PASS "exit 3, one line: $(cat /tmp/$f.err)"
    else
      cat /tmp/$f.err; result "dump-denied-${uri%%:*}" FAIL "exit $rc, $lines stderr lines"
    fi
  done
else
  result "dump-denied" PENDING "no 'dump' command in this tree yet: non-root dump exit 3 not checked"
fi

step "C. rules installed with 'libre-dump udev install'; a seat session for nobody"
# What logind does for a user logged in at seat0: sd_seat_get_active() reads this
# file, and udev's uaccess builtin (73-seat-late.rules) turns our uaccess tag into
# an ACL for that user. /run is the guest's own tmpfs.
mkdir -p /run/systemd/system /run/systemd/seats
printf 'ACTIVE=c1\nACTIVE_UID=65534\n' > /run/systemd/seats/seat0
if ld udev install --prefix /run/udev/rules.d; then
  result "udev-install" PASS "written to /run/udev/rules.d, udev reloaded, readers re-triggered"
else
  result "udev-install" FAIL "exit $?"
fi
udevadm settle -t 20
ld_nobody doctor --json > /tmp/doctor.json 2>&1 &
P2=$!
for node in "$HIDRAW" "$USBNODE"; do
  tags=$(udevadm info --query=property --name="$node" | sed -n 's/^TAGS=//p')
  acl=$(getfacl --omit-header --numeric "$node" 2> /dev/null | tr '\n' ' ')
  ls -l "$node"
  case $tags in *:uaccess:*) t=ok ;; *) t=no ;; esac
  case $acl in *user:65534:rw-*) a=ok ;; *) a=no ;; esac
  if [ $t = ok ] && [ $a = ok ]; then
    result "uaccess-$node" PASS "udev TAGS=$tags; ACL $acl"
  else
    result "uaccess-$node" FAIL "udev TAGS=$tags; ACL $acl"
  fi
done
wait $P2; rc=$?
if [ $rc -eq 0 ] && "$PY" -c 'import json, sys
r = json.load(open("/tmp/doctor.json"))
assert r["schema"] == "libre-dump-doctor/1" and r["ok"] and r["rules"]["state"] == "current", r
d, = r["devices"]
assert {u.split(":")[0] for u in d["usable"]} == {"hidraw", "hidapi", "usb"}, d["usable"]
print("usable by nobody:", " ".join(d["usable"]))' > /tmp/doc.txt 2>&1; then
  result "doctor-with-rules" PASS "exit 0, rules current, $(cat /tmp/doc.txt)"
else
  cat /tmp/doctor.json /tmp/doc.txt; result "doctor-with-rules" FAIL "exit $rc"
fi
probe_nobody echo --count 20 > /tmp/probe.txt 2>&1
probe_results echo-nobody /tmp/probe.txt
stop_sim echo-gadget

step "D. 'libre-dump simulate --gadget libre': the virtual reader as a USB device"
# A byte-for-byte dump comparison needs a reader small enough to dump through the
# kernel within the stage's budget (a 90-day reader is ~10k reports, about 2
# minutes per backend under TCG). LD_SIM_OPTS are sim: URI options that shrink
# it; LD_VM_FULL_DUMP=1 compares full-size dumps instead (slow).
SPEC=""
if [ $HAVE_DUMP = 1 ]; then
  if [ "${LD_VM_FULL_DUMP:-0}" = 1 ]; then
    SPEC=libre
  elif wait $REFP; then
    SPEC="libre?${LD_SIM_OPTS:-days=2}"
  else
    DUMP_PENDING="the virtual reader has no small-content option (${LD_SIM_OPTS:-days=2}: $(tail -n 1 /tmp/ref.err)); a full 90-day dump through each backend does not fit the stage budget; LD_VM_FULL_DUMP=1 compares full dumps"
  fi
else
  DUMP_PENDING="no 'dump' command in this tree yet: hidraw/hidapi/usb dumps vs sim:libre not compared"
fi
# --pace-ms: under TCG the guest's Python reads reports ~35x slower than a real
# host, and hidraw drops reports once its 64-report buffer is full
CAP_D=0
[ -n "$SPEC" ] && start_usbmon /tmp/libre.pcap && CAP_D=1
start_sim "$PY" -c "$LD_MAIN" simulate --gadget "${SPEC:-libre}" --seed 0 --pace-ms "${LD_PACE_MS:-8}" || exit 1
probe sim "${SPEC:-libre}" --seed 0 --uris > /tmp/probe.txt 2>&1
probe_results sim /tmp/probe.txt
grep '^hidraw:\|^hidapi:\|^usb:' /tmp/probe.txt > /tmp/uris
if [ -n "$SPEC" ]; then
  case $SPEC in *\?*) ref="sim:$SPEC&seed=0" ;; *) ref="sim:$SPEC?seed=0" ;; esac
  [ "$SPEC" = libre ] && ld dump --device "$ref" --format json > /tmp/ref.json
  echo "reference: libre-dump dump --device '$ref' --format json: $(wc -c < /tmp/ref.json) bytes"
  while read -r uri; do
    s0=$(uptime_s)
    timeout -k 5 "${LD_DUMP_TIMEOUT:-60}" "$PY" -c "$LD_MAIN" dump --device "$uri" --format json > /tmp/dump.json 2> /tmp/dump.err; rc=$?
    took=$(echo "$(uptime_s) $s0" | awk '{printf "%.1f", $1 - $2}')
    if [ $rc -eq 0 ] && cmp -s /tmp/ref.json /tmp/dump.json; then
      result "dump-${uri%%:*}" PASS "$uri: $(wc -c < /tmp/dump.json) bytes of JSON in ${took}s, byte-identical to --device $ref"
    else
      tr '\r' '\n' < /tmp/dump.err | tail -n 5
      diff /tmp/ref.json /tmp/dump.json | head -n 20
      result "dump-${uri%%:*}" FAIL "$uri: exit $rc, not identical to --device $ref"
    fi
  done < /tmp/uris
  # the capture ends here, with the text sessions (the probe and one dump per backend):
  # every session read the same reader, so the replies the capture holds are the same
  # whichever session they are taken from
  if [ $CAP_D = 1 ] && stop_usbmon /tmp/libre.pcap; then
    check_capture libre-text /tmp/libre.pcap /tmp/ref.json
  else
    result "capture-libre-text" FAIL "tcpdump could not capture usbmon0"
  fi
  # the binary database protocol through the kernel (ATP frames, ACKs, the reader's window of
  # 16 frames, compression, output by SET_REPORT): the hidraw dump must equal the in-process
  # binary dump. The gadget's f_hid keeps one SET_REPORT: of a command and its FLUSH sent back
  # to back under TCG it may lose one, which the host sends again when the reader goes quiet
  # (the dump's stderr notes "HostFrameResent"); the records must not change.
  # A usbmon capture of just this session must decode passively to the same JSON.
  ld dump --device "$ref" --protocol binary --format json > /tmp/refb.json 2> /tmp/refb.err
  buri=$(grep '^hidraw:' /tmp/uris | head -n 1)
  CAP_B=0
  start_usbmon /tmp/libreb.pcap && CAP_B=1
  s0=$(uptime_s)
  timeout -k 5 "${LD_DUMP_TIMEOUT:-60}" "$PY" -c "$LD_MAIN" dump --device "$buri" --protocol binary --format json > /tmp/dumpb.json 2> /tmp/dumpb.err; rc=$?
  took=$(echo "$(uptime_s) $s0" | awk '{printf "%.1f", $1 - $2}')
  if [ -n "$buri" ] && [ $rc -eq 0 ] && [ -s /tmp/refb.json ] && cmp -s /tmp/refb.json /tmp/dumpb.json; then
    note=$(tr '\r' '\n' < /tmp/dumpb.err | grep -o 'recovered from .*' | head -n 1)
    result "dump-binary-hidraw" PASS "$buri --protocol binary: $(wc -c < /tmp/dumpb.json) bytes of JSON in ${took}s, byte-identical to --device $ref --protocol binary${note:+ (link $note)}"
  else
    tr '\r' '\n' < /tmp/refb.err | tail -n 3
    tr '\r' '\n' < /tmp/dumpb.err | tail -n 5
    diff /tmp/refb.json /tmp/dumpb.json | head -n 20
    result "dump-binary-hidraw" FAIL "${buri:-no hidraw uri} --protocol binary: exit $rc, not identical to --device $ref --protocol binary"
  fi
  # the capture starts after the device was plugged in, so it holds no descriptors: the
  # model comes from --model, as for any capture without them
  if [ $CAP_B = 1 ] && stop_usbmon /tmp/libreb.pcap; then
    check_capture binary /tmp/libreb.pcap /tmp/refb.json --model libre
  else
    result "capture-binary" FAIL "tcpdump could not capture usbmon0"
  fi
else
  result "dump-compare" PENDING "$DUMP_PENDING"
fi
stop_sim reader-gadget

step "D2. 'libre-dump simulate --gadget libre2': the encrypted reader as a USB device"
# the Libre 2 transport (handshake, encrypted reports) through the kernel: the dump over
# hidraw must equal the in-process encrypted virtual reader's dump
SPEC2="libre2?${LD_SIM_OPTS:-days=2}"
ref2="sim:$SPEC2&seed=0"
ld dump --device "$ref2" --format json > /tmp/ref2.json 2> /tmp/ref2.err
CAP_D2=0
start_usbmon /tmp/libre2.pcap && CAP_D2=1
start_sim "$PY" -c "$LD_MAIN" simulate --gadget "$SPEC2" --seed 0 --pace-ms "${LD_PACE_MS:-8}" || exit 1
node=""
for n in /sys/class/hidraw/*; do
  grep -qi "HID_ID=0003:00001A61:00003950" "$n/device/uevent" 2> /dev/null && node=/dev/${n##*/}
done
s0=$(uptime_s)
timeout -k 5 "${LD_DUMP_TIMEOUT:-60}" "$PY" -c "$LD_MAIN" dump --device "hidraw:$node" --format json > /tmp/dump2.json 2> /tmp/dump2.err; rc=$?
took=$(echo "$(uptime_s) $s0" | awk '{printf "%.1f", $1 - $2}')
if [ -n "$node" ] && [ $rc -eq 0 ] && cmp -s /tmp/ref2.json /tmp/dump2.json; then
  result "dump-libre2-hidraw" PASS "hidraw:$node: $(wc -c < /tmp/dump2.json) bytes of JSON in ${took}s (handshake + encrypted reports), byte-identical to --device $ref2"
else
  tr '\r' '\n' < /tmp/dump2.err | tail -n 5
  result "dump-libre2-hidraw" FAIL "hidraw:${node:-none}: exit $rc, not identical to --device $ref2"
fi
stop_sim libre2-gadget
if [ $CAP_D2 = 1 ] && stop_usbmon /tmp/libre2.pcap; then
  # the encrypted session: the capture holds the handshake, the session keys come from
  # the serial and both captured nonces
  check_capture libre2-encrypted /tmp/libre2.pcap /tmp/ref2.json
  if "$PY" -c "$LD_MAIN" capture -q /tmp/libre2.pcap 2>&1 | grep -q "reports decrypted"; then
    result "capture-libre2-handshake" PASS "$("$PY" -c "$LD_MAIN" capture -q /tmp/libre2.pcap 2>&1 | grep '^encryption:')"
  else
    result "capture-libre2-handshake" FAIL "the capture listing does not say the reports were decrypted"
  fi
else
  result "capture-libre2-encrypted" FAIL "tcpdump could not capture usbmon0"
fi

step "E. echo device through /dev/uhid (hidraw only)"
start_sim "$PY" "$REPO/tests/vm/probe.py" serve --uhid libre || exit 1
probe echo --uhid --count 20 --backends hidraw-file,hidraw > /tmp/probe.txt 2>&1
probe_results uhid-echo /tmp/probe.txt
stop_sim uhid

step "done: $(echo "$(uptime_s) $T0" | awk '{printf "%.1f", $1 - $2}')s in the guest stage"
exit $FAILED
