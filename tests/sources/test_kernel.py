"""The kernel-event source: tracepoint formats, raw ring-buffer pages, the sidecar file."""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import pytest

from visualizer.cli import CALL_COLUMNS, main
from visualizer.errors import CaptureFileError, TracingError
from visualizer.model import KernelEvent
from visualizer.sources.kernel import (
    FORMAT_NAME,
    RB_MISSED_EVENTS,
    READ_FILL,
    KernelRecorder,
    PageDecoder,
    _read_pages,
    clock_offset,
    load_sidecar,
    of_processes,
    parse_format,
    sidecar_path,
    write_sidecar,
)

FORMATS = Path(__file__).parent.parent / "data" / "kernel" / "formats"
DATA = FORMATS.parent


def formats() -> dict[str, object]:
    return {path.stem: parse_format("test", path.read_text()) for path in FORMATS.glob("*.format")}


def event_bytes(kind: int, tid: int, body: bytes) -> bytes:
    return struct.pack("<HBBi", kind, 0, 0, tid) + body


def record(type_len_data: bytes, delta: int) -> bytes:
    """A ring-buffer entry: the compressed header (type_len = words of data), then the data."""
    data = type_len_data + b"\0" * (-len(type_len_data) % 4)
    return struct.pack("<I", (len(data) // 4) | (delta << 5)) + data


def page(timestamp: int, entries: bytes, *, missed: bool = False) -> bytes:
    commit = len(entries) | (RB_MISSED_EVENTS if missed else 0)
    return struct.pack("<QQ", timestamp, commit) + entries + b"\0" * (4080 - len(entries))


def test_a_format_file_gives_the_fields_offsets_and_symbols() -> None:
    parsed = formats()
    state = parsed["inet_sock_set_state"]
    fields = {field.name: (field.offset, field.size) for field in state.fields}  # type: ignore[attr-defined]
    assert fields["skaddr"] == (8, 8) and fields["newstate"] == (20, 4) and fields["saddr"] == (32, 4)
    drop = parsed["kfree_skb"]
    assert drop.symbols["reason"][12] == "NETFILTER_DROP"  # type: ignore[attr-defined]
    with pytest.raises(TracingError):
        parse_format("test", "no format here")


def test_pages_decode_into_events_on_the_capture_clock() -> None:
    parsed = formats()
    state, received = parsed["inet_sock_set_state"], parsed["netif_receive_skb"]
    body = struct.pack("<QiiHHHH", 0xFFFF888012345678, 7, 2, 40000, 8080, 2, 6)
    body += bytes([127, 0, 0, 1, 127, 0, 0, 2]) + b"\0" * 32
    change = event_bytes(state.id, 42, body)  # type: ignore[attr-defined]
    name = b"lo\0\0"
    reception = event_bytes(received.id, 43, struct.pack("<QII", 0xFFFF888000000001, 60, (4 << 16) | 24) + name)  # type: ignore[attr-defined]
    extend = struct.pack("<I", 30 | (5 << 5)) + struct.pack("<I", 1)  # time extend: + (1 << 27) + 5
    again = event_bytes(state.id, 42, body)  # type: ignore[attr-defined]
    entries = record(change, 100) + extend + record(reception, 0) + record(again, 10)
    decoder = PageDecoder(parsed.values(), offset_ns=1_000_000_000)  # type: ignore[arg-type]
    events = list(decoder.decode(page(5_000, entries), cpu=1))
    assert [event.name for event in events] == ["inet_sock_set_state", "netif_receive_skb", "inet_sock_set_state"]
    assert [event.time_ns - 1_000_000_000 for event in events] == [5_100, 5_105 + (1 << 27), 5_115 + (1 << 27)]
    first = events[0]
    assert (first.tid, first.cpu) == (42, 1)
    assert first.fields == {
        "sk": 1,
        "oldstate": "CLOSE",
        "newstate": "SYN_SENT",
        "sport": 40000,
        "dport": 8080,
        "family": 2,
        "protocol": 6,
        "saddr": "127.0.0.1",
        "daddr": "127.0.0.2",
    }
    assert events[2].fields["sk"] == 1, "the same kernel pointer is the same identity, never the address"
    assert events[1].fields == {"skb": 2, "len": 60, "name": "lo"}
    assert decoder.missed_pages == 0
    list(decoder.decode(page(6_000, b"", missed=True), cpu=0))
    assert decoder.missed_pages == 1


def test_an_unknown_event_or_a_cut_entry_is_counted_not_raised() -> None:
    decoder = PageDecoder(formats().values())  # type: ignore[arg-type]
    assert list(decoder.decode(page(1, record(event_bytes(65000, 1, b"\0" * 8), 1)), cpu=0)) == []
    assert decoder.undecodable == 1
    assert list(decoder.decode(b"short", cpu=0)) == []


def test_the_sidecar_is_written_atomically_and_loads_back(tmp_path: Path) -> None:
    capture = tmp_path / "run.pcap"
    events = [KernelEvent(10, "tcp_probe", 0, 5, {"sk": 1, "snd_cwnd": 10}), KernelEvent(20, "kfree_skb", 1, 6, {})]
    header = {"format": FORMAT_NAME, "version": 1, "lost_events": 3, "alignment_error_ns": 90}
    assert write_sidecar(sidecar_path(capture), header, events) == tmp_path / "run.kernel.jsonl"
    loaded = load_sidecar(capture)
    assert loaded is not None and loaded.events == events
    assert (loaded.lost_events, loaded.alignment_error_ns) == (3, 90)
    assert [path.name for path in tmp_path.iterdir()] == ["run.kernel.jsonl"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json\n", "the header line is not JSON"),
        ('{"format": "other"}\n', "not a sockstory kernel-events file"),
        (json.dumps({"format": FORMAT_NAME, "version": 99}) + "\n", "version 99 is newer"),
        (json.dumps({"format": FORMAT_NAME, "version": 1}) + '\n{"t": 1}\n', "line 2 is not a kernel event"),
    ],
)
def test_a_bad_sidecar_is_one_error_naming_it(tmp_path: Path, content: str, problem: str) -> None:
    sidecar_path(tmp_path / "bad.pcap").write_text(content)
    with pytest.raises(CaptureFileError) as error:
        load_sidecar(tmp_path / "bad.pcap")
    assert "bad.kernel.jsonl" in str(error.value) and problem in str(error.value)


def test_the_clock_offset_is_measured_with_its_bound() -> None:
    offset, bound = clock_offset(tries=20)
    assert 0 <= bound < 1_000_000
    assert offset > 0  # the wall clock is far past the boot


def test_without_root_the_recorder_says_why_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # the forked recorder inherits it
    recorder = KernelRecorder(tmp_path / "x.kernel.jsonl", pids=[os.getpid()])
    result = recorder.start()
    assert result.missing == "tracing needs root (CAP_SYS_ADMIN)" and result.path is None
    assert recorder.stop().missing == result.missing
    assert recorder.missing_line() == (
        "kernel events not recorded: tracing needs root (CAP_SYS_ADMIN); the packets alone follow"
    )
    assert list(tmp_path.iterdir()) == []


def test_calls_lists_each_endpoint_s_calls_and_kernel_events() -> None:
    out = io.StringIO()
    assert main(["calls", "-q", str(DATA / "story.pcap")], stdout=out, stderr=io.StringIO()) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "\t".join(CALL_COLUMNS)
    assert {"kind", "what", "result", "seq", "frames"} <= set(CALL_COLUMNS)
    rows = [dict(zip(lines[0].split("\t"), line.split("\t"), strict=True)) for line in lines[1:]]
    sends = [row for row in rows if row["what"].startswith("send(")]
    assert [(row["what"], row["result"], row["seq"], row["frames"]) for row in sends] == [
        ("send(12)", "12", "1-13", "4"),
        ("send(27)", "27", "1-28", "6"),
    ]
    assert {row["kind"] for row in rows} == {"call", "state"}
    times = [float(row["time"]) for row in rows]
    assert times == sorted(times)
    out = io.StringIO()
    main(["calls", "-q", "--kind", "state", "--format", "jsonl", str(DATA / "loss.pcap")], stdout=out)
    states = [json.loads(line) for line in out.getvalue().splitlines()]
    assert states and all(row["kind"] == "state" for row in states)


def test_calls_on_a_capture_without_kernel_events_is_one_line(tmp_path: Path) -> None:
    capture = tmp_path / "alone.pcap"
    capture.write_bytes((DATA / "story.pcap").read_bytes())
    err = io.StringIO()
    assert main(["calls", str(capture)], stdout=io.StringIO(), stderr=err) == 1
    (line,) = err.getvalue().splitlines()
    assert "alone.pcap" in line and "alone.kernel.jsonl is missing" in line


def test_a_damaged_recording_is_said_and_the_packets_are_drawn_alone(tmp_path: Path) -> None:
    capture = tmp_path / "story.pcap"
    capture.write_bytes((DATA / "story.pcap").read_bytes())
    (tmp_path / "story.kernel.jsonl").write_text('{"broken\n')
    err = io.StringIO()
    assert main(["draw", "-q", str(capture), "-o", str(tmp_path / "s.png")], stdout=io.StringIO(), stderr=err) == 0
    warning = err.getvalue().splitlines()[0]
    assert "story.kernel.jsonl: the header line is not JSON" in warning and "packets alone" in warning
    assert (tmp_path / "s.png").stat().st_size > 0


class _Ring:
    """A stand-in for a recorder's tracefs instance: one CPU whose raw pipe holds ``pages``."""

    role = "socket"
    page_bytes = 4096
    ring_bytes = 1 << 20

    def __init__(self, pages: list[bytes], unread: int) -> None:
        reader, writer = os.pipe()
        for item in pages:
            os.write(writer, item)
        os.close(writer)
        os.set_blocking(reader, False)
        self.pipes = [(0, reader)]
        self.unread_bytes = unread

    def unread(self, cpu: int) -> int:
        return self.unread_bytes


def test_while_recording_a_ring_is_read_once_a_quarter_full_and_only_its_full_pages() -> None:
    full, partial = page(1, b"\x01" * 4000), page(2, b"\x02" * 100)
    ring = _Ring([full, full, partial, full], unread=int(READ_FILL * _Ring.ring_bytes) - 1)
    pages: list[tuple[str, int, bytes]] = []
    assert _read_pages([ring], pages) == 0  # not full enough yet: nothing read while the program runs
    ring.unread_bytes = int(READ_FILL * _Ring.ring_bytes)
    assert _read_pages([ring], pages) == 3  # the full pages, up to the page being written
    assert [item[2] for item in pages] == [full, full, partial]
    ring.unread_bytes = 0
    assert _read_pages([ring], pages, drain=True) == 1  # at the stop, everything
    assert pages[-1] == ("socket", 0, full)
    os.close(ring.pipes[0][1])


def test_the_calls_kept_are_those_of_the_traced_processes_and_the_tasks_they_start() -> None:
    events = [
        KernelEvent(1, "sys_enter_close", 0, 99, {"fd": 3}),  # a process of the machine with a higher pid
        KernelEvent(2, "task_newtask", 0, 10, {"pid": 11, "clone_flags": 0}),
        KernelEvent(3, "sys_enter_connect", 0, 11, {"fd": 3}),
        KernelEvent(4, "sys_enter_close", 0, 10, {"fd": 4}),
    ]
    assert [item.time_ns for item in of_processes(events, [10])] == [2, 3, 4]
