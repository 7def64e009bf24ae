"""Sequence-number arithmetic modulo 2**32 (RFC 9293 s3.4, RFC 1982).

TCP sequence numbers wrap, so "a comes after b" means that the forward distance
from b to a is less than half the space. Every comparison of sequence or
acknowledgement numbers in sockstory goes through these functions.
"""

from __future__ import annotations

SEQUENCE_SPACE = 1 << 32
SEQUENCE_MASK = SEQUENCE_SPACE - 1
HALF_SPACE = 1 << 31


def add(sequence: int, amount: int) -> int:
    """``sequence + amount`` modulo 2**32."""
    return (sequence + amount) & SEQUENCE_MASK


def distance(start: int, end: int) -> int:
    """Forward distance from ``start`` to ``end`` modulo 2**32."""
    return (end - start) & SEQUENCE_MASK


def less_than(a: int, b: int) -> bool:
    """``a`` comes strictly before ``b`` (Wireshark's LT_SEQ)."""
    return a != b and ((b - a) & SEQUENCE_MASK) < HALF_SPACE


def less_or_equal(a: int, b: int) -> bool:
    """``a`` is ``b`` or comes before it (LE_SEQ)."""
    return ((b - a) & SEQUENCE_MASK) < HALF_SPACE


def greater_than(a: int, b: int) -> bool:
    """``a`` comes strictly after ``b`` (GT_SEQ)."""
    return a != b and ((a - b) & SEQUENCE_MASK) < HALF_SPACE


def relative(sequence: int, base: int) -> int:
    """``sequence`` counted from ``base``, as Wireshark's relative sequence numbers."""
    return (sequence - base) & SEQUENCE_MASK
