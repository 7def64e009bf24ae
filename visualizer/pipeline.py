"""Glue between the edges and the core: read a capture file and analyse it.

Kept apart from :mod:`visualizer.analysis` so the core never opens a file.

A large file is analysed by several processes at once (one per CPU, at most
:data:`MAXIMUM_WORKERS`). Conversations are independent, so each worker reads the
whole file but decodes and analyses only the conversations of its share (chosen
by a hash that does not depend on direction); the reports are then merged and the
streams renumbered in order of first appearance, exactly as one process would
number them. Per-frame results (``keep_frames``) always come from one process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from multiprocessing.connection import Connection

from visualizer.analysis import Analyzer, FrameAnalysis, Report
from visualizer.analysis.report import Finding
from visualizer.model import PROTOCOL_TCP, PROTOCOL_UDP, PacketRecord
from visualizer.sources import CaptureReader, FrameDecoder, iter_records
from visualizer.sources.decode import LINKTYPE_ETHERNET

ProgressCallback = Callable[[int, int, int], None]
"""Called now and then with (frames so far, bytes read so far, file size)."""

PROGRESS_EVERY = 1 << 14
PARALLEL_MINIMUM_BYTES = 64 * 1024 * 1024
"""Files smaller than this are read by one process: starting workers would cost more than it saves."""
MAXIMUM_WORKERS = 4


def iter_file_analysis(
    path: str | os.PathLike[str],
    *,
    keep_frames: bool = False,
    progress: ProgressCallback | None = None,
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
            for record in iter_records(reader):
                yield add(record)
        else:
            count = 0
            for record in iter_records(reader):
                yield add(record)
                count += 1
                if not count % PROGRESS_EVERY:
                    progress(count, reader.bytes_read, reader.size)
            progress(count, reader.size, reader.size)

    return analyzer, reader, frames()


def default_workers(path: str | os.PathLike[str]) -> int:
    """How many processes to use for ``path``: one for small files, one per CPU for large ones."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return 1
    if size < PARALLEL_MINIMUM_BYTES:
        return 1
    return max(1, min(MAXIMUM_WORKERS, len(os.sched_getaffinity(0))))


def analyse_file(
    path: str | os.PathLike[str],
    *,
    keep_frames: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> Report:
    """Read and analyse a whole capture file; warnings about damage land in the report.

    ``workers`` processes share the work (default: :func:`default_workers`); with
    ``keep_frames`` the analysis runs in this process.
    """
    count = default_workers(path) if workers is None else workers
    if count > 1 and not keep_frames:
        return _analyse_in_parallel(path, count, progress)
    reader = CaptureReader(path)
    analyzer = Analyzer(source=os.fspath(path), keep_frames=keep_frames)
    add = analyzer.count
    frames = 0
    for record in iter_records(reader):
        add(record)
        frames += 1
        if progress is not None and not frames % PROGRESS_EVERY:
            progress(frames, reader.bytes_read, reader.size)
    if progress is not None:
        progress(frames, reader.size, reader.size)
    report = analyzer.finish()
    report.frames = reader.frames_read
    report.warnings.extend(reader.warnings)
    return report


# -- parallel analysis ------------------------------------------------------------------------


def share_of(record: PacketRecord, workers: int) -> int:
    """The worker that analyses ``record``: the same for both directions of a conversation.

    For IPv4 it must equal the fast test in :func:`_analyse_share` (last address
    bytes and low port bytes, combined with XOR), so that a conversation whose
    frames take different decoding paths stays with one worker.
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
    return (mixed ^ (source_port & 0xFF) ^ (destination_port & 0xFF)) % workers


def _analyse_share(path: str, index: int, workers: int, shared_bytes: object) -> tuple[Report, int, list[str]]:
    reader = CaptureReader(path)
    decode_from = FrameDecoder().decode_from
    analyzer = Analyzer(source=path)
    add = analyzer.count
    counter = shared_bytes if index == 0 else None

    def make(
        buffer: bytes, start: int, number: int, timestamp: int | None, interface: int, link_type: int,
        captured: int, original: int, /,
    ) -> PacketRecord | None:
        if (
            link_type == LINKTYPE_ETHERNET
            and captured >= 38
            and buffer[start + 12] == 8
            and buffer[start + 13] == 0
            and buffer[start + 14] == 0x45
            and not (buffer[start + 20] & 0x3F or buffer[start + 21])
            and (buffer[start + 23] == PROTOCOL_TCP or buffer[start + 23] == PROTOCOL_UDP)
        ):
            mixed = buffer[start + 29] ^ buffer[start + 33] ^ buffer[start + 35] ^ buffer[start + 37]
            if mixed % workers != index:
                return None
            return decode_from(buffer, start, number, timestamp, interface, link_type, captured, original)
        # Every worker decodes the other frames (IP reassembly needs them all), then keeps its share.
        record = decode_from(buffer, start, number, timestamp, interface, link_type, captured, original)
        return record if share_of(record, workers) == index else None

    count = 0
    for record in reader.read(make):
        add(record)
        count += 1
        if counter is not None and not count % PROGRESS_EVERY:
            counter.value = reader.bytes_read  # type: ignore[attr-defined]
    return analyzer.finish(), reader.frames_read, reader.warnings


def _worker(path: str, index: int, workers: int, shared_bytes: object, connection: Connection) -> None:
    try:
        connection.send(("ok", _analyse_share(path, index, workers, shared_bytes)))
    except BaseException as error:  # reported to the parent, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


def _analyse_in_parallel(path: str | os.PathLike[str], workers: int, progress: ProgressCallback | None) -> Report:
    name = os.fspath(path)
    CaptureReader(name).close()  # a file that is not a capture fails here, in this process
    context = multiprocessing.get_context("fork")
    shared_bytes = context.RawValue("q", 0)
    size = os.path.getsize(name)
    processes = []
    connections = []
    try:
        for index in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker, args=(name, index, workers, shared_bytes, sender), daemon=True
            )
            process.start()
            sender.close()
            processes.append(process)
            connections.append(receiver)
        results: list[tuple[Report, int, list[str]]] = []
        for receiver in connections:
            while not receiver.poll(0.1):
                if progress is not None:
                    progress(0, shared_bytes.value, size)
            status, payload = receiver.recv()
            if status != "ok":
                raise RuntimeError(f"{name}: analysis worker failed: {payload}")
            results.append(payload)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    if progress is not None:
        progress(0, size, size)
    return merge_reports([report for report, _, _ in results], frames=results[0][1], warnings=results[0][2])


def merge_reports(reports: list[Report], *, frames: int, warnings: list[str]) -> Report:
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
    firsts = [report for report in reports if report.first_frame]
    if firsts:
        first = min(firsts, key=lambda report: report.first_frame)
        merged.first_frame, merged.first_time_ns = first.first_frame, first.first_time_ns
    return merged


__all__ = ["analyse_file", "default_workers", "iter_file_analysis", "merge_reports", "share_of"]
