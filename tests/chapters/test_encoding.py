"""Chapter 1, how is data encoded: the segments carry exactly the bytes each send() handed the kernel; the
headers' numbers are big-endian; the record's fields read back from the captured payload."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from visualizer import chapters
from visualizer.chapters import encoding
from visualizer.errors import UsageError
from visualizer.scenarios.kernel import (
    ENCODING_RECORD,
    ENCODING_RECORD_FIELDS,
    ENCODING_RECORD_FORMAT,
    ENCODING_TEXT,
    STORY_PORT,
    encoding_answer_to_record,
    encoding_answer_to_text,
)

RECORDED = Path(__file__).parent.parent / "data" / "kernel" / "encoding.pcap"
TEXT = ENCODING_TEXT.encode("utf-8")
RECORD = struct.pack(ENCODING_RECORD_FORMAT, *ENCODING_RECORD)
SENT = [
    ("client", TEXT),
    ("server", encoding_answer_to_text(TEXT)),
    ("client", RECORD),
    ("server", encoding_answer_to_record(RECORD)),
]


@pytest.fixture(scope="module")
def recorded() -> chapters.Experiment:
    return chapters.load(RECORDED, "encoding")


def check_the_bytes(experiment: chapters.Experiment) -> None:
    """Each send() as the kernel recorded it: the length it was handed and took, and its frames' payload bytes
    equal to what the program built; the record's fields read back from the frame."""
    sends = encoding.sent_bytes(experiment)
    assert [(sent.sender, sent.payload) for sent in sends] == SENT
    payloads = {frame.record.number: frame.record.payload for frame in experiment.frames}
    for sent, (_, built) in zip(sends, SENT, strict=True):
        assert sent.call.size == sent.call.result == len(built)
        assert b"".join(payloads[number] for number in sent.frames) == built
    record = sends[2]
    fields = encoding.record_fields(payloads[record.frames[0]], ENCODING_RECORD_FORMAT, ENCODING_RECORD_FIELDS)
    assert [(field.name, field.big_endian) for field in fields] == list(
        zip(ENCODING_RECORD_FIELDS, ENCODING_RECORD, strict=True)
    )
    assert [field.decimal_bytes for field in fields] == ["31 144", "1 2 3 4"]


def test_the_segments_carry_what_send_was_handed(recorded: chapters.Experiment) -> None:
    check_the_bytes(recorded)
    assert [sent.frames for sent in encoding.sent_bytes(recorded)] == [(4,), (6,), (8,), (9,)]


def test_the_headers_numbers_are_big_endian(recorded: chapters.Experiment) -> None:
    raw = recorded.raw_frame(4).data
    record = next(frame.record for frame in recorded.frames if frame.record.number == 4)
    fields = {field.name: field for field in encoding.header_fields(raw)}
    port = fields["Destination Port"]
    assert (port.raw, port.hex_bytes, port.decimal_bytes) == (b"\x1f\x90", "1f 90", "31 144")
    assert port.big_endian == STORY_PORT == record.destination_port and port.little_endian == 36_895
    decoded = {
        "Source Port": record.source_port,
        "Sequence Number": record.seq,
        "Acknowledgment Number": record.ack,
        "Window": record.window,
        "Total Length": record.original_length - 14,
        "EtherType": 0x0800,  # IPv4 (IEEE 802.3)
    }
    assert {name: fields[name].big_endian for name in decoded} == decoded
    assert any(fields[name].little_endian != value for name, value in decoded.items())
    assert ".".join(str(byte) for byte in fields["Source Address"].raw) == record.source


def test_the_fields_sit_where_scapy_finds_them(recorded: chapters.Experiment) -> None:
    """The offsets read here by hand against an independent dissection (the anatomy's, Scapy's)."""
    anatomy = recorded.anatomy(4)
    (tcp,) = [block for block in anatomy.blocks if block.name == "TCP"]
    values = {cell.name: cell.value for cell in tcp.fields}
    for field in encoding.header_fields(recorded.raw_frame(4).data):
        if field.layer == "TCP":
            assert values[field.name].split()[0] == str(field.big_endian), field.name
    layout = encoding.frame_layout(recorded.raw_frame(4).data)
    assert [layout.ethernet, layout.ipv4, layout.tcp] == [block.length for block in anatomy.blocks]
    assert layout.payload == len(anatomy.payload) == len(TEXT) and layout.total == 14 + 20 + 32 + len(TEXT)


def test_a_character_outside_ascii_takes_two_bytes() -> None:
    found = encoding.characters(TEXT)
    assert len(found) == len(ENCODING_TEXT) == len(TEXT) - 2
    wide = [(character.character, character.offset, character.raw) for character in found if len(character.raw) > 1]
    assert wide == [("é", 3, b"\xc3\xa9"), ("î", 20, b"\xc3\xae")]
    row = encoding.character_row("text", TEXT)
    assert [(group.start, group.end) for group in row.groups if group.wide] == [(3, 5), (20, 22)]


def test_a_record_layout_must_name_each_field() -> None:
    with pytest.raises(UsageError, match="'!HI' has 2 fields, 1 names given"):
        encoding.record_fields(RECORD, "!HI", ["port"])


def test_a_missing_frame_is_named(recorded: chapters.Experiment) -> None:
    with pytest.raises(UsageError, match="encoding.pcap: no frame 99 \\(the capture has 12 frames\\)"):
        recorded.raw_frame(99)


@pytest.mark.root
def test_a_run_made_now_carries_the_bytes_unchanged(tmp_path: Path) -> None:
    experiment = chapters.run("encoding", tmp_path)
    assert experiment.kernel is not None and experiment.kernel.lost_events == 0
    check_the_bytes(experiment)
    text = encoding.sent_bytes(experiment)[0]
    fields = {field.name: field for field in encoding.header_fields(experiment.raw_frame(text.frames[0]).data)}
    assert fields["Destination Port"].raw == bytes([31, 144])
