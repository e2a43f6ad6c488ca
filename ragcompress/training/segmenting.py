"""Where a training substep is cut into segments.

The paper trains with *randomized segmenting*: every substep is split at random breakpoints so the
model learns to compress segments of many lengths. Each segment must fit the model's position budget
(``max_segment``) and be at least ``min_segment`` long; when the budget is tight, the minimum rises so
that the remaining segments still fit.
"""

from __future__ import annotations

import numpy as np


def fixed_segments(total: int, segments: int) -> list[int]:
    """``segments`` near-equal lengths summing to ``total`` (longer ones first)."""
    if segments < 1 or total < segments:
        raise ValueError(f"cannot cut {total} tokens into {segments} segments")
    base, extra = divmod(total, segments)
    return [base + 1] * extra + [base] * (segments - extra)


def random_segments(
    total: int,
    segments: int,
    min_segment: int,
    max_segment: int,
    rng: np.random.Generator,
) -> list[int]:
    """Random lengths in ``[min_segment, max_segment]`` that sum to ``total``.

    Lengths are drawn one after another from the range that keeps the rest feasible, so the result is
    always valid (no rejection loop); the order is then shuffled so no position is biased.
    """
    if segments < 1:
        raise ValueError("segments must be ≥ 1")
    if min_segment < 1 or max_segment < min_segment:
        raise ValueError(f"invalid segment bounds [{min_segment}, {max_segment}]")
    if not segments * min_segment <= total <= segments * max_segment:
        raise ValueError(
            f"cannot cut {total} tokens into {segments} segments of {min_segment}..{max_segment} tokens"
        )
    lengths, remaining = [], total
    for left in range(segments - 1, 0, -1):
        low = max(min_segment, remaining - left * max_segment)
        high = min(max_segment, remaining - left * min_segment)
        length = int(rng.integers(low, high + 1))
        lengths.append(length)
        remaining -= length
    lengths.append(remaining)
    rng.shuffle(lengths)
    return lengths


def segment_bounds_for(
    total: int,
    segments: int,
    min_segment: int,
    max_positions: int | None,
    softprompt_slots: int,
    summary_length: int,
    position_style: str,
) -> tuple[int, int]:
    """``(min, max)`` segment lengths for a substep, given the model's position budget.

    Rotary models number ``[soft prompt ; text ; summary]`` consecutively, so text + soft prompt + summary
    must fit ``max_positions``; OPT numbers text from each segment's start, so text alone must fit.
    """
    if max_positions is None:
        high = total
    elif position_style == "opt":
        high = max_positions
    else:
        high = max_positions - softprompt_slots - summary_length
    high = min(high, total)
    low = max(1, min(min_segment, total // segments), total - (segments - 1) * high)
    if high < low:
        raise ValueError(
            f"a substep of {total} tokens in {segments} segments does not fit {max_positions} positions "
            f"with {softprompt_slots} soft-prompt and {summary_length} summary slots; use shorter segments"
        )
    return low, high
