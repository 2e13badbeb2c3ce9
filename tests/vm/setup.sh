#!/bin/sh
# Prepare everything the VM test stage needs, once; the result is cached.
#
#   tests/vm/setup.sh [CACHE_DIR]     (root, Debian 12)
#
# CACHE_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/libre-dump-vm and is kept
# outside the repository. It receives:
#   vmlinux    the uncompressed ELF kernel of Debian's current linux-image-amd64
#              (booted through PVH, which saves the in-guest xz unpack under TCG)
#   initrd.gz  a ~2 MB busybox initramfs with the modules for 9p, uhid, hid-generic,
#              usbhid, dummy_hcd, the configfs HID gadget (usb_f_hid) and usbmon
#   kver       the kernel release those two were built from
# Re-running is cheap: the kernel is downloaded again only when Debian's
# linux-image-amd64 points at a new ABI, or when the init script changed.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/libre-dump-vm}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: needs root (apt-get install, dpkg -x)" >&2
  exit 1
fi

# Host packages: qemu (the VM), busybox-static (initramfs userland), kmod (module
# dependencies), udev (udevd/udevadm used inside the guest, which runs the host's
# root file system), acl (getfacl/setfacl to check what uaccess granted) and tcpdump
# (captures the guest's usbmon traffic for the capture: backend checks).
need=""
for p in qemu-system-x86 busybox-static kmod udev acl tcpdump; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
updated=0
if [ -n "$need" ]; then
  echo "setup.sh: installing$need"
  apt-get update -qq
  updated=1
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# The kernel package linux-image-amd64 currently depends on (e.g. linux-image-6.1.0-56-amd64).
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(kpkg || true)
if [ -z "$KPKG" ] && [ "$updated" = 0 ]; then
  apt-get update -qq
  KPKG=$(kpkg || true)
fi
if [ -z "$KPKG" ]; then
  echo "setup.sh: cannot find the kernel package linux-image-amd64 depends on" >&2
  exit 1
fi
KVER=${KPKG#linux-image-}
# the initrd embeds init.sh: rebuild it when that script changes
STAMP="$KVER $(cat "$HERE/init.sh" "$HERE/mkinitrd.sh" | md5sum | cut -c1-12)"

if [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$STAMP" ] \
   && [ -s "$CACHE/vmlinux" ] && [ -s "$CACHE/initrd.gz" ]; then
  echo "setup.sh: cached: $CACHE (kernel $KVER)"
  exit 0
fi

T=$(mktemp -d "$CACHE/tmp.XXXXXX")
trap 'rm -rf "$T"' EXIT
echo "setup.sh: downloading $KPKG"
(cd "$T" && apt-get download -o APT::Sandbox::User=root "$KPKG" >/dev/null)
dpkg -x "$T/${KPKG}"_*.deb "$T/kroot"
rm -f "$T"/*.deb
python3 "$HERE/extract_vmlinux.py" "$T/kroot/boot/vmlinuz-$KVER" "$T/vmlinux"
sh "$HERE/mkinitrd.sh" "$T/kroot" "$KVER" "$T/initrd.gz"
mv -f "$T/vmlinux" "$CACHE/vmlinux"
mv -f "$T/initrd.gz" "$CACHE/initrd.gz"
echo "$KVER" > "$CACHE/kver"
echo "$STAMP" > "$CACHE/stamp"
echo "setup.sh: ready: $CACHE/vmlinux $CACHE/initrd.gz (kernel $KVER)"
