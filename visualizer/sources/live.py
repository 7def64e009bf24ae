"""Live capture on a Linux interface: a memory-mapped ring, read a block at a time, streamed to disk.

Python cannot call ``recv`` once per packet at 100k packets/s, so this reads the
way libpcap does (``pcap-linux.c``, ``pcap_read_linux_mmap_v3``): an ``AF_PACKET``
socket with a TPACKET_V3 receive ring (``PACKET_RX_RING``) shared with the kernel
through ``mmap``. The kernel fills blocks of frames, each with its nanosecond
timestamp, and hands a block over (``TP_STATUS_USER``) when it is full or after
``BLOCK_TIMEOUT_MS``; the reader walks its frames, gives it back
(``TP_STATUS_KERNEL``) and moves to the next block, waiting in ``poll()`` with a
short timeout when none is ready, so a stop request is seen within a block's work
at any packet rate. The kernel's counters (``PACKET_STATISTICS``: packets the
filter accepted, packets dropped because the ring was full) come with every capture.

On ``lo`` each packet passes a packet socket twice, as it leaves and as it arrives;
only the arriving copy is kept, so every packet appears once: a prologue of the
socket's filter drops outgoing frames (packet type ``PACKET_OUTGOING``) in the
kernel, and the reader checks each frame's ``sll_pkttype`` again.

A BPF filter expression is compiled first (libpcap, through Scapy), before any
socket or file exists, so a bad expression costs nothing. The socket then opens
the way libpcap's ``pcap-linux.c`` does, so that no frame the filter rejects is
ever captured: created with protocol 0 it receives nothing; a drop-all filter
(one instruction, ``ret #0``: libpcap's "total filter") goes on before ``bind``
starts the frames flowing; whatever was queued is drained; only then is the real
filter attached. (A filter attached to a socket that already receives applies
only to frames that arrive after it: those queued before slip through.)

:func:`capture_to_file` streams: the pcap header is written first, then each
block's records in one ``write``, so the file is a valid capture up to its last
written block at every moment, also after ``kill -9``. (The project writes files
atomically elsewhere; a capture that may run for hours and be killed is the
exception: a temporary file would lose everything.) :class:`Sniffer` keeps the
frames in memory for the scenarios, which read the kernel's answers as they come.

Needs CAP_NET_RAW (root).
"""

from __future__ import annotations

import ctypes
import io
import mmap
import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from visualizer.errors import CaptureFilterError, LiveCaptureError, PrivilegeError, command_line
from visualizer.files import atomic_write
from visualizer.sources.capture_file import PCAP_MAGIC_NANOSECONDS
from visualizer.sources.pcap_writer import DEFAULT_SNAP_LENGTH, LINKTYPE_ETHERNET, PcapWriter

# <linux/if_ether.h>, <linux/if_packet.h>
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
PACKET_OUTGOING = 4
"""``sll_pkttype`` of a frame the host sends (on ``lo``, the copy that leaves)."""
# <asm-generic/socket.h>, <linux/filter.h>
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
BPF_LD_W_ABS = 0x20
"""BPF_LD | BPF_W | BPF_ABS: load a word; at SKF_AD_OFF + n, the kernel's ancillary datum n."""
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
"""BPF_RET | BPF_K: return the constant; 0 bytes kept means the frame is dropped."""
SKF_AD_OFF = 0xFFFFF000
"""-4096 as an unsigned 32-bit operand."""
SKF_AD_PKTTYPE = 4

SNAP_LENGTH = DEFAULT_SNAP_LENGTH
"""262,144 bytes kept per frame, as tcpdump: more than the 65,549-byte GSO frames seen on lo."""
TPACKET3_HEADER_BYTES = 48
"""``TPACKET_ALIGN(sizeof(struct tpacket3_hdr))``: the ``struct sockaddr_ll`` follows it."""
SLL_PKTTYPE_OFFSET = TPACKET3_HEADER_BYTES + 10
"""``sll_pkttype`` after sll_family, sll_protocol (2 bytes each), sll_ifindex (4), sll_hatype (2)."""
FRAME_BYTES = (TPACKET3_HEADER_BYTES + 32 + SNAP_LENGTH + 15) & ~15
"""A frame's room: header, sockaddr_ll with its padding, the snap length (TPACKET_ALIGNMENT, 16)."""
BLOCK_BYTES = 1 << (FRAME_BYTES - 1).bit_length()
"""The smallest power of two that holds a whole frame (512 KiB), as libpcap sizes its blocks."""
DEFAULT_BUFFER_BYTES = 32 * 1024 * 1024
BLOCK_TIMEOUT_MS = 10
"""A block that is not full goes to the reader after this long (``tp_retire_blk_tov``)."""
POLL_SECONDS = 0.02
"""The longest wait in ``poll()`` before the stop flag is looked at again."""
FINISH_SECONDS = 0.08
"""After a stop request, how long the frames already in the ring may still be written."""

_BLOCK_HEADER = struct.Struct("=III")
"""``struct tpacket_hdr_v1`` from offset 8: block_status, num_pkts, offset_to_first_pkt."""
_BLOCK_HEADER_OFFSET = 8
_PACKET_HEADER = struct.Struct("=I8xI4x4xH")
"""``struct tpacket3_hdr``: tp_next_offset, (tp_sec, tp_nsec), tp_snaplen, (tp_len, tp_status), tp_mac."""
_TIMESTAMP = struct.Struct("=II")
_PCAP_RECORD_HEADER_OFFSET = 4
"""tp_sec, tp_nsec, tp_snaplen, tp_len: a pcap record header (nanoseconds) in the host's byte order."""
_PCAP_RECORD_HEADER_BYTES = 16
_STATISTICS = struct.Struct("=III")
"""``struct tpacket_stats_v3``: tp_packets (accepted, drops included), tp_drops, tp_freeze_q_cnt."""
_RING_REQUEST = struct.Struct("=7I")
"""``struct tpacket_req3``: block size and count, frame size and count, retire timeout, priv, features."""


class _SocketFilterInstruction(ctypes.Structure):
    """``struct sock_filter`` of <linux/filter.h> (the same layout as libpcap's ``struct bpf_insn``)."""

    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SocketFilterProgram(ctypes.Structure):
    """``struct sock_fprog``: what SO_ATTACH_FILTER takes."""

    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SocketFilterInstruction))]


class SocketFilter:
    """A classic BPF program in memory of its own, ready for SO_ATTACH_FILTER."""

    def __init__(self, instructions: list[tuple[int, int, int, int]], *, expression: str) -> None:
        self.expression = expression
        self._instructions = (_SocketFilterInstruction * len(instructions))(
            *(_SocketFilterInstruction(*instruction) for instruction in instructions)
        )
        self._program = _SocketFilterProgram(len(instructions), self._instructions)

    def __len__(self) -> int:
        return len(self._instructions)

    @property
    def instructions(self) -> list[tuple[int, int, int, int]]:
        return [(item.code, item.jt, item.jf, item.k) for item in self._instructions]

    def attach(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(self._program))

    def incoming_only(self) -> SocketFilter:
        """This program behind a prologue that drops outgoing frames in the kernel (for ``lo``).

        ``ld #pkttype; jeq #PACKET_OUTGOING, drop, program``: the loopback's outgoing copy of
        each packet never reaches the ring, which halves its load. Jumps in classic BPF are
        relative, so the program after the prologue runs unchanged.
        """
        prologue = [
            (BPF_LD_W_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE),
            (BPF_JEQ_K, 0, 1, PACKET_OUTGOING),
            (BPF_RET_K, 0, 0, 0),
        ]
        return SocketFilter(prologue + self.instructions, expression=self.expression)


DROP_ALL = SocketFilter([(BPF_RET_K, 0, 0, 0)], expression="(drop every frame)")
"""libpcap's "total filter" (pcap-linux.c ``total_insn``): keeps no byte of any frame."""


def compile_filter(expression: str, *, link_type: int = LINKTYPE_ETHERNET) -> SocketFilter:
    """Compile a tcpdump-syntax filter for frames of ``link_type``; a bad one is a CaptureFilterError.

    Needs no root and no interface (libpcap's ``pcap_open_dead``). The sniffer writes
    Ethernet frames (what ``AF_PACKET`` gives on ``lo`` and Ethernet interfaces), so
    Ethernet is the default.
    """
    try:
        from scapy.arch.common import compile_filter as scapy_compile_filter
        from scapy.arch.common import free_filter
        from scapy.error import Scapy_Exception
    except ImportError as error:
        raise LiveCaptureError(f"cannot compile the filter {expression!r}: {error}") from None
    try:
        program = scapy_compile_filter(expression, linktype=link_type)
    except Scapy_Exception as error:
        # Scapy's message ends with libpcap's reason in parentheses: keep the reason.
        reason = re.search(r"\(([^()]*)\)\s*$", str(error))
        raise CaptureFilterError(expression, reason.group(1) if reason else str(error)) from None
    except (ImportError, OSError) as error:
        raise LiveCaptureError(f"cannot compile the filter {expression!r} (libpcap): {error}") from None
    try:
        instructions = [
            (
                program.bf_insns[index].code,
                program.bf_insns[index].jt,
                program.bf_insns[index].jf,
                program.bf_insns[index].k & 0xFFFFFFFF,
            )
            for index in range(program.bf_len)
        ]
    finally:
        free_filter(program)
    return SocketFilter(instructions, expression=expression)


ACCEPT_ALL = SocketFilter([(BPF_RET_K, 0, 0, SNAP_LENGTH)], expression="(every frame)")
"""Keeps every frame, up to the snap length (what libpcap attaches for an empty expression)."""


def _pcap_header() -> bytes:
    """The pcap file header in the host's byte order, like the ring's record headers (readers take either)."""
    return struct.pack("=IHHiIII", PCAP_MAGIC_NANOSECONDS, 2, 4, 0, 0, SNAP_LENGTH, LINKTYPE_ETHERNET)


class PacketRing:
    """An ``AF_PACKET`` socket bound to one interface with a TPACKET_V3 receive ring, read block by block.

    Opened in libpcap's order (protocol 0, ring, drop-all filter, bind, drain, the real filter):
    frames flow from the constructor on. ``close()`` unmaps the ring and closes the socket.
    """

    def __init__(
        self, interface: str, *, bpf: SocketFilter | None = None, buffer_bytes: int = DEFAULT_BUFFER_BYTES
    ) -> None:
        self.interface = interface
        self.block_count = max(2, buffer_bytes // BLOCK_BYTES)
        self.loopback = interface == "lo"
        program = bpf or ACCEPT_ALL
        self._filter = program.incoming_only() if self.loopback else program
        self._next_block = 0
        self._closed = False
        try:
            # Protocol 0: the socket receives nothing until bind() names the protocol and the interface.
            self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise PrivilegeError("capturing packets needs root (CAP_NET_RAW): run it as root") from None
        try:
            self._ring = self._map()
        except OSError as error:
            self._socket.close()
            raise LiveCaptureError(f"cannot capture on {interface}: {error.strerror or error}") from None
        except BaseException:
            self._socket.close()
            raise
        try:
            self._start()
        except OSError as error:
            self.close()
            raise LiveCaptureError(f"cannot capture on {interface}: {error.strerror or error}") from None
        except BaseException:
            self.close()
            raise
        self._poll = select.poll()
        self._poll.register(self._socket.fileno(), select.POLLIN | select.POLLERR)

    def _map(self) -> mmap.mmap:
        """TPACKET_V3, the ring's geometry, and the ring mapped into this process."""
        sock = self._socket
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        frames_per_block = BLOCK_BYTES // FRAME_BYTES
        request = _RING_REQUEST.pack(
            BLOCK_BYTES, self.block_count, FRAME_BYTES, frames_per_block * self.block_count, BLOCK_TIMEOUT_MS, 0, 0
        )
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
        return mmap.mmap(
            sock.fileno(), BLOCK_BYTES * self.block_count, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )

    def _start(self) -> None:
        """libpcap's order: drop all, bind (frames flow, all dropped), drain, the real filter."""
        DROP_ALL.attach(self._socket)
        self._socket.bind((self.interface, ETH_P_ALL))
        self.drain()
        self._filter.attach(self._socket)

    def drain(self) -> int:
        """Give every block the reader holds back to the kernel, unread; returns how many frames they held."""
        drained = 0
        while (block := self.ready_block()) is not None:
            drained += self.frames_in(block)
            self.release(block)
        return drained

    def ready_block(self) -> int | None:
        """The offset of the next block if the kernel has handed it over, else None (no wait)."""
        base = self._next_block * BLOCK_BYTES
        status = _BLOCK_HEADER.unpack_from(self._ring, base + _BLOCK_HEADER_OFFSET)[0]
        return base if status & TP_STATUS_USER else None

    def wait_block(self, timeout: float) -> int | None:
        """The next block, waiting up to ``timeout`` seconds in ``poll()`` for one."""
        block = self.ready_block()
        if block is None:
            self._poll.poll(max(1, int(timeout * 1000)))
            block = self.ready_block()
        return block

    def frames_in(self, block: int) -> int:
        return int(_BLOCK_HEADER.unpack_from(self._ring, block + _BLOCK_HEADER_OFFSET)[1])

    def release(self, block: int) -> None:
        """Hand ``block`` back to the kernel (block_status = TP_STATUS_KERNEL) and move to the next."""
        struct.pack_into("=I", self._ring, block + _BLOCK_HEADER_OFFSET, TP_STATUS_KERNEL)
        self._next_block = (self._next_block + 1) % self.block_count

    def pcap_records(self, block: int) -> list[bytes]:
        """The block's frames as pcap records (header, data, header, data...), outgoing copies left out."""
        ring = self._ring
        _, count, offset = _BLOCK_HEADER.unpack_from(ring, block + _BLOCK_HEADER_OFFSET)
        offset += block
        unpack = _PACKET_HEADER.unpack_from
        pieces: list[bytes] = []
        append = pieces.append
        for _ in range(count):
            next_offset, snap_length, mac = unpack(ring, offset)
            if ring[offset + SLL_PKTTYPE_OFFSET] != PACKET_OUTGOING or not self.loopback:
                append(
                    ring[
                        offset + _PCAP_RECORD_HEADER_OFFSET : offset
                        + _PCAP_RECORD_HEADER_OFFSET
                        + _PCAP_RECORD_HEADER_BYTES
                    ]
                )
                append(ring[offset + mac : offset + mac + snap_length])
            offset += next_offset
        return pieces

    def frames(self, block: int) -> list[tuple[int, bytes]]:
        """The block's frames as (timestamp in ns, bytes), outgoing copies left out."""
        ring = self._ring
        _, count, offset = _BLOCK_HEADER.unpack_from(ring, block + _BLOCK_HEADER_OFFSET)
        offset += block
        frames: list[tuple[int, bytes]] = []
        for _ in range(count):
            next_offset, snap_length, mac = _PACKET_HEADER.unpack_from(ring, offset)
            if ring[offset + SLL_PKTTYPE_OFFSET] != PACKET_OUTGOING or not self.loopback:
                seconds, nanoseconds = _TIMESTAMP.unpack_from(ring, offset + _PCAP_RECORD_HEADER_OFFSET)
                frames.append((seconds * 1_000_000_000 + nanoseconds, ring[offset + mac : offset + mac + snap_length]))
            offset += next_offset
        return frames

    def frames_waiting(self) -> int:
        """Frames in the blocks handed over but not read yet (what a stop leaves unwritten)."""
        waiting = 0
        for index in range(self.block_count):
            block = index * BLOCK_BYTES
            if (
                self._ring is not None
                and _BLOCK_HEADER.unpack_from(self._ring, block + _BLOCK_HEADER_OFFSET)[0] & TP_STATUS_USER
            ):
                waiting += self.frames_in(block)
        return waiting

    def statistics(self) -> tuple[int, int]:
        """(packets the filter accepted, packets dropped for want of room): read once, the kernel resets them."""
        packets, drops, _ = _STATISTICS.unpack(self._socket.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATISTICS.size))
        return packets, drops

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ring.close()
            self._socket.close()


def _read_until(ring: PacketRing, consume: Callable[[int], None], stop: Callable[[], bool]) -> int:
    """Hand each block to ``consume`` until ``stop()``; then what the ring already holds, for a short while.

    A block holds at most a few thousand frames (BLOCK_BYTES), a few milliseconds of work, so
    looking at ``stop()`` between blocks and after each ``poll()`` (POLL_SECONDS at most) answers
    it within a few tens of milliseconds at any packet rate. After it, the blocks that come within
    FINISH_SECONDS are still written (the last frames sit in a block that retires within
    BLOCK_TIMEOUT_MS); returns how many frames were left unread in the ring.
    """
    while not stop():
        block = ring.wait_block(POLL_SECONDS)
        if block is not None:
            consume(block)
            ring.release(block)
    finish_by = time.monotonic() + FINISH_SECONDS
    quiet_for = 2 * BLOCK_TIMEOUT_MS / 1000
    while (left := finish_by - time.monotonic()) > 0:
        block = ring.wait_block(min(left, quiet_for))
        if block is None:
            break
        consume(block)
        ring.release(block)
    return ring.frames_waiting()


@dataclass(slots=True)
class CaptureResult:
    """What a live capture saw, and what the kernel says it dropped."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)
    """(timestamp in ns, frame bytes), in arrival order."""
    kernel_packets: int = 0
    """Packets the socket's filter accepted (one copy per packet on lo), per PACKET_STATISTICS."""
    kernel_drops: int = 0
    """Packets the filter accepted that found no room in the ring."""
    frames_unread: int = 0
    """Frames still in the ring when the capture stopped (not in ``frames``)."""

    def write(self, path: str | os.PathLike[str]) -> int:
        """Write the frames as a pcap file, atomically, with the permissions of any new file (umask)."""

        def write_frames(handle: BinaryIO) -> None:
            writer = PcapWriter(handle)
            for timestamp, data in self.frames:
                writer.write(data, timestamp)

        atomic_write(Path(path), write_frames)
        return len(self.frames)


@dataclass(slots=True)
class StreamedCapture:
    """What :func:`capture_to_file` wrote, and what the kernel says it dropped."""

    path: Path
    frames: int = 0
    """Frames written to the file."""
    kernel_packets: int = 0
    kernel_drops: int = 0
    frames_unread: int = 0
    """Frames still in the ring when the capture stopped (a stop under a heavy load leaves some)."""


def require_root(command: str) -> None:
    """Stop at once, with one line, when live capture is not possible."""
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"{command} sniffs packets and needs root (CAP_NET_RAW, CAP_NET_ADMIN): run it as root, or "
            f"'sudo {command_line(command)}'; without root, 'flows', 'events' and 'draw' work on capture files"
        )


class Sniffer:
    """Capture the frames of one interface in a background thread, in memory.

    >>> sniffer = Sniffer("lo", bpf="tcp port 8080")   # doctest: +SKIP
    >>> sniffer.start()                   # returns once the socket is listening
    >>> ...                               # make traffic; sniffer.frames grows meanwhile
    >>> result = sniffer.stop()

    A bad ``bpf`` expression raises CaptureFilterError here, before any socket exists.
    """

    def __init__(
        self, interface: str = "lo", *, bpf: str | None = None, buffer_bytes: int = DEFAULT_BUFFER_BYTES
    ) -> None:
        self.interface = interface
        self.bpf = bpf
        self.buffer_bytes = buffer_bytes
        self._filter = compile_filter(bpf) if bpf else None
        self._ring: PacketRing | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._result = CaptureResult()
        self._error: BaseException | None = None

    def start(self) -> None:
        self._ring = PacketRing(self.interface, bpf=self._filter, buffer_bytes=self.buffer_bytes)
        self._thread = threading.Thread(target=self._receive, args=(self._ring,), name="sockstory-sniffer", daemon=True)
        self._thread.start()

    def _receive(self, ring: PacketRing) -> None:
        extend = self._result.frames.extend
        try:
            self._result.frames_unread = _read_until(
                ring, lambda block: extend(ring.frames(block)), self._stopping.is_set
            )
        except BaseException as error:  # reported by stop()
            self._error = error

    @property
    def frames(self) -> list[tuple[int, bytes]]:
        """The frames captured so far (grows while the capture runs)."""
        return self._result.frames

    def stop(self, *, linger: float = 0.2) -> CaptureResult:
        """Wait ``linger`` seconds for the last frames, stop, and return what was captured."""
        time.sleep(linger)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        ring = self._ring
        if ring is not None:
            self._result.kernel_packets, self._result.kernel_drops = ring.statistics()
            ring.close()
            self._ring = None
        if self._error is not None:
            raise LiveCaptureError(f"capture on {self.interface} failed: {self._error}")
        return self._result


def capture_to_file(
    path: Path,
    *,
    interface: str = "lo",
    bpf: str | None = None,
    duration: float = 10.0,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    stop: threading.Event | None = None,
    started: Callable[[], None] | None = None,
) -> StreamedCapture:
    """``sockstory capture``: sniff an interface into a pcap file for ``duration`` seconds or until ``stop`` is set.

    The filter is compiled and the interface opened before the file is created: a bad
    filter or interface leaves no file behind. From then on the file grows a block of
    records at a time and is a valid capture up to its last block at every moment.
    ``started`` is called once frames flow into the file. Runs in the caller's thread;
    the caller decides what stops it (the CLI sets ``stop`` on SIGINT and SIGTERM).
    """
    ring = PacketRing(interface, bpf=compile_filter(bpf) if bpf else None, buffer_bytes=buffer_bytes)
    result = StreamedCapture(path)
    try:
        with open(path, "wb", buffering=0) as handle:
            _write_all(handle, _pcap_header())
            deadline = time.monotonic() + duration
            stopping = stop or threading.Event()

            def write_block(block: int) -> None:
                pieces = ring.pcap_records(block)
                _write_all(handle, b"".join(pieces))
                result.frames += len(pieces) // 2

            if started is not None:
                started()
            result.frames_unread = _read_until(
                ring, write_block, lambda: stopping.is_set() or time.monotonic() >= deadline
            )
    finally:
        result.kernel_packets, result.kernel_drops = ring.statistics()
        ring.close()
    return result


def _write_all(handle: io.FileIO, data: bytes) -> None:
    """Write every byte (an unbuffered write may take only part of them)."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        view = view[written or 0 :]
