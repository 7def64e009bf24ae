"""Sans-IO analysis of TCP and UDP conversations, the way Wireshark does it.

Feed packet records in capture order to :meth:`Analyzer.add` (which returns the
frames whose analysis is final, in frame order) and call :meth:`Analyzer.flush`
at the end of the capture for the rest; or :meth:`Analyzer.feed` many records
for the report alone. :meth:`Analyzer.finish` returns the :class:`Report`. Time
is the records' timestamps, never a clock; nothing here reads a file or a socket.

The TCP rules follow Wireshark's ``tcp_analyze_sequence_number``
(epan/dissectors/packet-tcp.c) so that a frame's flags can be cross-checked in
Wireshark: the same state per direction (next expected sequence number, last
ACK, last window, duplicate-ACK count), the same order of tests and the same
thresholds. Where sockstory knowingly differs, the rule says so:

* A Linux zero-window probe (a 0- or 1-byte segment at snd.una - 1 while the
  peer advertises a zero window, RFC 9293 s3.8.6.1) is called
  ``zero_window_probe``; Wireshark calls it ``keep_alive``.
* A SYN-ACK of a simultaneous open (RFC 9293 Figure 7: the sender's own SYN is
  out and the peer's SYN has come in) is ``simultaneous_open``; Wireshark calls
  it a retransmission.

On top of Wireshark's flags the analysis explains (see ``report.ANALYSIS_NAMES``; what needs the
memory of every first transmission, a retransmission's original and ``not_received``, only when
frames are analysed one by one with :meth:`Analyzer.add` or ``keep_frames``, not on the fast
report-only path):
each retransmission names its original, a fast retransmission the duplicate
ACKs behind it, a duplicate ACK the ACK it repeats and its SACK blocks; RSTs are
accepted, challenged or ignored (RFC 5961); segments with a bad checksum are
discarded; data lost after the capture point is ``not_received``. The
endpoints' states come from :mod:`visualizer.analysis.states`, which may revise
a frame's states after it was seen: frames are therefore held until nothing can
change them any more (at most :data:`HOLD_LIMIT` frames).

Streams are numbered in order of first appearance, like tcp.stream and
udp.stream; a SYN with a new initial sequence number on a known port pair
starts a new stream ("reused_ports").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice, repeat

from visualizer.analysis.report import (
    ACK_LOST_SEGMENT,
    ANALYSIS_BITS,
    DUPLICATE_ACK,
    FAST_RETRANSMISSION,
    KEEP_ALIVE,
    KEEP_ALIVE_ACK,
    LOST_SEGMENT,
    OUT_OF_ORDER,
    RETRANSMISSION,
    REUSED_PORTS,
    SIMULTANEOUS_OPEN,
    SPURIOUS_RETRANSMISSION,
    WINDOW_FULL,
    WINDOW_UPDATE,
    ZERO_WINDOW,
    ZERO_WINDOW_PROBE,
    ZERO_WINDOW_PROBE_ACK,
    ConversationSummary,
    Finding,
    FrameAnalysis,
    Report,
    analysis_names,
)
from visualizer.analysis.sequence import HALF_SPACE, SEQUENCE_MASK, relative
from visualizer.analysis.states import ConnectionStates, Mark, State
from visualizer.model import (
    ACK,
    FIN,
    PROTOCOL_ICMP,
    PROTOCOL_ICMPV6,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    RST,
    SYN,
    PacketRecord,
    SegmentRun,
    parse_tcp_options,
    window_scale_of,
)

# Wireshark's thresholds (packet-tcp.c), in nanoseconds.
FAST_RETRANSMISSION_WINDOW_NS = 20_000_000
"""A retransmission within 20 ms of the second duplicate ACK is "fast" (cf. RFC 5681 s3.2)."""
OUT_OF_ORDER_DEFAULT_THRESHOLD_NS = 3_000_000
"""Without a measured first RTT, a segment filling a gap within 3 ms is out of order."""
FAST_RETRANSMISSION_DUPLICATE_ACKS = 2
"""Wireshark counts a fast retransmission after 2 duplicate ACKs, not RFC 5681's 3: some may be missing."""
MAXIMUM_WINDOW_SHIFT = 14
"""RFC 7323 s2.3: a window-scale shift above 14 is taken as 14."""
HOLD_LIMIT = 20_000
"""Frames held for revision at most; beyond, the oldest is released as it stands (bounded memory)."""
_NOT_FIRST_TRANSMISSION = RETRANSMISSION | OUT_OF_ORDER | KEEP_ALIVE | ZERO_WINDOW_PROBE
ORIGINALS_LIMIT = 8192
"""First transmissions remembered per direction at most (to name a retransmission's original)."""
ORIGINALS_PRUNE = 64
"""Beyond this many (and twice what was kept last time), the acknowledged ones are forgotten."""

_UNKNOWN_WINDOW = 0xFFFFFFFF
_SYN_FIN_RST = SYN | FIN | RST
_SYN_FIN = SYN | FIN
_KEEP_ALIVE_OR_PROBE = KEEP_ALIVE | ZERO_WINDOW_PROBE
_PROTOCOL_NAMES = {PROTOCOL_TCP: "tcp", PROTOCOL_UDP: "udp", PROTOCOL_ICMP: "icmp", PROTOCOL_ICMPV6: "icmpv6"}
_ESTABLISHED = State.ESTABLISHED
_new_frame_analysis = tuple.__new__  # builds the NamedTuple from one tuple, without keyword handling


class _Direction:
    """What one endpoint has sent, as Wireshark's ``tcp_flow_t`` keeps it, and what explains it."""

    __slots__ = (
        "address",
        "port",
        "base_seq",
        "base_set",
        "nextseq",
        "nextseq_time",
        "maxseqtobeacked",
        "lastack",
        "lastack_time",
        "lastack_frame",
        "window",
        "window_scale",
        "dupacknum",
        "duplicate_acks",
        "last_flags",
        "last_frame",
        "frames",
        "bytes",
        "sent_end",
        "originals",
        "originals_bound",
        "unacknowledged",
        "awaiting_ack",
        "bad_checksum",
        "plain_syn",
    )

    def __init__(self, address: str, port: int) -> None:
        self.address = address
        self.port = port
        self.base_seq = 0
        self.base_set = False
        self.nextseq = 0
        self.nextseq_time = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastack_time = 0
        self.lastack_frame = 0  # the frame that first carried the current ACK number
        self.window = _UNKNOWN_WINDOW
        self.window_scale = -1  # -1: not known; -2: no scaling (Wireshark's convention)
        self.dupacknum = 0
        self.duplicate_acks: list[tuple[int, tuple[tuple[int, int], ...]]] = []
        """The duplicate ACKs of the current ACK number: (frame, SACK blocks, relative)."""
        self.last_flags = 0
        self.last_frame = 0
        self.frames = 0
        self.bytes = 0
        self.sent_end = -1  # one past the last sequence number of data, SYN or FIN sent (not RSTs, not ACKs)
        self.originals: dict[int, tuple[int, int]] = {}
        self.originals_bound = ORIGINALS_PRUNE  # pruned of what the peer acknowledged beyond this size
        """First transmissions: relative sequence number -> (end, frame)."""
        self.unacknowledged: tuple[int, int | None] | None = None
        """(the peer's ACK number, the first transmission holding it): the frame held for revision."""
        self.awaiting_ack: tuple[int, int, int, int] | None = None
        """After a retransmission: (original frame, retransmission frame, its end, its seq) until the peer ACKs."""
        self.bad_checksum: tuple[int, int, int] | None = None
        """A segment captured with a wrong checksum, until the peer acknowledges it or it is sent again:
        (frame, seq, end). Sent again first means its receiver discarded it; acknowledged means the
        checksum was only filled in after the capture point (checksum offload)."""
        self.plain_syn = 0  # the frame of this endpoint's SYN (without ACK), if any


class _Conversation:
    __slots__ = (
        "summary",
        "first",
        "second",
        "states",
        "first_rtt",
        "last_syn_time",
        "synack_seen",
        "handshake_done",
        "teardown",
        "watching",
        "not_received",
        "bases_known",
        "last_time",
        "settled",
    )

    def __init__(self, summary: ConversationSummary, first: _Direction, second: _Direction) -> None:
        self.summary = summary
        self.first = first  # the direction of the first frame (endpoint A)
        self.second = second
        self.states: ConnectionStates  # set by the analyzer right after
        self.first_rtt = 0
        self.last_syn_time = 0
        self.synack_seen = False
        self.handshake_done = False
        self.teardown = False
        """A FIN or RST was seen: the frames from there on are the teardown phase."""
        self.watching = False
        self.not_received: set[int] = set()
        """First transmissions already found not received (a finding once, however often it is re-sent)."""
        """A later segment may still explain an earlier one (see ``Analyzer._watch``)."""
        self.bases_known = False
        self.last_time = summary.first_time_ns
        self.settled = False
        """Both endpoints ESTABLISHED with nothing to revise: plain data and ACKs change no state."""


class _Held:
    """A frame whose analysis may still change (its states, a later finding about it)."""

    __slots__ = ("fields", "analysis", "findings", "mark", "conversation")

    def __init__(
        self, fields: list[object], analysis: int, mark: Mark | None, conversation: _Conversation | None
    ) -> None:
        self.fields = fields
        self.analysis = analysis
        self.findings: list[Finding] = []
        self.mark = mark
        self.conversation = conversation


# What the flow table holds for each direction of a conversation.
_Entry = tuple[_Conversation, _Direction, _Direction, bool]


class Analyzer:
    """Streaming analysis: :meth:`add` each frame (or :meth:`feed` many), :meth:`flush`, then :meth:`finish`."""

    def __init__(self, *, source: str = "", keep_frames: bool = False) -> None:
        self._report = Report(source=source)
        self._keep_frames = keep_frames
        # (source, destination, source port, destination port) -> the conversation and its directions
        self._tcp: dict[tuple[str, str, int, int], _Entry] = {}
        self._udp: dict[tuple[str, str, int, int], tuple[ConversationSummary, bool]] = {}
        self._tcp_conversations: list[_Conversation] = []
        self._tcp_streams = 0
        self._udp_streams = 0
        self._frames = 0
        self._first_time: int | None = None
        self._held: deque[_Held] = deque()
        self._held_by_frame: dict[int, _Held] = {}
        self._closed = False

    # -- the public interface ---------------------------------------------------------------

    def add(self, record: PacketRecord) -> list[FrameAnalysis]:
        """Analyse the next frame of the capture; returns the frames whose analysis is now final.

        Usually that is this frame; a frame whose states a later segment may still revise
        (a FIN not yet acknowledged, data not yet acknowledged) comes out later, and
        always in frame order. :meth:`flush` gives the rest at the end of the capture.
        """
        self._add(record, True)
        return self._release()

    def flush(self) -> list[FrameAnalysis]:
        """The capture has ended: settle what is still open and return the frames still held."""
        self._close_states()
        return self._release(everything=True)

    def frames(self, records: Iterable[PacketRecord]) -> Iterable[FrameAnalysis]:
        """Every frame's final analysis, in frame order (:meth:`add` for each record, then :meth:`flush`)."""
        add = self.add
        for record in records:
            yield from add(record)
        yield from self.flush()

    def feed(self, records: Iterable[PacketRecord | SegmentRun]) -> int:
        """Analyse many frames for the report only; the fastest way through a large capture.

        Takes packet records, and also the column runs of plain TCP segments that
        bulk decoding produces (:class:`visualizer.model.SegmentRun`), in frame order.
        Returns how many frames were analysed; the report is the same as with :meth:`add` on each.
        With ``keep_frames`` every frame's analysis also lands in ``report.frame_analyses``.
        """
        done = 0
        build = self._keep_frames
        add_tcp = self._add_tcp
        add = self._add
        feed_run = self._feed_run
        for item in records:
            if isinstance(item, SegmentRun):
                if self._first_time is None:
                    self._first_frame_seen(item.numbers[0], item.timestamps[0])
                feed_run(item)
                done += len(item.numbers)
            elif build:
                add(item, True)
                self._release()
            elif self._first_time is None or item.transport != PROTOCOL_TCP or item.problem:
                add(item, False)
            else:
                add_tcp(item, item.timestamp_ns or 0, False)
                done += 1
        self._frames += done
        return done

    def _first_frame_seen(self, number: int, timestamp: int | None) -> None:
        report = self._report
        if not report.first_frame:
            report.first_frame = number
        if timestamp is not None:
            self._first_time = report.first_time_ns = timestamp

    def finish(self) -> Report:
        """Close the analysis: conversation totals, outcomes and final states."""
        if self._keep_frames:
            self.flush()
        self._close_states()
        report = self._report
        report.frames = self._frames
        for conversation in self._tcp_conversations:
            summary = conversation.summary
            first, second = conversation.first, conversation.second
            summary.frames_a_to_b, summary.bytes_a_to_b = first.frames, first.bytes
            summary.frames_b_to_a, summary.bytes_b_to_a = second.frames, second.bytes
            summary.last_time_ns = conversation.last_time
            summary.state_a, summary.state_b = conversation.states.states(0)
            summary.outcome = conversation.states.outcome()
        report.conversations.sort(key=lambda item: (item.protocol, item.stream))
        report.findings.sort(key=lambda finding: finding.frame)
        return report

    def _close_states(self) -> None:
        if not self._closed:
            self._closed = True
            for conversation in self._tcp_conversations:
                conversation.states.close()

    # -- holding frames until their analysis is final ---------------------------------------

    def _hold(self, number: int, held: _Held) -> _Held:
        self._held.append(held)
        self._held_by_frame[number] = held
        return held

    def _release(self, everything: bool = False) -> list[FrameAnalysis]:
        out: list[FrameAnalysis] = []
        held = self._held
        by_frame = self._held_by_frame
        while held:
            head = held[0]
            number = head.fields[0].number  # type: ignore[attr-defined]
            conversation = head.conversation
            if not everything and conversation is not None and len(held) <= HOLD_LIMIT:
                hold_from = _hold_from(conversation)
                if hold_from is not None and hold_from <= number:
                    break
            held.popleft()
            del by_frame[number]
            out.append(_finished(head))
        if self._keep_frames:
            self._report.frame_analyses.extend(out)
        return out

    def _count(self, summary: ConversationSummary, kind: str) -> None:
        counts = summary.analysis_counts
        counts[kind] = counts.get(kind, 0) + 1
        self._report.analysis_counts[kind] += 1

    def _note(
        self,
        summary: ConversationSummary,
        kind: str,
        frame: int,
        reason: str,
        refers: tuple[int, ...],
        original: int = 0,
    ) -> None:
        """Record a finding (about this frame or an earlier one still held)."""
        finding = Finding(kind, frame, summary.protocol, summary.stream, reason, refers, original)
        report = self._report
        report.findings.append(finding)
        self._count(summary, kind)
        held = self._held_by_frame.get(frame)
        if held is not None:
            held.analysis |= ANALYSIS_BITS[kind]
            held.findings.append(finding)

    def _add(self, record: PacketRecord, build: bool) -> None:
        self._frames += 1
        timestamp = record.timestamp_ns
        if self._first_time is None:
            self._first_frame_seen(record.number, timestamp)
        transport = record.transport
        held: _Held | None
        if transport == PROTOCOL_TCP:
            held = self._add_tcp(record, timestamp or 0, build)
        elif transport == PROTOCOL_UDP:
            held = self._add_udp(record, timestamp or 0, build)
        else:
            held = self._add_other(record, build)
        if record.problem:
            if held is None and build:
                held = self._add_other(record, build)  # a TCP segment the analysis could not place
            report = self._report
            report.undecoded_frames += 1
            protocol, stream = self._stream_of(record)
            finding = Finding("undecoded", record.number, protocol, stream, record.problem)
            report.findings.append(finding)
            if held is not None:
                held.findings.append(finding)

    # -- TCP ----------------------------------------------------------------------------------

    def _new_tcp(self, key: tuple[str, str, int, int], number: int, flags: int, timestamp: int) -> _Entry:
        source, destination, source_port, destination_port = key
        first = _Direction(source, source_port)
        second = _Direction(destination, destination_port)
        summary = ConversationSummary(
            "tcp", self._tcp_streams, source, source_port, destination, destination_port, number, timestamp
        )
        self._tcp_streams += 1
        conversation = _Conversation(summary, first, second)

        def note(kind: str, frame: int, reason: str, refers: tuple[int, ...]) -> None:
            self._note(summary, kind, frame, reason, refers)

        conversation.states = ConnectionStates(
            flags, number, ((source, source_port), (destination, destination_port)), note
        )
        self._tcp_conversations.append(conversation)
        self._report.conversations.append(summary)
        entry = (conversation, first, second, True)
        self._tcp[key] = entry
        self._tcp[(destination, source, destination_port, source_port)] = (conversation, second, first, False)
        return entry

    def _add_tcp(self, record: PacketRecord, now: int, build: bool) -> _Held | None:
        key = (record.source, record.destination, record.source_port, record.destination_port)
        return self._segments(
            (
                (
                    record.number,
                    now,
                    key,
                    record.seq,
                    record.ack,
                    record.tcp_flags,
                    record.window,
                    record.tcp_options,
                    record.payload_length,
                    record.original_length,
                    record if build else None,
                    record.checksum == "bad",
                ),
            )
        )

    def _feed_run(self, run: SegmentRun) -> None:
        """Analyse a run of plain TCP segments given as columns (bulk decoding of large files)."""
        self._segments(zip(*run, repeat(None), repeat(False)))

    def _segments(
        self,
        rows: Iterable[
            tuple[int, int, tuple[str, str, int, int], int, int, int, int, bytes, int, int, PacketRecord | None, bool]
        ],
    ) -> _Held | None:
        """The TCP analysis of segments, one after the other: the per-frame hot path.

        Takes each segment's fields rather than a record so that column runs from
        bulk decoding reach it without a record being built (and without a call per
        frame: a loop here costs 3% less than a call for each row); ``record`` is given
        when the caller wants the frame's analysis back (it is then held until final,
        and the last row's is returned).
        """
        last = None
        tcp = self._tcp
        for (
            number,
            now,
            key,
            raw_seq,
            raw_ack,
            flags,
            raw_window,
            options,
            seglen,
            original_length,
            record,
            bad_checksum,
        ) in rows:
            syn = flags & SYN
            has_ack = flags & ACK
            entry = tcp.get(key)
            analysis = 0
            if entry is None:
                entry = self._new_tcp(key, number, flags, now)
            elif syn and not has_ack and entry[1].base_set and raw_seq != entry[1].base_seq:
                # A new SYN with another ISN on a known port pair: a new connection.
                entry = self._new_tcp(key, number, flags, now)
                analysis = REUSED_PORTS
            conversation, fwd, rev, forward = entry
            fwd.frames += 1
            fwd.bytes += original_length
            conversation.last_time = now
            held = None
            if record is not None:
                held = self._hold(number, _Held([record], 0, None, conversation))

            # Base sequence numbers (Wireshark: the SYN's ISN, or seq - 1 mid-stream; the peer's
            # from the first ACK, as ack - 1).
            if not conversation.bases_known:
                if not fwd.base_set:
                    fwd.base_seq = raw_seq if syn else (raw_seq - 1) & SEQUENCE_MASK
                    fwd.base_set = True
                if has_ack and not rev.base_set:
                    rev.base_seq = (raw_ack - 1) & SEQUENCE_MASK
                    rev.base_set = True
                conversation.bases_known = fwd.base_set and rev.base_set
            seq = (raw_seq - fwd.base_seq) & SEQUENCE_MASK
            ack = (raw_ack - rev.base_seq) & SEQUENCE_MASK if has_ack else raw_ack

            if syn:
                # Window scaling (RFC 7323 s2.2): announced in SYNs, applied to every later segment.
                shift = window_scale_of(options)
                if shift is not None:
                    fwd.window_scale = min(shift, MAXIMUM_WINDOW_SHIFT)
                if has_ack:
                    conversation.synack_seen = True
                    if shift is None or rev.window_scale == -2:
                        fwd.window_scale = rev.window_scale = -2
                else:
                    fwd.plain_syn = number
                    conversation.last_syn_time = now
                    if shift is None:
                        fwd.window_scale = rev.window_scale = -2
                window = raw_window
            else:
                scale = fwd.window_scale
                window = raw_window << scale if scale >= 0 else raw_window
                # Wireshark's first RTT: from the latest SYN to the first ACK after it.
                if not conversation.first_rtt and has_ack and conversation.last_syn_time:
                    conversation.first_rtt = now - conversation.last_syn_time

            # --- Wireshark's tcp_analyze_sequence_number, test by test. ---
            nextseq = fwd.nextseq
            rev_window = rev.window
            syn_fin_rst = flags & _SYN_FIN_RST
            duplicate_ack_number = 0
            if seglen == 1 and seq == nextseq and rev_window == 0:
                # RFC 9293 s3.8.6.1 zero-window probe: one byte at the window's edge.
                analysis |= ZERO_WINDOW_PROBE
            else:
                if window == 0 and not syn_fin_rst:
                    analysis |= ZERO_WINDOW
                if seq != nextseq and nextseq and (seq - nextseq) & SEQUENCE_MASK < HALF_SPACE and not flags & RST:
                    analysis |= LOST_SEGMENT
                if seglen == 0:
                    if not syn_fin_rst:
                        if seq == (nextseq - 1) & SEQUENCE_MASK:
                            # Our deviation: a keep-alive-shaped segment into a zero window is Linux's probe.
                            analysis |= ZERO_WINDOW_PROBE if rev_window == 0 else KEEP_ALIVE
                        elif seq == nextseq and ack == fwd.lastack:
                            if window != fwd.window:
                                if window:
                                    analysis |= WINDOW_UPDATE
                            elif window and rev.last_flags & KEEP_ALIVE:
                                analysis |= KEEP_ALIVE_ACK
                            elif window == 0 and rev.last_flags & ZERO_WINDOW_PROBE:
                                analysis |= ZERO_WINDOW_PROBE_ACK
                            elif window:
                                # -1 marks "ACKed unseen segment already reported"; a duplicate counts as the first.
                                fwd.dupacknum = duplicate_ack_number = 1 if fwd.dupacknum < 0 else fwd.dupacknum + 1
                                analysis |= DUPLICATE_ACK
                                fwd.duplicate_acks.append((number, _sack_blocks(options, rev.base_seq)))
                elif not syn_fin_rst:
                    if seglen == 1 and seq == (nextseq - 1) & SEQUENCE_MASK:
                        analysis |= ZERO_WINDOW_PROBE if rev_window == 0 else KEEP_ALIVE
                    scale = rev.window_scale
                    if (
                        scale != -1
                        and (seq + seglen) & SEQUENCE_MASK
                        == (rev.lastack + (rev_window << (0 if scale == -2 else scale))) & SEQUENCE_MASK
                    ):
                        analysis |= WINDOW_FULL
            if ack != fwd.lastack:
                fwd.dupacknum = 0
                fwd.lastack_frame = number
                if fwd.duplicate_acks:
                    fwd.duplicate_acks = []
            mark = rev.maxseqtobeacked
            if has_ack and mark and ack != mark and (ack - mark) & SEQUENCE_MASK < HALF_SPACE:
                # Flag once per gap. When the peer has sent past the mark, move the mark up;
                # while it only sends pure ACKs, its duplicate-ACK counter (-1) says "flagged".
                gap = (rev.nextseq - mark) & SEQUENCE_MASK
                if gap and gap < HALF_SPACE:
                    rev.maxseqtobeacked = rev.nextseq
                    analysis |= ACK_LOST_SEGMENT
                else:
                    if rev.dupacknum == 0:
                        analysis |= ACK_LOST_SEGMENT
                    rev.dupacknum = -1
            syn_or_fin = flags & _SYN_FIN
            occupies = seglen or syn_or_fin  # takes sequence space: data, SYN or FIN (RFC 9293 s3.4)
            segment_end = (seq + seglen + (1 if syn_or_fin else 0)) & SEQUENCE_MASK
            if occupies and not analysis & _KEEP_ALIVE_OR_PROBE:
                not_advanced = seq != nextseq and nextseq and (nextseq - seq) & SEQUENCE_MASK < HALF_SPACE
                if not_advanced and seglen > 1 and (nextseq - 1) & SEQUENCE_MASK == seq:
                    not_advanced = False  # new data after a possible zero-window probe
                lastack = rev.lastack
                if seglen and lastack and (lastack - seq - seglen) & SEQUENCE_MASK < HALF_SPACE:
                    # Data the receiver had already acknowledged.
                    analysis |= SPURIOUS_RETRANSMISSION | RETRANSMISSION
                elif not_advanced:
                    if (
                        rev.dupacknum >= FAST_RETRANSMISSION_DUPLICATE_ACKS
                        and lastack == seq
                        and now - rev.lastack_time < FAST_RETRANSMISSION_WINDOW_NS
                    ):
                        analysis |= FAST_RETRANSMISSION | RETRANSMISSION
                    elif (
                        now - fwd.nextseq_time < (conversation.first_rtt or OUT_OF_ORDER_DEFAULT_THRESHOLD_NS)
                        and nextseq != segment_end  # SYN and FIN count (tshark 4.0 agrees on duplicated SYN/FIN)
                    ):
                        analysis |= OUT_OF_ORDER
                    else:
                        analysis |= RETRANSMISSION
            sent_before = fwd.sent_end
            if not analysis & ZERO_WINDOW_PROBE:  # probes do not advance the sequence space
                if occupies and (fwd.sent_end < 0 or (segment_end - fwd.sent_end) & SEQUENCE_MASK < HALF_SPACE):
                    fwd.sent_end = segment_end
                if not nextseq or (segment_end != nextseq and (segment_end - nextseq) & SEQUENCE_MASK < HALF_SPACE):
                    fwd.nextseq = segment_end
                    fwd.nextseq_time = now
                if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
                    fwd.maxseqtobeacked = fwd.nextseq
            fwd.window = window
            fwd.lastack = ack
            fwd.lastack_time = now
            fwd.last_flags = analysis

            # --- What the flags refer to, and what the receiver made of the segment. ---
            if syn and has_ack and analysis & RETRANSMISSION and fwd.plain_syn and rev.plain_syn:
                # Both sent a SYN: this SYN-ACK answers the peer's (RFC 9293 Figure 7), it repeats nothing.
                analysis = analysis & ~RETRANSMISSION | SIMULTANEOUS_OPEN
            if record is not None and occupies and not analysis & _NOT_FIRST_TRANSMISSION:
                # Remembered for per-frame analysis only: it costs the report-only path a third of its speed.
                originals = fwd.originals
                originals[seq] = (segment_end, number)
                fwd.unacknowledged = None  # the peer's ACK may point at this one
                if len(originals) > fwd.originals_bound:
                    fwd.originals = _unacknowledged(originals, rev.lastack if rev.lastack_frame else None)
                    fwd.originals_bound = max(ORIGINALS_PRUNE, 2 * len(fwd.originals))
            if conversation.watching or bad_checksum:
                self._watch(
                    conversation, fwd, rev, number, flags, seq, ack, seglen, segment_end, analysis, bad_checksum
                )
            if analysis:
                self._record_findings(number, conversation, fwd, rev, analysis, duplicate_ack_number, seq, seglen)
            fwd.last_frame = number

            # --- The endpoints' states (RFC 9293 s3.3.2), from the same segment. ---
            if syn_fin_rst or not conversation.settled:
                states = conversation.states
                state_mark: Mark | None = states.segment(
                    0 if forward else 1,
                    number,
                    flags,
                    seq,
                    ack,
                    segment_end,
                    seglen,
                    rev.lastack if rev.lastack_frame else None,
                    rev.window if rev.window != _UNKNOWN_WINDOW else None,
                    sent_before if sent_before >= 0 else None,
                )
                conversation.settled = states.settled
            else:
                state_mark = None
            if held is None:
                continue
            held.analysis |= analysis
            held.mark = state_mark
            if syn:
                window_scale = 0
            else:
                scale = fwd.window_scale
                window_scale = 1 << scale if scale >= 0 else scale
            if syn:
                phase = "handshake"
            elif not conversation.handshake_done and conversation.synack_seen and not flags & (FIN | RST):
                conversation.handshake_done = True  # the ACK that completes the three-way handshake
                phase = "handshake"
            elif conversation.teardown or flags & (FIN | RST):
                conversation.teardown = True
                phase = "teardown"
            else:
                conversation.handshake_done = True
                phase = "data"
            held.fields.extend(
                (
                    "tcp",
                    conversation.summary.stream,
                    seq,
                    ack,
                    segment_end if occupies else seq,
                    window,
                    window_scale,
                    0,
                    duplicate_ack_number,
                    "",
                    "",
                    phase,
                    forward,
                )
            )
            last = held
        return last

    def _watch(
        self,
        conversation: _Conversation,
        fwd: _Direction,
        rev: _Direction,
        number: int,
        flags: int,
        seq: int,
        ack: int,
        seglen: int,
        segment_end: int,
        analysis: int,
        bad_checksum: bool,
    ) -> None:
        """What a conversation waits for to explain a frame already seen: a retransmission waiting for
        the receiver's next ACK (not_received?), a segment captured with a wrong checksum (discarded?)."""
        awaiting = rev.awaiting_ack
        if awaiting is not None and flags & ACK and ack != awaiting[3]:
            rev.awaiting_ack = None
            beyond = (ack - awaiting[2]) & SEQUENCE_MASK
            if beyond and beyond < HALF_SPACE and awaiting[0] not in conversation.not_received:
                conversation.not_received.add(awaiting[0])
                self._note(
                    conversation.summary,
                    "not_received",
                    awaiting[0],
                    f"never acknowledged before it was sent again (#{awaiting[1]}); the first ACK after that "
                    f"(#{number}) covers later data too: it was lost after the capture point",
                    (awaiting[1], number),
                )
        bad = rev.bad_checksum
        if bad is not None and flags & ACK and (ack - bad[2]) & SEQUENCE_MASK < HALF_SPACE:
            rev.bad_checksum = None  # acknowledged: its receiver had it (offload at the capture point)
        bad = fwd.bad_checksum
        if bad is not None and analysis & RETRANSMISSION and seq == bad[1]:
            fwd.bad_checksum = None
            self._note(
                conversation.summary,
                "bad_checksum",
                bad[0],
                f"wrong checksum: its receiver discarded it (RFC 9293 s3.1) and it was sent again (#{number})",
                (number,),
            )
        if bad_checksum and (seglen or flags & (SYN | FIN)) and fwd.bad_checksum is None:
            fwd.bad_checksum = (number, seq, segment_end)
            conversation.watching = True

    def _record_findings(
        self,
        number: int,
        conversation: _Conversation,
        fwd: _Direction,
        rev: _Direction,
        analysis: int,
        duplicate_ack_number: int,
        seq: int,
        seglen: int,
    ) -> None:
        """Wireshark's flags as findings, each with its reason and the frames it refers to."""
        summary = conversation.summary
        names = analysis_names(analysis)
        note = self._note
        original = _first_transmission(fwd.originals, seq) if analysis & RETRANSMISSION else None
        of = f" of #{original}" if original is not None else ""
        for name in names:
            refers: tuple[int, ...] = ()
            reason = _REASONS.get(name, "")
            if name == "retransmission":
                if analysis & (FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION):
                    # Said by the more precise finding; counted all the same, as Wireshark counts it.
                    self._count(summary, name)
                    continue
                if original is None:
                    reason = (
                        f"retransmission: seq {seq} is below the next sequence number seen from this sender "
                        f"({fwd.nextseq}); no first transmission of it was captured"
                    )
                else:
                    reason = f"retransmission{of}: {reason}"
                refers = (original,) if original is not None else ()
            elif name == "fast_retransmission":
                duplicates = tuple(frame for frame, _ in rev.duplicate_acks)
                refers = ((original,) if original is not None else ()) + duplicates
                reason = f"fast retransmission{of} after {len(duplicates)} duplicate ACKs" + (
                    f" ({_frame_list(duplicates)})" if duplicates else ""
                )
            elif name == "spurious_retransmission":
                reason = f"spurious retransmission{of}: {reason}"
                refers = (original,) if original is not None else ()
            elif name == "duplicate_ack":
                blocks = fwd.duplicate_acks[-1][1] if fwd.duplicate_acks else ()
                reason = f"duplicate ACK #{duplicate_ack_number} of #{fwd.lastack_frame}"
                if blocks:
                    reason += "; SACK " + ", ".join(f"{left}-{right}" for left, right in blocks)
                refers = (fwd.lastack_frame,) if fwd.lastack_frame else ()
            elif name in ("zero_window_probe_ack", "keep_alive_ack"):
                refers = (rev.last_frame,) if rev.last_frame else ()
                reason = f"{reason} (#{rev.last_frame})" if rev.last_frame else reason
            elif name == "simultaneous_open":
                refers = (fwd.plain_syn, rev.plain_syn)
                reason = f"answers the peer's SYN #{rev.plain_syn} while its own SYN #{fwd.plain_syn} is out: {reason}"
            note(summary, name, number, reason, refers, original if original is not None and "retrans" in name else 0)
        if (
            original is not None
            and seglen
            and analysis & RETRANSMISSION
            and not analysis & SPURIOUS_RETRANSMISSION
            and rev.duplicate_acks
            and rev.lastack == seq
        ):
            # Did the receiver get it? Its duplicate ACKs SACK data beyond it: it did not.
            end = (seq + seglen) & SEQUENCE_MASK  # the retransmission re-sends the original's bytes
            for frame, blocks in rev.duplicate_acks:
                if original in conversation.not_received:
                    break  # said already (a retransmission repeated in the capture)
                if frame > original and any((left - end) & SEQUENCE_MASK < HALF_SPACE for left, _ in blocks):
                    conversation.not_received.add(original)
                    note(
                        summary,
                        "not_received",
                        original,
                        f"never acknowledged before it was sent again (#{number}), while the receiver SACKed "
                        f"later data (#{frame}): it was lost after the capture point",
                        (number, frame),
                    )
                    break
            else:
                if original in conversation.not_received:
                    return
                fwd.awaiting_ack = (original, number, (seq + seglen) & SEQUENCE_MASK, seq)
                conversation.watching = True

    # -- UDP and the rest ---------------------------------------------------------------------

    def _udp_conversation(
        self, source: str, destination: str, source_port: int, destination_port: int, number: int, now: int
    ) -> tuple[ConversationSummary, bool]:
        found = self._udp.get((source, destination, source_port, destination_port))
        if found is None:
            summary = ConversationSummary(
                "udp", self._udp_streams, source, source_port, destination, destination_port, number, now
            )
            self._udp_streams += 1
            self._report.conversations.append(summary)
            found = (summary, True)
            self._udp[(source, destination, source_port, destination_port)] = found
            self._udp[(destination, source, destination_port, source_port)] = (summary, False)
        return found

    def _add_udp(self, record: PacketRecord, now: int, build: bool) -> _Held | None:
        summary, forward = self._udp_conversation(
            record.source, record.destination, record.source_port, record.destination_port, record.number, now
        )
        if forward:
            summary.frames_a_to_b += 1
            summary.bytes_a_to_b += record.original_length
        else:
            summary.frames_b_to_a += 1
            summary.bytes_b_to_a += record.original_length
        summary.last_time_ns = now
        if not build:
            return None
        fields: list[object] = [record, "udp", summary.stream, -1, -1, -1, -1, -1, 0, 0, "", "", "", forward]
        return self._hold(record.number, _Held(fields, 0, None, None))

    def _add_other(self, record: PacketRecord, build: bool) -> _Held | None:
        protocol = _PROTOCOL_NAMES.get(record.transport, "ip" if record.network else "other")
        stream = -1
        quoted = record.quoted
        if quoted is not None and quoted.source_port:
            if quoted.transport == PROTOCOL_UDP:
                summary, _ = self._udp_conversation(
                    quoted.source,
                    quoted.destination,
                    quoted.source_port,
                    quoted.destination_port,
                    record.number,
                    record.timestamp_ns or 0,
                )
                stream = summary.stream
            elif quoted.transport == PROTOCOL_TCP:
                found = self._tcp.get((quoted.source, quoted.destination, quoted.source_port, quoted.destination_port))
                if found is not None:
                    stream = found[0].summary.stream
        if not build:
            return None
        fields: list[object] = [record, protocol, stream, -1, -1, -1, -1, -1, 0, 0, "", "", "", True]
        return self._hold(record.number, _Held(fields, 0, None, None))

    def _stream_of(self, record: PacketRecord) -> tuple[str, int]:
        """The TCP or UDP stream a frame belongs to (by its own ports, or those an ICMP error quotes)."""
        quoted = record.quoted
        if quoted is not None and quoted.source_port:
            transport, key = (
                quoted.transport,
                (quoted.source, quoted.destination, quoted.source_port, quoted.destination_port),
            )
        else:
            transport, key = (
                record.transport,
                (record.source, record.destination, record.source_port, record.destination_port),
            )
        if transport == PROTOCOL_TCP:
            found = self._tcp.get(key)
            if found is not None:
                return "tcp", found[0].summary.stream
        elif transport == PROTOCOL_UDP:
            udp = self._udp.get(key)
            if udp is not None:
                return "udp", udp[0].stream
        return "", -1


def _hold_from(conversation: _Conversation) -> int | None:
    """The earliest frame of a conversation that later segments may still change, or None.

    Its states (see :meth:`ConnectionStates.hold_from`), and the first segment in each
    direction that the peer has not acknowledged yet (it may turn out ``not_received``).
    """
    earliest = None if conversation.settled else conversation.states.hold_from()
    for sender, receiver in ((conversation.first, conversation.second), (conversation.second, conversation.first)):
        if sender.bad_checksum is not None and (earliest is None or sender.bad_checksum[0] < earliest):
            earliest = sender.bad_checksum[0]
        if receiver.lastack_frame:
            cached = sender.unacknowledged
            if cached is None or cached[0] != receiver.lastack:
                cached = sender.unacknowledged = (
                    receiver.lastack,
                    _first_transmission(sender.originals, receiver.lastack),
                )
            if cached[1] is not None and (earliest is None or cached[1] < earliest):
                earliest = cached[1]
    return earliest


FIRST_TRANSMISSION_SEARCH = 512
"""How many remembered first transmissions a re-cut retransmission is looked for among."""


def _unacknowledged(originals: dict[int, tuple[int, int]], acked: int | None) -> dict[int, tuple[int, int]]:
    """The first transmissions the peer has not acknowledged entirely (the newest ORIGINALS_LIMIT at most)."""
    if acked is not None:
        originals = {
            start: value for start, value in originals.items() if (acked - value[0]) & SEQUENCE_MASK >= HALF_SPACE
        }
    if len(originals) > ORIGINALS_LIMIT:
        originals = dict(islice(originals.items(), len(originals) - ORIGINALS_LIMIT // 2, None))
    return originals


def _first_transmission(originals: dict[int, tuple[int, int]], seq: int) -> int | None:
    """The frame that first sent sequence number ``seq``: the one that started there, or else (a
    retransmission cut differently) the one whose bytes include it, among the latest remembered."""
    found = originals.get(seq)
    if found is not None:
        return found[1]
    for start, (end, frame) in islice(reversed(originals.items()), FIRST_TRANSMISSION_SEARCH):
        before = (seq - start) & SEQUENCE_MASK
        if before < HALF_SPACE:  # the latest first transmission that starts at or before seq
            return frame if before < (end - start) & SEQUENCE_MASK else None
    return None


def _finished(held: _Held) -> FrameAnalysis:
    fields = held.fields
    fields[8] = held.analysis
    mark = held.mark
    if fields[1] == "tcp":
        if mark is None:
            fields[10] = fields[11] = _ESTABLISHED
        else:
            fields[10], fields[11] = mark[1], mark[2]
    fields.append(tuple(held.findings))
    result: FrameAnalysis = _new_frame_analysis(FrameAnalysis, fields)
    return result


def _sack_blocks(options: bytes, base: int) -> tuple[tuple[int, int], ...]:
    """The SACK blocks of a segment (RFC 2018), relative to the data sender's base sequence number."""
    if len(options) <= 12 and OPTION_SACK_BYTE not in options:
        return ()
    return tuple(
        (relative(left, base), relative(right, base)) for left, right in parse_tcp_options(options).sack_blocks
    )


OPTION_SACK_BYTE = b"\x05"


def _frame_list(frames: tuple[int, ...], most: int = 4) -> str:
    shown = ", ".join(f"#{frame}" for frame in frames[:most])
    return shown + (f", … #{frames[-1]}" if len(frames) > most else "")


_REASONS = {
    "retransmission": "a segment that does not advance the sequence number",
    "fast_retransmission": "retransmitted within 20 ms of two or more duplicate ACKs",
    "spurious_retransmission": "retransmits data the receiver had already acknowledged",
    "duplicate_ack": "duplicate ACK",
    "out_of_order": "fills a gap sooner than a retransmission timer could have fired",
    "zero_window": "the receiver advertises a zero window: the sender must stop",
    "zero_window_probe": "probes a zero window",
    "zero_window_probe_ack": "answers a zero-window probe",
    "keep_alive": "keep-alive: one byte before the next expected sequence number",
    "keep_alive_ack": "answers a keep-alive",
    "window_full": "fills the receiver's advertised window",
    "window_update": "only changes the advertised window",
    "lost_segment": "previous segment not captured",
    "ack_lost_segment": "acknowledges data that was not captured",
    "reused_ports": "a new connection on a port pair already seen",
    "simultaneous_open": "simultaneous open (RFC 9293 Figure 7)",
}


def analyse(records: Iterable[PacketRecord], *, source: str = "", keep_frames: bool = False) -> Report:
    """Analyse a whole sequence of records and return the report."""
    analyzer = Analyzer(source=source, keep_frames=keep_frames)
    analyzer.feed(records)
    return analyzer.finish()
