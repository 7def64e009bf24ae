"""Sans-IO analysis of TCP and UDP conversations, the way Wireshark does it.

Feed packet records in capture order to :class:`Analyzer.add` (or call
:func:`analyse`); each call returns the frame's :class:`FrameAnalysis`, and
:meth:`Analyzer.finish` returns the :class:`Report`. Time is the records'
timestamps, never a clock; nothing here reads a file or a socket.

The TCP rules follow Wireshark's ``tcp_analyze_sequence_number``
(epan/dissectors/packet-tcp.c) so that a frame's flags can be cross-checked in
Wireshark: the same state per direction (next expected sequence number, last
ACK, last window, duplicate-ACK count), the same order of tests and the same
thresholds. Where sockstory knowingly differs, the rule says so:

* A Linux zero-window probe (a 0- or 1-byte segment at snd.una - 1 while the
  peer advertises a zero window, RFC 9293 s3.8.6.1) is called
  ``zero_window_probe``; Wireshark calls it ``keep_alive``.

Streams are numbered in order of first appearance, like tcp.stream and
udp.stream; a SYN with a new initial sequence number on a known port pair
starts a new stream ("reused_ports").
"""

from __future__ import annotations

from collections.abc import Iterable

from visualizer.analysis import states
from visualizer.analysis.report import (
    ACK_LOST_SEGMENT,
    DUPLICATE_ACK,
    FAST_RETRANSMISSION,
    KEEP_ALIVE,
    KEEP_ALIVE_ACK,
    LOST_SEGMENT,
    OUT_OF_ORDER,
    RETRANSMISSION,
    REUSED_PORTS,
    SPURIOUS_RETRANSMISSION,
    STATE_ANOMALY,
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
from visualizer.analysis.sequence import HALF_SPACE, SEQUENCE_MASK
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
)

State = states.State
Event = states.Event

# Wireshark's thresholds (packet-tcp.c), in nanoseconds.
FAST_RETRANSMISSION_WINDOW_NS = 20_000_000
"""A retransmission within 20 ms of the second duplicate ACK is "fast" (cf. RFC 5681 s3.2)."""
OUT_OF_ORDER_DEFAULT_THRESHOLD_NS = 3_000_000
"""Without a measured first RTT, a segment filling a gap within 3 ms is out of order."""
FAST_RETRANSMISSION_DUPLICATE_ACKS = 2
"""Wireshark counts a fast retransmission after 2 duplicate ACKs, not RFC 5681's 3: some may be missing."""
MAXIMUM_WINDOW_SHIFT = 14
"""RFC 7323 s2.3: a window-scale shift above 14 is taken as 14."""

_UNKNOWN_WINDOW = 0xFFFFFFFF
_SYN_FIN_RST = SYN | FIN | RST
_PROTOCOL_NAMES = {PROTOCOL_TCP: "tcp", PROTOCOL_UDP: "udp", PROTOCOL_ICMP: "icmp", PROTOCOL_ICMPV6: "icmpv6"}

# Pre-computed state events (to keep the per-frame path short).
_TRANSITIONS = states.TRANSITIONS
_RECEIVE_ACK = Event.RECEIVE_ACK
_ESTABLISHED = State.ESTABLISHED
_SYNCHRONIZED = frozenset(
    {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
)


def _rst_acceptable(sent_before: int, receiver_ack: int, rst_seq: int) -> bool:
    """Would a synchronized receiver act on this RST? (RFC 5961 s3.2, as Linux applies it.)

    Only a RST at RCV.NXT resets; one elsewhere in the window earns a challenge ACK, one
    outside it is dropped. The observer knows RCV.NXT as the receiver's last ACK, which may
    lag (its ACK of the last data not captured yet), so any sequence number from that ACK up
    to what the sender has sent counts; a RST beyond what the sender sent, or before the
    receiver's ACK, is one the receiver ignored (often an injected one).
    """
    if not receiver_ack:
        return True
    low, high = receiver_ack, sent_before if sent_before >= 0 else receiver_ack
    return (rst_seq - low) & SEQUENCE_MASK <= (high - low) & SEQUENCE_MASK


_new_frame_analysis = tuple.__new__  # builds the NamedTuple from one tuple, without keyword handling
_SEND_ACK = Event.SEND_ACK


class _Direction:
    """What one endpoint has sent, as Wireshark's ``tcp_flow_t`` keeps it."""

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
        "window",
        "window_scale",
        "dupacknum",
        "last_flags",
        "state",
        "fin_next",
        "frames",
        "bytes",
        "before_peer_fin",
        "peer_fin_deferred",
        "sent_end",
    )

    def __init__(self, address: str, port: int, state: State) -> None:
        self.address = address
        self.port = port
        self.base_seq = 0
        self.base_set = False
        self.nextseq = 0
        self.nextseq_time = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastack_time = 0
        self.window = _UNKNOWN_WINDOW
        self.window_scale = -1  # -1: not known; -2: no scaling (Wireshark's convention)
        self.dupacknum = 0
        self.last_flags = 0
        self.state = state
        self.fin_next = -1  # relative sequence number that ACKs this endpoint's FIN
        self.frames = 0
        self.bytes = 0
        # The peer's FIN is applied when it is seen; if this endpoint then sends a segment that does
        # not acknowledge it, the FIN had not arrived (crossing FINs, or a FIN lost after the capture
        # point): its state goes back, and the FIN counts as received when an ACK covers it.
        self.before_peer_fin: State | None = None
        self.peer_fin_deferred = False
        self.sent_end = -1  # one past the last sequence number of data, SYN or FIN sent (not RSTs, not ACKs)


class _Conversation:
    __slots__ = (
        "summary",
        "first",
        "second",
        "first_rtt",
        "last_syn_time",
        "syn_seen",
        "synack_seen",
        "handshake_done",
        "fin_seen",
        "rst_seen",
        "refused",
        "bases_known",
        "last_time",
        "settled",
    )

    def __init__(self, summary: ConversationSummary, first: _Direction, second: _Direction) -> None:
        self.summary = summary
        self.first = first  # the direction of the first frame (endpoint A)
        self.second = second
        self.first_rtt = 0
        self.last_syn_time = 0
        self.syn_seen = False
        self.synack_seen = False
        self.handshake_done = False
        self.fin_seen = False
        self.rst_seen = False
        self.refused = False
        self.bases_known = False
        self.last_time = summary.first_time_ns
        self.settled = first.state is State.ESTABLISHED and second.state is State.ESTABLISHED
        """Both endpoints ESTABLISHED: plain data and ACKs change no state (the common case)."""


# What the flow table holds for each direction of a conversation.
_Entry = tuple[_Conversation, _Direction, _Direction, bool]


class Analyzer:
    """Streaming analysis: :meth:`add` each frame (or :meth:`feed` many), then :meth:`finish`."""

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

    # -- the public interface ---------------------------------------------------------------

    def add(self, record: PacketRecord) -> FrameAnalysis:
        """Analyse the next frame of the capture and return its analysis."""
        result = self._add(record, True)
        assert result is not None
        return result

    def feed(self, records: Iterable[PacketRecord | SegmentRun]) -> int:
        """Analyse many frames for the report only; the fastest way through a large capture.

        Takes packet records, and also the column runs of plain TCP segments that
        bulk decoding produces (:class:`visualizer.model.SegmentRun`), in frame order.
        Returns how many frames were analysed; the report is the same as with :meth:`add` on each.
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
            elif build or self._first_time is None or item.transport != PROTOCOL_TCP or item.problem:
                add(item, build)
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
        report = self._report
        report.frames = self._frames
        for conversation in self._tcp_conversations:
            summary = conversation.summary
            first, second = conversation.first, conversation.second
            summary.frames_a_to_b, summary.bytes_a_to_b = first.frames, first.bytes
            summary.frames_b_to_a, summary.bytes_b_to_a = second.frames, second.bytes
            summary.last_time_ns = conversation.last_time
            summary.state_a = first.state
            summary.state_b = second.state
            summary.outcome = _outcome(conversation)
        report.conversations.sort(key=lambda item: (item.protocol, item.stream))
        return report

    def _add(self, record: PacketRecord, build: bool) -> FrameAnalysis | None:
        self._frames += 1
        timestamp = record.timestamp_ns
        if self._first_time is None:
            self._first_frame_seen(record.number, timestamp)
        transport = record.transport
        if transport == PROTOCOL_TCP:
            result = self._add_tcp(record, timestamp or 0, build)
        elif transport == PROTOCOL_UDP:
            result = self._add_udp(record, timestamp or 0)
        else:
            result = self._add_other(record)
        if record.problem:
            if result is None:
                result = self._add_other(record)
            report = self._report
            report.undecoded_frames += 1
            protocol = result.protocol if result.stream >= 0 and result.protocol in ("tcp", "udp") else ""
            report.findings.append(Finding("undecoded", record.number, protocol, result.stream, record.problem))
        if self._keep_frames:
            assert result is not None
            self._report.frame_analyses.append(result)
        return result

    # -- TCP ----------------------------------------------------------------------------------

    def _new_tcp(self, key: tuple[str, str, int, int], number: int, flags: int, timestamp: int) -> _Entry:
        source, destination, source_port, destination_port = key
        syn_only = flags & (SYN | ACK) == SYN
        if syn_only:
            sender_state, receiver_state = State.CLOSED, State.LISTEN
        elif flags & (SYN | ACK) == SYN | ACK:
            sender_state, receiver_state = State.SYN_RECEIVED, State.SYN_SENT
        else:
            sender_state = receiver_state = State.ESTABLISHED
        first = _Direction(source, source_port, sender_state)
        second = _Direction(destination, destination_port, receiver_state)
        summary = ConversationSummary(
            "tcp", self._tcp_streams, source, source_port, destination, destination_port, number, timestamp
        )
        self._tcp_streams += 1
        conversation = _Conversation(summary, first, second)
        self._tcp_conversations.append(conversation)
        self._report.conversations.append(summary)
        entry = (conversation, first, second, True)
        self._tcp[key] = entry
        self._tcp[(destination, source, destination_port, source_port)] = (conversation, second, first, False)
        return entry

    def _add_tcp(self, record: PacketRecord, now: int, build: bool) -> FrameAnalysis | None:
        key = (record.source, record.destination, record.source_port, record.destination_port)
        return self._segment(
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
        )

    def _feed_run(self, run: SegmentRun) -> None:
        """Analyse a run of plain TCP segments given as columns (bulk decoding of large files)."""
        segment = self._segment
        for number, now, key, raw_seq, raw_ack, flags, raw_window, options, seglen, original in zip(*run):
            segment(number, now, key, raw_seq, raw_ack, flags, raw_window, options, seglen, original, None)

    def _segment(
        self,
        number: int,
        now: int,
        key: tuple[str, str, int, int],
        raw_seq: int,
        raw_ack: int,
        flags: int,
        raw_window: int,
        options: bytes,
        seglen: int,
        original_length: int,
        record: PacketRecord | None,
    ) -> FrameAnalysis | None:
        """The TCP analysis of one segment: the per-frame hot path.

        Takes the segment's fields rather than a record so that column runs from
        bulk decoding reach it without a record being built; ``record`` is given
        when the caller wants the frame's :class:`FrameAnalysis` back.
        """
        entry = self._tcp.get(key)
        analysis = 0
        if entry is None:
            entry = self._new_tcp(key, number, flags, now)
        elif flags & SYN and not flags & ACK and entry[1].base_set and raw_seq != entry[1].base_seq:
            # A new SYN with another ISN on a known port pair: a new connection.
            entry = self._new_tcp(key, number, flags, now)
            analysis = REUSED_PORTS
        conversation, fwd, rev, forward = entry
        fwd.frames += 1
        fwd.bytes += original_length
        conversation.last_time = now

        # Base sequence numbers (Wireshark: the SYN's ISN, or seq - 1 mid-stream; the peer's
        # from the first ACK, as ack - 1).
        if not conversation.bases_known:
            if not fwd.base_set:
                fwd.base_seq = raw_seq if flags & SYN else (raw_seq - 1) & SEQUENCE_MASK
                fwd.base_set = True
            if flags & ACK and not rev.base_set:
                rev.base_seq = (raw_ack - 1) & SEQUENCE_MASK
                rev.base_set = True
            conversation.bases_known = fwd.base_set and rev.base_set
        seq = (raw_seq - fwd.base_seq) & SEQUENCE_MASK
        ack = (raw_ack - rev.base_seq) & SEQUENCE_MASK if flags & ACK else raw_ack

        if flags & SYN:
            # Window scaling (RFC 7323 s2.2): announced in SYNs, applied to every later segment.
            shift = parse_tcp_options(options).window_scale
            if shift is not None:
                fwd.window_scale = min(shift, MAXIMUM_WINDOW_SHIFT)
            if flags & ACK:
                conversation.synack_seen = True
                if shift is None or rev.window_scale == -2:
                    fwd.window_scale = rev.window_scale = -2
            else:
                conversation.syn_seen = True
                conversation.last_syn_time = now
                if shift is None:
                    fwd.window_scale = rev.window_scale = -2
            window = raw_window
        else:
            scale = fwd.window_scale
            window = raw_window << scale if scale >= 0 else raw_window
            # Wireshark's first RTT: from the latest SYN to the first ACK after it.
            if not conversation.first_rtt and flags & ACK and conversation.last_syn_time:
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
        mark = rev.maxseqtobeacked
        if flags & ACK and mark and ack != mark and (ack - mark) & SEQUENCE_MASK < HALF_SPACE:
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
        segment_end = (seq + seglen + (1 if flags & (SYN | FIN) else 0)) & SEQUENCE_MASK
        if (seglen or flags & (SYN | FIN)) and not analysis & (KEEP_ALIVE | ZERO_WINDOW_PROBE):
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
        if not analysis & ZERO_WINDOW_PROBE:  # probes do not advance the sequence space
            if (seglen or flags & (SYN | FIN)) and (
                fwd.sent_end < 0 or (segment_end - fwd.sent_end) & SEQUENCE_MASK < HALF_SPACE
            ):
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

        # --- The endpoints' states (RFC 9293 s3.3.2), from the same segment. ---
        if syn_fin_rst or not conversation.settled:
            analysis |= self._change_states(conversation, fwd, rev, flags, ack, segment_end, seq, fwd.sent_end)
            conversation.settled = fwd.state is _ESTABLISHED and rev.state is _ESTABLISHED
        if analysis:
            self._record_findings(number, conversation.summary, analysis, duplicate_ack_number)
        if record is None:
            return None
        if flags & SYN:
            window_scale = 0
        else:
            scale = fwd.window_scale
            window_scale = 1 << scale if scale >= 0 else scale
        if flags & SYN:
            phase = "handshake"
        elif not conversation.handshake_done and conversation.synack_seen and not flags & (FIN | RST):
            conversation.handshake_done = True  # the ACK that completes the three-way handshake
            phase = "handshake"
        elif conversation.fin_seen or conversation.rst_seen:
            phase = "teardown"
        else:
            conversation.handshake_done = True
            phase = "data"
        return _new_frame_analysis(
            FrameAnalysis,
            (
                record,
                "tcp",
                conversation.summary.stream,
                seq,
                ack,
                segment_end if seglen or flags & (SYN | FIN) else seq,
                window,
                window_scale,
                analysis,
                duplicate_ack_number,
                fwd.state,
                rev.state,
                phase,
                forward,
            ),
        )

    def _change_states(
        self,
        conversation: _Conversation,
        fwd: _Direction,
        rev: _Direction,
        flags: int,
        ack: int,
        segment_end: int,
        seq: int,
        sent_before: int,
    ) -> int:
        """Feed one segment's events to the sender's and the receiver's state; returns STATE_ANOMALY or 0."""
        if flags & RST:
            if rev.state in _SYNCHRONIZED and not _rst_acceptable(sent_before, rev.lastack, seq):
                return 0  # RFC 5961 s3.2: the receiver ignores it (or answers a challenge ACK)
            conversation.rst_seen = True
            if not conversation.synack_seen and not conversation.handshake_done:
                conversation.refused = conversation.syn_seen
            return self._transition(fwd, rev, (Event.SEND_RST,), (Event.RECEIVE_RST,))
        if flags & SYN:
            if flags & ACK:
                return self._transition(fwd, rev, (Event.SEND_SYN_ACK,), (Event.RECEIVE_SYN_ACK,))
            return self._transition(fwd, rev, (Event.SEND_SYN,), (Event.RECEIVE_SYN,))
        acks_fin = bool(flags & ACK and rev.fin_next >= 0 and ack == rev.fin_next)
        anomaly = 0
        if rev.fin_next >= 0:
            if fwd.before_peer_fin is not None and not acks_fin:
                fwd.state = fwd.before_peer_fin  # it had not received the peer's FIN yet
                fwd.peer_fin_deferred = True
            elif fwd.peer_fin_deferred and acks_fin:
                anomaly = self._transition(fwd, rev, (Event.RECEIVE_FIN,), ())
                fwd.peer_fin_deferred = False
            fwd.before_peer_fin = None
        received = Event.RECEIVE_ACK_OF_FIN if acks_fin else _RECEIVE_ACK
        if flags & FIN:
            fwd.fin_next = segment_end
            conversation.fin_seen = True
            if not rev.peer_fin_deferred:
                rev.before_peer_fin = rev.state
            events = (received,) if rev.peer_fin_deferred else (received, Event.RECEIVE_FIN)
            return anomaly | self._transition(fwd, rev, (_SEND_ACK, Event.SEND_FIN), events)
        return anomaly | self._transition(fwd, rev, (_SEND_ACK,), (received,))

    @staticmethod
    def _transition(
        sender: _Direction, receiver: _Direction, sent: tuple[Event, ...], received: tuple[Event, ...]
    ) -> int:
        """Apply the state table to both endpoints; STATE_ANOMALY when a pair has no transition."""
        anomaly = 0
        for endpoint, events in ((sender, sent), (receiver, received)):
            for event in events:
                following = _TRANSITIONS.get((endpoint.state, event))
                if following is None:
                    anomaly = STATE_ANOMALY
                else:
                    endpoint.state = following
        return anomaly

    def _record_findings(
        self, number: int, summary: ConversationSummary, analysis: int, duplicate_ack_number: int
    ) -> None:
        names = analysis_names(analysis)
        summary.analysis_counts.update(names)
        self._report.analysis_counts.update(names)
        findings = self._report.findings
        for name in names:
            reason = _REASONS[name]
            if name == "duplicate_ack":
                reason = f"duplicate ACK #{duplicate_ack_number}"
            findings.append(Finding(name, number, "tcp", summary.stream, reason))

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

    def _add_udp(self, record: PacketRecord, now: int) -> FrameAnalysis:
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
        return FrameAnalysis(record, "udp", summary.stream, -1, -1, -1, -1, -1, 0, 0, "", "", "", forward)

    def _add_other(self, record: PacketRecord) -> FrameAnalysis:
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
        return FrameAnalysis(record, protocol, stream, -1, -1, -1, -1, -1, 0, 0, "", "", "", True)


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
    "state_anomaly": "a segment the endpoint's TCP state does not expect",
}


def _outcome(conversation: _Conversation) -> str:
    first, second = conversation.first, conversation.second
    if conversation.refused:
        return "refused"
    if conversation.rst_seen:
        return "reset"
    closed = (State.TIME_WAIT, State.CLOSED)
    if first.fin_next >= 0 and second.fin_next >= 0:
        return "complete" if first.state in closed or second.state in closed else "closing"
    if first.fin_next >= 0 or second.fin_next >= 0:
        return "half-closed"
    if conversation.syn_seen and not conversation.synack_seen:
        return "unanswered"
    return "open"


def analyse(records: Iterable[PacketRecord], *, source: str = "", keep_frames: bool = False) -> Report:
    """Analyse a whole sequence of records and return the report."""
    analyzer = Analyzer(source=source, keep_frames=keep_frames)
    analyzer.feed(records)
    return analyzer.finish()
