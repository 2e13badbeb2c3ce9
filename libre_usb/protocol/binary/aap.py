"""AAP frames: building one, and reassembling a stream of them from ATP data slices.

:class:`AapDecoder` is fed the data of each in-sequence ATP frame and returns the AAP frames
completed by it. It keeps only the bytes of the frame being assembled and where its data
starts, so a 2 MB frame spread over 37,000 ATP frames costs the same per byte as a 3-byte
one: nothing is ever rescanned.
"""

from __future__ import annotations

import dataclasses

from ...errors import ProtocolError
from .wire import MAX_AAP_LENGTH, encode_length


@dataclasses.dataclass(frozen=True)
class AapFrame:
    op: int
    data: bytes = b""

    def encode(self) -> bytes:
        return build_aap(self.op, self.data)


def build_aap(op: int, data: bytes = b"") -> bytes:
    """One AAP frame: length prefix, op, data."""
    if not 0 <= op < 0x80:
        raise ValueError(f"AAP op 0x{op:02x} has its high bit set")
    return encode_length(len(data)) + bytes([op]) + data


class AapDecoder:
    """Reassembles AAP frames from consecutive ATP data slices (see the module docstring)."""

    def __init__(self, *, max_length: int = MAX_AAP_LENGTH) -> None:
        self._length = 0
        self._prefix = 0  # length-prefix bytes read for the current frame
        self._op: int | None = None
        self._data = bytearray()
        self._max = max_length
        #: bytes received in total
        self.received = 0

    @property
    def idle(self) -> bool:
        """True between frames (nothing of a next frame received yet)."""
        return self._prefix == 0 and self._op is None

    def feed(self, data: bytes) -> list[AapFrame]:
        out: list[AapFrame] = []
        self.received += len(data)
        view = memoryview(data)
        at = 0
        while at < len(view):
            if self._op is None:
                byte = view[at]
                at += 1
                if byte & 0x80:
                    if self._prefix == 3:
                        raise ProtocolError("AAP length prefix longer than 3 bytes")
                    self._length |= (byte & 0x7F) << (7 * self._prefix)
                    self._prefix += 1
                    continue
                self._op = byte
                if self._length > self._max:
                    raise ProtocolError(f"AAP frame of {self._length} bytes is larger than "
                                        f"{self._max}")
            need = self._length - len(self._data)
            take = view[at : at + need]
            self._data += take
            at += len(take)
            if len(self._data) == self._length:
                out.append(AapFrame(self._op, bytes(self._data)))
                self._length = self._prefix = 0
                self._op = None
                self._data = bytearray()
        return out
