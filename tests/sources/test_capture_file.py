"""pcap and pcapng reading: formats, byte orders, resolutions, blocks, damage, bad input."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from visualizer.cli import main
from visualizer.errors import CaptureFileError, UsageError
from visualizer.sources import capture_file
from visualizer.sources.capture_file import PCAP_FILE_HEADER_LENGTH, CaptureReader, PcapStretch
from visualizer.sources.pcap_writer import PcapWriter

FRAME = bytes(range(60))


def pcap_bytes(
    order: str, magic: int, records: list[tuple[int, int, bytes]], version: tuple[int, int] = (2, 4), link_type: int = 1
) -> bytes:
    out = struct.pack(order + "IHHiIII", magic, *version, 0, 0, 65535, link_type)
    for seconds, fraction, data in records:
        out += struct.pack(order + "IIII", seconds, fraction, len(data), len(data)) + data
    return out


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(
    ("magic", "fraction", "expected_ns"), [(0xA1B2C3D4, 250_000, 250_000_000), (0xA1B23C4D, 250_000, 250_000)]
)
def test_pcap_in_both_byte_orders_and_resolutions(
    tmp_path: Path, order: str, magic: int, fraction: int, expected_ns: int
) -> None:
    path = tmp_path / "a.pcap"
    path.write_bytes(pcap_bytes(order, magic, [(10, fraction, FRAME), (11, 0, FRAME[:20])]))
    frames = list(CaptureReader(path))
    assert [frame.number for frame in frames] == [1, 2]
    assert frames[0].timestamp_ns == 10 * 10**9 + expected_ns
    assert frames[0].data == FRAME and frames[1].captured_length == 20
    assert frames[0].link_type == 1


def test_old_pcap_versions_have_their_lengths_swapped(tmp_path: Path) -> None:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 0, 0, 0, 0, 1)
    record = struct.pack("<IIII", 1, 0, 1000, 10) + b"x" * 10
    path = tmp_path / "old.pcap"
    path.write_bytes(header + record)
    (frame,) = CaptureReader(path)
    assert (frame.captured_length, frame.original_length) == (10, 1000)


def test_pcap_writer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    with PcapWriter(path) as writer:
        writer.write(FRAME, 1_700_000_000_123_456_789)
    (frame,) = CaptureReader(path)
    assert frame.timestamp_ns == 1_700_000_000_123_456_789 and frame.data == FRAME


def block(order: str, kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def section(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def interface(order: str, link_type: int, tsresol: int | None = None) -> bytes:
    options = b""
    if tsresol is not None:
        options = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", link_type, 0, 0) + options)


def enhanced(order: str, interface_id: int, ticks: int, data: bytes) -> bytes:
    return block(
        order,
        6,
        struct.pack(order + "IIIII", interface_id, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data,
    )


def test_pcapng_sections_interfaces_resolutions_and_special_blocks(tmp_path: Path) -> None:
    content = (
        section("<")
        + interface("<", 1)
        + interface("<", 101, tsresol=9)
        + enhanced("<", 0, 1_500_000, FRAME)  # microseconds by default
        + enhanced("<", 1, 2_000_000_001, FRAME[:30])  # nanoseconds
        + block("<", 0x00000BAD, b"\0\0\0\0custom")  # tshark 4.0 shows custom blocks as frames
        + block("<", 3, struct.pack("<I", len(FRAME)) + FRAME)  # simple packet block: no time
        + section(">")
        + interface(">", 113)
        + enhanced(">", 0, 3_000_007, FRAME)
    )
    path = tmp_path / "multi.pcapng"
    path.write_bytes(content)
    reader = CaptureReader(path)
    frames = list(reader)
    assert [frame.number for frame in frames] == [1, 2, 3, 4, 5]
    assert [frame.link_type for frame in frames] == [1, 101, -1, 1, 113]
    assert [frame.timestamp_ns for frame in frames] == [1_500_000_000, 2_000_000_001, None, None, 3_000_007_000]
    assert frames[1].interface == 1 and frames[3].data == FRAME
    assert reader.warnings == []


def test_truncated_pcap_gives_frames_before_the_damage_and_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes("<", 0xA1B2C3D4, [(1, 0, FRAME), (2, 0, FRAME)])[:-10])
    reader = CaptureReader(path)
    frames = list(reader)
    assert len(frames) == 1
    (warning,) = reader.warnings
    assert "cut.pcap" in warning and "cut short" in warning and "read 1 frame" in warning


def test_impossible_record_length_stops_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "huge.pcap"
    path.write_bytes(pcap_bytes("<", 0xA1B2C3D4, [(1, 0, FRAME)]) + struct.pack("<IIII", 2, 0, 5_000_000, 5_000_000))
    reader = CaptureReader(path)
    assert len(list(reader)) == 1
    assert "bigger than the maximum" in reader.warnings[0]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file"),
        (b"hello world, not a capture", "not a pcap or pcapng file"),
        (struct.pack("<I", 0xA1B2C3D4) + b"\0" * 4, "header cut short"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureFileError) as raised:
        CaptureReader(path)
    assert str(path) in str(raised.value) and problem in str(raised.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureFileError, match="no such file"):
        CaptureReader(tmp_path / "missing.pcap")
    with pytest.raises(CaptureFileError, match="is a directory"):
        CaptureReader(tmp_path)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [((40, 70), (40, 70)), ((70, 40), (40, 70)), ((60, 60), (60, 60))],
)
def test_pcap_2_3_lengths_are_swapped_only_when_the_captured_one_is_larger(
    tmp_path: Path, stored: tuple[int, int], expected: tuple[int, int]
) -> None:
    # libpcap's sf-pcap.c (MAYBE_SWAPPED): a 2.3 file's record is taken as swapped only when its
    # captured length exceeds its original length.
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 3, 0, 0, 0, 1)
    record = struct.pack("<IIII", 1, 0, *stored) + FRAME[: min(stored)]
    path = tmp_path / "v23.pcap"
    path.write_bytes(header + record + record)
    frames = list(CaptureReader(path))
    assert [(frame.captured_length, frame.original_length) for frame in frames] == [expected, expected]
    assert all(len(frame.data) == frame.captured_length for frame in frames)


def test_dg_ux_pcap_543_has_its_lengths_swapped(tmp_path: Path) -> None:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 543, 0, 0, 0, 0, 1)
    path = tmp_path / "dgux.pcap"
    path.write_bytes(header + struct.pack("<IIII", 1, 0, 1000, 10) + b"x" * 10)
    (frame,) = CaptureReader(path)
    assert (frame.captured_length, frame.original_length) == (10, 1000)


def test_empty_simple_packet_blocks_are_named_in_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "empty-blocks.pcapng"
    empty = block("<", 3, struct.pack("<I", 0))
    path.write_bytes(section("<") + interface("<", 1) + block("<", 3, struct.pack("<I", 60) + FRAME) + empty * 10_000)
    reader = CaptureReader(path)
    assert len(list(reader)) == 10_001
    (warning,) = reader.warnings
    assert warning == f"{path}: 10,000 frames carry no bytes at all (the first is frame 2)"
    err = io.StringIO()
    assert main(["flows", str(path), "-q"], stdout=io.StringIO(), stderr=err) == 3  # it used to say nothing: 0
    assert err.getvalue() == f"sockstory: warning: {warning}\n"


def test_empty_pcap_records_are_named_in_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "empty-records.pcap"
    path.write_bytes(pcap_bytes("<", 0xA1B2C3D4, [(1, 0, FRAME), (2, 0, b""), (3, 0, FRAME)]))
    reader = CaptureReader(path)
    assert len(list(reader)) == 3
    assert reader.warnings == [f"{path}: 1 frame carries no bytes at all (the first is frame 2)"]


def test_time_going_backwards_is_warned_once_with_its_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "back.pcap"
    path.write_bytes(pcap_bytes("<", 0xA1B2C3D4, [(10, 0, FRAME), (12, 0, FRAME), (11, 500_000, FRAME), (9, 0, FRAME)]))
    reader = CaptureReader(path)
    assert len(list(reader)) == 4
    assert reader.warnings == [f"{path}: time goes backwards at frame 3 (0.500000 s before frame 2)"]
    nanoseconds = tmp_path / "back.pcapng"
    nanoseconds.write_bytes(
        section("<") + interface("<", 1) + enhanced("<", 0, 5_000_000, FRAME) + enhanced("<", 0, 4_999_999, FRAME)
    )
    reader = CaptureReader(nanoseconds)
    assert len(list(reader)) == 2
    assert reader.warnings == [f"{nanoseconds}: time goes backwards at frame 2 (0.000001 s before frame 1)"]


def chunk_frames(reader: CaptureReader, layout: list[PcapStretch] | None = None) -> list[tuple[int, bytes]]:
    return [
        (
            chunk.first_number + index,
            chunk.buffer[offset : offset + 16 + struct.unpack_from("<I", chunk.buffer, offset + 8)[0]],
        )
        for chunk in reader.pcap_chunks(layout)
        for index, offset in enumerate(chunk.offsets)
    ]


@pytest.mark.parametrize("ending", ["whole", "cut", "damaged"])
def test_stretches_scanned_apart_read_as_one_scan(tmp_path: Path, ending: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture_file, "_CHUNK", 512)  # several read buffers in each stretch
    records = [(1000 + index, index, FRAME[: index % 61]) for index in range(400)]  # frame 1 carries no bytes
    content = pcap_bytes("<", 0xA1B2C3D4, records)
    if ending == "cut":
        content = content[:-5]
    elif ending == "damaged":
        content += struct.pack("<IIII", 2000, 0, 5_000_000, 5_000_000) + FRAME
    path = tmp_path / "a.pcap"
    path.write_bytes(content)
    whole = CaptureReader(path)
    expected = chunk_frames(whole)
    boundaries = {24 + sum(16 + len(data) for *_, data in records[:index]) for index in range(len(records))}
    reader = CaptureReader(path)
    guess = reader.pcap_record_near(len(content) // 2)
    assert guess in boundaries and guess > len(content) // 2 - 80
    layout = [reader.scan_pcap(PCAP_FILE_HEADER_LENGTH, guess), reader.scan_pcap(guess, reader.size)]
    assert layout[0].end == guess and not layout[0].damaged  # the chain from the first record confirms the guess
    assert chunk_frames(reader, layout) == expected
    assert (reader.frames_read, reader.warnings) == (whole.frames_read, whole.warnings)
    assert len(whole.warnings) == (1 if ending == "whole" else 2)  # the empty frame, and the end if odd
    # A stretch that ends off a record boundary is told by where its chain ended.
    assert CaptureReader(path).scan_pcap(PCAP_FILE_HEADER_LENGTH, guess + 1).end != guess + 1


def test_no_record_is_guessed_in_bytes_that_hold_none(tmp_path: Path) -> None:
    path = tmp_path / "noise.pcap"
    path.write_bytes(pcap_bytes("<", 0xA1B2C3D4, [(1, 0, FRAME)]) + b"\xff" * 5000)
    assert CaptureReader(path).pcap_record_near(1000) is None


@pytest.mark.parametrize("method", ["scan_pcap", "pcap_record_near"])
def test_finding_pcap_records_is_for_pcap_files_only(method: str) -> None:
    reader = CaptureReader(Path(__file__).parents[1] / "data/corpus/captures/gopacket-le-test901.pcapng")
    find = getattr(reader, method)
    with pytest.raises(UsageError, match=f"{method}\\(\\) reads pcap files only \\(this is pcapng\\)"):
        find(0, 100) if method == "scan_pcap" else find(0)
