"""A propagation delay on the namespace's ``lo`` without netem: an eBPF filter and a delay line.

This kernel has no delaying qdisc (no netem, and no ``fq`` or ``etf`` to honour an eBPF-set
departure time, ``skb->tstamp``), so the frames to delay leave the kernel and come back:

1. An eBPF program (``BPF_PROG_TYPE_SCHED_CLS``, direct action), hand-assembled below and
   loaded with ``bpf(2)``, sits on ``lo``'s clsact egress hook. It redirects every IPv4 TCP frame
   from the chosen port (the server's segments: its SYN-ACK, its ACKs, its FIN) to a TAP device,
   ``bpf_redirect``; every other frame, and every frame carrying :data:`MARK`, passes.
2. :class:`DelayLine` reads the frames from the TAP device, holds each for the delay and sends it
   on ``lo`` again through a packet socket whose ``SO_MARK`` is :data:`MARK`: it then passes the
   filter, the rest of ``lo``'s path (qdiscs, the capture) and reaches the client.

The hook is before the capture point (the capture sees a frame when it leaves ``lo``), so the
capture sees the client's data at once and the server's answers a delay later: the capture, like
one on the sending host, sees the whole round-trip time, which is the delay (plus the path's own
microseconds). Frames are held in order (one delay for all: first in, first out).

The filter is attached by ``tc`` from a pinned object, pinned in a bpffs mounted in a private
mount namespace (``unshare --mount``) that vanishes with the helper; the filter, the TAP device
and the program vanish with the network namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import deque

from visualizer.errors import SockstoryError
from visualizer.scenarios.namespace import run_command

DEVICE = "delay0"
"""The TAP device the delayed frames go through (inside the namespace only)."""
MARK = 0x50C5
"""``skb->mark`` of the frames the delay line sends back: the filter lets them pass."""
LONGEST_DELAY_MS = 1000

# bpf(2) and the instructions, from linux/bpf.h.
_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_OBJ_PIN = 6
_BPF_PROG_TYPE_SCHED_CLS = 3
_HELPER_REDIRECT = 23  # long bpf_redirect(u32 ifindex, u64 flags)
_HELPER_SKB_LOAD_BYTES = 26  # long bpf_skb_load_bytes(skb, u32 offset, void *to, u32 len)
_SK_BUFF_MARK = 8  # offsetof(struct __sk_buff, mark)
_ETHERNET_HEADER = 14  # lo's frames carry an Ethernet header
# /dev/net/tun, from linux/if_tun.h.
_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_ETH_P_IP = 0x0800


def _instruction(code: int, dst: int = 0, src: int = 0, offset: int = 0, immediate: int = 0) -> bytes:
    """One ``struct bpf_insn``: opcode, registers (destination in the low nibble), offset, immediate."""
    return struct.pack("<BBhi", code, (src << 4) | dst, offset, immediate)


def program(port: int, ifindex: int) -> bytes:
    """The filter: redirect IPv4 TCP frames from ``port`` without :data:`MARK` to ``ifindex``; pass the rest."""
    sport = int.from_bytes(port.to_bytes(2, "big"), "little")  # the port as a u16 load reads it
    i = _instruction
    return b"".join(
        (
            i(0xBF, 6, 1),  # r6 = r1 (the __sk_buff)
            i(0x61, 0, 6, _SK_BUFF_MARK),  # r0 = skb->mark
            i(0x15, 0, 0, 17, MARK),  # if r0 == MARK goto pass
            i(0xBF, 1, 6),  # r1 = skb
            i(0xB7, 2, 0, 0, _ETHERNET_HEADER),  # r2 = offset of the IP header
            i(0xBF, 3, 10),  # r3 = r10 (the stack)
            i(0x07, 3, 0, 0, -24),  # r3 -= 24
            i(0xB7, 4, 0, 0, 24),  # r4 = 24 bytes: an IP header without options, the TCP ports
            i(0x85, immediate=_HELPER_SKB_LOAD_BYTES),
            i(0x55, 0, 0, 10, 0),  # if r0 != 0 goto pass (a frame too short)
            i(0x71, 0, 10, -24),  # r0 = version and header length
            i(0x55, 0, 0, 8, 0x45),  # if not IPv4 without options goto pass
            i(0x71, 0, 10, -24 + 9),  # r0 = protocol
            i(0x55, 0, 0, 6, socket.IPPROTO_TCP),  # if not TCP goto pass
            i(0x69, 0, 10, -24 + 20),  # r0 = source port
            i(0x55, 0, 0, 4, sport),  # if not the port goto pass
            i(0xB7, 1, 0, 0, ifindex),  # r1 = the TAP device
            i(0xB7, 2, 0, 0, 0),  # r2 = 0: to its egress
            i(0x85, immediate=_HELPER_REDIRECT),  # r0 = TC_ACT_REDIRECT
            i(0x95),  # exit
            i(0xB7, 0, 0, 0, 0),  # pass: r0 = TC_ACT_OK
            i(0x95),  # exit
        )
    )


def _bpf(command: int, attributes: bytes) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise SockstoryError(f"delay: bpf(2) on {os.uname().machine} is not supported")
    buffer = ctypes.create_string_buffer(attributes, 128)
    result = int(libc.syscall(number, command, buffer, len(buffer)))
    if result < 0:
        raise SockstoryError(f"delay: bpf command {command}: {os.strerror(ctypes.get_errno())}")
    return result


def load_and_pin(instructions: bytes, path: str) -> None:
    """Load the program (BPF_PROG_LOAD, license GPL: bpf_redirect needs it) and pin it at ``path``."""
    code = ctypes.create_string_buffer(instructions, len(instructions))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    load = struct.pack(
        "<IIQQIIQ",
        _BPF_PROG_TYPE_SCHED_CLS,
        len(instructions) // 8,
        ctypes.addressof(code),
        ctypes.addressof(license_),
        1,  # log level: the verifier says why it refuses
        len(log),
        ctypes.addressof(log),
    )
    try:
        descriptor = _bpf(_BPF_PROG_LOAD, load)
    except SockstoryError as error:
        raise SockstoryError(f"{error}: {log.value.decode(errors='replace').strip()[-300:]}") from None
    name = ctypes.create_string_buffer(path.encode())
    _bpf(_BPF_OBJ_PIN, struct.pack("<QI", ctypes.addressof(name), descriptor))


def attach(port: int) -> None:
    """Run in a private mount namespace: mount a bpffs, load and pin the filter, attach it with tc."""
    with tempfile.TemporaryDirectory(prefix="sockstory-bpf-") as folder:
        run_command("mount", "-t", "bpf", "bpf", folder)
        try:
            pinned = os.path.join(folder, "delay")
            load_and_pin(program(port, socket.if_nametoindex(DEVICE)), pinned)
            run_command("tc", "filter", "add", "dev", "lo", "egress", "bpf", "direct-action", "object-pinned", pinned)
        finally:
            run_command("umount", folder)  # the pin goes; the filter keeps the program


class DelayLine:
    """Hold the frames the filter sends to the TAP device for ``milliseconds``, then send them on ``lo``."""

    def __init__(self, milliseconds: float, port: int) -> None:
        if not 0 < milliseconds <= LONGEST_DELAY_MS:
            raise SockstoryError(f"delay {milliseconds} ms: more than 0 and at most {LONGEST_DELAY_MS} ms")
        self.delay_ns = round(milliseconds * 1e6)
        self.port = port
        self.held: deque[tuple[int, bytes]] = deque()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._relay, name="delay line", daemon=True)

    def __enter__(self) -> DelayLine:
        self.tap = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(self.tap, _TUNSETIFF, struct.pack("16sH", DEVICE.encode(), _IFF_TAP | _IFF_NO_PI))
        run_command("sysctl", "-q", "-w", f"net.ipv6.conf.{DEVICE}.disable_ipv6=1")
        # Checksums complete on the way out (lo leaves them to a "device"; no device fills them here).
        run_command("ethtool", "-K", DEVICE, "tx", "off")
        run_command("ip", "link", "set", DEVICE, "up", "txqueuelen", "100000")
        # A frame sent back carries no route of the way out: routed as it comes in, its 127.0.0.1
        # addresses are martian, and its source one of the host's, unless the namespace's lo allows both.
        run_command("sysctl", "-q", "-w", "net.ipv4.conf.lo.route_localnet=1", "net.ipv4.conf.lo.accept_local=1")
        run_command("tc", "qdisc", "add", "dev", "lo", "clsact")
        run_command("unshare", "--mount", "--propagation", "private", sys.executable, "-m", __name__, str(self.port))
        self.out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: it receives nothing
        self.out.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
        self.out.bind(("lo", 0))
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()
        run_command("tc", "filter", "del", "dev", "lo", "egress")  # the server's segments pass undelayed again
        self.out.close()
        os.close(self.tap)

    def _relay(self) -> None:
        while not self.stopping.is_set() or self.held:
            now = time.monotonic_ns()
            while self.held and self.held[0][0] <= now:
                self.out.sendto(self.held.popleft()[1], ("lo", _ETH_P_IP))
            wait = (self.held[0][0] - now) / 1e9 if self.held else 0.05
            readable, _, _ = select.select([self.tap], [], [], wait)
            if readable:
                self._read(time.monotonic_ns() + self.delay_ns)

    def _read(self, due: int) -> None:
        """Every frame waiting on the TAP device, all due at ``due``."""
        with contextlib.suppress(BlockingIOError):
            while True:
                frame = os.read(self.tap, 65536)
                if frame[12:14] == b"\x08\x00":  # IPv4: what the filter sends here
                    self.held.append((due, frame))


def delayed(milliseconds: float | None, port: int) -> contextlib.AbstractContextManager[object]:
    """A :class:`DelayLine` for ``port``'s frames, or nothing when ``milliseconds`` is None."""
    return contextlib.nullcontext() if milliseconds is None else DelayLine(milliseconds, port)


if __name__ == "__main__":  # pragma: no cover - the helper DelayLine runs under unshare --mount
    attach(int(sys.argv[1]))
