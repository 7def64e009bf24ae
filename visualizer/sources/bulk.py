"""Bulk decoding of pcap files, a read buffer at a time with NumPy, and worker shares.

The ingest module (:mod:`visualizer.pipeline`) uses this for large pcap files. The
frames on the common path (Ethernet, IPv4 without options or fragments, TCP) are
decoded for a whole read buffer at once, into exactly the records
:meth:`FrameDecoder.decode_from` gives, or into :class:`SegmentRun` columns for the
analysis; every other frame goes through the decoder one by one.

Conversations are independent, so parallel analysis gives each worker process a
:class:`Share` of them, chosen by a byte of the addresses and ports that is the same
for both directions (:func:`mixing_byte`). A frame whose raw bytes look like plain
Ethernet/IPv4 TCP or UDP is assigned from those bytes, even when its headers then fail
to decode; any other frame from its decoded record. Either way every frame lands in
exactly one share.

NumPy is imported on first use only, so that small captures never load it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

from visualizer.model import PROTOCOL_TCP, PROTOCOL_UDP, PacketRecord, SegmentRun
from visualizer.sources.capture_file import CaptureReader, PcapChunk, PcapHeader
from visualizer.sources.decode import FrameDecoder
from visualizer.sources.ip import ipv4_text
from visualizer.sources.link import LINKTYPE_ETHERNET
from visualizer.sources.record import build_record

PCAP_RECORD_HEADER_LENGTH = 16
# Byte offsets read from every frame: ethertype (12, 13), IPv4 version/IHL (14), flags and
# fragment offset (20, 21), protocol (23), total length (16, 17), TCP data offset (46), and the
# bytes that choose a worker: last address bytes (29, 33) and low port bytes (35, 37).
_PROBE_OFFSETS = (12, 13, 14, 20, 21, 23, 16, 17, 46, 29, 33, 35, 37)
_WINDOW = PCAP_RECORD_HEADER_LENGTH + 54
"""Bytes read from each frame's start (its pcap record header, then Ethernet, IPv4 and TCP headers)."""
_tables: tuple[Any, Any, Any] | None = None
FLOW_KEY_CACHE_SIZE = 1 << 16
"""Flow keys kept by their raw bytes (the cache starts again when it holds more)."""
_flow_key_by_bytes: dict[bytes, tuple[str, str, int, int]] = {}


# -- Sharing conversations among worker processes -----------------------------------------------


class Share(NamedTuple):
    """One worker's part of a capture: the conversations whose mixing byte is in [low, high).

    The mixing byte (:func:`mixing_byte`) is the same for both directions of a
    conversation, so a conversation never straddles two workers.
    """

    low: int
    high: int


WHOLE = Share(0, 256)


def plan_shares(workers: int) -> list[Share]:
    """Cut the 256 mixing-byte values into ``workers`` equal shares."""
    bounds = [round(256 * index / workers) for index in range(workers + 1)]
    return [Share(low, high) for low, high in zip(bounds, bounds[1:])]


def mixing_byte(record: PacketRecord) -> int:
    """0..255, the same for both directions of the record's conversation.

    For IPv4 it equals the byte :func:`decode_pcap_chunk` computes from raw frames
    (last address bytes and low port bytes, combined with XOR), so that a
    conversation whose frames take different decoding paths stays together. An
    ICMP error goes with the flow it quotes; a frame without ports mixes to 0.
    """
    quoted = record.quoted
    if quoted is not None and quoted.transport in (PROTOCOL_TCP, PROTOCOL_UDP):
        source, destination = quoted.source, quoted.destination
        source_port, destination_port = quoted.source_port, quoted.destination_port
    elif record.transport in (PROTOCOL_TCP, PROTOCOL_UDP):
        source, destination = record.source, record.destination
        source_port, destination_port = record.source_port, record.destination_port
    else:
        return 0
    if "." in source and ":" not in source:
        mixed = int(source.rsplit(".", 1)[1]) ^ int(destination.rsplit(".", 1)[1])
    else:
        mixed = sum(source.encode()) + sum(destination.encode())
    return (mixed ^ (source_port & 0xFF) ^ (destination_port & 0xFF)) & 0xFF


def in_share(record: PacketRecord, share: Share) -> bool:
    return share.low <= mixing_byte(record) < share.high


# -- Decoding a whole pcap read buffer at once -----------------------------------------------------


def decode_pcap_chunk(
    decoder: FrameDecoder,
    chunk: PcapChunk,
    header: PcapHeader,
    share: Share = WHOLE,
    *,
    runs: bool = False,
    time_order: CaptureReader | None = None,
) -> list[PacketRecord | SegmentRun]:
    """Decode the frames of a pcap chunk that belong to ``share`` (all of them by default).

    Frames on the common path (Ethernet, IPv4 without options or fragments, TCP)
    are decoded for the whole buffer at once with NumPy, giving exactly the records
    :meth:`FrameDecoder.decode_from` gives; every other frame goes through it.
    With ``runs`` the common-path frames come as :class:`SegmentRun` columns
    instead of records (for the analysis of large files), still in frame order.
    """
    numpy, probe_offsets, header_offsets = _numpy_tables()
    buffer, offsets, first_number = chunk.buffer, chunk.offsets, chunk.first_number
    count = len(offsets)
    link_type = header.link_type
    whole = share == WHOLE

    def one_by_one(positions: Sequence[int], assigned: Collection[int] = ()) -> Iterator[PacketRecord]:
        # A frame assigned to this share from its raw bytes stays here whatever its record says:
        # one that looks plain but does not decode (cut headers) has no ports, and would mix to
        # another share, whose worker never picked it (the frame would be lost).
        for position, record in zip(positions, decode_positions(decoder, chunk, header, positions)):
            if whole or position in assigned or in_share(record, share):
                yield record

    if link_type != LINKTYPE_ETHERNET or header.lengths_maybe_swapped or not count:
        if time_order is not None:
            check_time_order(time_order, chunk, header)
        return list(one_by_one(range(count)))
    frames = numpy.asarray(offsets, dtype=numpy.int64)
    rows = _frame_windows(numpy, buffer, frames)
    fields = numpy.ascontiguousarray(rows[:, :PCAP_RECORD_HEADER_LENGTH]).view(numpy.dtype(header.byte_order + "u4"))
    seconds, fractional = fields[:, 0], fields[:, 1]
    if time_order is not None:  # where time first goes backwards, from the times already gathered
        _time_order(
            time_order,
            chunk,
            seconds.astype(numpy.int64) * 1_000_000_000 + fractional.astype(numpy.int64) * header.fraction_ns,
        )
    captured, original = (fields[:, 3], fields[:, 2]) if header.lengths_swapped else (fields[:, 2], fields[:, 3])
    starts = frames + PCAP_RECORD_HEADER_LENGTH
    probe = rows[:, PCAP_RECORD_HEADER_LENGTH + probe_offsets]
    ethertype_high, ethertype_low, version, fragment_high, fragment_low, protocol = probe[:, :6].T
    total = probe[:, 6].astype(numpy.int64) << 8 | probe[:, 7]
    tcp_header = (probe[:, 8] >> 4).astype(numpy.int64) * 4
    assignable = (
        (captured >= 38)
        & (ethertype_high == 8)
        & (ethertype_low == 0)
        & (version == 0x45)
        & ((fragment_high & 0x3F) == 0)
        & (fragment_low == 0)
        & ((protocol == PROTOCOL_TCP) | (protocol == PROTOCOL_UDP))
    )
    fast = (
        assignable
        & (protocol == PROTOCOL_TCP)
        & (captured >= 54)
        & (tcp_header >= 20)
        & (34 + tcp_header <= captured)
        & (total >= 20 + tcp_header)
    )
    if not whole:
        mixed = probe[:, 9] ^ probe[:, 10] ^ probe[:, 11] ^ probe[:, 12]
        mine = (mixed >= share.low) & (mixed < share.high)
        fast &= mine
        chosen = ~assignable | mine
    else:
        chosen = numpy.ones(count, dtype=bool)
    picked = numpy.flatnonzero(fast)
    others = numpy.flatnonzero(chosen & ~fast).tolist()
    assigned: Collection[int] = () if whole else set(numpy.flatnonzero(assignable & chosen & ~fast).tolist())
    length = len(picked)
    if not length:
        return list(one_by_one(others, assigned))
    frame_starts = starts[picked]
    head = rows[picked][:, PCAP_RECORD_HEADER_LENGTH + header_offsets]  # IPv4 addresses and the TCP header
    tcp = head[:, 8:]
    numbers = (picked + first_number).tolist()
    timestamps = (
        seconds[picked].astype(numpy.int64) * 1_000_000_000
        + fractional[picked].astype(numpy.int64) * header.fraction_ns
    ).tolist()
    # The addresses and ports are 12 bytes in a row (IPv4 source and destination, TCP source and
    # destination ports): one bytes object per frame finds its flow key, built once per flow.
    keys = _flow_keys(head[:, :12].copy().view("V12")[:, 0].tolist())
    picked_header = tcp_header[picked]
    picked_total = total[picked]
    payload_start = frame_starts + 34 + picked_header
    flag_bits = tcp[:, 13].astype(numpy.int64) | (tcp[:, 12].astype(numpy.int64) & 1) << 8
    seqs = tcp[:, 4:8].copy().view(">u4")[:, 0].tolist()
    acks = tcp[:, 8:12].copy().view(">u4")[:, 0].tolist()
    windows = tcp[:, 14:16].copy().view(">u2")[:, 0].tolist()
    payload_lengths = (picked_total - 20 - picked_header).tolist()
    originals = original[picked].tolist()
    flags = flag_bits.tolist()
    if runs:
        # The analysis reads options from SYN segments (window scale) and from pure ACKs that carry
        # more than a timestamp (SACK blocks of duplicate ACKs, RFC 2018): rare rows, cheap to cut.
        options = [b""] * length
        with_options = (flag_bits & 0x02) | ((picked_total == 20 + picked_header) & (picked_header > 32))
        rows_with_options = numpy.flatnonzero(with_options)
        for row, start, stop in zip(
            rows_with_options.tolist(),
            (frame_starts[rows_with_options] + 54).tolist(),
            payload_start[rows_with_options].tolist(),
        ):
            options[row] = buffer[start:stop]
        columns = (numbers, timestamps, keys, seqs, acks, flags, windows, options, payload_lengths, originals)
        if not others:
            return [SegmentRun._make(columns)]
        # Cut the columns where frames decoded one by one fall in between.
        items: list[PacketRecord | SegmentRun] = []
        cuts = numpy.searchsorted(picked, others).tolist()
        previous = 0
        for cut, position, record in zip(cuts, others, decode_positions(decoder, chunk, header, others)):
            if cut > previous:
                items.append(SegmentRun._make(column[previous:cut] for column in columns))
                previous = cut
            if whole or position in assigned or in_share(record, share):
                items.append(record)
        if previous < length:
            items.append(SegmentRun._make(column[previous:] for column in columns))
        return items
    sources, destinations, source_ports, destination_ports = zip(*keys)
    options_start = (frame_starts + 54).tolist()
    payload_starts = payload_start.tolist()
    payload_end = (frame_starts + numpy.minimum(captured[picked], 14 + picked_total)).tolist()
    records: list[PacketRecord | SegmentRun] = list(
        map(
            build_record,
            zip(
                numbers,
                timestamps,
                repeat(0, length),
                repeat(link_type, length),
                captured[picked].tolist(),
                originals,
                repeat("eth:ethertype:ip:tcp", length),
                repeat(4, length),
                repeat(PROTOCOL_TCP, length),
                sources,
                destinations,
                source_ports,
                destination_ports,
                seqs,
                acks,
                flags,
                windows,
                [buffer[start:stop] for start, stop in zip(options_start, payload_starts)],
                payload_lengths,
                [buffer[start:stop] for start, stop in zip(payload_starts, payload_end)],
                repeat(False, length),
                repeat(-1, length),
                repeat(-1, length),
                repeat(None, length),
                repeat("", length),
                repeat("", length),
            ),
        )
    )
    if not others:
        return records
    # Interleave in frame order with the frames decoded one by one.
    together: list[PacketRecord | SegmentRun] = [*records, *one_by_one(others, assigned)]
    order = numpy.argsort([item[0] for item in together], kind="stable").tolist()
    return list(itemgetter(*order)(together)) if len(together) > 1 else together


def _frame_windows(numpy: Any, buffer: bytes, frames: Any) -> Any:
    """Each frame's first :data:`_WINDOW` bytes, record header included, as one row (zeros past the buffer's end).

    A sliding window over the buffer, indexed by frame; the few frames too near the end for a
    full row take theirs from a padded copy of the buffer's tail (not of the whole buffer).
    """
    inside = int(numpy.searchsorted(frames, len(buffer) - _WINDOW, side="right"))
    window = numpy.lib.stride_tricks.sliding_window_view
    rows = window(numpy.frombuffer(buffer, numpy.uint8), _WINDOW)[frames[:inside]] if inside else None
    if inside == len(frames):
        return rows
    start = int(frames[inside])
    tail = window(numpy.frombuffer(buffer[start:] + bytes(_WINDOW), numpy.uint8), _WINDOW)[frames[inside:] - start]
    return tail if rows is None else numpy.concatenate((rows, tail))


def check_time_order(reader: CaptureReader, chunk: PcapChunk, header: PcapHeader) -> None:
    """Tell ``reader`` where time first goes backwards in ``chunk``, as its own frame-by-frame reading does.

    For readers of whole buffers (:meth:`CaptureReader.pcap_chunks`), which never look at
    the times; keeps :attr:`CaptureReader.last_timestamp_ns` up to date across chunks.
    """
    numpy = _numpy_tables()[0]
    offsets = numpy.asarray(chunk.offsets, dtype=numpy.int64)
    if not len(offsets):
        return
    data = numpy.frombuffer(chunk.buffer, numpy.uint8)
    fields = numpy.ascontiguousarray(data[offsets[:, None] + numpy.arange(8)]).view(
        numpy.dtype(header.byte_order + "u4")
    )
    times = fields[:, 0].astype(numpy.int64) * 1_000_000_000 + fields[:, 1].astype(numpy.int64) * header.fraction_ns
    _time_order(reader, chunk, times)


def _time_order(reader: CaptureReader, chunk: PcapChunk, times: Any) -> None:
    numpy = _numpy_tables()[0]
    previous = reader.last_timestamp_ns
    if previous is None:
        reader.first_timestamp_ns = int(times[0])
    else:
        times = numpy.concatenate((numpy.array([previous], dtype=numpy.int64), times))
    back = numpy.flatnonzero(times[1:] < times[:-1])
    if len(back):
        step = int(back[0])
        number = chunk.first_number + step + (0 if previous is not None else 1)
        reader.time_went_back(number, int(times[step + 1]), number - 1, int(times[step]))
    reader.last_timestamp_ns = int(times[-1])


def candidate_positions(chunk: PcapChunk, header: PcapHeader, keys: set[bytes], transport: int) -> list[int]:
    """Positions of the frames in a chunk that may belong to the given flows.

    ``keys`` are the 12 bytes of an IPv4 header's addresses followed by the ports
    (each direction of each flow). A plain Ethernet/IPv4 frame with ``transport``
    is a candidate only when its bytes match; every other frame is a candidate
    (it is decoded and then checked).
    """
    offsets = chunk.offsets
    if header.link_type != LINKTYPE_ETHERNET or header.lengths_maybe_swapped or not offsets:
        return list(range(len(offsets)))
    numpy = _numpy_tables()[0]
    buffer = chunk.buffer
    data = numpy.frombuffer(buffer, numpy.uint8)
    starts = numpy.asarray(offsets, dtype=numpy.int64) + PCAP_RECORD_HEADER_LENGTH
    probe = data[numpy.minimum(starts[:, None] + numpy.arange(12, 38), len(buffer) - 1)]
    plain = (
        (probe[:, 0] == 8)
        & (probe[:, 1] == 0)
        & (probe[:, 2] == 0x45)
        & ((probe[:, 8] & 0x3F) == 0)
        & (probe[:, 9] == 0)
        & (probe[:, 11] == transport)
    )
    flow = numpy.ascontiguousarray(probe[:, 14:26])
    addresses = flow[:, :8].copy().view(">u8")[:, 0]
    ports = flow[:, 8:].copy().view(">u4")[:, 0]
    wanted_addresses = numpy.array([int.from_bytes(key[:8], "big") for key in keys], dtype=numpy.uint64)
    wanted_ports = numpy.array([int.from_bytes(key[8:], "big") for key in keys], dtype=numpy.uint32)
    maybe = numpy.isin(addresses, wanted_addresses) & numpy.isin(ports, wanted_ports)
    positions: list[int] = numpy.flatnonzero(~plain | maybe).tolist()
    return positions


def decode_positions(
    decoder: FrameDecoder, chunk: PcapChunk, header: PcapHeader, positions: Iterable[int]
) -> Iterator[PacketRecord]:
    """Decode the frames at ``positions`` of a chunk, one record each, in order."""
    buffer, offsets, first_number = chunk.buffer, chunk.offsets, chunk.first_number
    decode_from = decoder.decode_from
    record_header = header.record
    link_type = header.link_type
    skip = PCAP_RECORD_HEADER_LENGTH
    for position in positions:
        offset = offsets[position]
        timestamp, captured, original = record_header(buffer, offset)
        yield decode_from(buffer, offset + skip, first_number + position, timestamp, 0, link_type, captured, original)


def _numpy_tables() -> tuple[Any, Any, Any]:
    """NumPy (imported on first use, so that small captures never load it) and the offset tables."""
    global _tables
    if _tables is None:
        import numpy

        _tables = (
            numpy,
            numpy.array(_PROBE_OFFSETS),
            numpy.arange(26, 54),
        )
    return _tables


def _flow_keys(flows: list[bytes]) -> list[tuple[str, str, int, int]]:
    """The (source, destination, source port, destination port) keys of flows given as their 12 raw
    bytes: IPv4 addresses, then TCP or UDP ports (cached, as the analysis meets the same ones again)."""
    cache = _flow_key_by_bytes
    new = set(flows).difference(cache)
    if new and len(cache) + len(new) > FLOW_KEY_CACHE_SIZE:
        cache.clear()
        new = set(flows)
    for flow in new:
        cache[flow] = (
            ipv4_text(flow[:4]),
            ipv4_text(flow[4:8]),
            int.from_bytes(flow[8:10], "big"),
            int.from_bytes(flow[10:12], "big"),
        )
    return list(map(cache.__getitem__, flows))
