"""Requests a `Retriever` cannot answer are refused with one line before anything is retrieved or
generated: an empty question, fewer than one new token, a prompt past the model's positions."""

from __future__ import annotations

import pytest

QUESTION = "Who founded the town of Pelville?"


def test_questions_that_cannot_be_answered_are_refused_before_retrieval(retriever, monkeypatch):
    monkeypatch.setattr(retriever, "_prepare", lambda *a: pytest.fail("retrieved for a refused request"))
    for question in ("", "  \n"):
        with pytest.raises(ValueError, match="^the question is empty$"):
            retriever.answer(question)
        with pytest.raises(ValueError, match="^the question is empty$"):
            retriever.stream(question)
    with pytest.raises(ValueError, match="^question 1 is empty$"):
        retriever.answer_batch([QUESTION, ""])
    with pytest.raises(ValueError, match="question is a NoneType, not a str"):
        retriever.answer(None)
    for tokens in (0, -3):
        with pytest.raises(ValueError, match=f"max_new_tokens={tokens} must be at least 1"):
            retriever.answer(QUESTION, max_new_tokens=tokens)


def test_a_prompt_longer_than_the_model_reads_is_refused(retriever):
    limit = retriever.compressor.model.config.max_position_embeddings
    with pytest.raises(ValueError, match=f"runs past the {limit} positions the model reads"):
        retriever.answer("why " * limit, mode="none", max_new_tokens=4)
