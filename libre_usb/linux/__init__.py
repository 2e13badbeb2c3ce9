"""Linux integration: udev rules, the ``doctor`` checks, and the kernel-backed virtual
readers (USB gadget via dummy_hcd, uhid) used by ``simulate`` and the VM stage."""
