"""Chapter 0: a socket's story. What each call of the programs caused on the wire, and the states both ends
passed through, measured from a capture and the kernel events recorded beside it.

The programs call ``connect()``, ``send()``, ``recv()``, ``close()``; the kernel turns them into
segments (RFC 9293 s3.5 opening, s3.8 data, s3.6 closing) and changes the socket's state. Here
each call is matched to the frames it caused or consumed (:func:`calls_and_segments`), each end's
state path as its kernel recorded it is set beside RFC 9293's (:func:`state_paths`), and both closes
are told apart (:func:`closes`): the end that closes first sends the first FIN and waits in TIME-WAIT,
the other answers from CLOSE-WAIT and ends in CLOSED.

Pure: functions of an :class:`~visualizer.chapters.Experiment`'s frames and kernel story.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from visualizer.analysis.sequence import less_than
from visualizer.analysis.states import TRANSITIONS
from visualizer.model import FIN, SYN

if TYPE_CHECKING:
    from visualizer.analysis.kernel import EndpointKernel, SocketCall
    from visualizer.analysis.report import FrameAnalysis
    from visualizer.chapters import Experiment

ACTIVE_PATH = ("CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT")
"""RFC 9293's path of the end that opens and closes first: TCP Peer A of s3.5 Figure 6 (the three-way
handshake) and of s3.6 Figure 12 (the normal close), up to TIME-WAIT (CLOSED 2 MSL later)."""
PASSIVE_PATH = ("LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED")
"""TCP Peer B of the same figures: it listens, is opened, and closes second."""
FIGURE_5_ARROWS = {
    ("CLOSED", "SYN-SENT"): "active OPEN / snd SYN",
    ("LISTEN", "SYN-RECEIVED"): "rcv SYN / snd SYN,ACK",
    ("SYN-SENT", "ESTABLISHED"): "rcv SYN,ACK / snd ACK",
    ("SYN-RECEIVED", "ESTABLISHED"): "rcv ACK of SYN",
    ("ESTABLISHED", "FIN-WAIT-1"): "CLOSE / snd FIN",
    ("ESTABLISHED", "CLOSE-WAIT"): "rcv FIN / snd ACK",
    ("FIN-WAIT-1", "FIN-WAIT-2"): "rcv ACK of FIN",
    ("FIN-WAIT-2", "TIME-WAIT"): "rcv FIN / snd ACK",
    ("CLOSE-WAIT", "LAST-ACK"): "CLOSE / snd FIN",
    ("LAST-ACK", "CLOSED"): "rcv ACK of FIN",
}
"""What RFC 9293 s3.3.2 Figure 5 writes on the arrows of the two paths (event / action)."""


@dataclass(frozen=True, slots=True)
class CallEffect:
    """A socket call and the frames it caused (connect: the SYN; send: its bytes; close: the FIN) or
    consumed (recv: the frames that delivered its bytes, or the peer's FIN for the end of the stream)."""

    side: str
    """``client`` or ``server``."""
    call: SocketCall
    frames: tuple[int, ...]
    what: str
    """What those frames are, in a few words: ``12 bytes (seq 1-12)``, ``SYN``, ``FIN``."""


@dataclass(frozen=True, slots=True)
class Step:
    old: str
    new: str
    arrow: str
    """What RFC 9293 Figure 5 writes on this step's arrow (``rcv SYN,ACK / snd ACK``); empty for a step
    off the two paths of :data:`FIGURE_5_ARROWS`."""
    in_table: bool
    """The state table (:data:`~visualizer.analysis.states.TRANSITIONS`) has an event for this step."""
    frame: int
    """The last frame captured at or before the kernel's change (0: none yet)."""
    note: str = ""
    """Where the kernel's timing differs from the RFC table's inference (see ``note_states``)."""


@dataclass(frozen=True, slots=True)
class StatePath:
    side: str
    endpoint: str
    kernel: tuple[str, ...]
    """The states the kernel's socket passed through, its first state included."""
    steps: tuple[Step, ...]
    rfc: tuple[str, ...]
    """RFC 9293's path for this side (:data:`ACTIVE_PATH` or :data:`PASSIVE_PATH`)."""

    @property
    def equals_rfc(self) -> bool:
        return self.kernel == self.rfc

    @property
    def every_step_in_the_table(self) -> bool:
        """Each step is an arrow of RFC 9293 Figure 5 (the state table)."""
        return all(step.in_table for step in self.steps)


@dataclass(frozen=True, slots=True)
class Close:
    """One end's close: the call, its FIN, the peer's ACK of it, where the end's states ended."""

    side: str
    call: SocketCall
    fin: int
    acked_by: int
    """The first frame of the peer that acknowledges the FIN (0: none captured)."""
    first: bool
    """This end closed first (the active close, RFC 9293 s3.6)."""
    last_state: str


def side_of(experiment: Experiment, endpoint: EndpointKernel, stream: int = 0) -> str:
    """``client`` for the end that sent the SYN (the conversation's side A), else ``server``."""
    conversation = experiment.conversation(stream)
    return "client" if (endpoint.address, endpoint.port) == (conversation.address_a, conversation.port_a) else "server"


def _sent_by(frame: FrameAnalysis, endpoint: EndpointKernel) -> bool:
    return (frame.record.source, frame.record.source_port) == (endpoint.address, endpoint.port)


def _time(frame: FrameAnalysis) -> int:
    return frame.record.timestamp_ns or 0


def _first_sent(frames: list[FrameAnalysis], endpoint: EndpointKernel, flag: int, after_ns: int) -> int:
    """The first frame the endpoint sent with ``flag`` at or after ``after_ns`` (0: none)."""
    return next(
        (
            f.record.number
            for f in frames
            if _sent_by(f, endpoint) and f.record.tcp_flags & flag and _time(f) >= after_ns
        ),
        0,
    )


def _effect(frames: list[FrameAnalysis], endpoint: EndpointKernel, call: SocketCall) -> tuple[tuple[int, ...], str]:
    if call.call in ("send", "recv") and call.sequence is not None:
        first, end = call.sequence
        return call.frames, f"{end - first} bytes (seq {first}-{end - 1})"
    if call.call == "recv" and call.result == 0:  # the end of the stream: the peer's FIN arrived before it returned
        peer_fins = [
            f.record.number
            for f in frames
            if not _sent_by(f, endpoint) and f.record.tcp_flags & FIN and _time(f) <= call.end_ns
        ]
        return tuple(peer_fins[-1:]), "the peer's FIN: the end of its stream"
    if call.call == "connect":
        syn = _first_sent(frames, endpoint, SYN, call.time_ns)
        return (syn,) if syn else (), "SYN"
    if call.call == "close" or (call.call == "shutdown" and call.detail in ("SHUT_WR", "SHUT_RDWR")):
        fin = _first_sent(frames, endpoint, FIN, call.time_ns)
        return (fin,) if fin else (), "FIN"
    if call.call == "accept":
        opened = next((change.frame for change in endpoint.states if change.new == "ESTABLISHED"), 0)
        return (opened,) if opened else (), "the connection the handshake established"
    return (), ""


def calls_and_segments(experiment: Experiment, stream: int = 0) -> list[CallEffect]:
    """Each call of both programs on the conversation's sockets (the listener's socket(), bind() and
    listen() left out: they send nothing) with the frames it caused or consumed, in time order."""
    frames = experiment.frames_of(stream)
    effects = []
    for endpoint in experiment.endpoints(stream):
        side = side_of(experiment, endpoint, stream)
        for call in endpoint.calls:
            found, what = _effect(frames, endpoint, call)
            if what:
                effects.append(CallEffect(side, call, found, what))
    return sorted(effects, key=lambda effect: effect.call.time_ns)


def in_table(old: str, new: str) -> bool:
    """Whether RFC 9293's state table (Figure 5, as :mod:`visualizer.analysis.states` holds it) goes from
    ``old`` to ``new`` on some event."""
    return any((state, following) == (old, new) for (state, _), following in TRANSITIONS.items())


def state_paths(experiment: Experiment, stream: int = 0) -> list[StatePath]:
    """Each end's states as its kernel changed them (``inet_sock_set_state``), step by step with the event of
    RFC 9293's table that makes each step, beside RFC 9293's path for that end (client first)."""
    paths = []
    for endpoint in experiment.endpoints(stream):
        if not endpoint.states:
            continue
        side = side_of(experiment, endpoint, stream)
        kernel = (endpoint.states[0].old, *(change.new for change in endpoint.states))
        steps = tuple(
            Step(
                change.old,
                change.new,
                FIGURE_5_ARROWS.get((change.old, change.new), ""),
                in_table(change.old, change.new),
                change.frame,
                change.note,
            )
            for change in endpoint.states
        )
        rfc = ACTIVE_PATH if side == "client" else PASSIVE_PATH
        paths.append(StatePath(side, endpoint.name, kernel, steps, rfc))
    return sorted(paths, key=lambda path: path.side)


def closes(experiment: Experiment, stream: int = 0) -> list[Close]:
    """Both ends' closes, the first one first: the close() (or shutdown) that sent each FIN, and its ACK."""
    frames = experiment.frames_of(stream)
    by_number = {frame.record.number: frame for frame in frames}
    found: list[Close] = []
    for effect in calls_and_segments(experiment, stream):
        if effect.what != "FIN" or not effect.frames:
            continue
        fin = by_number[effect.frames[0]]
        endpoint = next(e for e in experiment.endpoints(stream) if side_of(experiment, e, stream) == effect.side)
        acked_by = next(
            (
                f.record.number
                for f in frames
                if not _sent_by(f, endpoint)
                and f.record.number > fin.record.number
                and less_than(fin.seq + fin.record.payload_length, f.ack)  # covers the FIN's own number
            ),
            0,
        )
        last = endpoint.states[-1].new if endpoint.states else ""
        found.append(Close(effect.side, effect.call, fin.record.number, acked_by, not found, last))
    return found
