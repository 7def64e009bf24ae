"""What makes traffic: scenarios with real kernel sockets on loopback, each captured as it runs.

``SCENARIOS`` is the registry (names are stable: documentation, tests and users rely
on them). :func:`visualizer.scenarios.runner.run_scenario` runs one in a private
network namespace while sniffing its ``lo`` and saves the pcap (the CLI analyses and draws it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from visualizer.scenarios import crafted, kernel


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: Callable[..., Any]
    """Kernel-socket scenarios take no argument; crafted ones take the sniffer (they read the answers)."""
    setup: tuple[tuple[str, ...], ...] = ()
    """Commands run in the scenario's private namespace before the capture starts."""
    kind: str = "kernel sockets"

    @property
    def crafted(self) -> bool:
        return self.kind == "crafted"

    @property
    def description(self) -> str:
        """The first paragraph of the scenario's docstring, on one line (it titles its figures)."""
        return " ".join((self.run.__doc__ or "").strip().split("\n\n")[0].split())


OFFLOADS_OFF = ("ethtool", "-K", "lo", "gso", "off", "tso", "off", "gro", "off")
FULL_DUPLEX_PATH = (
    ("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "2"),
    ("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate", "20mbit", "quantum", "1600"),
    ("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:2", "htb", "rate", "20mbit", "quantum", "1600"),
    ("tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "u32")
    + ("match", "ip", "sport", "8087", "0xffff", "flowid", "1:1"),
)
"""``full-duplex``'s path: a link of 20 Mbit/s each way (two shapers on the namespace's ``lo``: one for
what the server sends, one for the rest; one shaper for both would make the two directions take
turns), so that each end's 60,000 bytes take tens of milliseconds and the two transfers overlap
however late one writer thread gets to run (on a busy machine a thread can wait milliseconds for a
CPU or for Python's interpreter lock)."""


def _drop_rule(port: int, expression: str) -> tuple[tuple[str, ...], ...]:
    """An nftables table and input rule of this scenario's namespace (dropped on input: a real loss)."""
    return (
        ("nft", "add", "table", "inet", "sockstory"),
        ("nft", "add", "chain", "inet", "sockstory", "input", "{ type filter hook input priority 0 ; }"),
        ("nft", "add", "rule", "inet", "sockstory", "input", "tcp", "dport", str(port), *expression.split()),
    )


_SUPPRESS = crafted.suppress_kernel_resets(crafted.CLIENT_PORT)
NO_TAIL_LOSS_PROBE = ("sysctl", "-q", "-w", "net.ipv4.tcp_early_retrans=0")
"""Linux's tail loss probe (RFC 8985 s7) would retransmit first, about 200 ms after the segment and
not backed off: without it every retransmission of a silent peer's data is the RTO's (RFC 6298 s5.5)."""

SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("story", kernel.story),
        Scenario("close-client-first", kernel.close_client_first),
        Scenario("close-server-first", kernel.close_server_first),
        Scenario("half-close", kernel.half_close),
        Scenario(
            "simultaneous-close",
            kernel.simultaneous_close,
            (("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "32kbit", "burst", "120", "latency", "5s"),),
        ),
        Scenario("refused", kernel.refused),
        Scenario("abort", kernel.abort),
        Scenario("udp", kernel.udp),
        Scenario("udp-closed-port", kernel.udp_closed_port),
        Scenario("bulk", kernel.bulk, (OFFLOADS_OFF,)),
        Scenario("full-duplex", kernel.full_duplex, (OFFLOADS_OFF, *FULL_DUPLEX_PATH)),
        Scenario("zero-window", kernel.zero_window, (OFFLOADS_OFF,)),
        Scenario(
            "loss",
            kernel.loss,
            (OFFLOADS_OFF, *_drop_rule(kernel.LOSS_PORT, "meta length > 500 numgen inc mod 1000 == 5 drop")),
        ),
        Scenario("keepalive", kernel.keepalive),
        Scenario("nagle", kernel.nagle),
        Scenario("web", kernel.web),
        Scenario("encoding", kernel.encoding),
        Scenario(
            "udp-datagrams",
            kernel.udp_datagrams,
            (("ip", "link", "set", "lo", "mtu", str(kernel.UDP_DATAGRAMS_MTU)),),
        ),
        Scenario("craft-handshake", crafted.craft_handshake, _SUPPRESS, "crafted"),
        Scenario("craft-silent-client", crafted.craft_silent_client, (NO_TAIL_LOSS_PROBE, *_SUPPRESS), "crafted"),
        Scenario("craft-bad-checksum", crafted.craft_bad_checksum, (OFFLOADS_OFF, *_SUPPRESS), "crafted"),
        Scenario("craft-rst-injection", crafted.craft_rst_injection, (), "crafted"),
        Scenario("craft-syn-closed", crafted.craft_syn_closed, (), "crafted"),
        Scenario("craft-udp-closed", crafted.craft_udp_closed, (), "crafted"),
        Scenario("craft-simultaneous-open", crafted.craft_simultaneous_open, _SUPPRESS, "crafted"),
    )
}
