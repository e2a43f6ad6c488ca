"""The ``hybrid`` answer mode: the best passage as text after the other k − 1 passages' summary vectors.

On the small default-model index of conftest.py: with k = 1 it is text mode token for token; its soft
prompt is the fused soft prompt of passages 2..k; its token counts; batching; extractive answers; the
``ask`` CLI and ``eval qa``'s mode list.
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from ragcompress.eval.index_qa import QAEvalError, parse_modes, score_answers
from ragcompress.prompting import join_passages, question_prompt_ids
from ragcompress.retrieval.generation import generate_outputs, prompt_rows

from .test_ask_cli import ask_app
from .test_retriever import QUESTION, spy_generate

QUESTIONS = ["Which river flows into Lake Ombra?", QUESTION, "What does Quillon Works make?"]


def test_hybrid_with_one_passage_is_text_mode_token_for_token(retriever, monkeypatch):
    calls = spy_generate(monkeypatch, retriever.model)
    hybrid = retriever.answer(QUESTION, k=1, mode="hybrid", max_new_tokens=6)
    text = retriever.answer(QUESTION, k=1, mode="text", max_new_tokens=6)
    assert len(calls) == 2
    assert torch.equal(calls[0]["input_ids"], calls[1]["input_ids"])
    assert calls[0]["softprompt"] is None and calls[1]["softprompt"] is None
    assert (hybrid.text, hybrid.prompt_tokens, hybrid.generated_tokens) == (
        text.text,
        text.prompt_tokens,
        text.generated_tokens,
    )
    assert hybrid.softprompt_slots == 0 and hybrid.mode == "hybrid"
    assert [p.chunk_id for p in hybrid.passages] == [p.chunk_id for p in text.passages]


def test_hybrid_soft_prompt_is_the_fused_soft_prompt_of_passages_2_to_k(retriever, monkeypatch):
    k, kappa = 3, retriever.model.config.summary_length
    ranked = retriever.search(QUESTION, k)  # best first
    calls = spy_generate(monkeypatch, retriever.model)
    fused = retriever.answer(QUESTION, k=k, mode="fused", max_new_tokens=2)
    hybrid = retriever.answer(QUESTION, k=k, mode="hybrid", max_new_tokens=2)
    assert [p.chunk_id for p in hybrid.passages] == [p.chunk_id for p in reversed(ranked)]
    assert [p.chunk_id for p in hybrid.passages] == [p.chunk_id for p in fused.passages]
    fused_prompt, hybrid_prompt = calls[0]["softprompt"], calls[1]["softprompt"]
    assert hybrid_prompt.shape == (1, (k - 1) * kappa, retriever.model.config.hidden_size)
    # passages k..2 (least → most relevant), i.e. the fused soft prompt without the best passage's block
    assert torch.equal(hybrid_prompt, fused_prompt[:, : (k - 1) * kappa])
    stored = retriever.vectors(list(reversed(ranked[1:])))
    torch.testing.assert_close(hybrid_prompt[0], torch.cat(stored).to(hybrid_prompt.dtype))
    # the best passage is read as text, right before the question; the others are not
    prompt = retriever.tokenizer.decode(calls[1]["input_ids"][0])
    assert prompt.index(ranked[0].text.strip()) < prompt.index(QUESTION)
    assert all(p.text.strip() not in prompt for p in ranked[1:])


def test_hybrid_token_accounting(retriever):
    k, kappa = 3, retriever.model.config.summary_length
    hybrid = retriever.answer(QUESTION, k=k, mode="hybrid", max_new_tokens=4)
    text = retriever.answer(QUESTION, k=k, mode="text", max_new_tokens=4)
    best = hybrid.passages[-1].text
    expected = question_prompt_ids(retriever.tokenizer, QUESTION, join_passages([best]))
    assert hybrid.prompt_tokens == len(expected)
    assert hybrid.softprompt_slots == (k - 1) * kappa
    assert hybrid.prompt_tokens < text.prompt_tokens
    assert 1 <= hybrid.generated_tokens <= 4
    # eval qa reports the same counts per question and their means
    scores, rows = score_answers(
        [{"id": "q", "answers": ["Tomas Varro"], "doc_ids": ["pelville"]}], [hybrid], 1.0, {}
    )
    assert rows[0]["prompt_tokens"] == scores["prompt_tokens"] == len(expected)
    assert rows[0]["softprompt_slots"] == scores["softprompt_slots"] == (k - 1) * kappa


def test_hybrid_batched_equals_one_by_one(retriever):
    # the best passages differ in length, so the batch is left-padded: greedy answers must not change
    batched = retriever.answer_batch(QUESTIONS, k=2, mode="hybrid", batch_size=3, max_new_tokens=5)
    single = [retriever.answer(q, k=2, mode="hybrid", max_new_tokens=5) for q in QUESTIONS]
    assert len({a.prompt_tokens for a in single}) > 1
    for b, s in zip(batched, single):
        assert (b.text, b.generated_tokens, b.prompt_tokens, b.softprompt_slots) == (
            s.text,
            s.generated_tokens,
            s.prompt_tokens,
            s.softprompt_slots,
        )
        assert [p.chunk_id for p in b.passages] == [p.chunk_id for p in s.passages]


def test_generate_outputs_compresses_hybrid_passages_itself(retriever):
    passages = [p.text for p in reversed(retriever.search(QUESTION, 2))]
    [given] = generate_outputs(
        retriever.model,
        retriever.tokenizer,
        [QUESTION],
        passages=[passages],
        mode="hybrid",
        passage_vectors=[retriever.vectors(list(reversed(retriever.search(QUESTION, 2)))[:1])],
        max_new_tokens=4,
    )
    [own] = generate_outputs(
        retriever.model, retriever.tokenizer, [QUESTION], passages=[passages], mode="hybrid", max_new_tokens=4
    )
    assert (own.text, own.softprompt_slots) == (given.text, given.softprompt_slots)
    [row] = prompt_rows(retriever.tokenizer, [QUESTION], [passages], "hybrid")
    assert own.prompt_tokens == len(row)
    with pytest.raises(ValueError, match="mode 'hybrid' needs passages"):
        generate_outputs(retriever.model, retriever.tokenizer, [QUESTION], mode="hybrid")
    with pytest.raises(ValueError, match="every passage but the last"):
        generate_outputs(
            retriever.model,
            retriever.tokenizer,
            [QUESTION],
            passages=[passages],
            mode="hybrid",
            passage_vectors=[retriever.vectors(retriever.search(QUESTION, 2))],
        )


def test_hybrid_extractive_answers_are_spans_of_any_of_the_k_passages(retriever):
    answer = retriever.answer(QUESTION, k=3, mode="hybrid", max_new_tokens=8, extractive=True)
    span = " ".join(answer.text.split())
    assert span, answer
    assert any(span in " ".join(p.text.split()) for p in answer.passages), (span, answer.passages)
    streamed = retriever.stream(QUESTION, k=3, mode="hybrid", max_new_tokens=8, extractive=True)
    assert "".join(streamed) == streamed.answer.text == answer.text


def test_hybrid_score_with_one_passage_equals_text_mode(retriever):
    context, continuation = "The town of Pelville was founded in 1623 by", " the fisherman Tomas Varro."
    hybrid = retriever.score(continuation, context, mode="hybrid", k=1)
    text = retriever.score(continuation, context, mode="text", k=1)
    assert hybrid.token_logprobs == pytest.approx(text.token_logprobs, abs=1e-4)


def test_ask_cli_answers_in_hybrid_mode(index_dir, retriever):
    expected = retriever.answer(QUESTION, k=2, mode="hybrid", max_new_tokens=6)
    result = CliRunner().invoke(
        ask_app(),
        ["ask", QUESTION, "--index", str(index_dir), "--k", "2", "--mode", "hybrid"]
        + ["--max-new-tokens", "6", "--device", "cpu", "--no-stream", "--show-passages"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(expected.text.strip() + "\n")
    assert "Sources (most relevant first): pelville" in result.stdout
    assert "\n[2] pelville (chars " in result.stdout  # the best passage, fed last (as text)


def test_eval_qa_accepts_the_hybrid_modes():
    assert parse_modes("none,hybrid,hybrid-extractive") == ["none", "hybrid", "hybrid-extractive"]
    assert parse_modes("fused,hybrid,text", extractive=True) == [
        "fused-extractive",
        "hybrid-extractive",
        "text-extractive",
    ]
    with pytest.raises(QAEvalError, match="'hybird' is not one of .*hybrid, hybrid-extractive"):
        parse_modes("hybird")


def test_serve_requests_accept_the_hybrid_mode():
    pytest.importorskip("pydantic")
    from ragcompress.serve.schemas import RetrievalOptions

    options = RetrievalOptions(mode="hybrid", extractive=True)
    assert (options.answer_options(8).mode, options.answer_options(8).extractive) == ("hybrid", True)


def test_hybrid_takes_the_fast_decode_path(retriever, monkeypatch):
    # on CPU the fast path runs the same static-cache step as on a GPU, without graph capture
    from ragcompress.retrieval import generation

    fast_calls = []
    original = generation.fast_generate

    def spy(model, ids, mask, softprompt, **kwargs):
        fast_calls.append(None if softprompt is None else softprompt.shape)
        return original(model, ids, mask, softprompt, **kwargs)

    monkeypatch.setattr(generation, "fast_generate", spy)
    asked = QUESTIONS[:2]
    fast = retriever.answer_batch(asked, k=2, mode="hybrid", batch_size=2, max_new_tokens=5, fast_decode=True)
    plain = retriever.answer_batch(
        asked, k=2, mode="hybrid", batch_size=2, max_new_tokens=5, fast_decode=False
    )
    assert fast_calls == [(2, retriever.model.config.summary_length, retriever.model.config.hidden_size)]
    assert [(a.text, a.generated_tokens) for a in fast] == [(a.text, a.generated_tokens) for a in plain]
