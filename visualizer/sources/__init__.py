"""The edges that read packets: capture files (and, later, live sniffing)."""

from __future__ import annotations

from collections.abc import Iterator

from visualizer.model import PacketRecord
from visualizer.sources.capture_file import CaptureReader, RawFrame
from visualizer.sources.decode import FrameDecoder

__all__ = ["CaptureReader", "FrameDecoder", "RawFrame", "iter_records"]


def iter_records(reader: CaptureReader, *, verify_checksums: bool = False) -> Iterator[PacketRecord]:
    """Decode every frame of ``reader`` into a packet record, in file order."""
    return reader.read(FrameDecoder(verify_checksums=verify_checksums).decode_from)
