"""Sequence arithmetic across the 2**32 wrap (RFC 1982 serial-number rules)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from visualizer.analysis import sequence

sequences = st.integers(min_value=0, max_value=sequence.SEQUENCE_MASK)
steps = st.integers(min_value=1, max_value=sequence.HALF_SPACE - 1)


@given(sequences, steps)
def test_a_number_plus_a_step_comes_after_it_even_across_the_wrap(start: int, step: int) -> None:
    later = sequence.add(start, step)
    assert sequence.greater_than(later, start)
    assert sequence.less_than(start, later)
    assert sequence.less_or_equal(start, later)
    assert not sequence.less_than(later, start)
    assert sequence.distance(start, later) == step


@given(sequences)
def test_a_number_is_neither_before_nor_after_itself(value: int) -> None:
    assert not sequence.less_than(value, value)
    assert not sequence.greater_than(value, value)
    assert sequence.less_or_equal(value, value)


@given(sequences, sequences)
def test_relative_numbers_undo_the_base(value: int, base: int) -> None:
    assert sequence.add(base, sequence.relative(value, base)) == value


def test_the_wrap_itself() -> None:
    assert sequence.greater_than(0, sequence.SEQUENCE_MASK)
    assert sequence.relative(5, 0xFFFFFFFE) == 7
