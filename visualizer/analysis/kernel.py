"""The socket's side of the story: kernel events joined to the frames of a capture (sans-IO).

:func:`join_kernel` takes the per-frame analyses of a capture and the kernel events recorded
beside it (:class:`visualizer.model.KernelEvent`, from the sidecar) and returns a
:class:`KernelStory`: for every TCP endpoint of the capture, what its program did and what its
kernel did, on the frames' time axis:

* ``calls``: the socket calls, each a :class:`SocketCall` (``connect``, ``accept``, ``send``,
  ``recv``, ``shutdown``, ``close``... with its return value), a send or recv with the relative
  sequence numbers of its bytes and the frames that carried them (a send: every frame that carried
  any of its bytes, retransmissions included; a recv: the frames that delivered them, or the peer's
  FIN when it returned 0);
  ``listener_calls``: the calls on the listening socket it was accepted from;
* ``states``: the kernel's own state changes (``inet_sock_set_state``), in RFC 9293 names;
* ``queues``: Send-Q (bytes written minus bytes acknowledged) and Recv-Q (bytes received in order
  minus bytes read) after every call and frame that changes them, derived from the calls and the
  frames; ``checks`` lists where they disagree with the kernel's figures (``tcp_probe``'s
  ``snd_una``; a recv that returns bytes the capture never saw arrive);
* ``probes``: cwnd, ssthresh, srtt, snd_wnd, rcv_wnd of every ``tcp_probe`` (one per segment the
  socket received, as it arrives: before the socket processes it), with the frame it was processing;
  ``segment_size``: the bytes of one of the segments its ``snd_cwnd`` counts;
* ``marks``: retransmissions, resets and drops as the kernel counted them, each tied to a frame.

The join keys on what both sides share: addresses and ports (every TCP tracepoint carries
them), socket identities (``sk``: the same socket in state changes, probes, sends and receives),
and the thread that made a system call (``tid``, ``task_newtask`` for the process). Events of
other sockets of the machine (the socket-level tracepoints are not limited to the traced
processes) match no conversation of the capture and are left out.

Time: kernel events are on the capture's clock within ``alignment_error_ns``; a frame and the
event that concerns it are matched in order of time, never by time alone when addresses,
lengths or buffer identities can decide.

Standard library only.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from visualizer.analysis.report import (
    BAD_CHECKSUM,
    FAST_RETRANSMISSION,
    NOT_RECEIVED,
    RETRANSMISSION,
    SPURIOUS_RETRANSMISSION,
    ZERO_WINDOW,
    FrameAnalysis,
)
from visualizer.model import ACK, FIN, PROTOCOL_UDP, RST, SYN, KernelEvent, parse_tcp_options

KERNEL_TO_RFC = {
    "LISTEN": "LISTEN",
    "SYN_SENT": "SYN-SENT",
    "SYN_RECV": "SYN-RECEIVED",
    "ESTABLISHED": "ESTABLISHED",
    "FIN_WAIT1": "FIN-WAIT-1",
    "FIN_WAIT2": "FIN-WAIT-2",
    "CLOSE_WAIT": "CLOSE-WAIT",
    "CLOSING": "CLOSING",
    "LAST_ACK": "LAST-ACK",
    "TIME_WAIT": "TIME-WAIT",
    "CLOSE": "CLOSED",
}
"""The kernel's state names (``include/net/tcp_states.h``) as RFC 9293 names them."""
TIME_WAIT_FROM = frozenset({"FIN_WAIT1", "FIN_WAIT2", "CLOSING"})
"""A full socket that goes to CLOSE from these states, not by a reset, has handed over to a
time-wait socket (``tcp_time_wait``): the tracepoint says CLOSE, the connection is in TIME-WAIT;
except from FIN_WAIT2 before the peer's FIN arrived: a program that closed its socket gets a
time-wait socket that waits in FIN-WAIT-2 (``tcp_fin_timeout``) and enters TIME-WAIT at the FIN,
which no tracepoint reports."""

CALLS = {
    "socket": "socket",
    "bind": "bind",
    "listen": "listen",
    "connect": "connect",
    "accept": "accept",
    "accept4": "accept",
    "sendto": "send",
    "sendmsg": "send",
    "write": "send",  # (not traced by default: see SOCKET_CALLS in the source)
    "recvfrom": "recv",
    "recvmsg": "recv",
    "read": "recv",
    "shutdown": "shutdown",
    "close": "close",
}
"""System call -> the socket call it makes (``write`` on a socket is a send, ``read`` a recv)."""
SHUTDOWN_HOW = {0: "SHUT_RD", 1: "SHUT_WR", 2: "SHUT_RDWR"}
ERRNO_NAMES = {
    1: "EPERM",
    4: "EINTR",
    9: "EBADF",
    11: "EAGAIN",
    32: "EPIPE",
    98: "EADDRINUSE",
    103: "ECONNABORTED",
    104: "ECONNRESET",
    107: "ENOTCONN",
    110: "ETIMEDOUT",
    111: "ECONNREFUSED",
    115: "EINPROGRESS",
}
CLONE_THREAD = 0x00010000
AF_INET, AF_INET6 = 2, 10
IGNORED_DROP_REASONS = frozenset({"QUEUE_PURGE", "NOT_SPECIFIED"})
"""Buffers freed with these reasons were not packets dropped on their way in (a closed socket's
queues purged; frees that give no reason)."""
OUTPUT_DROP_PREFIXES = ("QDISC_", "TC_EGRESS", "NEIGH_", "IP_OUTNOROUTES", "BPF_CGROUP_EGRESS", "FQ_", "CAKE_")
"""Reasons of packets dropped on their way out, before the capture could see them."""
ARRIVAL_WINDOW_NS = 10_000_000
"""A drop is tied to the last event of its buffer (its arrival in TCP, see BUFFER_EVENTS) at most this
long before it: TCP drops a segment that waited in the socket's backlog when the program lets go of the
socket."""
BUFFER_EVENTS = frozenset({"tcp_probe", "tcp_bad_csum"})
"""Events that name a received buffer and its segment: ``tcp_probe`` (every segment an established
socket takes in: its socket's addresses and the payload length) and ``tcp_bad_csum`` (the segment's
addresses). A drop of the same buffer after one of them is that segment's."""
TCP_DROP_PREFIXES = ("TCP_", "SOCKET_", "PROTO_MEM")
"""Reasons of drops by TCP itself (after ``tcp_v4_rcv`` found the segment's socket)."""
DROP_WINDOW_NS = 1_000_000
"""A drop of a buffer no earlier event names (a firewall's rule on input, a segment for no socket) is
tied to a frame captured at most this long before it: the capture sees a packet arrive in the same
pass through the receiving path that then drops it (2 to 21 us later in the recordings)."""
RESET_DROP_NS = 100_000
"""A drop this soon after the kernel sent a reset, on the same CPU, of another buffer than the one
that caused the reset, is the reset itself, dropped on its way out (an output firewall rule)."""
RECEIVE_WINDOW_NS = 1_000_000
"""The capture sees a frame arrive at most this long from the kernel's ``netif_receive_skb`` of it."""
ETHERNET_HEADER = 14
LINKTYPE_ETHERNET = 1
RETRANSMITTED = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION
INFINITE_SSTHRESH = 0x7FFFFFFF
"""``TCP_INFINITE_SSTHRESH`` (``include/net/tcp.h``): a socket's ssthresh until something sets it (a loss,
HyStart, a cached route metric); ``tcp_probe`` reports it as it is (``tcp_current_ssthresh``)."""
TIMESTAMP_OPTION_BYTES = 12
"""RFC 7323 s3's 10-byte timestamp option padded to 32 bits, as Linux sends it in every segment
(``TCPOLEN_TSTAMP_ALIGNED``) once both SYNs carried it: it comes out of each segment's MSS (RFC 6691)."""

SocketId = tuple[int, int]
"""(the kernel's socket identity in the recording, the incarnation: a freed socket's memory is reused)."""
EndpointKey = tuple[int, str, int]
"""(TCP stream, address, port)."""


@dataclass(frozen=True, slots=True)
class SocketCall:
    """One socket call of a program, as the kernel saw it enter and return."""

    time_ns: int
    """When the call entered the kernel."""
    end_ns: int
    """When it returned."""
    process: int
    thread: int
    fd: int
    call: str
    """``socket``, ``bind``, ``listen``, ``connect``, ``accept``, ``send``, ``recv``, ``shutdown``, ``close``."""
    syscall: str
    """The system call itself: ``sendto``, ``write``, ``accept4``..."""
    result: int
    """Its return value: bytes, a file descriptor, 0, or minus an errno."""
    size: int = -1
    """Bytes asked for (send, recv); -1 when the call takes none."""
    detail: str = ""
    """``SHUT_WR`` for a shutdown; the errno's name of a failed call."""
    sequence: tuple[int, int] | None = None
    """Relative sequence numbers [first, end) of the bytes sent or received (TCP, bytes > 0)."""
    frames: tuple[int, ...] = ()
    """A send: the frames that carried its bytes; a recv: the frames that delivered them (a recv that
    returned 0, the end of the stream: the peer's FIN)."""

    @property
    def text(self) -> str:
        """``send(12) -> 12``, ``recv(100) -> 27``, ``connect() -> 0``, ``shutdown(SHUT_WR) -> 0``."""
        argument = str(self.size) if self.size >= 0 else self.detail if self.call == "shutdown" else ""
        result = f"-{self.detail}" if self.result < 0 and self.detail else str(self.result)
        return f"{self.call}({argument}) -> {result}"


@dataclass(frozen=True, slots=True)
class KernelStateChange:
    time_ns: int
    old: str
    """RFC 9293 names (``SYN-RECEIVED``); ``TIME-WAIT`` for the hand-over to a time-wait socket."""
    new: str
    kernel_old: str
    """The kernel's own names (``SYN_RECV``, ``CLOSE``)."""
    kernel_new: str
    frame: int
    """The last frame of its own conversation captured at or before the change (0 when none): other
    conversations' frames captured in between say nothing about this socket."""
    note: str = ""
    """Where the kernel's record of this change differs from the states inferred from the packets,
    in a few words for a figure (``kernel: within #9; RFC table: one step``): see :func:`note_states`."""


@dataclass(frozen=True, slots=True)
class QueueSample:
    time_ns: int
    send_q: int
    recv_q: int
    cause: str
    """What changed them: ``send``, ``recv`` (calls), ``sent``, ``ack``, ``data`` (frames)."""
    frame: int = 0


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """``tcp_probe``: the socket's congestion and window figures as it received a segment."""

    time_ns: int
    frame: int
    """The received frame it was processing (0 when none matched)."""
    snd_cwnd: int
    """Segments."""
    ssthresh: int
    srtt_us: int
    """Smoothed round-trip time, microseconds (``tcp_probe`` gives ``srtt_us >> 3``: the kernel keeps it times 8)."""
    snd_wnd: int
    rcv_wnd: int
    snd_una: int
    """Relative sequence number, like the frames'."""
    snd_nxt: int

    @property
    def ssthresh_set(self) -> bool:
        """Whether ssthresh holds a value: :data:`INFINITE_SSTHRESH` (or above) means none was set yet
        (slow start has no threshold). Outside recovery ``tcp_probe`` reports ``tcp_current_ssthresh``,
        at least three quarters of cwnd, so it stays infinite until the socket's own is set."""
        return self.ssthresh < INFINITE_SSTHRESH


@dataclass(frozen=True, slots=True)
class KernelMark:
    """A retransmission, reset or drop as the kernel counted it."""

    time_ns: int
    kind: str
    """``retransmission``, ``reset_sent``, ``reset_received``, ``drop``."""
    frame: int
    """The frame it is about (0: none was captured, e.g. a packet dropped before the wire)."""
    reason: str = ""
    """A drop's reason (``NETFILTER_DROP``, ``TCP_CSUM``...); a reset's."""


@dataclass(slots=True)
class EndpointKernel:
    """One TCP endpoint of the capture, with its kernel's side."""

    stream: int
    address: str
    port: int
    peer_address: str
    peer_port: int
    sockets: list[SocketId] = field(default_factory=list)
    calls: list[SocketCall] = field(default_factory=list)
    listener_calls: list[SocketCall] = field(default_factory=list)
    states: list[KernelStateChange] = field(default_factory=list)
    queues: list[QueueSample] = field(default_factory=list)
    probes: list[ProbeSample] = field(default_factory=list)
    marks: list[KernelMark] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    """Where the figures derived from calls and frames disagree with the kernel's."""
    segment_size: int | None = None
    """Bytes of one segment as its ``snd_cwnd`` counts them (RFC 5681's SMSS, Linux's ``mss_cache``), from
    the capture's SYNs (see :func:`segment_size`); None when they are not both captured with an MSS option."""

    @property
    def name(self) -> str:
        return f"{self.address}:{self.port}"

    def marks_of(self, kind: str) -> list[KernelMark]:
        return [mark for mark in self.marks if mark.kind == kind]


@dataclass(frozen=True, slots=True)
class StateDifference:
    """An endpoint whose states inferred from the packets differ from the kernel's."""

    stream: int
    endpoint: str
    inferred: tuple[str, ...]
    kernel: tuple[str, ...]
    explanation: str


@dataclass(slots=True)
class KernelStory:
    endpoints: list[EndpointKernel] = field(default_factory=list)
    drops: list[KernelMark] = field(default_factory=list)
    """Every drop the kernel counted while recording (tied to a frame or not)."""
    state_differences: list[StateDifference] = field(default_factory=list)
    lost_events: int = 0
    alignment_error_ns: int = 0
    datagram_calls: list[SocketCall] = field(default_factory=list)
    """The send and recv calls made on UDP sockets (``sock_send_length``/``sock_recv_length`` say
    protocol 17), in time order. Not tied to a conversation: no UDP tracepoint carries addresses."""

    def endpoint(self, stream: int, address: str, port: int) -> EndpointKernel | None:
        for endpoint in self.endpoints:
            if (endpoint.stream, endpoint.address, endpoint.port) == (stream, address, port):
                return endpoint
        return None

    def of_stream(self, stream: int) -> list[EndpointKernel]:
        return [endpoint for endpoint in self.endpoints if endpoint.stream == stream]

    def sender_and_receiver(
        self, stream: int, address: str, port: int
    ) -> tuple[EndpointKernel | None, EndpointKernel | None]:
        """The endpoints of the data ``address``:``port`` sends in ``stream``: the sender, whose own
        ``tcp_probe`` samples (it receives the ACKs) carry its congestion window, and the receiver, whose
        samples (it receives the data) carry the window it advertises (``rcv_wnd``). None for a side
        the recording does not know."""
        sender = self.endpoint(stream, address, port)
        if sender is None:
            return None, None
        return sender, self.endpoint(stream, sender.peer_address, sender.peer_port)


# -- the join ----------------------------------------------------------------------------------


class _Sockets:
    """Socket identities with their incarnations, tuples and the events of each."""

    def __init__(self) -> None:
        self.incarnation: dict[int, int] = {}
        self.tuples: dict[SocketId, tuple[str, int, str, int]] = {}
        self.listeners: dict[SocketId, tuple[str, int]] = {}
        self.first_seen: dict[SocketId, int] = {}
        self.events: dict[SocketId, list[KernelEvent]] = defaultdict(list)
        self.datagram: set[SocketId] = set()
        """UDP sockets (protocol 17 in their sends and receives)."""

    def current(self, sk: int) -> SocketId:
        return (sk, self.incarnation.get(sk, 0))

    def see(self, event: KernelEvent) -> SocketId | None:
        fields = event.fields
        sk = fields.get("sk")
        if sk is None:
            return None
        if event.name == "inet_sock_set_state" and (
            fields.get("oldstate") == "CLOSE"
            or (fields.get("oldstate"), fields.get("newstate")) == ("LISTEN", "SYN_RECV")
        ):
            self.incarnation[sk] = self.incarnation.get(sk, 0) + 1  # a new socket (possibly in reused memory)
        identity = self.current(sk)
        self.first_seen.setdefault(identity, event.time_ns)
        if event.name not in ("sock_send_length", "sock_recv_length"):
            self.events[identity].append(event)
        elif fields.get("protocol") == PROTOCOL_UDP:
            self.datagram.add(identity)
        if event.name == "inet_sock_set_state" and fields.get("newstate") == "LISTEN":
            self.listeners[identity] = (fields.get("saddr", ""), int(fields.get("sport", 0)))
        ports = (fields.get("sport"), fields.get("dport"))
        if identity not in self.tuples and all(ports) and "saddr" in fields and "daddr" in fields:
            self.tuples[identity] = (fields["saddr"], int(ports[0]), fields["daddr"], int(ports[1]))  # type: ignore[arg-type]
        return identity


@dataclass(slots=True)
class _Pending:
    enter: KernelEvent
    process: int
    during: list[tuple[KernelEvent, SocketId]] = field(default_factory=list)


def _errno_name(result: int) -> str:
    return ERRNO_NAMES.get(-result, f"errno {-result}") if result < 0 else ""


class _Calls:
    """Turns enter/exit pairs into socket calls, each tied to a socket identity when it can be."""

    def __init__(self, sockets: _Sockets) -> None:
        self.sockets = sockets
        self.process: dict[int, int] = {}
        self.pending: dict[int, _Pending] = {}
        self.fds: dict[tuple[int, int], SocketId | None] = {}
        self.accept_queue: dict[tuple[str, int], list[SocketId]] = defaultdict(list)
        self.claimed: set[SocketId] = set()
        self.calls: list[tuple[SocketId | None, SocketCall]] = []
        self.accepted_from: dict[SocketId, SocketId] = {}
        """The connection an accept returned -> the listening socket."""
        self.by_fd: dict[tuple[int, int], list[int]] = defaultdict(list)
        """Indexes in ``calls`` of the calls made on an INET socket fd whose socket is not known yet."""

    def task(self, event: KernelEvent) -> None:
        parent = event.tid
        child = int(event.fields.get("pid", 0))
        if int(event.fields.get("clone_flags", 0)) & CLONE_THREAD:
            self.process[child] = self.process.get(parent, parent)
        else:
            self.process[child] = child

    def socket_event(self, event: KernelEvent, identity: SocketId | None) -> None:
        fields = event.fields
        if (
            identity is not None
            and event.name == "inet_sock_set_state"
            and (fields.get("oldstate"), fields.get("newstate")) == ("SYN_RECV", "ESTABLISHED")
        ):
            self.accept_queue[(fields.get("saddr", ""), int(fields.get("sport", 0)))].append(identity)
        pending = self.pending.get(event.tid)
        if pending is not None and identity is not None:
            pending.during.append((event, identity))
        elif identity is not None and event.name in ("sock_send_length", "sock_recv_length"):
            self._untraced(event, identity)

    def _untraced(self, event: KernelEvent, identity: SocketId) -> None:
        """A send or receive made by a system call that is not traced (``write``, ``read``, ``sendfile``...):
        its bytes and socket from ``sock_send_length``/``sock_recv_length``, at that moment."""
        process = self.process.get(event.tid, event.tid)
        fd = next((fd for (owner, fd), known in self.fds.items() if owner == process and known == identity), -1)
        result = int(event.fields.get("ret", 0))
        call = "send" if event.name == "sock_send_length" else "recv"
        record = SocketCall(
            event.time_ns, event.time_ns, process, event.tid, fd, call, "", result, -1, _errno_name(result)
        )
        self.calls.append((identity, record))

    def enter(self, event: KernelEvent) -> None:
        self.pending[event.tid] = _Pending(event, self.process.get(event.tid, event.tid))

    def exit(self, event: KernelEvent) -> None:
        pending = self.pending.pop(event.tid, None)
        syscall = event.name.removeprefix("sys_exit_")
        if pending is None or pending.enter.name != f"sys_enter_{syscall}":
            return
        arguments = pending.enter.fields
        result = int(event.fields.get("ret", 0))
        process = pending.process
        call = CALLS[syscall]
        if call == "socket":
            if arguments.get("family") not in (AF_INET, AF_INET6) or result < 0:
                return
            self.fds[(process, result)] = None
            self._add(None, pending, call, syscall, result, fd=result)
            return
        fd = int(arguments.get("fd", -1))
        key = (process, fd)
        identity = self._identity_of(call, pending, key)
        if identity is None and key not in self.fds:
            return  # not an INET socket (a file, a pipe, a packet socket)
        if identity is not None:
            self._learn(key, identity)
        size = int(arguments.get("len", -1)) if call in ("send", "recv") else -1
        detail = SHUTDOWN_HOW.get(int(arguments.get("how", -1)), "") if call == "shutdown" else ""
        detail = _errno_name(result) or detail
        if call == "accept":
            child = self._accepted(identity, event.time_ns) if result >= 0 else None
            if result >= 0:
                self.fds[(process, result)] = child
            self._add(
                child,
                pending,
                call,
                syscall,
                result,
                fd=result if result >= 0 else fd,
                detail=detail,
                listener=identity,
            )
            return
        self._add(identity, pending, call, syscall, result, fd=fd, size=size, detail=detail)
        if call == "close":
            self.fds.pop(key, None)
            self.by_fd.pop(key, None)

    def _identity_of(self, call: str, pending: _Pending, key: tuple[int, int]) -> SocketId | None:
        for event, identity in pending.during:
            if call in ("send", "recv") and event.name in ("sock_send_length", "sock_recv_length"):
                return identity
            if call == "connect" and event.fields.get("newstate") == "SYN_SENT":
                return identity
            if call == "listen" and event.fields.get("newstate") == "LISTEN":
                return identity
        return self.fds.get(key)

    def _learn(self, key: tuple[int, int], identity: SocketId) -> None:
        if self.fds.get(key) is None:
            self.fds[key] = identity
            for index in self.by_fd.pop(key, []):
                _, call = self.calls[index]
                self.calls[index] = (identity, call)

    def _accepted(self, listener: SocketId | None, time_ns: int) -> SocketId | None:
        """The oldest established connection of the listener's port not accepted yet (the accept queue is FIFO)."""
        if listener is None or listener not in self.sockets.listeners:
            return None
        address, port = self.sockets.listeners[listener]
        for (local_address, local_port), queue in self.accept_queue.items():
            if local_port != port or address not in ("0.0.0.0", "::", local_address):
                continue
            for identity in queue:
                if identity not in self.claimed and self.sockets.first_seen.get(identity, 0) <= time_ns:
                    self.claimed.add(identity)
                    return identity
        return None

    def _add(
        self,
        identity: SocketId | None,
        pending: _Pending,
        call: str,
        syscall: str,
        result: int,
        *,
        fd: int,
        size: int = -1,
        detail: str = "",
        listener: SocketId | None = None,
    ) -> None:
        enter = pending.enter
        record = SocketCall(
            enter.time_ns, 0, pending.process, enter.tid, fd, call, syscall, result, size, detail or _errno_name(result)
        )
        if identity is None and call != "accept":
            self.by_fd[(pending.process, fd)].append(len(self.calls))
        self.calls.append((identity, record))
        if listener is not None and identity is not None:
            self.accepted_from[identity] = listener

    def finish(self, exits: dict[tuple[int, int], int]) -> None:
        """Fill in each call's return time (kept apart while the calls were made)."""
        self.calls = [
            (identity, _replace_end(call, exits.get((call.thread, call.time_ns), call.time_ns)))
            for identity, call in self.calls
        ]


def _replace_end(call: SocketCall, end_ns: int) -> SocketCall:
    return replace(call, end_ns=end_ns)


def join_kernel(
    frames: Sequence[FrameAnalysis],
    events: Sequence[KernelEvent],
    *,
    lost_events: int = 0,
    alignment_error_ns: int = 0,
) -> KernelStory:
    """The kernel's side of every TCP endpoint in ``frames`` (see the module's text)."""
    story = KernelStory(lost_events=lost_events, alignment_error_ns=alignment_error_ns)
    sockets = _Sockets()
    calls = _Calls(sockets)
    exits: dict[tuple[int, int], int] = {}
    entered: dict[int, int] = {}
    buffers: dict[int, list[KernelEvent]] = defaultdict(list)
    ordered = sorted(events, key=lambda item: item.time_ns)
    for event in ordered:
        name = event.name
        if name.startswith("sys_enter_"):
            calls.enter(event)
            entered[event.tid] = event.time_ns
        elif name.startswith("sys_exit_"):
            if event.tid in entered:
                exits[(event.tid, entered.pop(event.tid))] = event.time_ns
            calls.exit(event)
        elif name == "task_newtask":
            calls.task(event)
        elif name in ("netif_receive_skb", "kfree_skb"):
            buffers[int(event.fields.get("skb") or 0)].append(event)
        else:
            if name in BUFFER_EVENTS:  # a packet TCP took in: what ties a later drop of its buffer to it
                buffers[int(event.fields.get("skb") or 0)].append(event)
            calls.socket_event(event, sockets.see(event))
    calls.finish(exits)
    story.datagram_calls = sorted(
        (call for identity, call in calls.calls if identity in sockets.datagram), key=lambda call: call.time_ns
    )
    frames = [frame for frame in frames if frame.protocol == "tcp" and frame.stream >= 0]
    frame_times = [frame.record.timestamp_ns or 0 for frame in frames]
    endpoints = _endpoints(frames)
    owner = _owners(sockets, endpoints, frames)
    for identity, endpoint in owner.items():
        endpoint.sockets.append(identity)
    _attach_calls(calls, owner)
    resets = [event for event in ordered if event.name == "tcp_send_reset"]
    dropped = _drops(story, buffers, resets, frames, frame_times, alignment_error_ns, endpoints)
    for endpoint in endpoints.values():
        own = [frame for frame in frames if frame.stream == endpoint.stream]
        identities = endpoint.sockets
        kernel_events = sorted(
            (event for identity in identities for event in sockets.events[identity]), key=lambda item: item.time_ns
        )
        _kernel_side(endpoint, kernel_events, own, alignment_error_ns, dropped)
        endpoint.segment_size = segment_size(endpoint, own)
        _resets_without_socket(endpoint, events, own)
        _link_bytes(endpoint, own, dropped)
        _queues(endpoint, own, dropped)
        endpoint.marks.sort(key=lambda mark: mark.time_ns)
    story.endpoints = sorted(endpoints.values(), key=lambda item: (item.stream, item.address, item.port))
    story.state_differences = compare_states(story, frames)
    note_states(story, frames)
    return story


def _endpoints(frames: Sequence[FrameAnalysis]) -> dict[EndpointKey, EndpointKernel]:
    endpoints: dict[EndpointKey, EndpointKernel] = {}
    for frame in frames:
        record = frame.record
        for address, port, peer, peer_port in (
            (record.source, record.source_port, record.destination, record.destination_port),
            (record.destination, record.destination_port, record.source, record.source_port),
        ):
            key = (frame.stream, address, port)
            if key not in endpoints:
                endpoints[key] = EndpointKernel(frame.stream, address, port, peer, peer_port)
    return endpoints


def _owners(
    sockets: _Sockets, endpoints: dict[EndpointKey, EndpointKernel], frames: Sequence[FrameAnalysis]
) -> dict[SocketId, EndpointKernel]:
    """Each socket identity's endpoint: the stream of its four-tuple that was alive when it was first seen."""
    spans: dict[tuple[str, int, str, int], list[tuple[int, int, int]]] = defaultdict(list)
    bounds: dict[int, list[int]] = {}
    for frame in frames:
        time_ns = frame.record.timestamp_ns or 0
        bound = bounds.setdefault(frame.stream, [time_ns, time_ns])
        bound[1] = time_ns
    for endpoint in endpoints.values():
        first, last = bounds[endpoint.stream]
        spans[(endpoint.address, endpoint.port, endpoint.peer_address, endpoint.peer_port)].append(
            (first, last, endpoint.stream)
        )
    owner: dict[SocketId, EndpointKernel] = {}
    for identity, (address, port, peer, peer_port) in sockets.tuples.items():
        candidates = spans.get((address, port, peer, peer_port))
        if not candidates:
            continue
        seen = sockets.first_seen.get(identity, 0)
        # the last stream of this tuple that began before the socket's first event (a second of slack)
        chosen = [stream for first, _last, stream in candidates if first <= seen + 1_000_000_000]
        stream = chosen[-1] if chosen else candidates[0][2]
        owner[identity] = endpoints[(stream, address, port)]
    return owner


def _attach_calls(calls: _Calls, owner: dict[SocketId, EndpointKernel]) -> None:
    """Each call to its socket's endpoint; the listener's calls to every connection accepted from it."""
    accepted: dict[SocketId, list[EndpointKernel]] = defaultdict(list)
    for child, listener in calls.accepted_from.items():
        if child in owner:
            accepted[listener].append(owner[child])
    for identity, call in calls.calls:
        if identity is None:
            continue
        if identity in owner:
            owner[identity].calls.append(call)
        for endpoint in accepted.get(identity, []):
            endpoint.listener_calls.append(call)
    for endpoint in owner.values():
        endpoint.calls.sort(key=lambda call: call.time_ns)
        endpoint.listener_calls.sort(key=lambda call: call.time_ns)


def _relative(raw: int, base: int | None) -> int:
    return (raw - base) % (1 << 32) if base is not None else raw


def _kernel_side(
    endpoint: EndpointKernel,
    events: list[KernelEvent],
    own: list[FrameAnalysis],
    slack: int,
    dropped: dict[int, str],
) -> None:
    """States, probes, retransmissions and resets of the endpoint's socket(s)."""
    sent = [frame for frame in own if _sent_by(endpoint, frame)]
    # what reached the socket: a frame dropped on its way in (firewall, checksum, no socket) never did
    received = [
        frame for frame in own if not _sent_by(endpoint, frame) and not _before_tcp(dropped.get(frame.record.number))
    ]
    isn = next((frame.record.seq for frame in sent if frame.record.tcp_flags & SYN), None)
    retransmitted = [frame for frame in sent if frame.analysis & RETRANSMITTED]
    resets_sent = [frame for frame in sent if frame.record.tcp_flags & RST]
    taken: set[int] = set()
    reset_before: int | None = None
    for event in events:
        fields = event.fields
        name = event.name
        if name == "inet_sock_set_state":
            old, new = str(fields["oldstate"]), str(fields["newstate"])
            shown_new = KERNEL_TO_RFC.get(new, new)
            if new == "CLOSE" and old in TIME_WAIT_FROM and reset_before is None:
                fin = _latest(received, event.time_ns + slack, lambda item: bool(item.record.tcp_flags & FIN))
                shown_new = "FIN-WAIT-2" if old == "FIN_WAIT2" and fin is None else "TIME-WAIT"
            endpoint.states.append(
                KernelStateChange(
                    event.time_ns,
                    KERNEL_TO_RFC.get(old, old),
                    shown_new,
                    old,
                    new,
                    _number(_latest(own, event.time_ns + slack, _any)),
                )
            )
        elif name == "tcp_probe":
            # the segment it processes: the last of its length captured before it (segments that come
            # while the program holds the socket wait in its backlog, where they coalesce: data_len is
            # then the sum of several, and the frame the last of them)
            length = int(fields.get("data_len", 0))
            frame = _latest(
                received,
                event.time_ns + slack,
                lambda item, length=length: (
                    item.record.payload_length == length or 0 < item.record.payload_length < length
                ),
            )
            endpoint.probes.append(
                ProbeSample(
                    event.time_ns,
                    frame.record.number if frame else 0,
                    int(fields.get("snd_cwnd", 0)),
                    int(fields.get("ssthresh", 0)),
                    int(fields.get("srtt", 0)),
                    int(fields.get("snd_wnd", 0)),
                    int(fields.get("rcv_wnd", 0)),
                    _relative(int(fields.get("snd_una", 0)), isn),
                    _relative(int(fields.get("snd_nxt", 0)), isn),
                )
            )
        elif name in ("tcp_retransmit_skb", "tcp_retransmit_synack"):
            match = _nearest(retransmitted, event.time_ns, slack, taken)
            endpoint.marks.append(KernelMark(event.time_ns, "retransmission", match))
        elif name == "tcp_send_reset":
            match = _nearest(resets_sent, event.time_ns, slack, taken)
            endpoint.marks.append(KernelMark(event.time_ns, "reset_sent", match, str(fields.get("reason", ""))))
        elif name == "tcp_receive_reset":
            reset_before = event.time_ns
            frame = _latest(received, event.time_ns + slack, lambda item: bool(item.record.tcp_flags & RST))
            endpoint.marks.append(KernelMark(event.time_ns, "reset_received", frame.record.number if frame else 0))
    _check_acknowledged(endpoint, received)


def segment_size(endpoint: EndpointKernel, own: Sequence[FrameAnalysis]) -> int | None:
    """The bytes of one segment ``endpoint`` sends, as its congestion window counts them: the smaller
    MSS option of the two SYNs (RFC 9293 s3.7.1: each side announces what it can receive; a Linux
    socket's ``TCP_MAXSEG`` caps both the MSS it announces and the one it sends), less
    :data:`TIMESTAMP_OPTION_BYTES` when both SYNs carried the timestamp option. That is Linux's
    ``mss_cache`` (``tcp_sync_mss``) unless the path MTU is lower than the options say (on loopback
    it never is): our reading of the kernel, not a figure it reports. None without both SYNs, or
    when one has no MSS option."""
    mine = theirs = None
    for frame in own:
        record = frame.record
        if not record.tcp_flags & SYN:
            continue
        options = parse_tcp_options(record.tcp_options)
        if _sent_by(endpoint, frame):
            mine = options if mine is None else mine
        else:
            theirs = options if theirs is None else theirs
    if mine is None or theirs is None or mine.mss is None or theirs.mss is None:
        return None
    timestamps = mine.timestamp is not None and theirs.timestamp is not None
    return min(mine.mss, theirs.mss) - (TIMESTAMP_OPTION_BYTES if timestamps else 0)


SENT_WINDOW_NS = 1_000_000
"""A retransmission or reset the kernel counted is the frame of its kind sent closest to it, at most
this far away (on loopback the capture sees a packet microseconds from its transmission)."""


def _nearest(frames: list[FrameAnalysis], time_ns: int, slack: int, taken: set[int]) -> int:
    """The number of the frame closest in time to ``time_ns`` not matched yet (0 when none is near)."""
    best, best_distance = 0, SENT_WINDOW_NS + slack
    low = bisect.bisect_left(frames, time_ns - best_distance, key=_time_of)
    high = bisect.bisect_right(frames, time_ns + best_distance, key=_time_of)
    for frame in frames[low:high]:
        distance = abs(_time_of(frame) - time_ns)
        if frame.record.number not in taken and distance <= best_distance:
            best, best_distance = frame.record.number, distance
    if best:
        taken.add(best)
    return best


def _resets_without_socket(endpoint: EndpointKernel, events: Sequence[KernelEvent], own: list[FrameAnalysis]) -> None:
    """Resets the kernel sent for a port with no socket (no listener): tied by addresses and ports."""
    if endpoint.sockets:
        return
    sent = [frame for frame in own if _sent_by(endpoint, frame)]
    taken: set[int] = set()
    for event in events:
        fields = event.fields
        if event.name != "tcp_send_reset" or fields.get("sk") is not None:
            continue
        if (fields.get("saddr"), fields.get("sport"), fields.get("daddr"), fields.get("dport")) != (
            endpoint.address,
            endpoint.port,
            endpoint.peer_address,
            endpoint.peer_port,
        ):
            continue
        match = _nearest([frame for frame in sent if frame.record.tcp_flags & RST], event.time_ns, 0, taken)
        endpoint.marks.append(KernelMark(event.time_ns, "reset_sent", match, str(fields.get("reason", ""))))


def _latest(frames: list[FrameAnalysis], time_ns: int, accept: object) -> FrameAnalysis | None:
    """The last of ``frames`` (in time order) captured at or before ``time_ns`` that ``accept`` takes."""
    index = bisect.bisect_right(frames, time_ns, key=_time_of) - 1
    while index >= 0:
        if accept(frames[index]):  # type: ignore[operator]
            return frames[index]
        index -= 1
    return None


def _any(_frame: FrameAnalysis) -> bool:
    return True


def _number(frame: FrameAnalysis | None) -> int:
    return frame.record.number if frame else 0


def _time_of(frame: FrameAnalysis) -> int:
    return frame.record.timestamp_ns or 0


def _check_acknowledged(endpoint: EndpointKernel, received: list[FrameAnalysis]) -> None:
    """The kernel's snd_una at each probe is an ACK number the capture saw arrive before it (or the ISN + 1)."""
    arrivals = [(frame.record.timestamp_ns or 0, frame.ack) for frame in received if frame.record.tcp_flags & ACK]
    seen = {1}
    index = 0
    slack = 0
    for probe in endpoint.probes:
        while index < len(arrivals) and arrivals[index][0] <= probe.time_ns + slack:
            seen.add(arrivals[index][1])
            index += 1
        if probe.snd_una not in seen:
            endpoint.checks.append(
                f"at the probe of frame {probe.frame} the kernel's snd_una is {probe.snd_una}: no ACK captured "
                f"before it says so (highest {max(seen)})"
            )


def _before_tcp(reason: str | None) -> bool:
    """A drop before the socket saw the segment (TCP's own drops, ``TCP_OLD_DATA``..., come after it)."""
    return reason is not None and (reason == "TCP_CSUM" or not reason.startswith("TCP_"))


def _drops(
    story: KernelStory,
    buffers: dict[int, list[KernelEvent]],
    resets: list[KernelEvent],
    frames: Sequence[FrameAnalysis],
    frame_times: list[int],
    slack: int,
    endpoints: dict[EndpointKey, EndpointKernel],
) -> dict[int, str]:
    """Tie each drop to the frame of the dropped buffer, when that packet arrived.

    A drop (``kfree_skb``) names a buffer by its address, which the allocator hands out again as
    soon as it is freed: the buffer's last event before the drop tells which packet it held. When
    TCP took the segment in (``tcp_probe``, ``tcp_bad_csum``), that event's addresses, length and time
    find its frame; in a recording with every packet's arrival (``netif_receive_skb``: sockstory
    recorded them until it tied drops this way) the last arrival of the address is the packet's. A drop
    no event names (a firewall's rule on input, a segment for no socket) happened in the same pass
    through the receiving path as the capture of its packet: the frame captured last before it
    (:data:`DROP_WINDOW_NS`), or the one the analysis found the receiver never got, when one of those
    captured then is. A drop on the way out (its reason says a qdisc's, or it is a reset the kernel had
    just sent, dropped by a firewall's rule on output) has no frame: the capture never saw it.
    """
    dropped: dict[int, str] = {}
    for history in buffers.values():
        for index, event in enumerate(history):
            if event.name != "kfree_skb":
                continue
            reason = str(event.fields.get("reason", ""))
            if reason in IGNORED_DROP_REASONS:
                continue
            before = history[index - 1] if index else None
            if before is not None and not _names_the_drop(before, event, reason):
                before = None
            frame = None
            if not reason.startswith(OUTPUT_DROP_PREFIXES):
                frame = _dropped_frame(event, before, frames, frame_times, slack)
            if frame is not None and _own_reset(event, frame.record.timestamp_ns or 0, resets):
                frame = None
            mark = KernelMark(event.time_ns, "drop", frame.record.number if frame else 0, reason)
            story.drops.append(mark)
            if frame is None:
                continue
            dropped[frame.record.number] = reason
            record = frame.record
            receiver = endpoints.get((frame.stream, record.destination, record.destination_port))
            if receiver is not None:
                receiver.marks.append(mark)
    story.drops.sort(key=lambda mark: mark.time_ns)
    return dropped


def _names_the_drop(before: KernelEvent, drop: KernelEvent, reason: str) -> bool:
    """Whether ``before``, the last event of the dropped buffer's address, was the dropped packet's.

    An arrival (``netif_receive_skb``: every packet has one) is, when recent. A segment TCP took in
    (BUFFER_EVENTS) is when TCP dropped it (its reason is TCP's), on the same CPU, soon after: a packet
    dropped before TCP saw it (a firewall's rule, no socket) may sit in the memory of one TCP took in
    a moment before."""
    elapsed = drop.time_ns - before.time_ns
    if before.name == "netif_receive_skb":
        return elapsed <= ARRIVAL_WINDOW_NS
    return (
        before.name in BUFFER_EVENTS
        and reason.startswith(TCP_DROP_PREFIXES)
        and before.cpu == drop.cpu
        and elapsed <= DROP_WINDOW_NS
    )


def _dropped_frame(
    drop: KernelEvent,
    before: KernelEvent | None,
    frames: Sequence[FrameAnalysis],
    frame_times: list[int],
    slack: int,
) -> FrameAnalysis | None:
    """The frame whose buffer ``drop`` freed (see :func:`_drops`); ``before`` is the buffer's last event."""
    if before is not None and before.name == "netif_receive_skb":
        return _arrived(before, frames, frame_times, slack)
    if before is not None:  # BUFFER_EVENTS: TCP took the segment in
        fields = before.fields
        source, destination = (fields.get("saddr"), fields.get("sport")), (fields.get("daddr"), fields.get("dport"))
        if before.name == "tcp_probe":  # the receiving socket's addresses: the segment came from its peer
            source, destination = destination, source
        length = int(fields.get("data_len", -1))
        near = _captured_near(frames, frame_times, before.time_ns, slack + RECEIVE_WINDOW_NS, slack + RECEIVE_WINDOW_NS)
        candidates = [
            frame
            for frame in near
            if (frame.record.source, frame.record.source_port) == source
            and (frame.record.destination, frame.record.destination_port) == destination
            and (length < 0 or frame.record.payload_length == length)
        ]
        return min(candidates, key=lambda frame: abs((frame.record.timestamp_ns or 0) - before.time_ns), default=None)
    near = _captured_near(frames, frame_times, drop.time_ns, slack + DROP_WINDOW_NS, slack)
    unreceived = [frame for frame in near if frame.analysis & (NOT_RECEIVED | BAD_CHECKSUM)]
    chosen = unreceived or near
    return chosen[-1] if chosen else None


def _captured_near(
    frames: Sequence[FrameAnalysis], frame_times: list[int], time_ns: int, before: int, after: int
) -> Sequence[FrameAnalysis]:
    """The frames captured from ``before`` ns before ``time_ns`` to ``after`` ns after it, in order."""
    low = bisect.bisect_left(frame_times, time_ns - before)
    high = bisect.bisect_right(frame_times, time_ns + after)
    return frames[low:high]


def _own_reset(drop: KernelEvent, arrived_ns: int, resets: list[KernelEvent]) -> bool:
    """Whether ``drop`` is a reset the kernel had just sent (see RESET_DROP_NS): one sent after the
    dropped buffer's address last arrived (a packet that arrived after the reset is not it)."""
    times = [reset.time_ns for reset in resets]
    index = bisect.bisect_right(times, drop.time_ns) - 1
    while index >= 0 and drop.time_ns - resets[index].time_ns <= RESET_DROP_NS:
        reset = resets[index]
        if reset.cpu == drop.cpu and reset.fields.get("skb") != drop.fields.get("skb") and reset.time_ns > arrived_ns:
            return True
        index -= 1
    return False


def _arrived(
    arrival: KernelEvent, frames: Sequence[FrameAnalysis], frame_times: list[int], slack: int
) -> FrameAnalysis | None:
    """The frame captured closest to ``arrival`` whose IP length is the received buffer's."""
    length = int(arrival.fields.get("len", -1))
    window = slack + RECEIVE_WINDOW_NS
    candidates = [
        frame
        for frame in _captured_near(frames, frame_times, arrival.time_ns, window, window)
        if frame.record.original_length - (ETHERNET_HEADER if frame.record.link_type == LINKTYPE_ETHERNET else 0)
        == length
    ]
    return min(candidates, key=lambda frame: abs((frame.record.timestamp_ns or 0) - arrival.time_ns), default=None)


# -- bytes, segments and queues -------------------------------------------------------------------


def _sent_by(endpoint: EndpointKernel, frame: FrameAnalysis) -> bool:
    return frame.record.source == endpoint.address and frame.record.source_port == endpoint.port


def _delivered(peer_frames: list[FrameAnalysis], dropped: dict[int, str]) -> list[tuple[int, int, int]]:
    """(first, end, frame) of the bytes each frame delivered first, in the frames' order (a frame
    dropped, or with a bad checksum, or not received, delivers nothing)."""
    delivered: list[tuple[int, int, int]] = []
    covered: list[list[int]] = []  # merged [first, end) ranges, sorted
    for frame in peer_frames:
        length = frame.record.payload_length
        if not length or frame.record.number in dropped or frame.analysis & (BAD_CHECKSUM | NOT_RECEIVED):
            continue
        start, end = frame.seq, frame.seq + length
        index = bisect.bisect_right(covered, start, key=lambda item: item[0]) - 1
        if index >= 0 and covered[index][1] > start:
            start = covered[index][1]  # the head was delivered before
        following = index + 1
        if following < len(covered) and covered[following][0] < end:
            end = covered[following][0]  # so was what follows: the first new run is what it delivered
        if start < end:
            delivered.append((start, end, frame.record.number))
        cover(covered, frame.seq, frame.seq + length)
    return delivered


def cover(covered: list[list[int]], start: int, end: int) -> None:
    """Add [start, end) to the sorted, merged ranges ``covered``."""
    index = bisect.bisect_right(covered, start, key=lambda item: item[0]) - 1
    if index >= 0 and covered[index][1] >= start:
        start = covered[index][0]
    else:
        index += 1
    last = index
    while last < len(covered) and covered[last][0] <= end:
        end = max(end, covered[last][1])
        last += 1
    covered[index:last] = [[start, end]]


def covers(covered: list[list[int]], start: int, end: int) -> bool:
    """Whether the sorted, merged ranges ``covered`` hold every byte of [start, end)."""
    index = bisect.bisect_right(covered, start, key=lambda item: item[0]) - 1
    return index >= 0 and covered[index][1] >= end


def _overlapping(
    ranges: list[tuple[int, int, int]], starts: list[int], first: int, end: int, longest: int
) -> list[int]:
    """The frames of ``ranges`` (first, end, frame), sorted by first, that overlap [first, end)."""
    low = bisect.bisect_left(starts, first - longest)
    high = bisect.bisect_left(starts, end)
    return [number for start, stop, number in ranges[low:high] if start < end and stop > first]


def _link_bytes(endpoint: EndpointKernel, own: list[FrameAnalysis], dropped: dict[int, str]) -> None:
    """Each send's and recv's relative sequence numbers, and the frames that carried them."""
    sent = sorted(
        (frame.seq, frame.seq + frame.record.payload_length, frame.record.number)
        for frame in own
        if _sent_by(endpoint, frame) and frame.record.payload_length
    )
    peer_frames = [frame for frame in own if not _sent_by(endpoint, frame)]
    delivered = sorted(_delivered(peer_frames, dropped))
    sent_starts, delivered_starts = [item[0] for item in sent], [item[0] for item in delivered]
    sent_longest = max((stop - start for start, stop, _ in sent), default=0)
    delivered_longest = max((stop - start for start, stop, _ in delivered), default=0)
    written = read = 0
    linked = []
    for call in endpoint.calls:
        if call.call in ("send", "recv") and call.result > 0:
            base = written if call.call == "send" else read
            first, end = 1 + base, 1 + base + call.result
            if call.call == "send":
                written += call.result
                carried = tuple(sorted(_overlapping(sent, sent_starts, first, end, sent_longest)))
            else:
                read += call.result
                carried = tuple(sorted(set(_overlapping(delivered, delivered_starts, first, end, delivered_longest))))
            call = replace(call, sequence=(first, end), frames=carried)
        elif call.call == "recv" and call.result == 0 and call.size > 0:
            fin = _end_of_stream(peer_frames, dropped, call.end_ns)
            if fin is not None:  # recv() -> 0: the peer's FIN told the program the stream had ended
                call = replace(call, frames=(fin,))
        linked.append(call)
    endpoint.calls = linked


def _end_of_stream(peer_frames: list[FrameAnalysis], dropped: dict[int, str], before_ns: int) -> int | None:
    """The peer's first FIN that reached the socket before ``before_ns`` (a recv that returned 0 read it)."""
    for frame in peer_frames:
        if (frame.record.timestamp_ns or 0) > before_ns:
            break
        if frame.record.tcp_flags & FIN and frame.record.number not in dropped:
            return frame.record.number
    return None


def _queues(endpoint: EndpointKernel, own: list[FrameAnalysis], dropped: dict[int, str]) -> None:
    """Send-Q and Recv-Q at every call and frame that changes them.

    Send-Q: bytes written (returned by send calls, or seen leaving, whichever is more) minus bytes
    acknowledged by ACKs that reached the socket. Recv-Q: bytes received in order minus bytes read.
    A recv takes its bytes from the queue when it is entered, or as they arrive while it waits:
    the kernel copies them out before it returns, and a window update it sends on the way lets
    new data in before the return.
    """
    changes: list[tuple[int, int, str, int, int]] = []
    for call in endpoint.calls:
        if call.call == "send" and call.result > 0:
            changes.append((call.end_ns, 1, "send", call.result, 0))
        elif call.call == "recv" and call.result > 0:
            changes.append((call.time_ns, 1, "recv", call.result, 0))
    peer_frames = [frame for frame in own if not _sent_by(endpoint, frame)]
    numbers = {frame.record.number: frame for frame in peer_frames}
    for start, end, number in _delivered(peer_frames, dropped):
        changes.append((numbers[number].record.timestamp_ns or 0, 0, "data", start, number))
        changes.append((numbers[number].record.timestamp_ns or 0, 0, "range", start, end))
    for frame in own:
        time_ns = frame.record.timestamp_ns or 0
        if _sent_by(endpoint, frame):
            if frame.record.payload_length:
                changes.append((time_ns, 0, "sent", frame.seq + frame.record.payload_length - 1, frame.record.number))
        elif frame.record.tcp_flags & ACK and frame.record.number not in dropped:
            changes.append((time_ns, 0, "ack", frame.ack - 1, frame.record.number))
    changes.sort(key=lambda item: (item[0], item[1], item[2] != "range"))
    written_by_calls = sent_high = acknowledged = requested = 0
    arrived: list[list[int]] = []
    in_order = 0
    last = (-1, -1)
    for time_ns, _, cause, value, extra in changes:
        number = 0
        if cause == "range":
            cover(arrived, value - 1, extra - 1)  # bytes from 0, as read
            in_order = arrived[0][1] if arrived[0][0] <= 0 else 0
            continue
        if cause == "send":
            written_by_calls += value
        elif cause == "recv":
            requested += value
        elif cause == "sent":
            sent_high, number = max(sent_high, value), extra
        elif cause == "ack":
            number = extra
            acknowledged = max(acknowledged, min(value, max(written_by_calls, sent_high)))
        elif cause == "data":
            number = extra
        sample = (max(written_by_calls, sent_high) - acknowledged, in_order - min(requested, in_order))
        if sample != last or cause in ("send", "recv"):
            endpoint.queues.append(QueueSample(time_ns, sample[0], sample[1], cause, number))
            last = sample
    if requested > in_order:
        endpoint.checks.append(
            f"the recv() calls returned {requested - in_order} bytes more than the capture saw arrive in order"
        )


# -- inferred states against the kernel's ------------------------------------------------------------


def inferred_states(endpoint: EndpointKernel, frames: Sequence[FrameAnalysis]) -> tuple[str, ...]:
    """The endpoint's states along its stream, as the analysis inferred them from the packets."""
    states: list[str] = []
    for frame in frames:
        if frame.stream != endpoint.stream:
            continue
        state = frame.state if _sent_by(endpoint, frame) else frame.receiver_state
        if state and (not states or states[-1] != state):
            states.append(state)
    return tuple(states)


def kernel_states(endpoint: EndpointKernel) -> tuple[str, ...]:
    """The endpoint's states as its kernel changed them (the listener's LISTEN left out)."""
    states: list[str] = []
    for change in endpoint.states:
        if change.new not in states[-1:]:
            states.append(change.new)
    return tuple(states)


def compare_states(story: KernelStory, frames: Sequence[FrameAnalysis]) -> list[StateDifference]:
    """Every endpoint with kernel states whose inferred states differ, with the reason when it is known."""
    differences = []
    for endpoint in story.endpoints:
        kernel = kernel_states(endpoint)
        if not kernel and not endpoint.sockets:
            continue
        inferred = inferred_states(endpoint, frames)
        if _comparable(inferred) == _comparable(kernel):
            continue
        differences.append(
            StateDifference(
                endpoint.stream, endpoint.name, inferred, kernel, _explain(inferred, kernel, endpoint, frames)
            )
        )
    return differences


def _comparable(states: tuple[str, ...]) -> tuple[str, ...]:
    """States as both sides can see them: the leading CLOSED/LISTEN (before the first segment) dropped."""
    trimmed = list(states)
    while trimmed and trimmed[0] in ("CLOSED", "LISTEN"):
        trimmed.pop(0)
    return tuple(trimmed)


def _explain(
    inferred: tuple[str, ...], kernel: tuple[str, ...], endpoint: EndpointKernel, frames: Sequence[FrameAnalysis]
) -> str:
    if not kernel:
        return "no state change of this endpoint's socket was recorded (a crafted endpoint, or no socket)"
    if _handed_over_in_fin_wait_2(endpoint) and _comparable(inferred) == (*_comparable(kernel), "TIME-WAIT"):
        return (
            "the kernel handed the socket, closed by its program in FIN-WAIT-2, to a time-wait socket that waits "
            "for the peer's FIN (tcp_time_wait); its move to TIME-WAIT at the FIN is not traced"
        )
    passing = _passed_within_one_segment(endpoint) - set(inferred)
    if passing and _comparable(tuple(state for state in kernel if state not in passing)) == _comparable(inferred):
        return (
            f"the kernel passes through {', '.join(sorted(passing))} while it processes one segment "
            "(it applies the segment's ACK, then its FIN); the RFC's table takes that segment in one step"
        )
    if "CLOSING" in kernel and "CLOSING" not in inferred and _fin_held_below_the_capture(endpoint, frames):
        return (
            "its FIN waited in a queue below the capture point (a qdisc) from its close() until after the peer's "
            "FIN had arrived: the kernel saw both ends closing at once (CLOSING), the capture the FINs one after "
            "the other"
        )
    return "unexplained"


def _fin_held_below_the_capture(endpoint: EndpointKernel, frames: Sequence[FrameAnalysis]) -> bool:
    """Whether the endpoint entered FIN-WAIT-1 (its close()) before the peer's FIN was captured, and its
    own FIN was captured only after it: a FIN held in a queue the capture sees the far side of."""
    closed = next((change.time_ns for change in endpoint.states if change.new == "FIN-WAIT-1"), None)
    own = [frame for frame in frames if frame.stream == endpoint.stream and frame.protocol == "tcp"]
    mine = next((f for f in own if f.record.tcp_flags & FIN and _sent_by(endpoint, f)), None)
    peers = next((f for f in own if f.record.tcp_flags & FIN and not _sent_by(endpoint, f)), None)
    if closed is None or mine is None or peers is None:
        return False
    return closed < (peers.record.timestamp_ns or 0) < (mine.record.timestamp_ns or 0)


def _passed_within_one_segment(endpoint: EndpointKernel) -> set[str]:
    """States the kernel entered and left again before the next frame was captured."""
    passing = set()
    for change, following in zip(endpoint.states, endpoint.states[1:], strict=False):
        if change.frame == following.frame and change.frame:
            passing.add(change.new)
    return passing


def _handed_over_in_fin_wait_2(endpoint: EndpointKernel) -> bool:
    """Whether the socket's record ends with its hand-over to a time-wait socket still in FIN-WAIT-2."""
    last = endpoint.states[-1] if endpoint.states else None
    return last is not None and (last.kernel_new, last.new) == ("CLOSE", "FIN-WAIT-2")


def note_states(story: KernelStory, frames: Sequence[FrameAnalysis]) -> None:
    """Note, on each kernel state change, where the kernel's record differs from the states inferred
    from the packets (RFC 9293's table), in a few words that a figure can show beside the state:

    * a state the kernel entered and left while it processed one frame (FIN-WAIT-2 between a FIN+ACK's
      ACK and its FIN; SYN-RECEIVED of an accepted socket, made at the handshake's ACK from a request
      socket that no tracepoint reports): ``kernel: within #9; RFC table: one step`` when the table
      never enters it, ``kernel: within #3; RFC table: from #1`` when it enters it at another frame;
    * the hand-over to a time-wait socket still in FIN-WAIT-2 (see :data:`TIME_WAIT_FROM`):
      ``kernel: a time-wait socket from here (untraced); RFC table: TIME-WAIT at #166``.
    """
    for endpoint in story.endpoints:
        entered = _inferred_entries(endpoint, frames)
        changes = endpoint.states
        for index, change in enumerate(changes):
            # the change that leaves the state (the kernel may set a state twice: CLOSING, CLOSING)
            following = next((later for later in changes[index + 1 :] if later.new != change.new), None)
            note = ""
            if following is not None and change.frame and following.frame == change.frame:
                since = entered.get(change.new)
                if since is None:
                    note = f"kernel: within #{change.frame}; RFC table: one step"
                elif since != change.frame:
                    note = f"kernel: within #{change.frame}; RFC table: from #{since}"
            elif index == len(changes) - 1 and (change.kernel_new, change.new) == ("CLOSE", "FIN-WAIT-2"):
                time_wait = entered.get("TIME-WAIT")
                rfc = f"; RFC table: TIME-WAIT at #{time_wait}" if time_wait else ""
                note = f"kernel: a time-wait socket from here (untraced){rfc}"
            if note:
                changes[index] = replace(change, note=note)


def _inferred_entries(endpoint: EndpointKernel, frames: Sequence[FrameAnalysis]) -> dict[str, int]:
    """The frame at which the analysis first inferred each state of the endpoint."""
    entries: dict[str, int] = {}
    for frame in frames:
        if frame.stream == endpoint.stream and frame.protocol == "tcp":
            state = frame.state if _sent_by(endpoint, frame) else frame.receiver_state
            if state:
                entries.setdefault(str(state), frame.record.number)
    return entries


def zero_window_frames(frames: Sequence[FrameAnalysis], endpoint: EndpointKernel) -> list[FrameAnalysis]:
    """The endpoint's zero-window advertisements (for the checks of its Recv-Q)."""
    return [
        frame
        for frame in frames
        if frame.stream == endpoint.stream and _sent_by(endpoint, frame) and frame.analysis & ZERO_WINDOW
    ]


__all__ = [
    "INFINITE_SSTHRESH",
    "EndpointKernel",
    "KernelMark",
    "KernelStateChange",
    "KernelStory",
    "ProbeSample",
    "QueueSample",
    "SocketCall",
    "StateDifference",
    "compare_states",
    "inferred_states",
    "join_kernel",
    "kernel_states",
    "note_states",
    "segment_size",
]
