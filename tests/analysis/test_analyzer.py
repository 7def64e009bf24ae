"""The analysis on hand-built segment lists with explicit times, one detector at a time."""

from __future__ import annotations

import pytest

from tests.packets import ACK, FIN, PSH, RST, SYN, Conversation, decode_all, ethernet, ipv4, udp
from visualizer.analysis import analyse, analysis_names
from visualizer.analysis.report import FrameAnalysis

C_ISN, S_ISN = 1000, 5000
WS7 = b"\x01\x03\x03\x07"  # NOP, window scale 7
NO_WS = b""


def handshake(*, client_options: bytes = WS7, server_options: bytes = WS7) -> Conversation:
    return (
        Conversation()
        .client_sends(0.000, C_ISN, 0, SYN, options=client_options, window=64240)
        .server_sends(0.010, S_ISN, C_ISN + 1, SYN | ACK, options=server_options, window=65160)
        .client_sends(0.020, C_ISN + 1, S_ISN + 1, ACK, window=502)
    )


def frames(conversation: Conversation) -> list[FrameAnalysis]:
    return analyse(conversation.records(), keep_frames=True).frame_analyses


def flags_of(frame: FrameAnalysis) -> set[str]:
    return set(analysis_names(frame.analysis))


def test_handshake_request_response_close_states_and_relative_numbers() -> None:
    talk = handshake()
    talk.client_sends(0.030, C_ISN + 1, S_ISN + 1, PSH | ACK, b"tic tac toe?")
    talk.server_sends(0.040, S_ISN + 1, C_ISN + 13, PSH | ACK, b"X wins")
    talk.client_sends(0.050, C_ISN + 13, S_ISN + 7, FIN | ACK)
    talk.server_sends(0.060, S_ISN + 7, C_ISN + 14, FIN | ACK)
    talk.client_sends(0.070, C_ISN + 14, S_ISN + 8, ACK)
    report = analyse(talk.records(), keep_frames=True)
    result = report.frame_analyses
    assert [frame.seq for frame in result] == [0, 0, 1, 1, 1, 13, 7, 14]
    assert [frame.ack for frame in result] == [0, 1, 1, 1, 13, 7, 14, 8]
    assert [frame.state for frame in result] == [
        "SYN-SENT",
        "SYN-RECEIVED",
        "ESTABLISHED",
        "ESTABLISHED",
        "ESTABLISHED",
        "FIN-WAIT-1",
        "LAST-ACK",
        "TIME-WAIT",
    ]
    assert [frame.phase for frame in result] == [
        "handshake",
        "handshake",
        "handshake",
        "data",
        "data",
        "teardown",
        "teardown",
        "teardown",
    ]
    assert all(frame.analysis == 0 for frame in result)
    (conversation,) = report.conversations
    assert conversation.outcome == "complete"
    assert (conversation.state_a, conversation.state_b) == ("TIME-WAIT", "CLOSED")
    assert conversation.frames_a_to_b == 5 and conversation.frames_b_to_a == 3


def test_window_scaling_applies_after_the_handshake_only() -> None:
    result = frames(handshake())
    assert [frame.window for frame in result] == [64240, 65160, 502 << 7]
    assert result[2].window_scale == 128


def test_window_scaling_is_off_when_one_syn_lacks_the_option() -> None:
    result = frames(handshake(server_options=NO_WS))
    assert result[2].window == 502 and result[2].window_scale == -2


def test_window_scale_shift_above_14_is_taken_as_14() -> None:
    result = frames(handshake(client_options=b"\x01\x03\x03\xff", server_options=b"\x01\x03\x03\xff"))
    assert result[2].window_scale == 1 << 14


def test_mid_stream_capture_starts_relative_numbers_at_1_and_scale_is_unknown() -> None:
    talk = Conversation().client_sends(0.0, 777, 999, PSH | ACK, b"abc").server_sends(0.1, 999, 780, ACK)
    result = frames(talk)
    assert (result[0].seq, result[0].ack, result[1].seq, result[1].ack) == (1, 1, 1, 4)
    assert result[0].window_scale == -1 and result[0].state == "ESTABLISHED"


def test_sequence_numbers_wrap_around_2_32() -> None:
    isn = 0xFFFFFFF0
    talk = (
        Conversation()
        .client_sends(0.0, isn, 0, SYN)
        .server_sends(0.01, S_ISN, isn + 1, SYN | ACK)
        .client_sends(0.02, isn + 1, S_ISN + 1, PSH | ACK, b"x" * 100)
        .client_sends(0.03, (isn + 101) & 0xFFFFFFFF, S_ISN + 1, PSH | ACK, b"y" * 10)
        .server_sends(0.04, S_ISN + 1, (isn + 111) & 0xFFFFFFFF, ACK)
    )
    result = frames(talk)
    assert [frame.seq for frame in result] == [0, 0, 1, 101, 1]
    assert result[4].ack == 111
    assert all(frame.analysis == 0 for frame in result)


def test_retransmission_after_a_timeout() -> None:
    talk = handshake().client_sends(0.030, C_ISN + 1, S_ISN + 1, PSH | ACK, b"a" * 100)
    talk.client_sends(0.330, C_ISN + 1, S_ISN + 1, PSH | ACK, b"a" * 100)
    assert flags_of(frames(talk)[-1]) == {"retransmission"}


def test_out_of_order_when_a_gap_is_filled_quickly() -> None:
    talk = handshake()
    talk.client_sends(0.0300, C_ISN + 101, S_ISN + 1, PSH | ACK, b"b" * 100)  # the first 100 bytes are late
    talk.client_sends(0.0301, C_ISN + 1, S_ISN + 1, PSH | ACK, b"a" * 100)
    result = frames(talk)
    assert "lost_segment" in flags_of(result[3])
    assert flags_of(result[4]) == {"out_of_order"}


def test_duplicate_acks_are_numbered_and_trigger_a_fast_retransmission() -> None:
    talk = handshake()
    talk.client_sends(0.030, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    talk.client_sends(0.031, C_ISN + 101, S_ISN + 1, ACK, b"b" * 100)  # frame 5
    talk.server_sends(0.040, S_ISN + 1, C_ISN + 101, ACK)  # ACKs the first segment only
    talk.server_sends(0.041, S_ISN + 1, C_ISN + 101, ACK)
    talk.server_sends(0.042, S_ISN + 1, C_ISN + 101, ACK)
    talk.client_sends(0.043, C_ISN + 101, S_ISN + 1, ACK, b"b" * 100)
    result = frames(talk)
    assert [frame.duplicate_ack_number for frame in result[5:8]] == [0, 1, 2]
    assert flags_of(result[6]) == flags_of(result[7]) == {"duplicate_ack"}
    assert flags_of(result[8]) == {"fast_retransmission", "retransmission"}


def test_spurious_retransmission_repeats_acknowledged_data() -> None:
    talk = handshake().client_sends(0.030, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    talk.server_sends(0.040, S_ISN + 1, C_ISN + 101, ACK)
    talk.client_sends(0.500, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    assert flags_of(frames(talk)[-1]) == {"spurious_retransmission", "retransmission"}


def test_zero_window_then_rfc_probe_then_window_update() -> None:
    talk = handshake().client_sends(0.030, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    talk.server_sends(0.040, S_ISN + 1, C_ISN + 101, ACK, window=0)
    talk.client_sends(0.300, C_ISN + 101, S_ISN + 1, ACK, b"b")  # RFC 9293 s3.8.6.1: one byte
    talk.server_sends(0.301, S_ISN + 1, C_ISN + 101, ACK, window=0)
    talk.server_sends(0.500, S_ISN + 1, C_ISN + 101, ACK, window=800)
    result = frames(talk)
    assert flags_of(result[4]) == {"zero_window"}
    assert flags_of(result[5]) == {"zero_window_probe"}
    assert flags_of(result[6]) == {"zero_window", "zero_window_probe_ack"}
    assert flags_of(result[7]) == {"window_update"}


def test_linux_zero_window_probe_is_a_probe_not_a_keep_alive() -> None:
    talk = handshake().client_sends(0.030, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    talk.server_sends(0.040, S_ISN + 1, C_ISN + 101, ACK, window=0)
    talk.client_sends(0.300, C_ISN + 100, S_ISN + 1, ACK)  # Linux: 0 bytes at snd.una - 1
    assert flags_of(frames(talk)[-1]) == {"zero_window_probe"}


def test_keep_alive_and_its_ack() -> None:
    talk = handshake().server_sends(0.03, S_ISN + 1, C_ISN + 1, ACK)
    talk.client_sends(7200.0, C_ISN, S_ISN + 1, ACK)
    talk.server_sends(7200.001, S_ISN + 1, C_ISN + 1, ACK)
    result = frames(talk)
    assert flags_of(result[4]) == {"keep_alive"}
    assert flags_of(result[5]) == {"keep_alive_ack"}


def test_window_full_when_data_reaches_the_advertised_edge() -> None:
    talk = handshake(client_options=NO_WS, server_options=NO_WS)
    talk.server_sends(0.025, S_ISN + 1, C_ISN + 1, ACK, window=300)
    talk.client_sends(0.030, C_ISN + 1, S_ISN + 1, ACK, b"a" * 300)
    assert flags_of(frames(talk)[-1]) == {"window_full"}


def test_ack_of_an_unseen_segment_is_flagged_once() -> None:
    talk = handshake().client_sends(0.030, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    talk.server_sends(0.040, S_ISN + 1, C_ISN + 301, ACK)
    talk.server_sends(0.041, S_ISN + 1, C_ISN + 301, ACK, window=900)
    result = frames(talk)
    assert "ack_lost_segment" in flags_of(result[4])
    assert "ack_lost_segment" not in flags_of(result[5])


def test_refused_connection() -> None:
    talk = Conversation().client_sends(0.0, C_ISN, 0, SYN).server_sends(0.001, 0, C_ISN + 1, RST | ACK)
    report = analyse(talk.records(), keep_frames=True)
    assert report.conversations[0].outcome == "refused"
    assert [frame.state for frame in report.frame_analyses] == ["SYN-SENT", "CLOSED"]


def test_reset_after_data_and_a_new_syn_on_the_same_ports_is_a_new_stream() -> None:
    talk = handshake().client_sends(0.03, C_ISN + 1, S_ISN + 1, RST | ACK)
    talk.client_sends(1.0, 90000, 0, SYN)
    report = analyse(talk.records(), keep_frames=True)
    assert [conversation.outcome for conversation in report.conversations] == ["reset", "unanswered"]
    last = report.frame_analyses[-1]
    assert last.stream == 1 and "reused_ports" in flags_of(last)


def test_findings_are_data_with_frame_stream_and_reason() -> None:
    talk = handshake().client_sends(0.030, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    talk.client_sends(0.500, C_ISN + 1, S_ISN + 1, ACK, b"a" * 100)
    report = analyse(talk.records())
    (finding,) = report.findings
    assert (finding.kind, finding.frame, finding.stream) == ("retransmission", 5, 0)
    assert finding.reason
    assert report.analysis_counts["retransmission"] == 1
    assert report.frame_analyses == []  # frames are kept only on request


def test_a_segment_no_transition_explains_is_a_state_anomaly_not_an_exception() -> None:
    talk = handshake()
    talk.client_sends(0.03, C_ISN + 1, S_ISN + 1, FIN | ACK)
    talk.server_sends(0.04, S_ISN + 1, C_ISN + 2, FIN | ACK)
    talk.client_sends(0.05, C_ISN + 2, S_ISN + 2, ACK)  # the server is CLOSED (LAST-ACK, ACK of its FIN)
    talk.server_sends(0.06, S_ISN + 2, C_ISN + 2, PSH | ACK, b"late")
    result = frames(talk)
    assert result[5].receiver_state == "CLOSED"
    assert "state_anomaly" in flags_of(result[-1])
    (anomaly,) = [finding for finding in result[-1].findings if finding.kind == "state_anomaly"]
    assert "CLOSED" in anomaly.reason and "send ACK" in anomaly.reason


def test_an_endpoint_that_keeps_sending_after_its_rst_did_not_send_it() -> None:
    talk = handshake().client_sends(0.03, C_ISN + 1, S_ISN + 1, RST | ACK)
    talk.client_sends(0.04, C_ISN + 1, S_ISN + 1, ACK, b"late")
    result = frames(talk)
    assert "injected_rst" in flags_of(result[3]) and "rst_accepted" in flags_of(result[3])
    assert [frame.state for frame in result[3:]] == ["ESTABLISHED", "ESTABLISHED"]  # the client never reset
    assert [frame.receiver_state for frame in result[3:]] == ["CLOSED", "CLOSED"]  # the server did
    assert "state_anomaly" not in flags_of(result[-1])


def test_udp_streams_and_an_icmp_error_quoting_one() -> None:
    query = ethernet(ipv4("10.0.0.1", "10.0.0.9", 17, udp(5353, 53, b"q")))
    other = ethernet(ipv4("10.0.0.1", "10.0.0.9", 17, udp(5354, 53, b"q")))
    answer = ethernet(ipv4("10.0.0.9", "10.0.0.1", 17, udp(53, 5353, b"a")))
    quoted = ipv4("10.0.0.1", "10.0.0.9", 17, udp(5354, 53, b"q"))
    unreachable = ethernet(ipv4("10.0.0.9", "10.0.0.1", 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + quoted))
    report = analyse(decode_all([(0, query), (0.1, other), (0.2, answer), (0.3, unreachable)]), keep_frames=True)
    assert [frame.stream for frame in report.frame_analyses] == [0, 1, 0, 1]
    assert report.frame_analyses[3].protocol == "icmp"
    assert [conversation.frames for conversation in report.udp_conversations()] == [2, 1]


def test_frames_held_for_revision_come_out_in_order_and_their_number_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from visualizer.analysis import analyzer as module

    monkeypatch.setattr(module, "HOLD_LIMIT", 50)
    # A FIN whose receipt nothing confirms holds its frame; 200 UDP datagrams follow.
    talk = handshake().client_sends(0.03, C_ISN + 1, S_ISN + 1, FIN | ACK)
    datagrams = [
        (1.0 + index / 1000, ethernet(ipv4("10.0.0.7", "10.0.0.8", 17, udp(5000, 53, b"q")))) for index in range(200)
    ]
    records = talk.records() + decode_all(datagrams)[0:200]
    records = [record._replace(number=number) for number, record in enumerate(records, start=1)]
    analyzer = module.Analyzer()
    released: list[int] = []
    most_held = 0
    for record in records:
        released += [frame.record.number for frame in analyzer.add(record)]
        most_held = max(most_held, record.number - len(released))
    released += [frame.record.number for frame in analyzer.flush()]
    assert released == list(range(1, len(records) + 1))
    assert 0 < most_held <= 51
    report = analyzer.finish()
    assert [finding.kind for finding in report.findings if finding.frame == 4] == ["receipt_undecided"]
