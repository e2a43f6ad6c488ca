"""Re-ranking with summary vectors: a permutation of the candidates, ordered by finite scores."""

from __future__ import annotations

import math

import pytest

from ragcompress.retrieval import RERANKERS

QUESTION = "Which ship sank off Cape Morrow?"


@pytest.mark.parametrize("method", RERANKERS)
def test_rerank_is_a_permutation_ordered_by_its_scores(retriever, method):
    candidates = retriever.search(QUESTION, k=4)
    reranked = retriever.rerank(QUESTION, candidates, method)
    assert sorted(p.chunk_id for p in reranked) == sorted(p.chunk_id for p in candidates)
    scores = [p.rerank_score for p in reranked]
    assert all(s is not None and math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=True)
    # retrieval scores travel with their passages
    by_id = {p.chunk_id: p.score for p in candidates}
    assert all(p.score == by_id[p.chunk_id] for p in reranked)
    if method == "summary_l2":
        assert all(s <= 0 for s in scores)  # −distance
    else:
        assert all(s < 0 for s in scores)  # mean log-likelihood of the question


def test_rerank_scores_do_not_depend_on_candidate_order(retriever):
    candidates = retriever.search(QUESTION, k=2)
    forward = {p.chunk_id: p.rerank_score for p in retriever.rerank(QUESTION, candidates, "upr")}
    backward = {p.chunk_id: p.rerank_score for p in retriever.rerank(QUESTION, candidates[::-1], "upr")}
    assert forward.keys() == backward.keys()
    for chunk_id, score in forward.items():
        assert score == pytest.approx(backward[chunk_id], abs=1e-4)


def test_answer_with_rerank_keeps_the_best_k_of_a_larger_pool(retriever):
    pool = retriever.rerank(QUESTION, retriever.search(QUESTION, k=4), "summary_l2")
    answer = retriever.answer(
        QUESTION, k=2, mode="text", rerank="summary_l2", rerank_candidates=4, max_new_tokens=2
    )
    # fed least → most relevant: the re-ranker's top two, best last
    assert [p.chunk_id for p in answer.passages] == [p.chunk_id for p in pool[:2][::-1]]
    assert answer.timings["rerank"] > 0
