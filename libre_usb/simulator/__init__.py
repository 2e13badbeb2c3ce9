"""The built-in virtual reader (``--device sim:<model>``): the device side.

``VirtualReader`` is the device (it answers reports as a reader would, from seeded content);
the ``sim:`` transport backend (:mod:`libre_usb.transport.interfaces.sim`) puts it behind the
transport interface, the way python-can's virtual bus sits behind its bus interface.
"""

from __future__ import annotations

from .content import ReaderContent, generate
from .faults import SimDevice, with_faults
from .reader import SimOptions, VirtualReader

__all__ = ["ReaderContent", "SimDevice", "SimOptions", "VirtualReader", "generate", "with_faults"]
