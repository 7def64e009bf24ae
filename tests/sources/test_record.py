"""Packet records are built in one place, and every decoding path builds the same record."""

from __future__ import annotations

import re
from pathlib import Path

from tests.packets import ACK, PSH, ethernet, ipv4, tcp
from visualizer.model import PacketRecord, QuotedFlow
from visualizer.sources.capture_file import RawFrame
from visualizer.sources.decode import FrameDecoder
from visualizer.sources.record import Fields, build_record

PACKAGE = Path(__file__).parent.parent.parent / "visualizer"


def test_build_record_takes_the_fields_in_declaration_order() -> None:
    values = {name: f"value of {name}" for name in PacketRecord._fields}
    record = build_record(values[name] for name in PacketRecord._fields)
    assert type(record) is PacketRecord and record == PacketRecord(**values)  # type: ignore[arg-type]


def test_empty_fields_give_the_neutral_record() -> None:
    record = Fields().record(7, None, 0, 1, 3, 3, ["eth"])
    assert record == PacketRecord(
        7, None, 0, 1, 3, 3, "eth", 0, 0, "", "", 0, 0, 0, 0, 0, 0, b"", 0, b"", False, -1, -1, None, ""
    )
    fields = Fields()
    fields.quoted = QuotedFlow("10.0.0.1", "10.0.0.2", 17, 5000, 9)
    assert fields.record(1, 0, 0, 1, 0, 0, []).quoted == fields.quoted


def test_the_fast_path_and_the_general_path_build_the_same_record() -> None:
    segment = tcp(1234, 80, 100, 200, PSH | ACK, 512, b"hello", options=b"\x01\x01\x08\x0a" + b"\0" * 8)
    data = ethernet(ipv4("10.0.0.1", "10.0.0.2", 6, segment))
    frame = RawFrame(3, 1_000, 0, 1, len(data), len(data) + 10, data)
    fast = FrameDecoder().decode(frame)
    general = FrameDecoder()._decode_slowly(frame)
    assert fast == general and fast.payload == b"hello"


def test_no_other_module_builds_a_packet_record() -> None:
    building = re.compile(r"PacketRecord\(|PacketRecord\._make|tuple\.__new__")
    builders = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if building.search(path.read_text().replace("class PacketRecord(", ""))
    )
    # analysis/analyzer.py builds FrameAnalysis values (not records) with tuple.__new__.
    assert builders == ["analysis/analyzer.py", "sources/record.py"]
