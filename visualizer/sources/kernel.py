"""Kernel events beside the packets: the socket calls, states, queues and drops, from tracefs.

:class:`KernelRecorder` records, while a scenario or a command runs, the tracepoints that tell
a socket's side of the story (``sock:inet_sock_set_state``, ``sock:sock_send_length`` and
``sock_recv_length``, ``tcp:tcp_probe``, ``tcp:tcp_retransmit_skb``, resets, ``tcp_bad_csum``,
``skb:kfree_skb`` with its drop reason, the socket system calls...) and writes them to a sidecar
file beside the capture, ``NAME.kernel.jsonl`` (:func:`sidecar_path`; the format is in the
README). :func:`load_sidecar` reads it back as :class:`visualizer.model.KernelEvent` records.

How it records:

* **A process of its own.** The recorder is a new Python process (:func:`recorder_main`): it
  moves into a private mount namespace (``unshare(CLONE_NEWNS)``, every mount made private
  first), mounts tracefs there when ``/sys/kernel/tracing`` is not mounted, so the host's mounts
  never change, and it keeps the reading off the traced program's interpreter lock.
* **Instances of its own, never the global buffer.** Two instances under ``instances/``, named
  ``sockstory-PID-calls`` and ``sockstory-PID-socket``. *calls* holds the process-context events
  (system calls, ``sock_send_length``/``sock_recv_length``, ``task_newtask``), filtered in the
  kernel to tasks whose pid is at least the traced process's (``common_pid >= PID``), then to
  the traced processes and the tasks they start (:func:`of_processes`, from ``task_newtask``).
  ``set_event_pid`` with ``event-fork`` would do it in the kernel, but hooks every context switch
  of the machine, which a bulk transfer on loopback feels. *socket* holds the socket-level
  events, which the kernel mostly emits in softirq or timer context, on behalf of whichever task
  the CPU happened to run (a retransmission timer, ksoftirqd): a pid filter would lose them, so
  that instance is not limited by process; the join keeps only
  the events whose addresses and ports belong to the capture's conversations. Both instances are
  removed on a normal stop, on an exception, on SIGTERM, when the parent dies (the recorder's
  ``PR_SET_PDEATHSIG`` is SIGTERM) and when its stdin closes; SIGINT is left to the parent,
  which then stops the recorder the normal way. Instances left by a recorder that was killed
  with SIGKILL (its pid no longer runs) are removed by the next recorder.
* **Raw pages, parsed afterwards.** It reads each CPU's ``trace_pipe_raw`` (binary ring-buffer
  pages, copied out by the kernel without formatting) into memory while the program runs, and
  decodes them only after the stop, with the fields' offsets from each event's ``format`` file.
  ``trace_pipe`` would have the kernel format every event as text in the reader's time and
  Python parse it back: at a bulk transfer's 100k+ events per second that costs more than a CPU,
  and the ring overruns. Reading pages costs a ``read`` per page (64 kB where the kernel lets the
  page size be set, :data:`SUBBUFFER_KB`), and while the program runs a CPU's ring is read only
  once it is a quarter full (:data:`READ_FILL`, looked at every :data:`READ_INTERVAL`), and
  only its full pages: a short program's events are all read after it ended, a long one's in a
  few large batches. What is left of the cost while the program runs is the kernel's, per
  event (a bulk transfer on loopback makes about one a packet: ``tcp_probe``). Packets' arrivals
  (``net/netif_receive_skb``, one per packet) are not recorded: they cost a bulk transfer about a
  tenth of its throughput, and a drop is tied to its frame without them (see
  :func:`visualizer.analysis.kernel.join_kernel`).
* **Lost events** are the sum of every CPU's ``overrun``, ``commit overrun`` and ``dropped
  events`` counters (``per_cpu/cpuN/stats``) of both instances, and pages that say events were
  missed before them; written in the sidecar's header.
* **On the packets' clock.** Packet timestamps are CLOCK_REALTIME (TPACKET_V3). The instances
  use ``trace_clock`` ``mono`` (CLOCK_MONOTONIC, the same clock as ``clock_gettime``), and
  ``realtime - mono`` is measured at the start and at the stop, each the narrowest of many
  realtime/mono/realtime readings. Events are stored in realtime nanoseconds; the header gives the
  offset and the bound of the alignment error: half the narrowest reading's width plus the change
  of the offset between start and stop (a step of the wall clock while recording).

Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from visualizer.errors import CaptureFileError, TracingError
from visualizer.model import KernelEvent

TRACEFS = Path("/sys/kernel/tracing")
INSTANCE_PREFIX = "sockstory-"
SIDECAR_SUFFIX = ".kernel.jsonl"
FORMAT_NAME = "sockstory-kernel-events"
FORMAT_VERSION = 1

SOCKET_EVENTS = (
    "sock/inet_sock_set_state",
    "sock/sock_rcvqueue_full",
    "tcp/tcp_probe",
    "tcp/tcp_retransmit_skb",
    "tcp/tcp_retransmit_synack",
    "tcp/tcp_bad_csum",
    "tcp/tcp_send_reset",
    "tcp/tcp_receive_reset",
    "skb/kfree_skb",
)
"""Socket-level events, on the *socket* instance (any task: softirqs and timers emit most of them)."""
SOCKET_CALLS = (
    "socket",
    "bind",
    "listen",
    "connect",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "recvfrom",
    "recvmsg",
    "shutdown",
    "close",
)
"""The system calls recorded (``sys_enter_*``/``sys_exit_*``) for the traced processes. Not ``read``
and ``write``: every process of the machine makes them all the time, and each one would pay for
the event and its filter; a read or write on a socket still shows as a recv or send, by the
``sock_recv_length``/``sock_send_length`` event it makes (at that moment, without its entry and
return)."""
PROCESS_EVENTS = (
    "sock/sock_send_length",
    "sock/sock_recv_length",
    "task/task_newtask",
    *(f"syscalls/sys_{side}_{call}" for call in SOCKET_CALLS for side in ("enter", "exit")),
)
"""Process-context events, on the *calls* instance, limited to the traced processes (set_event_pid)."""
FILTERS = {
    "sock/inet_sock_set_state": "protocol == 6",
    "skb/kfree_skb": "protocol == 2048 || protocol == 34525",
}
"""Kernel-side filters: TCP state changes only; drops of IPv4 and IPv6 packets (the tracepoint
stores skb->protocol in host order: ETH_P_IP 0x0800, ETH_P_IPV6 0x86dd)."""
BUFFER_KB = {"calls": 4096, "socket": 16384}
"""Ring size per CPU of each instance: the socket instance holds about half a second of a bulk
transfer's events on loopback (1M events/s at ~50 bytes, spread over the CPUs): far more than
the reader's interval."""
SUBBUFFER_KB = 64
"""The ring buffer's page size (``buffer_subbuf_size_kb``, Linux 6.8 and later; older kernels keep
4 kB pages): one ``read`` of ``trace_pipe_raw`` takes one page, so larger pages mean fewer reads."""
READ_INTERVAL = 0.05
"""The reader looks at how full every CPU's ring is, reads the full pages of those that need it,
then sleeps this long (or until told to stop)."""
READ_FILL = 0.25
"""While the program runs, a CPU's ring is read once its unread events fill this share of it: the
reading (copying pages out, keeping them) then happens in a few large batches, most often after
the program ended, instead of competing for the CPUs all the time. At a bulk transfer's rate a
quarter of the socket ring is about 0.2 s of events, four times the interval between looks."""
PAGE_HEADER_BYTES = 16
PARTIAL_PAGE_SLACK = 256
"""A page with this much room left is not full (no event of ours is larger)."""
READY_TIMEOUT = 10.0

TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}
"""``include/net/tcp_states.h``: the kernel's state numbers, by the kernel's names without ``TCP_``."""

# <linux/sched.h>, <sys/mount.h>, <linux/prctl.h>
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
# kernel/trace/ring_buffer.c
RB_MISSED_EVENTS = 1 << 31
RB_MISSED_STORED = 1 << 30
TYPE_PADDING, TYPE_TIME_EXTEND, TYPE_TIME_STAMP = 29, 30, 31
TS_SHIFT = 27


def sidecar_path(capture: str | os.PathLike[str]) -> Path:
    """Where the kernel events of ``capture`` are kept: ``NAME.kernel.jsonl`` beside ``NAME.pcap``."""
    path = Path(capture)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


# -- reading the ring buffer's raw pages --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldFormat:
    name: str
    type: str
    offset: int
    size: int
    signed: bool


@dataclass(slots=True)
class EventFormat:
    """One tracepoint's binary layout, from its ``format`` file."""

    system: str
    name: str
    id: int
    fields: list[FieldFormat]
    symbols: dict[str, dict[int, str]] = field(default_factory=dict)
    """``__print_symbolic`` tables of the print format, by field (drop reasons...)."""


_FIELD = re.compile(r"field:(?P<decl>[^;]+);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);")
_SYMBOLIC = re.compile(r"__print_symbolic\(REC->(\w+),((?:\s*\{\s*-?\d+,\s*\"[^\"]*\"\s*\},?)+)\)")
_SYMBOL = re.compile(r"\{\s*(-?\d+),\s*\"([^\"]*)\"\s*\}")


def parse_format(system: str, text: str) -> EventFormat:
    """An event's layout from the text of its ``format`` file (common fields included)."""
    name = re.search(r"^name:\s*(\S+)", text, re.MULTILINE)
    number = re.search(r"^ID:\s*(\d+)", text, re.MULTILINE)
    if name is None or number is None:
        raise TracingError(f"{system}: not a tracepoint format")
    fields = []
    for match in _FIELD.finditer(text):
        declaration = match.group("decl").strip()
        field_name = re.sub(r"\[.*\]$", "", declaration.split()[-1]).lstrip("*")
        fields.append(
            FieldFormat(field_name, declaration, int(match.group(2)), int(match.group(3)), match.group(4) == "1")
        )
    symbols = {
        match.group(1): {int(key): value for key, value in _SYMBOL.findall(match.group(2))}
        for match in _SYMBOLIC.finditer(text)
    }
    return EventFormat(system, name.group(1), int(number.group(1)), fields, symbols)


class PageDecoder:
    """Turns raw ring-buffer pages into :class:`KernelEvent` records, with the formats of the events.

    Kernel pointers (socket and buffer addresses) become small numbers, the same for the same
    pointer in one recording: the join needs identities, not addresses, and the sidecar
    should not keep kernel addresses.
    """

    def __init__(self, formats: Iterable[EventFormat], *, offset_ns: int = 0) -> None:
        self.formats = {event.id: event for event in formats}
        self.offset_ns = offset_ns
        self.identities: dict[int, int] = {}
        self.missed_pages = 0
        self.undecodable = 0

    def identity(self, pointer: int) -> int | None:
        if not pointer:
            return None
        return self.identities.setdefault(pointer, len(self.identities) + 1)

    def decode(self, page: bytes, cpu: int) -> Iterator[KernelEvent]:
        """The events of one page (``header_page``: u64 timestamp, local_t commit, then data)."""
        if len(page) < 16:
            return
        timestamp, commit = struct.unpack_from("<QQ", page, 0)
        if commit & (RB_MISSED_EVENTS | RB_MISSED_STORED):
            self.missed_pages += 1
        size = commit & ~(RB_MISSED_EVENTS | RB_MISSED_STORED) & 0xFFFFFFFF
        position, end = 16, min(16 + size, len(page))
        while position + 4 <= end:
            (header,) = struct.unpack_from("<I", page, position)
            type_len, delta = header & 0x1F, header >> 5
            position += 4
            if type_len == TYPE_PADDING:
                if position + 4 > end:
                    break
                (length,) = struct.unpack_from("<I", page, position)
                if delta == 0:
                    break  # the rest of the page is padding
                position += length
                continue
            if type_len in (TYPE_TIME_EXTEND, TYPE_TIME_STAMP):
                (extend,) = struct.unpack_from("<I", page, position)
                position += 4
                value = (extend << TS_SHIFT) + delta
                if type_len == TYPE_TIME_EXTEND:
                    timestamp += value
                else:
                    timestamp = (timestamp & ~((1 << 59) - 1)) | value
                continue
            timestamp += delta
            if type_len == 0:
                (length,) = struct.unpack_from("<I", page, position)
                length = ((length - 4) + 3) & ~3
                position += 4
            else:
                length = type_len * 4
            data = page[position : position + length]
            position += length
            event = self._event(data, timestamp, cpu)
            if event is not None:
                yield event

    def _event(self, data: bytes, timestamp: int, cpu: int) -> KernelEvent | None:
        if len(data) < 8:
            self.undecodable += 1
            return None
        kind, _, _, tid = struct.unpack_from("<HBBi", data, 0)
        event_format = self.formats.get(kind)
        if event_format is None:
            self.undecodable += 1
            return None
        try:
            fields = self._fields(event_format, data)
        except (struct.error, IndexError, ValueError):
            self.undecodable += 1
            return None
        return KernelEvent(timestamp + self.offset_ns, event_format.name, cpu, tid, fields)

    def _fields(self, event_format: EventFormat, data: bytes) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for item in event_format.fields:
            name = item.name
            if name.startswith("common_") or name == "__syscall_nr":
                continue
            chunk = data[item.offset : item.offset + item.size]
            if item.type.startswith("__data_loc"):  # u32: offset in the low half, length in the high half
                location = int.from_bytes(chunk, "little")
                text = data[location & 0xFFFF : (location & 0xFFFF) + (location >> 16)]
                raw[name] = text.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif "[" in item.type:
                raw[name] = chunk
            elif "*" in item.type or name in ("skaddr", "skbaddr", "sk", "rx_sk", "req", "location", "ip"):
                raw[name] = int.from_bytes(chunk, "little")
            else:
                value = int.from_bytes(chunk, "little", signed=item.signed)
                if item.size == 8 and item.type.split()[0] in ("int", "unsigned"):
                    value = int.from_bytes(chunk[:4], "little", signed=item.type.startswith("int"))
                raw[name] = value
        return _normalise(event_format, raw, self.identity)


def _normalise(event_format: EventFormat, raw: dict[str, Any], identity: Any) -> dict[str, Any]:
    """The sidecar's fields: one name per meaning (``sk``, ``saddr``/``sport``...), readable values."""
    fields: dict[str, Any] = {}
    family = raw.get("family", 2)
    for name, value in raw.items():
        if name in ("location", "ip", "buff", "msg", "uservaddr", "umyaddr", "upeer_sockaddr", "upeer_addrlen"):
            continue
        if name in ("addr", "addr_len", "usockvec", "ubuf", "size", "buf", "count", "comm"):
            if name == "comm":
                fields["comm"] = value.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif name in ("size", "count"):
                fields["len"] = value
            continue
        if name in ("skaddr", "sk"):
            fields["sk"] = identity(value)
        elif name in ("skbaddr", "rx_sk", "req"):
            fields[name.replace("addr", "")] = identity(value)
        elif name in ("saddr", "daddr", "saddr_v6", "daddr_v6") and isinstance(value, bytes):
            if len(value) == 28:  # struct sockaddr_in6 room: a sockaddr_in or a sockaddr_in6
                address, port = _sockaddr(value)
                fields[name] = address
                fields["sport" if name == "saddr" else "dport"] = port
            elif (len(value) == 16) == (family == 10):
                fields[name.removesuffix("_v6")] = _address(value)
        elif name in ("oldstate", "newstate", "state"):
            fields[name] = TCP_STATES.get(value, str(value))
        elif name in event_format.symbols and name in ("reason",):
            fields[name] = event_format.symbols[name].get(value, str(value))
        elif isinstance(value, bytes):
            continue
        else:
            fields[name] = value
    return fields


def _address(data: bytes) -> str:
    import ipaddress

    if len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    address = ipaddress.IPv6Address(data)
    return str(address.ipv4_mapped or address)


def _sockaddr(data: bytes) -> tuple[str, int]:
    """(address, port) of a ``struct sockaddr_in`` or ``sockaddr_in6`` as the TCP tracepoints store them."""
    family = int.from_bytes(data[0:2], "little")
    port = int.from_bytes(data[2:4], "big")
    if family == 2:
        return _address(data[4:8]), port
    if family == 10:
        return _address(data[8:24]), port
    return "", port


# -- the recorder ---------------------------------------------------------------------------------


@dataclass(slots=True)
class KernelRecording:
    """What a recording gave: where the events are, how many, how many were lost, how well aligned."""

    path: Path | None
    events: int = 0
    """Events written to the sidecar."""
    events_read: int = 0
    """Events the kernel recorded, before the other processes' calls and the arrivals of packets that
    were not dropped were left out."""
    lost_events: int = 0
    alignment_error_ns: int = 0
    reading_cpu_ns: int = 0
    """CPU time the recorder process used while the program ran (reading pages), not the kernel's
    cost of the events nor the decoding after the stop."""
    missing: str = ""
    """Why kernel events are missing, in one line (no root, no tracefs, events absent); empty when recorded."""
    absent_events: list[str] = field(default_factory=list)


def clock_offset(tries: int = 200) -> tuple[int, int]:
    """(realtime - monotonic, half the width of the narrowest realtime/mono/realtime reading), in ns."""
    real, mono = time.CLOCK_REALTIME, time.CLOCK_MONOTONIC
    best = (0, 1 << 62)
    for _ in range(max(1, tries)):
        before = time.clock_gettime_ns(real)
        middle = time.clock_gettime_ns(mono)
        after = time.clock_gettime_ns(real)
        if (after - before + 1) // 2 < best[1]:
            best = ((before + after) // 2 - middle, (after - before + 1) // 2)
    return best


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _mount_tracefs(tracefs: Path) -> Path:
    """Private mounts for this process; tracefs mounted at ``tracefs`` unless it is there already."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        raise TracingError(f"cannot make a private mount namespace: {os.strerror(ctypes.get_errno())}")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise TracingError(f"cannot make the mounts private: {os.strerror(ctypes.get_errno())}")
    if not (tracefs / "instances").is_dir():
        if libc.mount(b"nodev", str(tracefs).encode(), b"tracefs", 0, None) != 0:
            raise TracingError(f"tracefs cannot be mounted: {os.strerror(ctypes.get_errno())}")
    return tracefs


def _remove_stale_instances(root: Path) -> None:
    """Instances of recorders that were killed outright (their pid no longer runs)."""
    with contextlib.suppress(OSError):
        for instance in (root / "instances").iterdir():
            match = re.fullmatch(rf"{INSTANCE_PREFIX}(\d+)-\w+", instance.name)
            if match and not Path(f"/proc/{match.group(1)}").exists():
                with contextlib.suppress(OSError):
                    _write(instance / "tracing_on", "0")
                    instance.rmdir()


class _Instance:
    """One tracefs instance of the recorder, with its per-CPU raw pipes."""

    def __init__(self, root: Path, role: str) -> None:
        self.role = role
        self.path = root / "instances" / f"{INSTANCE_PREFIX}{os.getpid()}-{role}"
        self.pipes: list[tuple[int, int]] = []
        self.stats: dict[int, int] = {}
        """Each CPU's open ``stats`` file."""
        self.page_bytes = 4096
        self.ring_bytes = 0
        self.path.mkdir()

    def configure(self, events: Sequence[str], *, pids: Sequence[int] | None) -> list[str]:
        """Clock, buffer size, pid filter, events and filters; returns the events this kernel lacks."""
        _write(self.path / "tracing_on", "0")
        _write(self.path / "trace_clock", "mono")
        with contextlib.suppress(OSError):  # before the ring's size: it reallocates the ring
            _write(self.path / "buffer_subbuf_size_kb", str(SUBBUFFER_KB))
        _write(self.path / "buffer_size_kb", str(BUFFER_KB[self.role]))
        with contextlib.suppress(OSError, ValueError):
            self.page_bytes = int((self.path / "buffer_subbuf_size_kb").read_text()) * 1024
        self.ring_bytes = int((self.path / "buffer_size_kb").read_text().split()[0]) * 1024
        absent = []
        for name in events:
            event = self.path / "events" / name
            if not (event / "enable").exists():
                absent.append(name.replace("/", ":"))
                continue
            conditions = [f"({FILTERS[name]})"] if name in FILTERS else []
            if pids:
                conditions.append(f"common_pid >= {min(pids)}")
            if conditions:
                _write(event / "filter", " && ".join(conditions))
            _write(event / "enable", "1")
        for cpu in sorted(self.path.joinpath("per_cpu").iterdir(), key=lambda path: int(path.name[3:])):
            descriptor = os.open(cpu / "trace_pipe_raw", os.O_RDONLY | os.O_NONBLOCK)
            self.pipes.append((int(cpu.name[3:]), descriptor))
            self.stats[int(cpu.name[3:])] = os.open(cpu / "stats", os.O_RDONLY)
        return absent

    def lost(self) -> int:
        """Events the instance lost: overruns (overwritten unread), commit overruns, dropped events."""
        return sum(self.statistics(cpu, ("overrun", "commit overrun", "dropped events")) for cpu in self.stats)

    def unread(self, cpu: int) -> int:
        """Bytes of events in ``cpu``'s ring that were not read yet."""
        return self.statistics(cpu, ("bytes",))

    def statistics(self, cpu: int, names: Sequence[str]) -> int:
        """The sum of the counters ``names`` of ``per_cpu/cpuN/stats`` (0 where it cannot be read).

        The file stays open and is read again from its start: opening it each time costs the
        recorder several times more CPU, at every look while the program runs."""
        total = 0
        with contextlib.suppress(OSError, ValueError, KeyError):
            for line in os.pread(self.stats[cpu], 4096, 0).decode().splitlines():
                name, _, value = line.partition(":")
                if name.strip() in names:
                    total += int(value.strip() or 0)
        return total

    def close(self) -> None:
        for descriptor in [*(descriptor for _, descriptor in self.pipes), *self.stats.values()]:
            with contextlib.suppress(OSError):
                os.close(descriptor)
        self.pipes, self.stats = [], {}
        with contextlib.suppress(OSError):
            _write(self.path / "tracing_on", "0")
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if error.errno != errno.EBUSY:
                    return
                time.sleep(0.02)


def _read_pages(instances: list[_Instance], pages: list[tuple[str, int, bytes]], *, drain: bool = False) -> int:
    """Read the pages that are ready on every CPU of every instance; returns how many were read.

    While recording, only the CPUs whose ring is filled to :data:`READ_FILL` are read, and a
    CPU's reading stops at its first page that is not full: the kernel would otherwise hand over
    the events of the page being written a few at a time, as fast as the reader asks, and the
    reader would spin on a CPU the traced program needs. ``drain`` reads everything, to the last
    event.
    """
    count = 0
    for instance in instances:
        page_bytes = instance.page_bytes
        for cpu, descriptor in instance.pipes:
            if not drain and instance.unread(cpu) < READ_FILL * instance.ring_bytes:
                continue
            while True:
                try:
                    page = os.read(descriptor, page_bytes)
                except BlockingIOError:
                    break
                except OSError as error:
                    if error.errno in (errno.EAGAIN, errno.EINTR):
                        break
                    raise
                if not page:
                    break
                pages.append((instance.role, cpu, page))
                count += 1
                if not drain and _page_bytes(page) < page_bytes - PAGE_HEADER_BYTES - PARTIAL_PAGE_SLACK:
                    break
    return count


def _page_bytes(page: bytes) -> int:
    """The bytes of events a raw page holds (its commit field, flags masked)."""
    if len(page) < PAGE_HEADER_BYTES:
        return 0
    return int.from_bytes(page[8:16], "little") & ~(RB_MISSED_EVENTS | RB_MISSED_STORED) & 0xFFFFFFFF


class _Stop(Exception):
    pass


def _raise_stop(_number: int, _frame: object) -> None:
    raise _Stop


def _record(tracefs: Path, sidecar: Path, pids: Sequence[int], control: int, report: IO[str]) -> None:
    """The recorder process: set up, say ready (or why not), read until the control pipe closes, write."""
    instances: list[_Instance] = []
    try:
        root = _mount_tracefs(tracefs)
        _remove_stale_instances(root)
        formats: list[EventFormat] = []
        absent: list[str] = []
        for role, events, limited in (("calls", PROCESS_EVENTS, pids), ("socket", SOCKET_EVENTS, None)):
            instance = _Instance(root, role)
            instances.append(instance)
            absent += instance.configure(events, pids=limited)
            for name in events:
                with contextlib.suppress(OSError, TracingError):
                    formats.append(parse_format(name.split("/")[0], (root / "events" / name / "format").read_text()))
        if not formats:
            raise TracingError("none of the tracepoints exists in this kernel")
        offset_start, error_start = clock_offset()
        for instance in instances:
            _write(instance.path / "tracing_on", "1")
        report.write(json.dumps({"ready": True, "absent": absent}) + "\n")
        report.flush()
        pages: list[tuple[str, int, bytes]] = []
        reading_started = time.process_time_ns()
        while True:
            _read_pages(instances, pages)
            ready, _, _ = select.select([control], [], [], READ_INTERVAL)
            if ready and not os.read(control, 64):
                break
        reading_cpu = time.process_time_ns() - reading_started
        for instance in instances:
            _write(instance.path / "tracing_on", "0")
        _read_pages(instances, pages, drain=True)
        lost = sum(instance.lost() for instance in instances)
        for instance in instances:
            instance.close()
        offset_end, error_end = clock_offset()
        decoder = PageDecoder(formats, offset_ns=offset_start)
        calls = sorted(
            (event for role, cpu, page in pages if role == "calls" for event in decoder.decode(page, cpu)),
            key=lambda event: event.time_ns,
        )
        socket_level = [event for role, cpu, page in pages if role == "socket" for event in decoder.decode(page, cpu)]
        decoded = sorted([*of_processes(calls, pids), *socket_level], key=lambda event: event.time_ns)
        alignment = max(error_start, error_end) + abs(offset_end - offset_start)
        header = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "clock": "CLOCK_REALTIME",
            "trace_clock": "mono",
            "offset_ns": offset_start,
            "alignment_error_ns": alignment,
            "lost_events": lost + decoder.missed_pages,
            "undecodable_events": decoder.undecodable,
            "pids": list(pids),
            "events": len(decoded),
            "events_read": len(calls) + len(socket_level),
            "absent_events": absent,
        }
        write_sidecar(sidecar, header, decoded)
        report.write(json.dumps({"done": True, "reading_cpu_ns": reading_cpu, **header}) + "\n")
    except TracingError as error:
        report.write(json.dumps({"missing": str(error)}) + "\n")
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup itself is not interrupted
        for instance in instances:
            instance.close()
        with contextlib.suppress(OSError):
            report.flush()


def of_processes(events: Iterable[KernelEvent], pids: Sequence[int]) -> Iterator[KernelEvent]:
    """The events of ``pids`` and of the tasks they start (in time order, ``task_newtask`` first)."""
    tasks = set(pids)
    for event in events:
        if event.tid not in tasks:
            continue
        if event.name == "task_newtask":
            tasks.add(int(event.fields.get("pid", 0)))
        yield event


def write_sidecar(path: Path, header: dict[str, Any], events: Iterable[KernelEvent]) -> Path:
    """Write the sidecar atomically: the header line, then one JSON object per event."""
    from visualizer.files import atomic_write

    def writer(handle: IO[bytes]) -> None:
        handle.write((json.dumps(header) + "\n").encode())
        lines = []
        for event in events:
            lines.append(
                json.dumps(
                    {"t": event.time_ns, "event": event.name, "cpu": event.cpu, "tid": event.tid, **event.fields}
                )
            )
            if len(lines) >= 4096:
                handle.write(("\n".join(lines) + "\n").encode())
                lines = []
        if lines:
            handle.write(("\n".join(lines) + "\n").encode())

    return atomic_write(path, writer)


class KernelRecorder:
    """Record the kernel events of ``pids`` (and of the tasks they start) into ``sidecar``.

    >>> with KernelRecorder(Path("out/story.kernel.jsonl"), pids=[os.getpid()]) as recorder:  # doctest: +SKIP
    ...     run_the_program()
    >>> recorder.result.events, recorder.result.lost_events, recorder.result.missing  # doctest: +SKIP

    ``start`` returns once the events flow (or once the recorder said why it cannot record:
    then ``result.missing`` says why and nothing is written). The recorder is a new Python
    process (``python -c``, started by fork and exec), not a fork that keeps running: a forked
    copy would share the traced program's memory copy-on-write, and every page the program then
    writes would fault and be copied, which costs a bulk transfer several percent.
    """

    def __init__(self, sidecar: Path, *, pids: Sequence[int]) -> None:
        self.sidecar = Path(sidecar)
        self.pids = list(pids)
        self.result = KernelRecording(None)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> KernelRecording:
        if os.geteuid() != 0:
            self.result.missing = "tracing needs root (CAP_SYS_ADMIN)"
            return self.result
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from visualizer.sources.kernel import recorder_main; recorder_main()",
                str(TRACEFS),
                str(self.sidecar),
                str(os.getpid()),
                *(str(pid) for pid in self.pids),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self._readline(READY_TIMEOUT)
        message = json.loads(line) if line else {"missing": "the recorder did not start"}
        if not message.get("ready"):
            self.result.missing = str(message.get("missing", "the recorder failed"))
            self._finish()
        else:
            self.result.absent_events = list(message.get("absent", []))
        return self.result

    def _readline(self, timeout: float) -> str:
        if self._process is None or self._process.stdout is None:
            return ""
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        return self._process.stdout.readline() if ready else ""

    def stop(self) -> KernelRecording:
        """Stop recording, wait for the sidecar, and say what was recorded."""
        if self._process is None:
            return self.result
        if self._process.stdin is not None:
            self._process.stdin.close()  # the recorder's signal to stop
        line = self._readline(600.0)
        message = json.loads(line) if line else {}
        if message.get("done"):
            self.result.path = self.sidecar
            self.result.events = int(message["events"])
            self.result.events_read = int(message.get("events_read", 0))
            self.result.lost_events = int(message["lost_events"])
            self.result.alignment_error_ns = int(message["alignment_error_ns"])
            self.result.reading_cpu_ns = int(message.get("reading_cpu_ns", 0))
        else:
            self.result.missing = str(message.get("missing", "the recorder ended without writing its events"))
        self._finish()
        return self.result

    def _finish(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        process.wait()

    def __enter__(self) -> KernelRecorder:
        self.start()
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is None:
            self.stop()
        elif self._process is not None:  # an exception: the recorder removes its instances, writes nothing
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)
            self._finish()

    def missing_line(self) -> str:
        """The one line that says why the capture has no kernel events (empty when it has them)."""
        if self.result.missing:
            return f"kernel events not recorded: {self.result.missing}; the packets alone follow"
        return ""


def recorder_main() -> None:
    """The recorder process: ``TRACEFS SIDECAR PARENT PID...`` in ``sys.argv``; stdin closing says stop.

    SIGINT is the parent's to handle (it then stops the recorder); SIGTERM, or the parent's death
    (``PR_SET_PDEATHSIG``), stops it at once: its instances are removed, nothing is written.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_stop)
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    root, sidecar, parent, *pids = sys.argv[1:]
    report = sys.stdout
    try:
        if os.getppid() != int(parent):
            return  # the parent died before the death signal was asked for
        _record(Path(root), Path(sidecar), [int(pid) for pid in pids], sys.stdin.fileno(), report)
    except _Stop:
        pass
    except Exception as error:  # said to the parent in one line; the packets go on alone
        with contextlib.suppress(OSError, ValueError):
            report.write(json.dumps({"missing": f"the recorder failed: {error}"}) + "\n")
            report.flush()


# -- loading -----------------------------------------------------------------------------------


@dataclass(slots=True)
class KernelEvents:
    """A sidecar's header and events."""

    path: Path
    header: dict[str, Any]
    events: list[KernelEvent]

    @property
    def lost_events(self) -> int:
        return int(self.header.get("lost_events", 0))

    @property
    def alignment_error_ns(self) -> int:
        return int(self.header.get("alignment_error_ns", 0))


def load_sidecar(capture: str | os.PathLike[str]) -> KernelEvents | None:
    """The kernel events recorded with ``capture`` (its ``NAME.kernel.jsonl``), or None when there are none.

    A sidecar that is not one raises CaptureFileError naming it and the problem.
    """
    path = sidecar_path(capture)
    if not path.exists():
        return None
    events: list[KernelEvent] = []
    try:
        with open(path, encoding="utf-8") as handle:
            header = json.loads(handle.readline() or "null")
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
                raise CaptureFileError(str(path), "not a sockstory kernel-events file (its first line is no header)")
            if int(header.get("version", 0)) > FORMAT_VERSION:
                raise CaptureFileError(
                    str(path), f"kernel-events format version {header['version']} is newer than this sockstory"
                )
            for number, line in enumerate(handle, start=2):
                try:
                    item = json.loads(line)
                    time_ns, name, cpu, tid = item.pop("t"), item.pop("event"), item.pop("cpu"), item.pop("tid")
                except (ValueError, KeyError, AttributeError, TypeError):
                    raise CaptureFileError(str(path), f"line {number} is not a kernel event") from None
                events.append(KernelEvent(int(time_ns), str(name), int(cpu), int(tid), item))
    except (OSError, UnicodeDecodeError) as error:
        raise CaptureFileError(str(path), str(getattr(error, "strerror", None) or error)) from None
    except ValueError:
        raise CaptureFileError(str(path), "the header line is not JSON") from None
    return KernelEvents(path, header, events)
