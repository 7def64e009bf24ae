"""Streaming readers for pcap and pcapng files.

Files are read in chunks, never whole, so memory does not grow with the file.
Each frame comes out as a :class:`RawFrame`; :mod:`visualizer.sources.decode`
turns it into a packet record. Frame numbers start at 1 and count every frame
Wireshark would show, including the pcapng custom blocks that tshark 4.0 turns
into frames.

A file that cannot be read at all raises :class:`CaptureFileError`. A file that
goes bad part-way (cut short, an impossible record) yields the frames read
before the problem and records a warning in :attr:`CaptureReader.warnings`.

Formats: pcap (draft-ietf-opsawg-pcap), pcapng (draft-ietf-opsawg-pcapng).
"""

from __future__ import annotations

import array
import io
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, Protocol, TypeVar

from visualizer.errors import CaptureFileError, UsageError

PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
PCAP_MAGIC_NANOSECONDS = 0xA1B23C4D
PCAP_VERSION_DG_UX = 543
"""The major version DG/UX tcpdump writes, with the record lengths in the pre-2.3 order."""
PCAPNG_SECTION_HEADER = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

BLOCK_INTERFACE_DESCRIPTION = 0x00000001
BLOCK_OBSOLETE_PACKET = 0x00000002
BLOCK_SIMPLE_PACKET = 0x00000003
BLOCK_ENHANCED_PACKET = 0x00000006
BLOCK_CUSTOM = 0x00000BAD
BLOCK_CUSTOM_NO_COPY = 0x40000BAD

OPTION_IF_TSRESOL = 9
OPTION_IF_TSOFFSET = 14

# Wireshark refuses records larger than this (WTAP_MAX_PACKET_SIZE_STANDARD).
MAXIMUM_RECORD_LENGTH = 262_144
# pcapng blocks larger than this are taken as corruption (wiretap uses 16 MiB).
MAXIMUM_BLOCK_LENGTH = 16 * 1024 * 1024

LINKTYPE_NONE = -1
"""Link type of a frame that carries no packet (a pcapng custom block)."""

_CHUNK = 1 << 21
PCAP_FILE_HEADER_LENGTH = 24
_GUESS_WINDOW = 1 << 18
"""Bytes read to guess where a record starts (:meth:`CaptureReader.pcap_record_near`)."""
_PLAUSIBLE_CHAIN = 16
"""Record headers in a row that make a guess (each one's lengths point at the next)."""
_PLAUSIBLE_SPREAD_SECONDS = 3600


class RawFrame(NamedTuple):
    """A frame as the file holds it, before decoding."""

    number: int
    timestamp_ns: int | None
    interface: int
    link_type: int
    captured_length: int
    original_length: int
    data: bytes


T = TypeVar("T", covariant=True)


class FrameMaker(Protocol[T]):
    """Builds what a reader yields from a frame's place in the read buffer."""

    def __call__(
        self,
        buffer: bytes,
        start: int,
        number: int,
        timestamp_ns: int | None,
        interface: int,
        link_type: int,
        captured: int,
        original: int,
        /,
    ) -> T | None: ...


def _raw_frame(
    buffer: bytes,
    start: int,
    number: int,
    timestamp_ns: int | None,
    interface: int,
    link_type: int,
    captured: int,
    original: int,
    /,
) -> RawFrame:
    return RawFrame(number, timestamp_ns, interface, link_type, captured, original, buffer[start : start + captured])


class PcapChunk(NamedTuple):
    """Whole frames of a pcap file found in one read buffer."""

    buffer: bytes
    offsets: Sequence[int]
    """Where each frame's 16-byte record header starts in ``buffer``."""
    first_number: int


class PcapStretch(NamedTuple):
    """Where the records of a stretch of a pcap file lie, buffer by buffer (:meth:`CaptureReader.scan_pcap`)."""

    start: int
    """The file offset of the stretch's first record header."""
    buffers: list[tuple[int, Sequence[int], list[int]]]
    """Each read buffer's length, the offsets of the record headers in it, and the positions among those
    of the records that carry no bytes; the buffers follow one another."""
    end: int
    """The file offset just past the stretch's last whole record: where the chain of records ended."""
    damaged: int
    """The captured length of the impossible record at ``end`` (bigger than the maximum), else 0."""


class _ScanEnd:
    """Where a scan of record headers ended, and the impossible captured length found there (0: none)."""

    __slots__ = ("position", "damaged")

    def __init__(self, position: int, damaged: int = 0) -> None:
        self.position = position
        self.damaged = damaged


class PcapHeader(NamedTuple):
    """What a pcap file header says about every record."""

    byte_order: str
    fraction_ns: int
    """Nanoseconds per unit of the records' second field (1000 for microsecond files)."""
    link_type: int
    lengths_swapped: bool
    lengths_maybe_swapped: bool
    record: Callable[[bytes, int], tuple[int, int, int]]
    """(timestamp in ns, captured length, original length) of the record header at an offset."""


def _record_reader(
    byte_order: str, fraction_ns: int, swapped: bool, maybe_swapped: bool
) -> Callable[[bytes, int], tuple[int, int, int]]:
    unpack = struct.Struct(byte_order + "IIII").unpack_from
    if swapped:

        def record(buffer: bytes, offset: int) -> tuple[int, int, int]:
            seconds, fractional, original, captured = unpack(buffer, offset)
            return seconds * 1_000_000_000 + fractional * fraction_ns, captured, original
    elif maybe_swapped:
        # libpcap's sf-pcap.c (MAYBE_SWAPPED): swapped only when the captured length is the larger.

        def record(buffer: bytes, offset: int) -> tuple[int, int, int]:
            seconds, fractional, captured, original = unpack(buffer, offset)
            if captured > original:
                captured, original = original, captured
            return seconds * 1_000_000_000 + fractional * fraction_ns, captured, original
    else:

        def record(buffer: bytes, offset: int) -> tuple[int, int, int]:
            seconds, fractional, captured, original = unpack(buffer, offset)
            return seconds * 1_000_000_000 + fractional * fraction_ns, captured, original

    return record


class _Interface(NamedTuple):
    link_type: int
    snap_length: int
    units_per_second: int
    offset_seconds: int


def _open(path: str) -> io.BufferedReader:
    try:
        if os.path.isdir(path):
            raise CaptureFileError(path, "is a directory, not a capture file")
        return open(path, "rb")
    except FileNotFoundError:
        raise CaptureFileError(path, "no such file") from None
    except PermissionError:
        raise CaptureFileError(path, "permission denied") from None
    except IsADirectoryError:
        raise CaptureFileError(path, "is a directory, not a capture file") from None
    except OSError as error:
        raise CaptureFileError(path, error.strerror or str(error)) from None


class CaptureReader:
    """Iterate over the frames of a pcap or pcapng file.

    >>> reader = CaptureReader("captures/story.pcap")   # doctest: +SKIP
    >>> for frame in reader: ...                          # doctest: +SKIP
    >>> reader.warnings                                   # doctest: +SKIP

    The format is checked when the reader is created, so a file that is not a
    capture fails at once, before any output.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.warnings: list[str] = []
        self.format = ""
        self.link_types: set[int] = set()
        self.frames_read = 0
        self.bytes_read = 0
        self.size = 0
        self.first_timestamp_ns: int | None = None
        """Time of the first frame that has one (pcapng simple packet and custom blocks have none)."""
        self.last_timestamp_ns: int | None = None
        """Time of the last frame read that had one (readers of read buffers keep it up to date)."""
        self._time_went_back = False
        self._empty_frames = 0
        self._first_empty_frame = 0
        self._finished = False
        handle = _open(self.path)
        try:
            self.size = os.fstat(handle.fileno()).st_size
            head = handle.read(24)
        except OSError as error:
            handle.close()
            raise CaptureFileError(self.path, error.strerror or str(error)) from None
        if not head:
            handle.close()
            raise CaptureFileError(self.path, "empty file, not a capture")
        if len(head) >= 4 and int.from_bytes(head[:4], "little") == PCAPNG_SECTION_HEADER:
            self.format = "pcapng"
        elif len(head) >= 4 and (
            int.from_bytes(head[:4], "little") in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS)
            or int.from_bytes(head[:4], "big") in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS)
        ):
            self.format = "pcap"
            if len(head) < 24:
                handle.close()
                raise CaptureFileError(self.path, f"pcap file header cut short ({len(head)} of 24 bytes)")
        else:
            handle.close()
            raise CaptureFileError(self.path, f"not a pcap or pcapng file (starts with 0x{head[:4].hex()})")
        self._handle = handle
        self.pcap_header: PcapHeader | None = None
        if self.format == "pcap":
            handle.seek(0)
            self.pcap_header = self._pcap_header()
        else:
            handle.seek(0)

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._handle.close()

    def __iter__(self) -> Iterator[RawFrame]:
        return self.read(_raw_frame)

    def read(self, make: FrameMaker[T]) -> Iterator[T]:
        """Yield ``make(buffer, start, number, timestamp_ns, interface, link_type, captured, original)``
        for every frame, where the frame's bytes are ``buffer[start:start + captured]``.

        Lets a decoder work on the read buffer directly instead of on a copy of each frame.
        When ``make`` returns None the frame is skipped (a worker that analyses only some
        conversations uses that); frame numbers still count every frame.
        """
        try:
            if self.pcap_header is not None:  # set exactly for pcap files
                yield from self._read_pcap(self.pcap_header, make)
            else:
                yield from self._read_pcapng(make)
        finally:
            self.close()

    def _warn(self, problem: str) -> None:
        read = self.frames_read
        self.warnings.append(f"{self.path}: {problem}; read {read} frame{'' if read == 1 else 's'} before it")

    # -- Oddities: readable, but worth a warning ------------------------------------------------

    def time_went_back(self, number: int, timestamp_ns: int, previous: int, previous_ns: int) -> None:
        """Frame ``number`` is earlier than frame ``previous`` (the last one with a time): warn, once.

        Durations and time axes assume that time goes forward; a capture merged from
        several sources, or a clock stepped back, breaks that silently otherwise.
        """
        if self._time_went_back:
            return
        self._time_went_back = True
        self.warnings.append(
            f"{self.path}: time goes backwards at frame {number} "
            f"({(previous_ns - timestamp_ns) / 1e9:.6f} s before frame {previous})"
        )

    def _empty_frame(self, number: int) -> None:
        if not self._empty_frames:
            self._first_empty_frame = number
        self._empty_frames += 1

    def _finish(self) -> None:
        """Warn about what was odd in the whole file, once, when the reading ends."""
        if self._finished:
            return
        self._finished = True
        count = self._empty_frames
        if count:
            frames = "1 frame carries" if count == 1 else f"{count:,} frames carry"
            self.warnings.append(
                f"{self.path}: {frames} no bytes at all (the first is frame {self._first_empty_frame})"
            )

    # -- pcap -------------------------------------------------------------------------------

    def _pcap_header(self) -> PcapHeader:
        header = self._handle.read(24)
        magic_little = int.from_bytes(header[:4], "little")
        order = "<" if magic_little in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS) else ">"
        magic, major, minor, _zone, _sigfigs, _snap, network = struct.unpack(order + "IHHiIII", header)
        self.link_types.add(network & 0xFFFF)
        # Before pcap 2.3 libpcap wrote the two lengths the other way round, and so does DG/UX
        # tcpdump (version 543.0); 2.3 files may be either (libpcap's pcap_check_header).
        fraction = 1 if magic == PCAP_MAGIC_NANOSECONDS else 1000
        swapped = (major, minor) < (2, 3) or major == PCAP_VERSION_DG_UX
        maybe_swapped = (major, minor) == (2, 3)
        return PcapHeader(
            order,
            fraction,
            network & 0xFFFF,
            swapped,
            maybe_swapped,
            _record_reader(order, fraction, swapped, maybe_swapped),
        )

    def _pcap_only(self, method: str) -> PcapHeader:
        if self.pcap_header is None:
            raise UsageError(f"{self.path}: {method}() reads pcap files only (this is {self.format})")
        return self.pcap_header

    def pcap_chunks(self, layout: Sequence[PcapStretch] | None = None) -> Iterator[PcapChunk]:
        """The frames of a pcap file, a read buffer at a time (the fast way through a big file).

        Each chunk's ``offsets`` point at 16-byte record headers in ``buffer``, each followed
        by its whole frame; :meth:`PcapHeader.record` decodes such a header. Only for pcap
        files (``format == "pcap"``); damage stops the chunks and records a warning.

        ``layout``, when given, is where the records are: the stretches that
        :meth:`scan_pcap` found, following one another from the first record to where
        the file ends or goes bad (parallel readers each find one stretch and share them).
        The chunks, counts and warnings are then the same, without a scan of the record headers.
        """
        header = self._pcap_only("pcap_chunks")
        if layout is None:
            end = _ScanEnd(PCAP_FILE_HEADER_LENGTH)
            buffers = self._scan_buffers(header, PCAP_FILE_HEADER_LENGTH, self.size, end)
        else:
            end = _ScanEnd(layout[-1].end, layout[-1].damaged)
            buffers = self._read_layout(layout, end)
        number = 0
        try:
            for buffer, offsets, empty, whole in buffers:
                for index in empty:
                    self._empty_frame(number + 1 + index)
                number += len(offsets)
                self.frames_read = number
                self.bytes_read = whole
                yield PcapChunk(buffer, offsets, number - len(offsets) + 1)
            if end.damaged:
                self._warn(
                    f"damaged record: {end.damaged}-byte packet, bigger than the maximum of {MAXIMUM_RECORD_LENGTH}"
                )
            elif end.position < self.size:
                self._warn("file cut short in the middle of a packet")
        finally:
            self._finish()
            self.close()

    def scan_pcap(self, start: int, stop: int) -> PcapStretch:
        """Where the records of the pcap file's bytes [start, stop) are, ``start`` taken for a record header.

        The scan stops at ``stop``, at damage, or at a record that runs past ``stop``: its
        ``end`` then says where the chain of records ended. Stretches that follow one
        another (each ``end`` the next ``start``, the first at the file's first record)
        are a :meth:`pcap_chunks` layout; the reader stays open for it.
        """
        end = _ScanEnd(start)
        buffers: list[tuple[int, Sequence[int], list[int]]] = []
        previous = start
        header = self._pcap_only("scan_pcap")
        for _, offsets, empty, whole in self._scan_buffers(header, start, stop, end, keep=False):
            buffers.append((whole - previous, array.array("I", offsets), empty))
            previous = whole
        return PcapStretch(start, buffers, end.position, end.damaged)

    def pcap_record_near(self, offset: int) -> int | None:
        """A file offset from ``offset`` on that looks like the start of a pcap record, or None.

        A heuristic of ours, and only a guess: the first of :data:`_PLAUSIBLE_CHAIN` record headers
        in a row that each hold a plausible time and lengths. Only the chain of records from the
        file's first one can confirm it (parallel readers scan from such guesses, then check).
        """
        header = self._pcap_only("pcap_record_near")
        self._handle.seek(offset)
        buffer = self._handle.read(_GUESS_WINDOW)
        fields = struct.Struct(header.byte_order + "IIII").unpack_from
        record = header.record
        most_fraction = 1_000_000_000 // header.fraction_ns
        last = len(buffer) - 16
        for candidate in range(min(last + 1, _GUESS_WINDOW // 2)):
            position = candidate
            first_seconds = -1
            for _ in range(_PLAUSIBLE_CHAIN):
                if position > last:
                    break
                seconds, fraction = fields(buffer, position)[:2]
                _, captured, original = record(buffer, position)
                if first_seconds < 0:
                    first_seconds = seconds
                if (
                    fraction >= most_fraction
                    or abs(seconds - first_seconds) > _PLAUSIBLE_SPREAD_SECONDS
                    or captured > min(original, MAXIMUM_RECORD_LENGTH)
                ):
                    break
                position += 16 + captured
            else:
                return offset + candidate
        return None

    def _read_layout(
        self, layout: Sequence[PcapStretch], end: _ScanEnd
    ) -> Iterator[tuple[bytes, Sequence[int], list[int], int]]:
        """:meth:`_scan_buffers` for a file whose records were already found: the same buffers, read again."""
        self._handle.seek(layout[0].start)
        read = self._handle.read
        position = layout[0].start
        for stretch in layout:
            for length, offsets, empty in stretch.buffers:
                buffer = read(length)
                if len(buffer) < length:  # the file was cut since it was scanned
                    end.position, end.damaged = position, 0
                    return
                position += length
                yield buffer, offsets, empty, position

    def _scan_buffers(
        self, header: PcapHeader, start: int, stop: int, end: _ScanEnd, *, keep: bool = True
    ) -> Iterator[tuple[bytes, Sequence[int], list[int], int]]:
        """Read the file's bytes [start, stop) a buffer at a time, following the chain of record headers.

        Yields each read buffer's whole records (``b""`` unless ``keep``: only the scan is
        wanted), the offsets of those records in it, the positions among them of the records
        that carry no bytes, and the file offset just past the last (where the next buffer
        starts). Leaves in ``end`` where the chain ended, and the captured length of the
        impossible record found there.
        """
        # The captured length is the third header field, or the fourth when the lengths are swapped.
        length_at = 12 if header.lengths_swapped else 8
        other_at = 8 if header.lengths_swapped else 12
        length_of = struct.Struct(header.byte_order + "I").unpack_from
        maybe_swapped = header.lengths_maybe_swapped
        # Read into one buffer, again and again: fresh buffers for every read cost a page fault
        # per 4 kB (a tenth of the scan's time). A record cut by a read moves to the front first.
        buffer = bytearray(_CHUNK + 16 + MAXIMUM_RECORD_LENGTH)
        view = memoryview(buffer)
        carried = 0
        consumed = start  # the file offset of buffer[0]
        left = stop - start
        self._handle.seek(start)
        readinto = self._handle.readinto
        while True:
            count = readinto(view[carried : carried + min(_CHUNK, left)]) if left > 0 else 0
            if not count:
                end.position = consumed
                return
            left -= count
            end_of_buffer = carried + count
            position = 0
            offsets: list[int] = []
            empty: list[int] = []
            append = offsets.append
            limit = end_of_buffer - 16
            while position <= limit:  # the per-frame loop: kept lean
                captured = length_of(buffer, position + length_at)[0]
                if maybe_swapped:
                    (original,) = length_of(buffer, position + other_at)
                    captured = min(captured, original)
                if captured > MAXIMUM_RECORD_LENGTH:
                    if offsets:
                        yield bytes(view[:position]) if keep else b"", offsets, empty, consumed + position
                    end.position, end.damaged = consumed + position, captured
                    return
                stop_at = position + 16 + captured
                if stop_at > end_of_buffer:
                    break
                if not captured:
                    empty.append(len(offsets))
                append(position)
                position = stop_at
            if offsets:
                yield bytes(view[:position]) if keep else b"", offsets, empty, consumed + position
            carried = end_of_buffer - position
            buffer[:carried] = bytes(view[position:end_of_buffer])  # a copy: the two may overlap
            consumed += position

    def _read_pcap(self, header: PcapHeader, make: FrameMaker[T]) -> Iterator[T]:
        record = header.record
        link_type = header.link_type
        for buffer, offsets, number in self.pcap_chunks():
            last = self.last_timestamp_ns
            if last is None:
                self.first_timestamp_ns = record(buffer, offsets[0])[0]
            for offset in offsets:
                timestamp, captured, original = record(buffer, offset)
                if last is not None and timestamp < last:
                    self.time_went_back(number, timestamp, number - 1, last)
                last = timestamp
                item = make(buffer, offset + 16, number, timestamp, 0, link_type, captured, original)
                number += 1
                if item is not None:
                    yield item
            self.last_timestamp_ns = last

    # -- pcapng -----------------------------------------------------------------------------

    def _read_pcapng(self, make: FrameMaker[T]) -> Iterator[T]:
        try:
            yield from self._read_pcapng_blocks(make)
        finally:
            self._finish()

    def _read_pcapng_blocks(self, make: FrameMaker[T]) -> Iterator[T]:
        handle = self._handle
        order = "<"
        interfaces: list[_Interface] = []
        number = 0
        last_timed = 0
        while True:
            head = handle.read(8)
            if not head:
                return
            if len(head) < 8:
                self._warn("file cut short in the middle of a block")
                return
            block_type = int.from_bytes(head[:4], "little" if order == "<" else "big")
            if block_type == PCAPNG_SECTION_HEADER:
                peek = handle.read(4)
                if len(peek) < 4:
                    self._warn("file cut short in a section header")
                    return
                if int.from_bytes(peek, "little") == PCAPNG_BYTE_ORDER_MAGIC:
                    order = "<"
                elif int.from_bytes(peek, "big") == PCAPNG_BYTE_ORDER_MAGIC:
                    order = ">"
                else:
                    self._warn("section header with a bad byte-order magic")
                    return
                (length,) = struct.unpack(order + "I", head[4:])
                if length < 28 or length % 4 or length > MAXIMUM_BLOCK_LENGTH:
                    self._warn(f"section header with an impossible length {length}")
                    return
                rest = handle.read(length - 12)
                if len(rest) < length - 12:
                    self._warn("file cut short in a section header")
                    return
                major, minor = struct.unpack_from(order + "HH", rest, 0)
                if major != 1 or minor not in (0, 2):
                    self._warn(f"unsupported pcapng section version {major}.{minor}")
                    return
                interfaces = []
                continue
            (length,) = struct.unpack(order + "I", head[4:])
            if length < 12 or length % 4 or length > MAXIMUM_BLOCK_LENGTH:
                self._warn(f"block with an impossible length {length}")
                return
            body = handle.read(length - 8)
            self.bytes_read = handle.tell()
            if len(body) < length - 8:
                self._warn("file cut short in the middle of a packet")
                return
            body = body[:-4]
            if block_type == BLOCK_INTERFACE_DESCRIPTION:
                if len(body) < 8:
                    self._warn("interface description block too short")
                    return
                link_type, _reserved, snap = struct.unpack_from(order + "HHI", body, 0)
                units, offset = self._interface_options(body[8:], order)
                interfaces.append(_Interface(link_type, snap, units, offset))
                self.link_types.add(link_type)
            elif block_type in (BLOCK_ENHANCED_PACKET, BLOCK_OBSOLETE_PACKET):
                if block_type == BLOCK_ENHANCED_PACKET:
                    if len(body) < 20:
                        self._warn("enhanced packet block too short")
                        return
                    interface, high, low, captured, original = struct.unpack_from(order + "IIIII", body, 0)
                    data_start = 20
                else:
                    if len(body) < 20:
                        self._warn("packet block too short")
                        return
                    interface, _drops, high, low, captured, original = struct.unpack_from(order + "HHIIII", body, 0)
                    data_start = 20
                if interface >= len(interfaces):
                    self._warn(f"packet for undeclared interface {interface}")
                    return
                if data_start + captured > len(body):
                    self._warn("packet block shorter than its captured length")
                    return
                description = interfaces[interface]
                ticks = (high << 32) | low
                timestamp = ticks * 1_000_000_000 // description.units_per_second
                timestamp += description.offset_seconds * 1_000_000_000
                number += 1
                self.frames_read = number
                last = self.last_timestamp_ns
                if last is None:
                    self.first_timestamp_ns = timestamp
                elif timestamp < last:
                    self.time_went_back(number, timestamp, last_timed, last)
                self.last_timestamp_ns, last_timed = timestamp, number
                if not captured:
                    self._empty_frame(number)
                item = make(body, data_start, number, timestamp, interface, description.link_type, captured, original)
                if item is not None:
                    yield item
            elif block_type == BLOCK_SIMPLE_PACKET:
                if not interfaces or len(body) < 4:
                    self._warn("simple packet block without an interface")
                    return
                (original,) = struct.unpack_from(order + "I", body, 0)
                description = interfaces[0]
                captured = min(original, len(body) - 4)
                if description.snap_length:
                    captured = min(captured, description.snap_length)
                number += 1
                self.frames_read = number
                if not captured:
                    self._empty_frame(number)
                item = make(body, 4, number, None, 0, description.link_type, captured, original)
                if item is not None:
                    yield item
            elif block_type in (BLOCK_CUSTOM, BLOCK_CUSTOM_NO_COPY):
                # tshark 4.0 shows a custom block as a frame of its own ("data").
                number += 1
                self.frames_read = number
                item = make(body, 0, number, None, -1, LINKTYPE_NONE, len(body), len(body))
                if item is not None:
                    yield item
            # Other blocks (name resolution, statistics, decryption secrets) carry no frame.

    @staticmethod
    def _interface_options(options: bytes, order: str) -> tuple[int, int]:
        units, offset = 1_000_000, 0
        index = 0
        while index + 4 <= len(options):
            code, length = struct.unpack_from(order + "HH", options, index)
            value = options[index + 4 : index + 4 + length]
            if code == 0:
                break
            if code == OPTION_IF_TSRESOL and length >= 1:
                resolution = value[0]
                units = 2 ** (resolution & 0x7F) if resolution & 0x80 else 10**resolution
            elif code == OPTION_IF_TSOFFSET and length == 8:
                (offset,) = struct.unpack(order + "q", value)
            index += 4 + length + (-length % 4)
        return units, offset
