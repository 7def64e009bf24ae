"""Write classic pcap files (nanosecond resolution), streaming, one record at a time."""

from __future__ import annotations

import os
import struct
from types import TracebackType
from typing import BinaryIO

from visualizer.sources.capture_file import PCAP_MAGIC_NANOSECONDS

LINKTYPE_ETHERNET = 1
DEFAULT_SNAP_LENGTH = 262_144


class PcapWriter:
    """``with PcapWriter(path) as writer: writer.write(data, timestamp_ns)``.

    ``path`` may also be a binary file already open (an atomic write's temporary file): it is
    written to and left open for its owner to close.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | BinaryIO,
        *,
        link_type: int = LINKTYPE_ETHERNET,
        snap_length: int = DEFAULT_SNAP_LENGTH,
    ) -> None:
        self.snap_length = snap_length
        self.count = 0
        self._owned = isinstance(path, str | os.PathLike)
        self._handle: BinaryIO = open(path, "wb") if isinstance(path, str | os.PathLike) else path
        self._handle.write(struct.pack("<IHHiIII", PCAP_MAGIC_NANOSECONDS, 2, 4, 0, 0, snap_length, link_type))

    def write(self, data: bytes, timestamp_ns: int, original_length: int | None = None) -> None:
        captured = data[: self.snap_length]
        seconds, nanoseconds = divmod(timestamp_ns, 1_000_000_000)
        self._handle.write(
            struct.pack("<IIII", seconds, nanoseconds, len(captured), original_length or len(data)) + captured
        )
        self.count += 1

    def close(self) -> None:
        if self._owned:
            self._handle.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
