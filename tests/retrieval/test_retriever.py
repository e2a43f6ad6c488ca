"""Retriever on a small real index built with the default models: behaviour, not answer quality."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from tiny import tiny_model, tiny_tokenizer

from ragcompress.retrieval import MODES, Answer, ModelMismatchError, Retriever

from .conftest import DOCUMENTS

QUESTION = "Who founded the town of Pelville?"


def spy_generate(monkeypatch, model) -> list[dict]:
    """Record the keyword arguments of every ``model.generate`` call (the soft prompt among them)."""
    calls: list[dict] = []
    original = model.generate

    def generate(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", generate)
    return calls


def test_search_returns_best_first_with_offsets(retriever):
    passages = retriever.search(QUESTION, k=3)
    assert len(passages) == 3
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    best = passages[0]
    assert best.doc_id == "pelville" and "founded" in best.text
    # the offsets locate the chunk in its document
    assert DOCUMENTS["pelville"][best.char_start : best.char_end] == best.text


@pytest.mark.parametrize("mode", MODES)
def test_answers_come_back_in_every_mode(retriever, mode):
    answer = retriever.answer(QUESTION, k=2, mode=mode, max_new_tokens=6)
    assert isinstance(answer, Answer) and isinstance(answer.text, str)
    assert answer.mode == mode and answer.note is None
    assert 1 <= answer.generated_tokens <= 6
    assert answer.prompt_tokens > 0
    assert len(answer.passages) == (0 if mode == "none" else 2)
    assert set(answer.timings) >= {"retrieve", "rerank", "fuse", "prefill", "decode", "total"}
    assert all(t >= 0 for t in answer.timings.values())
    assert answer.timings["prefill"] > 0
    assert answer.softprompt_slots == {"fused": 2 * 50, "hybrid": 50}.get(mode, 0)  # hybrid: k - 1 fused
    if mode != "none":
        assert answer.sources[0] == "pelville"


def test_fused_feeds_k_times_kappa_slots_least_to_most_relevant(retriever, monkeypatch):
    k, kappa = 3, retriever.model.config.summary_length
    ranked = retriever.search(QUESTION, k)  # best first
    calls = spy_generate(monkeypatch, retriever.model)
    answer = retriever.answer(QUESTION, k=k, mode="fused", max_new_tokens=2)

    assert [p.chunk_id for p in answer.passages] == [p.chunk_id for p in reversed(ranked)]
    assert len(calls) == 1
    softprompt = calls[0]["softprompt"]
    assert softprompt.shape == (1, k * kappa, retriever.model.config.hidden_size)
    assert answer.softprompt_slots == k * kappa
    # slot block i holds passage i of the feed order: least relevant first, the best right before the prompt
    stored = retriever.vectors(list(reversed(ranked)))
    assert all(v.shape[0] == kappa for v in stored)  # one compression step per chunk
    torch.testing.assert_close(softprompt[0], torch.cat(stored).to(softprompt.dtype))
    assert not torch.equal(softprompt[0, -kappa:], softprompt[0, :kappa])


def test_text_mode_puts_the_best_passage_last(retriever, monkeypatch):
    ranked = retriever.search(QUESTION, 2)
    calls = spy_generate(monkeypatch, retriever.model)
    retriever.answer(QUESTION, k=2, mode="text", max_new_tokens=1)
    prompt = retriever.tokenizer.decode(calls[0]["input_ids"][0])
    positions = [prompt.index(ranked[1].text.strip()), prompt.index(ranked[0].text.strip())]
    assert positions[0] < positions[1] < prompt.index(QUESTION)
    assert calls[0]["softprompt"] is None


def test_answer_batch_equals_single_answers(retriever):
    questions = ["Which river flows into Lake Ombra?", QUESTION, "What does Quillon Works make?"]
    # prompts of different lengths: the batch is left-padded, which must not change greedy answers
    for mode, asked in (("fused", questions), ("text", questions[:2])):
        batched = retriever.answer_batch(asked, k=2, mode=mode, batch_size=3, max_new_tokens=5)
        single = [retriever.answer(q, k=2, mode=mode, max_new_tokens=5) for q in asked]
        assert [a.text for a in batched] == [a.text for a in single], mode
        assert [a.generated_tokens for a in batched] == [a.generated_tokens for a in single]
        assert [[p.chunk_id for p in a.passages] for a in batched] == [
            [p.chunk_id for p in a.passages] for a in single
        ]


@pytest.mark.parametrize("mode", ["fused", "replug"])
def test_stream_yields_the_same_text_as_answer(retriever, mode):
    expected = retriever.answer(QUESTION, k=2, mode=mode, max_new_tokens=10)
    stream = retriever.stream(QUESTION, k=2, mode=mode, max_new_tokens=10)
    assert [p.chunk_id for p in stream.passages] == [p.chunk_id for p in expected.passages]
    pieces = list(stream)
    assert "".join(pieces) == expected.text
    assert stream.answer.text == expected.text
    assert stream.answer.generated_tokens == expected.generated_tokens
    with pytest.raises(RuntimeError, match="only once"):
        list(stream)


def test_generation_arguments_pass_through(retriever, monkeypatch):
    calls = spy_generate(monkeypatch, retriever.model)
    answer = retriever.answer(QUESTION, k=1, mode="text", max_new_tokens=2, num_beams=2, early_stopping=True)
    assert calls[0]["num_beams"] == 2 and calls[0]["max_new_tokens"] == 2
    assert answer.generated_tokens <= 2


def test_replug_with_one_passage_is_text_mode_with_that_passage(retriever):
    # a mixture of one distribution is that distribution: greedy REPLUG must equal greedy text mode
    replug = retriever.answer(QUESTION, k=1, mode="replug", max_new_tokens=6)
    text = retriever.answer(QUESTION, k=1, mode="text", max_new_tokens=6)
    assert replug.text == text.text and replug.generated_tokens == text.generated_tokens
    assert replug.prompt_tokens == text.prompt_tokens


def test_replug_refuses_arguments_it_would_ignore(retriever):
    with pytest.raises(ValueError, match="num_beams"):
        retriever.answer(QUESTION, k=2, mode="replug", max_new_tokens=2, num_beams=2)


def test_unknown_mode_and_reranker_are_errors(retriever):
    with pytest.raises(ValueError, match="mode 'fusion' is unknown"):
        retriever.answer(QUESTION, mode="fusion")
    with pytest.raises(ValueError, match="rerank='bm25' is unknown"):
        retriever.answer(QUESTION, rerank="bm25")


def test_k_larger_than_the_index_uses_what_exists(retriever, n_chunks):
    assert len(retriever.search(QUESTION, k=50)) == n_chunks
    answer = retriever.answer(QUESTION, k=n_chunks + 5, mode="fused", max_new_tokens=2)
    assert len(answer.passages) == n_chunks
    assert answer.softprompt_slots == n_chunks * retriever.model.config.summary_length
    assert f"only {n_chunks} passage" in answer.note


def test_empty_index_falls_back_to_no_retrieval(empty_index_dir, default_models):
    compressor, embedder = default_models
    with Retriever(empty_index_dir, model=compressor, embedder=embedder) as empty:
        assert empty.search(QUESTION, k=5) == []
        for mode in ("fused", "replug"):
            answer = empty.answer(QUESTION, k=5, mode=mode, max_new_tokens=3)
            assert answer.mode == "none" and answer.passages == []
            assert "empty" in answer.note and answer.text is not None
        stream = empty.stream(QUESTION, k=3, max_new_tokens=3)
        assert stream.mode == "none" and "empty" in stream.note
        assert "".join(stream) == stream.answer.text


def _copy_with_manifest(index_dir, tmp_path, **compressor_changes):
    copy = tmp_path / "copy"
    shutil.copytree(index_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["compressor"].update(compressor_changes)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_index_built_with_other_weights_is_one_clear_error(index_dir, default_models, tmp_path):
    compressor, embedder = default_models
    copy = _copy_with_manifest(index_dir, tmp_path, weights_hash="feedfacefeedface")
    with pytest.raises(ModelMismatchError) as caught:
        Retriever(copy, model=compressor, embedder=embedder)
    message = str(caught.value)
    assert "\n" not in message
    assert "feedfacefeedface" in message and compressor.info.weights_hash in message
    assert "rebuild" in message


def test_tiny_model_on_a_default_index_is_one_clear_error(index_dir, default_models):
    _, embedder = default_models
    with pytest.raises(ModelMismatchError, match="summary_length=4, hidden_size=32") as caught:
        Retriever(index_dir, model=(tiny_model(), tiny_tokenizer()), embedder=embedder)
    assert "\n" not in str(caught.value) and "summary_length=50, hidden_size=576" in str(caught.value)


def test_other_embedder_is_one_clear_error(index_dir, default_models):
    compressor, embedder = default_models
    with pytest.raises(ModelMismatchError, match="embedder .* id=my-other-embedder"):
        Retriever(index_dir, model=compressor, embedder=(embedder.model, "my-other-embedder"))


@pytest.mark.parametrize("fast_decode", [False, True], ids=["generate", "fast-path"])
def test_finite_timings_and_counts_are_consistent(retriever, fast_decode):
    answer = retriever.answer(QUESTION, k=2, mode="text", max_new_tokens=4, fast_decode=fast_decode)
    stages = sum(answer.timings[s] for s in ("retrieve", "rerank", "fuse", "prefill", "decode"))
    assert stages <= answer.timings["total"] + 1e-6
    assert all(math.isfinite(t) for t in answer.timings.values())
    # the fast path runs no forward the hooks would time as such: it reports its prompt and its new
    # tokens itself (a GPU replays graphs that run no Python at all)
    assert answer.timings["prefill"] > 0 and (answer.generated_tokens < 2 or answer.timings["decode"] > 0)


def test_fast_path_phases_are_counted_once(retriever):
    """A long prompt goes through the model's own forward, which the hooks see: they stand aside while
    fast_generate reports its phases, so the prompt is not counted twice."""
    from ragcompress.modeling import fast_decode, phases
    from ragcompress.retrieval.timing import ForwardTimer

    ids = retriever.tokenizer(["word " * 40], return_tensors="pt").input_ids
    with ForwardTimer(retriever.model) as timer, pytest.MonkeyPatch.context() as patch:
        reported = []
        real = timer.fast_finished
        patch.setattr(timer, "fast_finished", lambda p, d: (reported.append((p, d)), real(p, d)))
        patch.setattr(fast_decode, "PROMPT_GRAPH_TOKENS", 0)  # every prompt through the forward
        fast_decode.fast_generate(retriever.model, ids, max_new_tokens=3, eos_token_id=None)
    assert len(reported) == 1 and min(reported[0]) > 0
    assert (timer.prefill, timer.decode) == reported[0]
    assert phases._WATCHERS.get(retriever.model, []) == []  # gone with the timer


@pytest.mark.parametrize("mode", ["fused", "text"])
def test_extractive_answers_are_spans_of_the_retrieved_passages(retriever, mode):
    answer = retriever.answer(QUESTION, k=2, mode=mode, max_new_tokens=8, extractive=True)
    span = " ".join(answer.text.split())
    assert span, answer
    assert any(span in " ".join(p.text.split()) for p in answer.passages), (span, answer.passages)
    streamed = retriever.stream(QUESTION, k=2, mode=mode, max_new_tokens=8, extractive=True)
    assert "".join(streamed) == streamed.answer.text == answer.text


def test_extractive_needs_passages_to_copy_from(retriever, empty_index_dir, default_models):
    for mode in ("replug", "none"):
        with pytest.raises(
            ValueError, match=f"extractive=True works with mode 'fused' or 'text', not '{mode}'"
        ):
            retriever.answer(QUESTION, k=2, mode=mode, extractive=True)
    compressor, embedder = default_models
    with Retriever(empty_index_dir, model=compressor, embedder=embedder) as empty:
        # nothing retrieved: the plan falls back to mode none, which answers without the constraint
        answer = empty.answer(QUESTION, k=3, mode="fused", max_new_tokens=3, extractive=True)
        assert answer.mode == "none" and answer.text is not None


def test_compile_decode_is_every_answers_default(index_dir, default_models, monkeypatch):
    """``Retriever(compile_decode=...)`` reaches the fast decode path of each answer (an answer's own
    ``compile_decode`` wins), leaves REPLUG's own loop alone, and a wrong value is refused at once."""
    import ragcompress.retrieval.generation as generation

    compressor, embedder = default_models
    with pytest.raises(ValueError, match="compile_decode='yes'"):
        Retriever(index_dir, model=compressor, embedder=embedder, compile_decode="yes")
    asked: list = []
    real = generation.fast_generate

    def fast_generate(*args, compile=False, **kwargs):  # records what was asked, decodes uncompiled
        asked.append(compile)  # (the compiled step equals it: tests/modeling/test_fast_decode.py)
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "fast_generate", fast_generate)
    with Retriever(index_dir, model=compressor, embedder=embedder, compile_decode="dynamic") as compiled:
        first = compiled.answer(QUESTION, k=2, max_new_tokens=4, fast_decode=True)
        compiled.answer(QUESTION, k=2, max_new_tokens=4, fast_decode=True, compile_decode=False)
        replug = compiled.answer(QUESTION, k=1, mode="replug", max_new_tokens=4)
    with Retriever(index_dir, model=compressor, embedder=embedder) as plain:
        expected = plain.answer(QUESTION, k=2, max_new_tokens=4, fast_decode=False)
        assert replug.text == plain.answer(QUESTION, k=1, mode="replug", max_new_tokens=4).text
    assert asked == ["dynamic", False]
    assert first.text == expected.text


def test_warm_up_answers_throw_away_batches(retriever, monkeypatch):
    batches: list = []
    real = Retriever.answer_batch

    def answer_batch(self, queries, **kwargs):
        batches.append((len(queries), kwargs["batch_size"], kwargs["max_new_tokens"]))
        return real(self, queries, **kwargs)

    monkeypatch.setattr(Retriever, "answer_batch", answer_batch)
    assert retriever.warm_up(batches=(1, 3)) > 0
    assert batches == [(1, 1, 2), (3, 3, 2)]


def test_bf16_on_the_cpu_answers_as_fp32_does(index_dir, default_models, retriever, tmp_path, monkeypatch):
    # What a CPU with bf16 instructions loads by default (defaults.pick_dtype): indexing and answering
    # with the default compressor in bf16 give the fp32 answers on these questions, in both modes.
    from indexing.pipeline import index_corpus

    from .conftest import CHUNK_TOKENS

    questions = ["Who founded Pelville?", "Where does the Zarnok river flow?", "When did the Saltwind sink?"]
    monkeypatch.setenv("RAGCOMPRESS_DTYPE", "bfloat16")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for doc_id, text in DOCUMENTS.items():
        (corpus / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    embedder = default_models[1]
    settings = {"chunk_tokens": CHUNK_TOKENS, "overlap": 0, "progress": False, "device": "cpu"}
    index_corpus(corpus, tmp_path / "index", model="default", embedder=embedder, **settings)
    with Retriever(tmp_path / "index", embedder=embedder, device="cpu") as bf16:
        assert bf16.dtype == torch.bfloat16 and retriever.dtype == torch.float32
        for mode in ("fused", "text"):
            expected = [a.text for a in retriever.answer_batch(questions, k=2, mode=mode, max_new_tokens=8)]
            answers = bf16.answer_batch(questions, k=2, mode=mode, max_new_tokens=8)
            assert [a.text for a in answers] == expected
            assert expected[:2] == ["Tomas Varro", "Lake Ombra"], mode


def test_searches_run_on_the_embedders_device_unless_told_not_to(index_dir, default_models, monkeypatch):
    """A flat index is searched where the embedder runs when that is a search device (a GPU; here the
    CPU, added for the test), with the same passages and scores; ``gpu_search=False`` keeps FAISS."""
    from ragcompress.store import faiss_index

    compressor, embedder = default_models
    questions = [QUESTION, "What colour is the harbour's lighthouse?"]
    with Retriever(index_dir, model=compressor, embedder=embedder) as plain:
        assert plain.search_device == torch.device("cpu")
        expected = plain.search_batch(questions, k=4)
        expected_answer = plain.answer(QUESTION, k=2, max_new_tokens=4).text
        assert plain.store._state.index._on_device is None  # the CPU is no search device by default
    monkeypatch.setattr(faiss_index, "DEVICE_SEARCH_TYPES", ("cuda", "cpu"))
    with Retriever(index_dir, model=compressor, embedder=embedder, gpu_search=False) as off:
        assert off.search_device is None
        off.search_batch(questions, k=4)
        assert off.store._state.index._on_device is None
    with Retriever(index_dir, model=compressor, embedder=embedder) as on:
        found = on.search_batch(questions, k=4)
        assert on.store._state.index._on_device is not None
        answer = on.answer(QUESTION, k=2, max_new_tokens=4)
    assert [[p.chunk_id for p in row] for row in found] == [[p.chunk_id for p in row] for row in expected]
    for row, want in zip(found, expected):
        assert [p.score for p in row] == pytest.approx([p.score for p in want], abs=1e-5)
    assert answer.text == expected_answer


def test_summary_vectors_are_held_on_the_models_device_unless_told_not_to(
    index_dir, default_models, monkeypatch
):
    """On a GPU (here the CPU, added for the test) the index's summary vectors stay on the compressor's
    device after their first read, and answers are the ones read from the host; ``gpu_vectors=False``
    reads them from the host every time."""
    from ragcompress.store import device_vectors

    compressor, embedder = default_models
    questions = [QUESTION, "What colour is the harbour's lighthouse?"]
    with Retriever(index_dir, model=compressor, embedder=embedder) as plain:
        assert plain.store._state.device_vectors is None  # the CPU holds nothing by default
        expected = [a.text for a in plain.answer_batch(questions, k=3, max_new_tokens=6)]
        passages = plain.search(QUESTION, k=3)
        expected_vectors = plain.vectors(passages)
    monkeypatch.setattr(device_vectors, "DEVICE_VECTOR_TYPES", ("cuda", "cpu"))
    with Retriever(index_dir, model=compressor, embedder=embedder, gpu_vectors=False) as off:
        off.answer(QUESTION, k=3, max_new_tokens=2)
        assert off.store._state.device_vectors is None
    with Retriever(index_dir, model=compressor, embedder=embedder) as on:
        held = on.store._state.device_vectors
        assert held is not None and held.dtype == on.dtype and not held.shards
        on.warm_up(batches=(1,))  # reads every shard
        assert len(held.shards) == len(on.store._state.shard_sha)
        assert [a.text for a in on.answer_batch(questions, k=3, max_new_tokens=6)] == expected
        got = on.vectors(passages)
    assert all(torch.equal(g, e) for g, e in zip(got, expected_vectors))


def test_out_of_memory_while_answering_frees_the_held_vectors_and_answers(
    index_dir, default_models, monkeypatch, caplog
):
    """Held summary vectors give way to generation: an answer that runs out of memory frees them and
    runs again (later answers read their vectors from disk); without held vectors the error is the caller's."""
    from ragcompress.retrieval import retriever as retriever_module
    from ragcompress.store import device_vectors

    compressor, embedder = default_models
    with Retriever(index_dir, model=compressor, embedder=embedder) as plain:
        expected = plain.answer(QUESTION, k=3, max_new_tokens=6).text
    real = retriever_module.run_plans
    failures = []

    def short_of_memory(*args, **kwargs):
        if len(failures) < 1:
            failures.append(1)
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return real(*args, **kwargs)

    monkeypatch.setattr(retriever_module, "run_plans", short_of_memory)
    monkeypatch.setattr(device_vectors, "DEVICE_VECTOR_TYPES", ("cuda", "cpu"))
    with Retriever(index_dir, model=compressor, embedder=embedder) as on:
        assert on.store.preload_vectors() > 0
        with caplog.at_level("WARNING", logger="ragcompress.retrieval.plan"):
            assert on.answer(QUESTION, k=3, max_new_tokens=6).text == expected
        assert on.store._state.device_vectors is None and "no longer held on the GPU" in caplog.text
        assert on.answer(QUESTION, k=3, max_new_tokens=6).text == expected  # from disk
    failures.clear()
    with Retriever(index_dir, model=compressor, embedder=embedder, gpu_vectors=False) as off:
        with pytest.raises(torch.OutOfMemoryError):
            off.answer(QUESTION, k=3, max_new_tokens=6)
