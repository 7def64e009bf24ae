"""The edges that read packets and turn them into packet records.

``capture_file`` reads pcap and pcapng files (streamed in chunks), ``live`` sniffs
loopback, ``pcap_writer`` writes pcap files. ``decode`` holds :class:`FrameDecoder`,
the entry point that turns a raw frame into a record, one module per layer below it
(``link``, ``ip``, ``transport``, with ``checksum``), ``record`` the one place a
record is built, and ``bulk`` the NumPy decoding of whole read buffers of large
pcap files and the shares of parallel analysis.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from visualizer.errors import UsageError
from visualizer.model import PacketRecord
from visualizer.sources.capture_file import CaptureReader, RawFrame
from visualizer.sources.decode import FrameDecoder

__all__ = ["CaptureReader", "FrameDecoder", "RawFrame", "iter_records", "read_frame"]


def iter_records(reader: CaptureReader, *, verify_checksums: bool = False) -> Iterator[PacketRecord]:
    """Decode every frame of ``reader`` into a packet record, in file order."""
    return reader.read(FrameDecoder(verify_checksums=verify_checksums).decode_from)


def read_frame(path: str | os.PathLike[str], number: int) -> RawFrame:
    """Frame ``number`` (from 1) of the capture at ``path``, as the file holds it; reading stops there.
    A UsageError names the file and how many frames it has when there is no such frame."""
    with CaptureReader(path) as reader:
        found = next((frame for frame in reader if frame.number == number), None)
    if found is None:
        raise UsageError(f"{os.fspath(path)}: no frame {number} (the capture has {reader.frames_read} frames)")
    return found
