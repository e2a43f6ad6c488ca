"""The JSON bodies `ragcompress serve` accepts and returns: requests as pydantic models, answers as dicts.

Limits (k, tokens) are checked here, so a bad request is refused with one line before it reaches the
models. The OpenAI-style chat request keeps unknown fields (clients send many) and reads only what it
needs; ragcompress's own requests refuse unknown fields, so a misspelt option is not silently ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ragcompress.retrieval import MODES, RERANKERS
from ragcompress.retrieval.extractive import SPAN_MODES
from ragcompress.serve.batching import AnswerOptions

MAX_K = 100
MAX_NEW_TOKENS = 1024
MAX_QUESTION_CHARS = 8000


def _check_question(text: str, field: str) -> str:
    if not text.strip():
        raise ValueError(f"{field} is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"{field} has {len(text)} characters; at most {MAX_QUESTION_CHARS} are accepted")
    return text


class RetrievalOptions(BaseModel):
    """How a question is answered; the same fields and defaults as ``Retriever.answer``."""

    k: int = Field(5, ge=0, le=MAX_K, description="passages to retrieve")
    mode: str = Field("fused", description=" | ".join(MODES))
    extractive: bool = Field(
        False, description="answer with a span of the passages' text (fused, text, hybrid)"
    )
    rerank: str | None = Field(None, description=" | ".join(RERANKERS))
    rerank_candidates: int | None = Field(None, ge=1, le=MAX_K)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        return mode

    @field_validator("rerank")
    @classmethod
    def _known_reranker(cls, rerank: str | None) -> str | None:
        if rerank is not None and rerank not in RERANKERS:
            raise ValueError(f"rerank {rerank!r} is not one of {', '.join(RERANKERS)}")
        return rerank

    @model_validator(mode="after")
    def _extractive_mode(self):
        if self.extractive and self.mode not in SPAN_MODES:
            raise ValueError(f"extractive works with mode fused or text, not {self.mode!r}; hybrid works too")
        return self

    def answer_options(self, max_new_tokens: int) -> AnswerOptions:
        return AnswerOptions(
            k=self.k,
            mode=self.mode,
            extractive=self.extractive,
            rerank=self.rerank,
            rerank_candidates=self.rerank_candidates,
            max_new_tokens=max_new_tokens,
        )


class AnswerRequest(RetrievalOptions):
    """``POST /answer``."""

    model_config = ConfigDict(extra="forbid")
    question: str
    max_new_tokens: int = Field(64, ge=1, le=MAX_NEW_TOKENS)
    stream: bool = Field(False, description="server-sent events: text pieces, then the whole answer")

    @field_validator("question")
    @classmethod
    def _question(cls, text: str) -> str:
        return _check_question(text, "question")


class SearchRequest(BaseModel):
    """``POST /search``."""

    model_config = ConfigDict(extra="forbid")
    query: str
    k: int = Field(5, ge=0, le=MAX_K)

    @field_validator("query")
    @classmethod
    def _query(cls, text: str) -> str:
        return _check_question(text, "query")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text: a string, or the text parts of a list of content parts joined."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(str(part.get("text", "")) for part in parts if part.get("type") == "text")


class ChatRequest(RetrievalOptions):
    """``POST /v1/chat/completions``: the OpenAI request shape; the last user message is the question.
    ``k``, ``mode``, ``extractive`` and ``rerank`` may be added as extra fields."""

    model_config = ConfigDict(extra="allow")
    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    n: int = Field(1, ge=1, le=1, description="one choice only")

    def question(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return _check_question(message.text(), "the last user message")
        raise ValueError("messages holds no message with role 'user'")

    def new_tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or 64
