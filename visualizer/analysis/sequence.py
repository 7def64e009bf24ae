"""Sequence-number arithmetic modulo 2**32 (RFC 9293 s3.4, RFC 1982).

TCP sequence numbers wrap, so "a comes after b" means that the forward distance
from b to a is less than half the space. The state inference
(:mod:`visualizer.analysis.states`) and the relative numbering of SACK blocks
call these functions. The analyzer's per-frame path (one call per comparison
would cost more than the comparison) writes the same two forms inline,
``(b - a) & SEQUENCE_MASK < HALF_SPACE`` and ``(value - base) & SEQUENCE_MASK``;
``tests/analysis/test_sequence.py`` checks that its whole analysis is the same
wherever the initial sequence numbers lie, across the wrap included (Hypothesis).
"""

from __future__ import annotations

SEQUENCE_SPACE = 1 << 32
SEQUENCE_MASK = SEQUENCE_SPACE - 1
HALF_SPACE = 1 << 31


def less_than(a: int, b: int) -> bool:
    """``a`` comes strictly before ``b`` (Wireshark's LT_SEQ)."""
    return a != b and ((b - a) & SEQUENCE_MASK) < HALF_SPACE


def less_or_equal(a: int, b: int) -> bool:
    """``a`` is ``b`` or comes before it (LE_SEQ)."""
    return ((b - a) & SEQUENCE_MASK) < HALF_SPACE


def relative(sequence: int, base: int) -> int:
    """``sequence`` counted from ``base``, as Wireshark's relative sequence numbers."""
    return (sequence - base) & SEQUENCE_MASK
