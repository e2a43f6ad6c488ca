import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragcompress.training.segmenting import fixed_segments, random_segments, segment_bounds_for


@settings(max_examples=300, deadline=None)
@given(
    segments=st.integers(1, 8),
    low=st.integers(1, 64),
    span=st.integers(0, 200),
    slack=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_segments_respect_bounds_and_sum(segments, low, span, slack, seed):
    high = low + span
    total = segments * low + int(slack * segments * span)
    lengths = random_segments(total, segments, low, high, np.random.default_rng(seed))
    assert len(lengths) == segments and sum(lengths) == total
    assert all(low <= n <= high for n in lengths)


def test_random_segments_vary_and_are_seeded():
    draws = {tuple(random_segments(1024, 2, 256, 768, np.random.default_rng(s))) for s in range(50)}
    assert len(draws) > 20
    assert random_segments(1024, 3, 100, 900, np.random.default_rng(1)) == random_segments(
        1024, 3, 100, 900, np.random.default_rng(1)
    )


def test_infeasible_bounds_are_refused():
    with pytest.raises(ValueError, match="cannot cut 100 tokens into 2 segments of 10..20"):
        random_segments(100, 2, 10, 20, np.random.default_rng(0))


def test_bounds_follow_the_position_budget():
    # OPT: text positions restart each segment, so only text must fit 2048 positions
    assert segment_bounds_for(3072, 2, 256, 2048, 100, 50, "opt") == (1024, 2048)
    # rotary: soft prompt + text + summary must fit
    low, high = segment_bounds_for(3072, 2, 256, 2048, 100, 50, "consecutive")
    assert high == 2048 - 150 and low == 3072 - high
    with pytest.raises(ValueError, match="does not fit 1024 positions"):
        segment_bounds_for(4096, 2, 256, 1024, 100, 50, "consecutive")


def test_fixed_segments():
    assert fixed_segments(10, 3) == [4, 3, 3]
    assert fixed_segments(1024, 2) == [512, 512]
