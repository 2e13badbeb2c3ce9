#!/bin/sh
# Build the guest's initramfs: static busybox, init.sh as /init, and the kernel
# modules (with their dependencies, in load order) that the guest needs:
#   virtio_pci 9pnet_virtio 9p          host root + repository over 9p
#   uhid hid_generic                    /dev/uhid and a driver for its devices
#   dummy_hcd libcomposite usb_f_hid    a USB device controller looped back to a
#                                       host controller, and the configfs HID gadget
#   usbhid                              the host-side driver -> /dev/hidrawN
#   usbmon                              /dev/usbmonN: tcpdump captures the USB traffic
#                                       (the capture: backend is checked against a dump)
# usage: mkinitrd.sh KROOT KVER OUT   (KROOT = a dpkg -x'ed linux-image package)
set -eu
KROOT=$1 KVER=$2 OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
MODULES=${VM_MODULES:-"virtio_pci 9pnet_virtio 9p uhid hid_generic dummy_hcd libcomposite usb_f_hid usbhid usbmon"}
[ -f "$KROOT/lib/modules/$KVER/modules.dep" ] || depmod -b "$KROOT" "$KVER"
BUSYBOX=/bin/busybox   # from busybox-static: no shared libraries needed in the initramfs
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bin" "$W/lib/modules" "$W/proc" "$W/sys" "$W/dev" "$W/newroot"
cp "$BUSYBOX" "$W/bin/busybox"
: > "$W/modules.order"
for m in $MODULES; do
  modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  name=$(basename "$ko")
  cp "$ko" "$W/lib/modules/$name"
  echo "$name" >> "$W/modules.order"
done
cp "$HERE/init.sh" "$W/init"
chmod 755 "$W/init"
(cd "$W" && find . | "$W/bin/busybox" cpio -o -H newc 2>/dev/null) | gzip -1 > "$OUT"
echo "mkinitrd: $(wc -l < "$W/modules.order") modules, $(du -k "$OUT" | cut -f1) KiB"
