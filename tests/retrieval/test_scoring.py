"""LM scoring with retrieved context: finite log-likelihoods, and the smoothing's mathematics."""

from __future__ import annotations

import math

import pytest
import torch

from ragcompress.retrieval import MODES
from ragcompress.retrieval.scoring import mix_logprobs, smooth

CONTEXT = "The town of Pelville was founded in 1623 by"
CONTINUATION = " the fisherman Tomas Varro."


@pytest.mark.parametrize("mode", MODES)
def test_score_returns_finite_log_likelihoods(retriever, mode):
    result = retriever.score(CONTINUATION, CONTEXT, mode=mode, k=2)
    expected_ids = retriever.tokenizer(CONTINUATION, add_special_tokens=False)["input_ids"]
    assert result.token_ids == expected_ids
    assert len(result.token_logprobs) == len(expected_ids)
    assert all(math.isfinite(v) and v <= 0 for v in result.token_logprobs)
    assert result.total == pytest.approx(sum(result.token_logprobs), abs=1e-4)
    assert math.isfinite(result.perplexity) and result.perplexity >= 1
    assert result.mode == mode and len(result.passages) == (0 if mode == "none" else 2)


def test_smoothing_lies_between_its_two_components(retriever):
    result = retriever.score(CONTINUATION, CONTEXT, mode="fused", k=2, smoothing=0.5)
    retrieval, none = result.components["retrieval"], result.components["none"]
    for mixed, a, b in zip(result.token_logprobs, retrieval, none):
        assert min(a, b) - 1e-5 <= mixed <= max(a, b) + 1e-5
        assert mixed == pytest.approx(math.log(0.5 * math.exp(a) + 0.5 * math.exp(b)), abs=1e-4)
    # the components are the unsmoothed scores of each side
    plain = retriever.score(CONTINUATION, CONTEXT, mode="fused", k=2)
    alone = retriever.score(CONTINUATION, CONTEXT, mode="none")
    assert retrieval == pytest.approx(plain.token_logprobs, abs=1e-4)
    assert none == pytest.approx(alone.token_logprobs, abs=1e-4)


def test_replug_score_with_one_passage_equals_text_mode(retriever):
    replug = retriever.score(CONTINUATION, CONTEXT, mode="replug", k=1)
    text = retriever.score(CONTINUATION, CONTEXT, mode="text", k=1)
    assert replug.token_logprobs == pytest.approx(text.token_logprobs, abs=1e-4)


def test_score_without_the_query_still_scores_every_token(retriever):
    result = retriever.score(CONTINUATION, CONTEXT, mode="fused", k=1, include_query=False)
    assert len(result.token_logprobs) == len(result.token_ids) > 0


def test_smooth_and_mix_are_the_textbook_formulas():
    a = torch.log(torch.tensor([0.9, 0.01, 0.5]))
    b = torch.log(torch.tensor([0.1, 0.2, 0.5]))
    torch.testing.assert_close(smooth(a, b, 0.25), torch.log(0.75 * a.exp() + 0.25 * b.exp()))
    torch.testing.assert_close(smooth(a, b, 0.0), a)
    torch.testing.assert_close(smooth(a, b, 1.0), b)
    with pytest.raises(ValueError):
        smooth(a, b, 1.5)
    weights = torch.tensor([0.7, 0.3])
    mixed = mix_logprobs(torch.stack([a, b]), weights)
    torch.testing.assert_close(mixed, torch.log(0.7 * a.exp() + 0.3 * b.exp()))
