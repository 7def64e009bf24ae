"""Chapter 4's measurements: what manages the queues?

Each socket has a send queue (bytes written, not yet acknowledged: ``ss``'s Send-Q) and a receive
queue (bytes received in order, not yet read: Recv-Q). The receiver tells the sender how much more
it may send, the window (RFC 9293 s3.8.6); when its program stops reading, Recv-Q fills, the window
closes to zero, the sender keeps its bytes in Send-Q, probes the window (s3.8.6.1) and sends again
when a window update says there is room (s3.8.6.2). The ``zero-window`` scenario makes it happen:
a receive buffer of 4096 bytes (``SO_RCVBUF``) and a reader that waits 1.5 s.

What Linux makes of ``SO_RCVBUF``: it doubles the value (``getsockopt`` returns 8192) to make room
for its own bookkeeping, and counts against it the memory of every buffer it queues (``truesize``:
the payload and the packet buffer around it), not just the payload. The window it advertises is its
estimate of how much *payload* still fits: at first half of the doubled value (the 4096 of the
SYN-ACK), later the share of payload it measured in the buffers it received (``scaling_ratio``;
older kernels kept to half: ``tcp_adv_win_scale``), rounded down to whole segments when, as here,
the window is not scaled. So Recv-Q stops where the window accounting stops it: at the window's
right edge, below the 8192 of memory (on this project's kernel, above the 4096 asked for).
:func:`zero_window` measures where, from the recording.

Pure functions of an :class:`~visualizer.chapters.Experiment`'s data: no IO, no drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from visualizer.analysis.report import WINDOW_UPDATE, ZERO_WINDOW, ZERO_WINDOW_PROBE
from visualizer.model import SYN

if TYPE_CHECKING:
    from visualizer.analysis.kernel import EndpointKernel, QueueSample, SocketCall
    from visualizer.analysis.report import FrameAnalysis

KERNEL_DOUBLES_RCVBUF = 2
"""``sock_setsockopt``: ``sk_rcvbuf = 2 * SO_RCVBUF`` ("the kernel doubles this value to allow space for
bookkeeping overhead", socket(7))."""


@dataclass(frozen=True, slots=True)
class ZeroWindow:
    """A zero-window episode, from the capture and the kernel's recording of both ends."""

    receiver: str
    sender: str
    first_window: int
    """The window of the receiver's SYN (its SYN-ACK), before any data."""
    first_window_frame: int
    right_edge: int
    """The highest relative sequence number the receiver's windows ever allowed, plus one (ack + window)."""
    zero_windows: tuple[int, ...]
    """The receiver's segments that advertise a zero window."""
    recv_q_at_zero: tuple[int, ...]
    """The receiver's Recv-Q as each of them was sent (kernel recording)."""
    recv_q_peak: int
    closed_ns: tuple[int, int]
    """From the first zero-window advertisement to the window update that reopens it."""
    probes: tuple[int, ...]
    """The sender's zero-window probes."""
    probe_times_ns: tuple[int, ...]
    kernel_rcv_wnd_at_probes: tuple[int, ...]
    """The receiver's own ``rcv_wnd`` as each probe arrived (``tcp_probe``), in the probes' order."""
    update: int
    """The window update: the receiver's first segment after the zero windows with room again."""
    update_window: int
    send_q_while_closed: int
    """The sender's largest Send-Q while the window was zero: the bytes written that the window refused."""
    blocked_send: SocketCall | None
    """The sender's send() in the kernel for the whole time the window was zero (None: no such call)."""

    @property
    def offered(self) -> int:
        """Bytes the receiver's windows let in: the right edge less the first byte's number (1)."""
        return self.right_edge - 1

    @property
    def probes_while_closed(self) -> bool:
        return all(self.closed_ns[0] < time_ns < self.closed_ns[1] for time_ns in self.probe_times_ns)


def receive_buffer_memory(asked: int) -> int:
    """The receive buffer Linux reserves for ``SO_RCVBUF`` ``asked`` (bytes of memory, overhead included)."""
    return KERNEL_DOUBLES_RCVBUF * asked


def queue_at(samples: Sequence[QueueSample], time_ns: int) -> QueueSample | None:
    """The last sample at or before ``time_ns`` (None before the first)."""
    found = None
    for sample in samples:
        if sample.time_ns > time_ns:
            break
        found = sample
    return found


def zero_window(frames: Sequence[FrameAnalysis], endpoints: Sequence[EndpointKernel]) -> ZeroWindow | None:
    """The first zero-window episode of one TCP conversation (None: its window never closed, or the
    kernel's side of the receiver or of the sender was not recorded)."""
    zeros = [frame for frame in frames if frame.analysis & ZERO_WINDOW]
    if not zeros:
        return None
    first = zeros[0]
    receiver_name = f"{first.record.source}:{first.record.source_port}"
    receiver = next((endpoint for endpoint in endpoints if endpoint.name == receiver_name), None)
    sender = next((endpoint for endpoint in endpoints if endpoint.name != receiver_name), None)
    if receiver is None or sender is None:
        return None
    from_receiver = [frame for frame in frames if frame.from_initiator == first.from_initiator]
    start = from_receiver.index(first)
    update = next(
        (frame for frame in from_receiver[start:] if frame.window > 0 and frame.analysis & WINDOW_UPDATE), None
    )
    end_ns = ((update or frames[-1]).record.timestamp_ns) or 0
    episode = [frame for frame in zeros if update is None or frame.record.number < update.record.number]
    syn = next(frame for frame in from_receiver if frame.record.tcp_flags & SYN)
    before_update = from_receiver[: from_receiver.index(update)] if update is not None else from_receiver
    edges = [frame.ack + frame.window for frame in before_update if not frame.record.tcp_flags & SYN]
    probes = [
        frame for frame in frames if frame.analysis & ZERO_WINDOW_PROBE and frame.from_initiator != first.from_initiator
    ]
    probe_numbers = {frame.record.number for frame in probes}
    rcv_wnd = {sample.frame: sample.rcv_wnd for sample in receiver.probes if sample.frame in probe_numbers}
    closed = (first.record.timestamp_ns or 0, end_ns)
    recv_q = [queue_at(receiver.queues, frame.record.timestamp_ns or 0) for frame in episode]
    held = [sample.send_q for sample in sender.queues if closed[0] <= sample.time_ns <= closed[1]]
    before = queue_at(sender.queues, closed[0])
    blocked = next(
        (call for call in sender.calls if call.call == "send" and call.time_ns < closed[0] and call.end_ns > closed[1]),
        None,
    )
    return ZeroWindow(
        receiver=receiver_name,
        sender=sender.name,
        first_window=syn.window,
        first_window_frame=syn.record.number,
        right_edge=max(edges, default=1),
        zero_windows=tuple(frame.record.number for frame in episode),
        recv_q_at_zero=tuple(sample.recv_q if sample is not None else 0 for sample in recv_q),
        recv_q_peak=max((sample.recv_q for sample in receiver.queues), default=0),
        closed_ns=closed,
        probes=tuple(frame.record.number for frame in probes),
        probe_times_ns=tuple(frame.record.timestamp_ns or 0 for frame in probes),
        kernel_rcv_wnd_at_probes=tuple(rcv_wnd.get(frame.record.number, -1) for frame in probes),
        update=update.record.number if update is not None else 0,
        update_window=update.window if update is not None else 0,
        send_q_while_closed=max([*held, before.send_q if before is not None else 0]),
        blocked_send=blocked,
    )
