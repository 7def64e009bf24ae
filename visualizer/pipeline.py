"""Ingest: a capture file in, its analysis out. The one module that chooses how to read a file.

The contract is three functions; which strategy serves a call is decided here, from
the file's size and format, never by the caller:

* :func:`analyse_file` -- the report of a whole file;
* :func:`iter_file_analysis` -- the per-frame analyses, streamed as they are made;
* :func:`select_streams` -- the report, and the per-frame analyses of chosen streams.

The strategies, each giving exactly what frame-by-frame analysis in one process
gives (the tests check it):

* Files of :data:`BULK_MINIMUM_BYTES` and more, in pcap format, are decoded a read
  buffer at a time with NumPy (:mod:`visualizer.sources.bulk`); plain TCP segments
  reach the analysis as column runs rather than records.
* Files of :data:`PARALLEL_MINIMUM_BYTES` and more are analysed by several processes
  at once (one per CPU, at most :data:`MAXIMUM_WORKERS`). Conversations are
  independent, so each worker reads the whole file but decodes and analyses only the
  conversations of its share (chosen by a hash that does not depend on direction);
  the reports are then merged and the streams renumbered in order of first
  appearance, exactly as one process would number them. Where the records of a pcap
  file lie is found once, each worker scanning a stretch of it and sharing what it
  found (checked: see "Parallel analysis" below). Per-frame results always come from
  one process.
* Chosen streams of a large file are found in two passes: the report first
  (parallel), then only the frames of those conversations, picked from their bytes.

Kept apart from :mod:`visualizer.analysis` so the core never opens a file.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

from visualizer.analysis import Analyzer, FrameAnalysis, Report
from visualizer.analysis.report import Finding, in_stream
from visualizer.errors import AnalysisError, UsageError
from visualizer.model import PROTOCOL_NUMBERS, PacketRecord, SegmentRun
from visualizer.sources import CaptureReader, FrameDecoder, iter_records
from visualizer.sources.bulk import (
    WHOLE,
    Share,
    candidate_positions,
    decode_pcap_chunk,
    decode_positions,
    in_share,
    plan_shares,
)
from visualizer.sources.capture_file import PCAP_FILE_HEADER_LENGTH, PcapStretch

if TYPE_CHECKING:
    from visualizer.analysis.kernel import KernelStory
    from visualizer.analysis.throughput import Progress, RunThroughput

__all__ = [
    "ProgressCallback",
    "analyse_file",
    "iter_file_analysis",
    "kernel_story",
    "measure_runs",
    "select_streams",
]

ProgressCallback = Callable[[int, int, int], None]
"""Called now and then with (frames so far, bytes read so far, file size)."""

BULK_MINIMUM_BYTES = 16 * 1024 * 1024
"""Files from this size on are large: pcap ones are decoded a read buffer at a time (NumPy loads
only then), and chosen streams are selected in two passes."""
PARALLEL_MINIMUM_BYTES = 64 * 1024 * 1024
"""Files smaller than this are read by one process: starting workers would cost more than it saves."""
MAXIMUM_WORKERS = 4
PROGRESS_EVERY = 1 << 14
"""Frames between two progress reports of :func:`iter_file_analysis`."""
T = TypeVar("T")


def iter_file_analysis(
    path: str | os.PathLike[str],
    *,
    keep_frames: bool = False,
    progress: ProgressCallback | None = None,
    verify_checksums: bool = True,
) -> tuple[Analyzer, CaptureReader, Iterator[FrameAnalysis]]:
    """Open ``path`` and return the analyzer, the reader and the stream of per-frame results.

    The file is checked at once (a non-capture raises CaptureFileError before any
    frame); frames are read and analysed only as the iterator is consumed. When it
    is exhausted, ``reader.warnings`` holds what went wrong part-way and
    ``analyzer.finish()`` gives the report.
    """
    reader = CaptureReader(path)
    analyzer = Analyzer(source=os.fspath(path), keep_frames=keep_frames)

    def frames() -> Iterator[FrameAnalysis]:
        add = analyzer.add
        if progress is None:
            for record in iter_records(reader, verify_checksums=verify_checksums):
                yield from add(record)
        else:
            count = 0
            for record in iter_records(reader, verify_checksums=verify_checksums):
                yield from add(record)
                count += 1
                if not count % PROGRESS_EVERY:
                    progress(count, reader.bytes_read, reader.size)
            progress(count, reader.size, reader.size)
        yield from analyzer.flush()

    return analyzer, reader, frames()


def analyse_file(
    path: str | os.PathLike[str],
    *,
    keep_frames: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> Report:
    """Read and analyse a whole capture file; warnings about damage land in the report.

    ``workers`` processes share the work (default: one for a file smaller than
    :data:`PARALLEL_MINIMUM_BYTES`, else one per CPU); with ``keep_frames`` the
    analysis runs in this process.
    """
    count = _default_workers(path) if workers is None else workers
    if count > 1 and not keep_frames:
        return _analyse_in_parallel(path, count, progress)
    reader = CaptureReader(path)
    analyzer = Analyzer(source=os.fspath(path), keep_frames=keep_frames)
    with _collection_paused():
        analyzer.feed(_with_progress(_records(reader), reader, progress))
        report = analyzer.finish()
    report.frames = reader.frames_read
    report.warnings.extend(reader.warnings)
    return report


def select_streams(
    path: str | os.PathLike[str],
    protocol: str,
    streams: Collection[int],
    *,
    progress: ProgressCallback | None = None,
    verify_checksums: bool = True,
) -> tuple[Report, list[FrameAnalysis]]:
    """The whole file's report, and the per-frame analyses of the chosen streams, in frame order.

    ``streams`` are stream numbers of ``protocol`` (``tcp`` or ``udp``), as the
    report numbers them; an ICMP error goes with the stream it quotes
    (:func:`visualizer.analysis.report.in_stream`). No streams: every frame.
    A small file is analysed in one pass; a large one in two (see the module's
    docstring), with the same result.
    """
    if protocol not in PROTOCOL_NUMBERS:
        raise UsageError(f"unknown protocol {protocol!r}: streams are {' or '.join(PROTOCOL_NUMBERS)}")
    chosen = set(streams)
    if chosen and _size(path) >= BULK_MINIMUM_BYTES:
        return _select_in_two_passes(path, protocol, chosen, progress, verify_checksums)
    analyzer, reader, frames = iter_file_analysis(path, progress=progress, verify_checksums=verify_checksums)
    if chosen:
        selected = [frame for frame in frames if frame.stream in chosen and in_stream(frame, protocol, frame.stream)]
    else:
        selected = list(frames)
    report = analyzer.finish()
    report.warnings.extend(reader.warnings)
    return report, selected


def kernel_story(path: str | os.PathLike[str], frames: Sequence[FrameAnalysis]) -> KernelStory | None:
    """The kernel's side of ``frames`` (the analyses of ``path``'s frames), from the kernel events
    recorded beside ``path`` (``NAME.kernel.jsonl``); None when none were recorded."""
    from visualizer.analysis.kernel import join_kernel
    from visualizer.sources.kernel import load_sidecar

    recorded = load_sidecar(path)
    if recorded is None:
        return None
    return join_kernel(
        frames, recorded.events, lost_events=recorded.lost_events, alignment_error_ns=recorded.alignment_error_ns
    )


def measure_runs(
    runs: Sequence[tuple[str, str | os.PathLike[str], int]],
    *,
    applications: Sequence[Progress | None] | None = None,
) -> list[RunThroughput]:
    """The "run vs run" measures of TCP streams of captures: each run is (label, capture, stream).

    Each stream's goodput comes from its frames, its sender's congestion window from the kernel
    events recorded beside its capture (when there are); ``applications`` are the receiving
    programs' own counts. A stream without payload is a UsageError naming the file and stream.
    """
    from visualizer.analysis.throughput import compare_runs

    measured: list[tuple[str, Sequence[FrameAnalysis]]] = []
    stories: list[KernelStory | None] = []
    for label, path, stream in runs:
        _, frames = select_streams(path, "tcp", [stream])
        if not any(frame.record.payload_length for frame in frames):
            raise UsageError(f"{os.fspath(path)}: TCP stream {stream} carries no data to measure")
        measured.append((label, frames))
        stories.append(kernel_story(path, frames))
    return compare_runs(measured, stories=stories, applications=applications)


def _size(path: str | os.PathLike[str]) -> int:
    """The file's size, 0 when it cannot be read (the reader then says why)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# -- How a file is read -------------------------------------------------------------------------


def _default_workers(path: str | os.PathLike[str]) -> int:
    """How many processes to use for ``path``: one for small files, one per CPU for large ones."""
    if _size(path) < PARALLEL_MINIMUM_BYTES:
        return 1
    return max(1, min(MAXIMUM_WORKERS, len(os.sched_getaffinity(0))))


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause Python's cycle collector while records stream through the analysis.

    A large capture allocates millions of short-lived tuples; each allocation burst
    wakes the collector, which then walks every live object (tripling the cost of
    decoding). Records and analysis state form no reference cycles, so reference
    counting frees them as usual; the collector runs again afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _with_progress(items: Iterator[T], reader: CaptureReader, progress: ProgressCallback | None) -> Iterator[T]:
    if progress is None:
        return items

    def reporting() -> Iterator[T]:
        last = -1
        for item in items:
            yield item
            if reader.bytes_read != last:  # a new read buffer: report (the callback throttles itself)
                last = reader.bytes_read
                progress(reader.frames_read, last, reader.size)
        progress(reader.frames_read, reader.size, reader.size)

    return reporting()


# -- Parallel analysis ---------------------------------------------------------------------------
#
# Conversations are independent, so each worker analyses a share of them (see
# visualizer.sources.bulk.Share) and _merge_reports joins the reports. Every worker
# reads the whole file (the page cache serves it once) and decodes only the frames of
# its share, plus the frames it cannot assign from their bytes.
#
# Where the records of a large pcap file lie is found once, in parts: the file is cut
# into stretches at guessed record boundaries (CaptureReader.pcap_record_near), each
# worker scans one stretch's record headers, and the workers share what they found
# (_share_layout). The guesses are only trusted when the chain of records from the
# file's first one lands exactly on each of them; otherwise every worker scans the
# whole file itself, as it would without them. (One process scanning every header and
# handing the offsets to the others measured no faster: scanning in parts divides the
# work, 0.47 s per worker for a million records on two CPUs before, 0.23 s after.)


def _analyse_share(
    reader: CaptureReader,
    share: Share,
    progress: ProgressCallback | None = None,
    layout: Sequence[PcapStretch] | None = None,
) -> tuple[Report, int, list[str], int | None]:
    """Read the whole file and analyse the conversations of ``share``.

    Also gives what the reader saw of every frame: their number, the warnings, and the
    time of the first frame that has one (the analysis of a share sees only its frames).
    """
    analyzer = Analyzer(source=reader.path)
    with _collection_paused():
        analyzer.feed(_with_progress(_records(reader, share, layout), reader, progress))
        report = analyzer.finish()
    return report, reader.frames_read, reader.warnings, reader.first_timestamp_ns


def _records(
    reader: CaptureReader, share: Share = WHOLE, layout: Sequence[PcapStretch] | None = None
) -> Iterator[PacketRecord] | Iterator[PacketRecord | SegmentRun]:
    """The records of a capture (or of one share of its conversations), in frame order.

    A large pcap file is decoded a read buffer at a time (NumPy; plain TCP frames
    come as column runs), from ``layout`` when where its records lie is known
    already; anything else frame by frame. Every worker decodes the frames it
    cannot assign from their bytes (IP reassembly needs all fragments).
    """
    if reader.format == "pcap" and reader.pcap_header is not None and reader.size >= BULK_MINIMUM_BYTES:
        decoder = FrameDecoder()  # no checksums in bulk (documented: flows finds no bad_checksum there)
        header = reader.pcap_header

        def by_chunk() -> Iterator[PacketRecord | SegmentRun]:
            for chunk in reader.pcap_chunks(layout):
                yield from decode_pcap_chunk(decoder, chunk, header, share, runs=True, time_order=reader)

        return by_chunk()
    if share == WHOLE:
        return iter_records(reader, verify_checksums=True)
    decode_from = FrameDecoder(verify_checksums=True).decode_from  # as in one process

    def make(
        buffer: bytes,
        start: int,
        number: int,
        timestamp: int | None,
        interface: int,
        link_type: int,
        captured: int,
        original: int,
        /,
    ) -> PacketRecord | None:
        record = decode_from(buffer, start, number, timestamp, interface, link_type, captured, original)
        return record if in_share(record, share) else None

    return reader.read(make)


def _stretch_starts(reader: CaptureReader, workers: int) -> list[int] | None:
    """Where each worker's stretch of a large pcap file begins: the file's first record, then
    guessed record boundaries at equal distances; None when a guess fails (each worker then scans all)."""
    if reader.pcap_header is None or reader.size < BULK_MINIMUM_BYTES:
        return None
    starts = [PCAP_FILE_HEADER_LENGTH]
    for index in range(1, workers):
        guess = reader.pcap_record_near(reader.size * index // workers)
        if guess is None or guess <= starts[-1]:
            return None
        starts.append(guess)
    return starts


def _own_stretch(reader: CaptureReader, starts: list[int], index: int) -> PcapStretch:
    stop = starts[index + 1] if index + 1 < len(starts) else reader.size
    return reader.scan_pcap(starts[index], stop)


def _share_layout(reader: CaptureReader, starts: list[int], workers: Sequence[Connection]) -> list[PcapStretch] | None:
    """This process's side of finding the records: scan the first stretch, gather the workers'
    stretches, and give each worker the others' when the chain from the first record confirms every
    guessed start (else None, to every worker: each then scans the whole file)."""
    stretches = [_own_stretch(reader, starts, 0)]
    stretches.extend(_received(connection, "stretch", reader.path) for connection in workers)
    confirmed = all(not stretch.damaged and stretch.end == start for stretch, start in zip(stretches, starts[1:]))
    for index, connection in enumerate(workers, 1):  # each worker has its own stretch: send it the others
        others = [None if other == index else stretch for other, stretch in enumerate(stretches)]
        connection.send(("layout", others if confirmed else None))
    return stretches if confirmed else None


def _received(connection: Connection, expected: str, path: str) -> Any:
    status, payload = connection.recv()
    if status != expected:
        raise AnalysisError(f"{path}: analysis worker failed: {payload}")
    return payload


def _worker(path: str, share: Share, connection: Connection, starts: list[int] | None, index: int) -> None:
    try:
        reader = CaptureReader(path)
        layout = None
        if starts is not None:
            own = _own_stretch(reader, starts, index)
            connection.send(("stretch", own))
            layout = _received(connection, "layout", path)
            if layout is not None:
                layout[index] = own
        connection.send(("ok", _analyse_share(reader, share, layout=layout)))
    except BaseException as error:  # reported to the parent, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


def _analyse_in_parallel(path: str | os.PathLike[str], workers: int, progress: ProgressCallback | None) -> Report:
    """Share 0 is analysed in this process (drawing the progress bar), the others in forked ones."""
    name = os.fspath(path)
    probe = CaptureReader(name)  # a file that is not a capture fails here, in this process
    starts = _stretch_starts(probe, workers)
    probe.close()
    if probe.format == "pcap" and probe.size >= BULK_MINIMUM_BYTES:
        import numpy  # noqa: F401  (loaded once here, shared by the forked workers)
    shares = plan_shares(workers)
    context = multiprocessing.get_context("fork")
    processes = []
    connections: list[Connection] = []
    # The reports are many objects: a cycle collection while they are received and merged walks them all
    # (and in a forked worker, which inherits the pause, it would only walk and copy the parent's heap).
    with _collection_paused():
        try:
            for index, share in enumerate(shares[1:], 1):
                mine, theirs = context.Pipe()
                process = context.Process(target=_worker, args=(name, share, theirs, starts, index), daemon=True)
                process.start()
                theirs.close()
                processes.append(process)
                connections.append(mine)
            reader = CaptureReader(name)
            layout = _share_layout(reader, starts, connections) if starts is not None else None
            collected = [_analyse_share(reader, shares[0], progress, layout)]
            collected.extend(_received(connection, "ok", name) for connection in connections)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()
        _, frames, warnings, first_time = collected[0]
        return _merge_reports(
            [report for report, *_ in collected], frames=frames, warnings=warnings, first_time=first_time
        )


def _merge_reports(reports: list[Report], *, frames: int, warnings: list[str], first_time: int | None) -> Report:
    """Join the reports of workers that analysed disjoint sets of conversations of one file."""
    merged = Report(source=reports[0].source, frames=frames, warnings=list(warnings))
    renumber: dict[tuple[int, str, int], int] = {}
    for protocol in ("tcp", "udp"):
        conversations = [
            (conversation.first_frame, worker, conversation)
            for worker, report in enumerate(reports)
            for conversation in report.conversations
            if conversation.protocol == protocol
        ]
        conversations.sort(key=lambda item: (item[0], item[2].stream))
        for number, (_, worker, conversation) in enumerate(conversations):
            renumber[(worker, protocol, conversation.stream)] = number
            conversation.stream = number
            merged.conversations.append(conversation)
    findings: list[Finding] = []
    for worker, report in enumerate(reports):
        for finding in report.findings:
            if finding.protocol:
                finding = replace(finding, stream=renumber[(worker, finding.protocol, finding.stream)])
            findings.append(finding)
        merged.analysis_counts.update(report.analysis_counts)
        merged.undecoded_frames += report.undecoded_frames
    findings.sort(key=lambda finding: finding.frame)
    merged.findings = findings
    firsts = [report.first_frame for report in reports if report.first_frame]
    if firsts:
        # The first frame may have no time (a pcapng simple packet block): then the capture's
        # first time is that of a later frame, which another worker may have analysed.
        merged.first_frame, merged.first_time_ns = min(firsts), first_time
    return merged


# -- Selecting a few streams of a large file ----------------------------------------------------


def _select_in_two_passes(
    path: str | os.PathLike[str],
    protocol: str,
    streams: set[int],
    progress: ProgressCallback | None,
    verify_checksums: bool,
) -> tuple[Report, list[FrameAnalysis]]:
    """:func:`select_streams` for a large file, in two passes.

    The report first (parallel, no per-frame results), then only the frames of the
    chosen conversations, picked from their bytes (the address and port bytes of
    plain Ethernet/IPv4 frames; anything else decoded first). TCP and UDP analysis
    depends on a conversation's own frames alone, so their analysis is the same as
    in the full pass; their stream numbers are the full pass's.
    """
    report = analyse_file(path, progress=progress)
    chosen = [c for c in report.conversations if c.protocol == protocol and c.stream in streams]
    if not chosen:
        return report, []
    transport = PROTOCOL_NUMBERS[protocol]
    # Each chosen conversation owns its 4-tuple from its first frame until the next
    # conversation on the same 4-tuple (a reused port pair) begins.
    spans: dict[tuple[str, str, int, int], list[tuple[int, int, int]]] = {}
    by_key: dict[tuple[str, str, int, int], list[int]] = {}
    for conversation in report.conversations:
        if conversation.protocol == protocol:
            key = _canonical(conversation.address_a, conversation.address_b, conversation.port_a, conversation.port_b)
            by_key.setdefault(key, []).append(conversation.first_frame)
    for conversation in chosen:
        key = _canonical(conversation.address_a, conversation.address_b, conversation.port_a, conversation.port_b)
        later = [first for first in by_key[key] if first > conversation.first_frame]
        spans.setdefault(key, []).append(
            (conversation.first_frame, min(later) if later else 1 << 62, conversation.stream)
        )
    wanted_bytes = set()
    for source, destination, source_port, destination_port in spans:
        for a, b, c, d in (
            (source, destination, source_port, destination_port),
            (destination, source, destination_port, source_port),
        ):
            if ":" not in a:
                wanted_bytes.add(_ipv4_key_bytes(a, b, c, d))

    reader = CaptureReader(path)
    decoder = FrameDecoder(verify_checksums=verify_checksums)

    def belongs(record: PacketRecord) -> bool:
        key = _flow_key(record, transport)
        return key is not None and any(first <= record.number < end for first, end, _ in spans.get(key, ()))

    def chosen_records() -> Iterator[PacketRecord]:
        if reader.format == "pcap" and reader.pcap_header is not None:
            header = reader.pcap_header
            for chunk in reader.pcap_chunks():
                positions = candidate_positions(chunk, header, wanted_bytes, transport)
                for record in decode_positions(decoder, chunk, header, positions):
                    if belongs(record):
                        yield record
        else:
            for record in iter_records(reader, verify_checksums=verify_checksums):
                if belongs(record):
                    yield record

    # The second pass numbers its streams from 0; give each frame its stream number of the full pass.
    analyzer = Analyzer(source=os.fspath(path))
    numbers: dict[int, int] = {}
    frames: list[FrameAnalysis] = []
    for frame in analyzer.frames(chosen_records()):
        record = frame.record
        if frame.stream >= 0:
            if frame.stream not in numbers:
                owned = spans.get(_flow_key(record, transport) or ("", "", 0, 0), [])
                numbers[frame.stream] = next(
                    (stream for first, end, stream in owned if first <= record.number < end), -1
                )
            stream = numbers[frame.stream]
            findings = tuple(replace(finding, stream=stream) for finding in frame.findings)
            frame = frame._replace(stream=stream, findings=findings)
        frames.append(frame)
    return report, frames


def _flow_key(record: PacketRecord, transport: int) -> tuple[str, str, int, int] | None:
    """The key of the ``transport`` conversation of a record (the quoted one for an ICMP error), or None."""
    quoted = record.quoted
    flow = quoted if quoted is not None else record
    if flow.transport != transport:
        return None
    return _canonical(flow.source, flow.destination, flow.source_port, flow.destination_port)


def _canonical(a: str, b: str, port_a: int, port_b: int) -> tuple[str, str, int, int]:
    """The same key for both directions of a conversation."""
    return (a, b, port_a, port_b) if (a, port_a) <= (b, port_b) else (b, a, port_b, port_a)


def _ipv4_key_bytes(source: str, destination: str, source_port: int, destination_port: int) -> bytes:
    import socket

    return (
        socket.inet_aton(source)
        + socket.inet_aton(destination)
        + source_port.to_bytes(2, "big")
        + destination_port.to_bytes(2, "big")
    )
