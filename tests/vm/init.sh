#!/bin/busybox sh
# /init of the test VM's initramfs (PID 1).
#
# Kernel command line parameters (set by run-in-vm.sh):
#   ldvm.work=DIR     the repository, shared read-write over 9p (tag "work") and
#                     mounted at the same path as on the host
#   ldvm.cmd=BASE64   the shell command to run there
#   ldvm.udev=1       start systemd-udevd (no coldplug) before the command
# The host's / (9p tag "hostroot") is mounted read-only and becomes the root
# through switch_root, so the command runs with the host's tools and Python, as
# PID 1's child on a real root (udevadm refuses to work inside a chroot). /tmp and
# /run are fresh tmpfs. The command's exit status is printed as
# "LDVM-RC=<n>" on the serial console, then the guest powers off.
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "ldvm-init: $*"; echo "LDVM-RC=254"; echo o > /proc/sysrq-trigger; sleep 10; }
for m in $(cat /modules.order); do
  insmod "/lib/modules/$m" || echo "ldvm-init: insmod $m failed"
done
param() { for kv in $(cat /proc/cmdline); do case $kv in "$1="*) echo "${kv#*=}";; esac; done; }
WORK=$(param ldvm.work)
UDEV=$(param ldvm.udev)
R=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot $R \
  || fail "cannot mount the host root over 9p"
param ldvm.cmd | base64 -d > /cmd.sh || fail "bad ldvm.cmd"
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t tmpfs -o mode=755 tmpfs $R/run
for d in proc sys dev; do mount --move /$d $R/$d; done
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t configfs configfs $R/sys/kernel/config 2>/dev/null || true
if [ -n "$WORK" ]; then
  # cache=loose: Python's imports from the repository dominate the stage's time;
  # the host does not change the repository while a guest runs
  # a repository under /tmp or /run sits below the fresh tmpfs: make its mount point there
  [ -d "$R$WORK" ] || mkdir -p "$R$WORK" || fail "cannot create $WORK in the guest"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose work "$R$WORK" \
    || fail "cannot mount the work directory $WORK"
fi
cp /cmd.sh $R/run/ldvm-cmd.sh
cat > $R/run/ldvm-stage2.sh <<EOS
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
if [ "$UDEV" = 1 ]; then
  /lib/systemd/systemd-udevd --daemon --resolve-names=never && echo "ldvm-init: systemd-udevd running"
fi
cd "${WORK:-/}" && /bin/sh /run/ldvm-cmd.sh
echo "LDVM-RC=\$?"
sync
echo o > /proc/sysrq-trigger
sleep 10
EOS
exec switch_root $R /bin/sh /run/ldvm-stage2.sh
