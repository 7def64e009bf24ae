"""Bulk decoding and parallel analysis give exactly what frame-by-frame analysis gives."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.packets import ACK, FIN, PSH, SYN, Conversation, ethernet, ipv4, ipv6, tcp, udp
from visualizer import pipeline
from visualizer.analysis import Analyzer, Report
from visualizer.errors import UsageError
from visualizer.model import SegmentRun
from visualizer.sources import CaptureReader, FrameDecoder, bulk, capture_file
from visualizer.sources.bulk import WHOLE, decode_pcap_chunk, mixing_byte, plan_shares
from visualizer.sources.pcap_writer import PcapWriter


def write_mixed_capture(path: Path, conversations: int = 120, seed: int = 5) -> int:
    """Interleaved TCP conversations (with retransmissions and duplicate ACKs), UDP, IPv6 and fragments."""
    rng = random.Random(seed)
    talks = []
    for index in range(conversations):
        talk = Conversation(f"10.0.{index % 7}.{index % 250 + 1}", "10.9.0.2", 20000 + index, 443)
        client, server = rng.getrandbits(32), rng.getrandbits(32)
        time = index * 0.001
        talk.client_sends(time, client, 0, SYN, options=b"\x01\x03\x03\x07")
        talk.server_sends(time + 0.01, server, client + 1, SYN | ACK, options=b"\x01\x03\x03\x07")
        talk.client_sends(time + 0.02, client + 1, server + 1, ACK)
        sent = 1
        for step in range(rng.randint(3, 30)):
            size = rng.randint(1, 400)
            moment = time + 0.03 + step * 0.01
            talk.client_sends(moment, client + sent, server + 1, PSH | ACK, b"x" * size)
            if rng.random() < 0.1:  # retransmitted
                talk.client_sends(moment + 0.3, client + sent, server + 1, PSH | ACK, b"x" * size)
            if rng.random() < 0.1:  # duplicate ACKs
                for _ in range(3):
                    talk.server_sends(moment + 0.004, server + 1, client + sent, ACK)
            sent += size
            talk.server_sends(moment + 0.005, server + 1, client + sent, ACK)
        talk.client_sends(time + 1, client + sent, server + 1, FIN | ACK)
        talk.server_sends(time + 1.01, server + 1, client + sent + 1, FIN | ACK)
        talk.client_sends(time + 1.02, client + sent + 1, server + 2, ACK)
        talks.append(talk.frames)
    frames = [frame for frames in talks for frame in frames]
    for index in range(40):
        frames.append((index * 0.01, ethernet(ipv4("10.0.0.1", "10.0.0.53", 17, udp(5000 + index, 53, b"q")))))
        segment = tcp(3000 + index, 80, 7, 0, SYN)
        frames.append((index * 0.01, ethernet(ipv6("2001:db8::1", "2001:db8::2", 6, segment), ethertype=0x86DD)))
    datagram = udp(6000, 53, b"f" * 40)
    frames.append(
        (0.5, ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram[:24], identification=9, flags_fragment=0x2000)))
    )
    frames.append((0.6, ethernet(ipv4("10.0.0.1", "10.0.0.2", 17, datagram[24:], identification=9, flags_fragment=3))))
    frames.sort(key=lambda item: item[0])
    with PcapWriter(path) as writer:
        for time, data in frames:
            writer.write(data, 1_700_000_000_000_000_000 + int(time * 1e9))
    return len(frames)


def summary(report: Report) -> tuple[object, ...]:
    return (
        report.frames,
        report.first_frame,
        report.first_time_ns,
        [
            (c.protocol, c.stream, c.address_a, c.port_a, c.frames_a_to_b, c.bytes_b_to_a, c.outcome, c.state_a)
            for c in report.conversations
        ],
        # The report-only path remembers no first transmissions: no not_received, no original named.
        [(f.kind, f.frame, f.protocol, f.stream) for f in report.findings if f.kind != "not_received"],
        {kind: count for kind, count in report.analysis_counts.items() if kind != "not_received"},
        report.undecoded_frames,
    )


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "mixed.pcap"
    write_mixed_capture(path)
    return path


@pytest.mark.parametrize("flow_keys_kept", [bulk.FLOW_KEY_CACHE_SIZE, 8])
def test_bulk_decoding_gives_the_same_records(
    capture: Path, flow_keys_kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "FLOW_KEY_CACHE_SIZE", flow_keys_kept)  # 8: the cache starts again in every chunk
    scalar = list(CaptureReader(capture).read(FrameDecoder().decode_from))
    reader = CaptureReader(capture)
    assert reader.pcap_header is not None
    decoder = FrameDecoder()
    decoded = [
        record for chunk in reader.pcap_chunks() for record in decode_pcap_chunk(decoder, chunk, reader.pcap_header)
    ]
    assert len(scalar) > 3000
    assert decoded == scalar


def test_column_runs_give_the_same_analysis_as_records(capture: Path) -> None:
    records = list(CaptureReader(capture).read(FrameDecoder().decode_from))
    reader = CaptureReader(capture)
    assert reader.pcap_header is not None
    decoder = FrameDecoder()
    items = [
        item
        for chunk in reader.pcap_chunks()
        for item in decode_pcap_chunk(decoder, chunk, reader.pcap_header, runs=True)
    ]
    assert any(isinstance(item, SegmentRun) for item in items)
    by_records, by_runs = Analyzer(), Analyzer()
    by_records.feed(records)
    by_runs.feed(items)
    expected = summary(by_records.finish())
    assert summary(by_runs.finish()) == expected
    assert expected[4], "the capture must give findings to compare"


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_analysis_equals_one_process(capture: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    one = pipeline.analyse_file(capture, workers=1)
    monkeypatch.setattr(pipeline, "BULK_MINIMUM_BYTES", 0)  # force the NumPy path on this small file
    assert summary(pipeline.analyse_file(capture, workers=1)) == summary(one)
    assert summary(pipeline.analyse_file(capture, workers=workers)) == summary(one)


@pytest.fixture
def layouts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What the parallel analysis of a file (read as a large one) found of where its records lie."""
    monkeypatch.setattr(pipeline, "BULK_MINIMUM_BYTES", 0)
    found: list[object] = []
    share_layout = pipeline._share_layout

    def watched(*arguments: Any) -> Any:
        found.append(share_layout(*arguments))
        return found[-1]

    monkeypatch.setattr(pipeline, "_share_layout", watched)
    return found


def test_parallel_workers_share_the_records_they_found(capture: Path, layouts: list[object]) -> None:
    assert summary(pipeline.analyse_file(capture, workers=3)) == summary(pipeline.analyse_file(capture, workers=1))
    (layout,) = layouts
    assert isinstance(layout, list) and len(layout) == 3
    assert [stretch.end for stretch in layout[:-1]] == [stretch.start for stretch in layout[1:]]
    assert layout[-1].end == capture.stat().st_size


@pytest.mark.parametrize("guess", ["off_a_boundary", "none"])
def test_parallel_analysis_trusts_no_wrong_guess_of_where_a_record_starts(
    capture: Path, guess: str, layouts: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    one = pipeline.analyse_file(capture, workers=1)
    near = CaptureReader.pcap_record_near

    def wrong(reader: CaptureReader, offset: int) -> int | None:
        found = near(reader, offset)
        return found + 1 if found is not None and guess == "off_a_boundary" else None

    monkeypatch.setattr(CaptureReader, "pcap_record_near", wrong)
    assert summary(pipeline.analyse_file(capture, workers=2)) == summary(one)
    assert layouts == ([None] if guess == "off_a_boundary" else [])  # not confirmed: every worker scanned all


def test_parallel_analysis_of_a_pcapng_file() -> None:
    path = Path(__file__).parent / "data" / "corpus" / "captures" / "zeek-ldap-gap-data-missing.pcapng"
    assert summary(pipeline.analyse_file(path, workers=2)) == summary(pipeline.analyse_file(path, workers=1))


def test_shares_cover_every_mixing_byte_once() -> None:
    for workers in (1, 2, 3, 4):
        shares = plan_shares(workers)
        assert shares[0].low == 0 and shares[-1].high == 256
        assert all(left.high == right.low for left, right in zip(shares, shares[1:]))
    assert plan_shares(1) == [WHOLE]


def test_mixing_byte_is_the_same_for_both_directions() -> None:
    talk = Conversation("192.0.2.7", "198.51.100.9", 40123, 443)
    talk.client_sends(0, 1, 0, SYN).server_sends(0.1, 9, 2, SYN | ACK)
    forward, backward = talk.records()
    assert mixing_byte(forward) == mixing_byte(backward) == (7 ^ 9 ^ (40123 & 0xFF) ^ (443 & 0xFF))


@pytest.mark.parametrize("two_passes", [False, True])
def test_selected_streams_are_the_frames_of_the_full_analysis(
    capture: Path, two_passes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = pipeline.analyse_file(capture, keep_frames=True, workers=1)
    if two_passes:
        monkeypatch.setattr(pipeline, "BULK_MINIMUM_BYTES", 0)  # this small file is read as a large one
    for protocol, streams in (("tcp", {0, 7, 33}), ("udp", {2})):
        report, frames = pipeline.select_streams(capture, protocol, streams)
        expected = [
            frame
            for frame in full.frame_analyses
            if frame.stream in streams
            and frame.protocol in (protocol, "icmp")
            and (frame.record.quoted.transport if frame.record.quoted else frame.record.transport)
            == (6 if protocol == "tcp" else 17)
        ]
        assert frames == expected and frames
        assert summary(report) == summary(pipeline.analyse_file(capture, workers=1))


def test_selecting_no_stream_gives_every_frame(capture: Path) -> None:
    full = pipeline.analyse_file(capture, keep_frames=True, workers=1)
    report, frames = pipeline.select_streams(capture, "tcp", ())
    assert frames == full.frame_analyses and summary(report) == summary(full)


def test_selecting_streams_of_an_unknown_protocol_is_a_usage_error(capture: Path) -> None:
    with pytest.raises(UsageError, match="'sctp'"):
        pipeline.select_streams(capture, "sctp", {0})


FUZZ = Path(__file__).parent / "data" / "fuzz"


@pytest.mark.parametrize("path", ["small", "bulk", "parallel"])
def test_a_pcap_2_3_file_with_a_cut_last_record_reads_the_same_on_every_path(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 150 bytes: a SYN, then a record of 40 captured bytes out of 70 (pcap 2.3, lengths in the 2.3 order).
    capture = FUZZ / "pcap-2.3-cut-record.pcap"
    expected = summary(pipeline.analyse_file(capture, workers=1))
    if path != "small":
        monkeypatch.setattr(pipeline, "BULK_MINIMUM_BYTES", 0)
    report = pipeline.analyse_file(capture, workers=2 if path == "parallel" else 1)
    assert summary(report) == expected
    assert report.frames == 2 and report.undecoded_frames == 1


def test_a_frame_that_looks_plain_but_does_not_decode_is_kept_by_every_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Raw bytes say plain IPv4 TCP/UDP (so a worker is chosen from them), but the headers are cut
    # (IPv4 total length, or the frame itself): the record has no ports and mixes to 0. The raw
    # bytes mix to 128 and up, so the choice from bytes and the one from the record differ.
    path = tmp_path / "looks-plain.pcap"
    segment = tcp(40000, 80, 1, 0, SYN)
    datagram = udp(5000, 53, b"q" * 20)
    frames = [
        ethernet(ipv4("10.0.0.200", "10.0.0.2", 6, segment, total_length=24)),  # TCP header cut by IPv4
        ethernet(ipv4("10.0.0.200", "10.0.0.3", 6, segment))[:44],  # TCP header cut by the snap length
        ethernet(ipv4("10.0.0.200", "10.0.0.4", 17, datagram, total_length=26)),  # UDP header cut by IPv4
    ]
    talk = Conversation("10.0.0.1", "10.0.0.2", 40001, 80)
    talk.client_sends(1.0, 1, 0, SYN).server_sends(1.1, 9, 2, SYN | ACK).client_sends(1.2, 2, 10, ACK)
    with PcapWriter(path) as writer:
        for index, data in enumerate(frames):
            writer.write(data, 1_700_000_000_000_000_000 + index * 1000, original_length=len(data) + 30)
        for time, data in talk.frames:
            writer.write(data, 1_700_000_000_000_000_000 + int(time * 1e9))
    records = list(CaptureReader(path).read(FrameDecoder().decode_from))
    assert all(mixing_byte(record) == 0 and record.problem for record in records[:3])
    expected = summary(pipeline.analyse_file(path, workers=1))
    assert expected[6] == 3 and expected[1] == 1  # undecoded frames, first frame
    monkeypatch.setattr(pipeline, "BULK_MINIMUM_BYTES", 0)
    assert summary(pipeline.analyse_file(path, workers=1)) == expected
    for workers in (2, 3, 4):
        assert summary(pipeline.analyse_file(path, workers=workers)) == expected


@pytest.mark.parametrize("chunk", [1 << 21, 64])
@pytest.mark.parametrize("path", ["bulk", "parallel"])
def test_every_path_warns_of_the_same_oddities(
    path: str, chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = tmp_path / "odd.pcap"
    talk = Conversation("10.0.0.1", "10.0.0.2", 40001, 80)
    talk.client_sends(1.0, 1, 0, SYN).server_sends(1.1, 9, 2, SYN | ACK).client_sends(0.5, 2, 10, ACK)
    talk.client_sends(0.2, 2, 10, PSH | ACK, b"late")
    with PcapWriter(capture) as writer:
        for time, data in talk.frames:
            writer.write(data, 1_700_000_000_000_000_000 + int(time * 1e9))
        writer.write(b"", 1_700_000_002_000_000_000)
    expected = pipeline.analyse_file(capture, workers=1)
    assert expected.warnings == [
        f"{capture}: time goes backwards at frame 3 (0.600000 s before frame 2)",
        f"{capture}: 1 frame carries no bytes at all (the first is frame 5)",
    ]
    monkeypatch.setattr(pipeline, "BULK_MINIMUM_BYTES", 0)
    monkeypatch.setattr(capture_file, "_CHUNK", chunk)  # 64: about a frame per read buffer
    report = pipeline.analyse_file(capture, workers=2 if path == "parallel" else 1)
    assert report.warnings == expected.warnings and summary(report) == summary(expected)
