"""Live capture on a Linux interface: raw bytes first, decoding later.

A raw ``AF_PACKET`` socket stores every frame's bytes and kernel timestamp
(measured here: Scapy's dissecting sniffer kept 4-9% of frames at 75k frames/s,
this kept 100% at 150k). On ``lo`` each packet passes a packet socket twice, as
it leaves and as it arrives; only the arriving copy is kept, so every packet
appears once. The kernel's drop counters (``PACKET_STATISTICS``) come with every
capture.

A BPF filter expression is compiled first (libpcap, through Scapy), before any
socket or file exists, so a bad expression costs nothing. The socket then opens
the way libpcap's ``pcap-linux.c`` does, so that no frame the filter rejects is
ever captured: created with protocol 0 it receives nothing; a drop-all filter
(one instruction, ``ret #0``: libpcap's "total filter") goes on before ``bind``
starts the frames flowing; whatever was queued is drained; only then is the real
filter attached. (A filter attached to a socket that already receives applies
only to frames that arrive after it: those queued before slip through.)

Needs CAP_NET_RAW (root).
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from visualizer.errors import CaptureFilterError, LiveCaptureError, PrivilegeError
from visualizer.sources.pcap_writer import LINKTYPE_ETHERNET, PcapWriter

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
BPF_RET_K = 0x06
"""BPF_RET | BPF_K: return the constant; 0 bytes kept means the frame is dropped."""
RECEIVE_BUFFER_BYTES = 32 * 1024 * 1024
FRAME_BUFFER_BYTES = 262_144
"""Larger than the 65,549-byte GSO frames seen on lo (Scapy's 65,535-byte buffer cuts them)."""
_TIMESPEC = struct.Struct("@qq")


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

    def attach(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(self._program))


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


@dataclass(slots=True)
class CaptureResult:
    """What a live capture saw, and what the kernel says it dropped."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)
    """(timestamp in ns, frame bytes), in arrival order."""
    kernel_packets: int = 0
    """Packets the socket's filter accepted (both copies on lo), per PACKET_STATISTICS."""
    kernel_drops: int = 0
    outgoing_copies_skipped: int = 0

    def write(self, path: str | os.PathLike[str]) -> int:
        """Write the frames as a pcap file, atomically (a temporary file in the same folder, then rename)."""
        target = Path(path)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(descriptor)
        try:
            with PcapWriter(temporary) as writer:
                for timestamp, data in self.frames:
                    writer.write(data, timestamp)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise
        return len(self.frames)


def require_root(command: str) -> None:
    """Stop at once, with one line, when live capture is not possible."""
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"{command} sniffs packets and needs root (CAP_NET_RAW, CAP_NET_ADMIN): run 'sudo sockstory "
            f"{command}'; without root, 'sockstory flows', 'events' and 'draw' work on capture files"
        )


class Sniffer:
    """Capture the frames of one interface in a background thread.

    >>> sniffer = Sniffer("lo", bpf="tcp port 8080")   # doctest: +SKIP
    >>> sniffer.start()                   # returns once the socket is listening
    >>> ...                               # make traffic
    >>> result = sniffer.stop()

    A bad ``bpf`` expression raises CaptureFilterError here, before any socket exists.
    """

    def __init__(self, interface: str = "lo", *, bpf: str | None = None) -> None:
        self.interface = interface
        self.bpf = bpf
        self._filter = compile_filter(bpf) if bpf else None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._result = CaptureResult()
        self._error: BaseException | None = None

    def start(self) -> None:
        try:
            # Protocol 0: the socket receives nothing until bind() names the protocol and the interface.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise PrivilegeError("capturing packets needs root (CAP_NET_RAW): run it with sudo") from None
        try:
            self._open(sock)
        except OSError as error:
            sock.close()
            raise LiveCaptureError(f"cannot capture on {self.interface}: {error.strerror or error}") from None
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        self._thread = threading.Thread(target=self._receive, args=(sock,), name="sockstory-sniffer", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _open(self, sock: socket.socket) -> None:
        """Buffers and timestamps; then, with a filter, libpcap's order: drop all, bind, drain, filter."""
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self._filter is None:
            sock.bind((self.interface, ETH_P_ALL))
            return
        DROP_ALL.attach(sock)
        sock.bind((self.interface, ETH_P_ALL))  # frames flow from here on, all dropped
        _drain(sock)
        self._filter.attach(sock)

    def _receive(self, sock: socket.socket) -> None:
        sock.settimeout(0.05)
        frames = self._result.frames
        append = frames.append
        receive = sock.recvmsg
        ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        skipped = 0
        self._ready.set()
        try:
            while True:
                try:
                    data, messages, _, address = receive(FRAME_BUFFER_BYTES, ancillary)
                except TimeoutError:
                    if self._stopping.is_set():
                        break
                    continue
                if address[2] == PACKET_OUTGOING and address[0] == "lo":
                    skipped += 1
                    continue
                timestamp = 0
                for level, kind, payload in messages:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        seconds, nanoseconds = _TIMESPEC.unpack(payload[: _TIMESPEC.size])
                        timestamp = seconds * 1_000_000_000 + nanoseconds
                append((timestamp or time.time_ns(), data))
        except BaseException as error:  # reported by stop()
            self._error = error
        finally:
            self._result.outgoing_copies_skipped = skipped

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
        sock = self._socket
        if sock is not None:
            packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self._result.kernel_packets = packets
            self._result.kernel_drops = drops
            sock.close()
        if self._error is not None:
            raise LiveCaptureError(f"capture on {self.interface} failed: {self._error}")
        return self._result


def _drain(sock: socket.socket) -> int:
    """Read and discard every frame queued on ``sock`` (non-blocking); returns how many."""
    drained = 0
    sock.setblocking(False)
    try:
        while True:
            try:
                sock.recv(1, socket.MSG_TRUNC)
            except BlockingIOError:
                return drained
            drained += 1
    finally:
        sock.setblocking(True)


def capture_to_file(
    path: Path, *, interface: str = "lo", bpf: str | None = None, duration: float = 10.0
) -> CaptureResult:
    """``sockstory capture``: sniff an interface for ``duration`` seconds (or until Ctrl-C) into a pcap file.

    The filter is compiled and the interface opened before the file is created: a bad
    filter or interface leaves no file behind. The file appears complete or not at all.
    """
    sniffer = Sniffer(interface, bpf=bpf)
    sniffer.start()
    try:
        time.sleep(duration)
    except KeyboardInterrupt:
        pass
    result = sniffer.stop(linger=0.0)
    result.write(path)
    return result
