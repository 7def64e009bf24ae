"""Where crafted packets may go: loopback only (127.0.0.0/8, ::1), checked before a packet leaves.

Crafted scenarios also run inside a private network namespace whose only
interface is ``lo``, so nothing could reach another host even by mistake; this
check makes the rule explicit and gives a clear error first.
"""

from __future__ import annotations

import ipaddress

from visualizer.errors import UnsafeDestinationError

ALLOWED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def check_destination(address: str) -> None:
    """Raise unless ``address`` is a loopback address (127.0.0.0/8 or ::1)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise UnsafeDestinationError(f"{address!r} is not an IP address; crafted packets go to loopback only") from None
    if not any(parsed in network for network in ALLOWED):
        raise UnsafeDestinationError(
            f"refusing to send a crafted packet to {address}: only 127.0.0.0/8 and ::1 are allowed"
        )
