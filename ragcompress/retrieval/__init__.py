"""Retrieval and generation over an index: `Retriever` and what it returns.

from ragcompress import Retriever
retriever = Retriever("index/")
print(retriever.answer("Who founded Pelville?", k=5, mode="fused").text)
"""

from ragcompress.retrieval.generation import GenerationOutput, fuse, generate_answers, generate_outputs
from ragcompress.retrieval.match import ModelMismatchError, ModelUnavailableError
from ragcompress.retrieval.rerank import RERANKERS
from ragcompress.retrieval.retriever import Retriever
from ragcompress.retrieval.streaming import AnswerStream
from ragcompress.retrieval.types import MODES, Answer, Passage, ScoreResult

__all__ = [
    "MODES",
    "RERANKERS",
    "Answer",
    "AnswerStream",
    "GenerationOutput",
    "ModelMismatchError",
    "ModelUnavailableError",
    "Passage",
    "Retriever",
    "ScoreResult",
    "fuse",
    "generate_answers",
    "generate_outputs",
]
