"""OpenAI chat-completion response objects built from an ``Answer``, so existing OpenAI clients work unchanged.

The choice's message is the answer's text; ``usage`` counts the prompt's text tokens (the soft-prompt
slots are not text tokens and are reported apart) and the generated tokens. A ``ragcompress`` field adds
what OpenAI's shape has no place for: the sources, passages, mode actually used and any note.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ragcompress.retrieval import Answer
from ragcompress.serve.payloads import passage_json


def finish_reason(answer: Answer, max_new_tokens: int) -> str:
    """``length`` when generation stopped at the token limit, else ``stop``."""
    return "length" if answer.generated_tokens >= max_new_tokens else "stop"


def _extension(answer: Answer) -> dict[str, Any]:
    return {
        "mode": answer.mode,
        "sources": answer.sources,
        "passages": [passage_json(p) for p in answer.passages],
        "softprompt_slots": answer.softprompt_slots,
        "note": answer.note,
        "timings": answer.timings,
    }


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.generated_tokens,
        "total_tokens": answer.prompt_tokens + answer.generated_tokens,
    }


def chat_completion(answer: Answer, model: str, max_new_tokens: int) -> dict[str, Any]:
    """A ``chat.completion`` object holding ``answer``."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": finish_reason(answer, max_new_tokens),
            }
        ],
        "usage": _usage(answer),
        "ragcompress": _extension(answer),
    }


def chat_chunk(
    ident: str,
    created: int,
    model: str,
    delta: dict[str, str],
    answer: Answer | None = None,
    max_new_tokens: int = 0,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; the last one (``answer`` given) carries the finish reason and usage."""
    chunk: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "finish_reason": None if answer is None else finish_reason(answer, max_new_tokens),
            }
        ],
    }
    if answer is not None:
        chunk["usage"] = _usage(answer)
        chunk["ragcompress"] = _extension(answer)
    return chunk
