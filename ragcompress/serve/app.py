"""The HTTP API of `ragcompress serve` (FastAPI): answer, search, health, info, and OpenAI-style chat.

    POST /answer                {"question", "k", "mode", "extractive", "max_new_tokens", "stream"}
    POST /search                {"query", "k"}
    GET  /health, GET /info
    POST /v1/chat/completions   OpenAI request shape; the last user message is the question
    GET  /v1/models

Every answer comes from the `Batcher`'s worker thread; handlers only validate, queue and wait, so
requests that arrive together are answered in one batch. Errors are JSON with one line:
``{"error": "..."}`` (``{"error": {"message": ..., "type": ...}}`` under /v1, as OpenAI clients expect);
4xx for a bad request, 503 when the queue is full or the index cannot be read.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from ragcompress import __version__
from ragcompress.commands.ask import one_line
from ragcompress.commands.info import describe
from ragcompress.retrieval import Answer, AnswerStream
from ragcompress.serve.batching import AnswerOptions, Batcher, ServerBusyError, ServerStoppedError
from ragcompress.serve.chat import chat_chunk, chat_completion
from ragcompress.serve.payloads import answer_json, passage_json
from ragcompress.serve.schemas import AnswerRequest, ChatRequest, SearchRequest
from ragcompress.store import StoreError

_END = object()


class RequestError(Exception):
    """A request the server refuses, with the status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_of(error: BaseException) -> int:
    if isinstance(error, RequestError):
        return error.status
    if isinstance(error, ServerBusyError | ServerStoppedError | StoreError):
        return 503
    if isinstance(error, ValueError):
        return 400
    return 500


def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "code": status}}
    return {"error": message}


def _validation_line(error: RequestValidationError) -> tuple[int, str]:
    """The first problem of a request body as (status, one line)."""
    first = error.errors()[0]
    kind, where = first.get("type", ""), [str(part) for part in first.get("loc", ())[1:]]
    if kind == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return 400, f"the request body is not valid JSON{f' ({reason})' if reason else ''}"
    if not where and kind == "missing":
        return 400, "the request has no body: send a JSON object"
    if kind == "extra_forbidden":
        return 422, f"unknown field {'.'.join(where)!r}"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return 422, f"{'.'.join(where)}: {message}" if where else message


def _sse(data: Any, event: str | None = None) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


def create_app(batcher: Batcher, model_name: str | None = None) -> FastAPI:
    """The FastAPI app over a started ``batcher``. ``model_name`` is what /v1 reports as the model."""
    app = FastAPI(title="ragcompress", version=__version__, summary="answers from a compressed index")
    served_model = model_name or f"ragcompress:{batcher.compressor_id}"

    def refuse(request: Request, status: int, message: str) -> JSONResponse:
        return JSONResponse(_error_body(request.url.path, status, message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return refuse(request, *_validation_line(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 404:
            return refuse(request, 404, f"no such endpoint: {request.method} {request.url.path}")
        if error.status_code == 405:
            return refuse(request, 405, f"{request.method} is not allowed on {request.url.path}")
        return refuse(request, error.status_code, str(error.detail))

    async def failed(request: Request, error: Exception) -> JSONResponse:
        return refuse(request, status_of(error), one_line(error))

    # Known kinds are answered here; anything else still becomes a one-line 500 (and is logged).
    for kind in (RequestError, ServerBusyError, ServerStoppedError, StoreError, ValueError, Exception):
        app.add_exception_handler(kind, failed)

    async def wait(future) -> Any:
        return await asyncio.wrap_future(future)

    @app.get("/health")
    def health() -> dict[str, Any]:
        if not batcher.running:
            raise ServerStoppedError("the answering worker is not running")
        return {
            "status": "ok",
            "index": str(batcher.index_dir),
            "generation": batcher.generation,
            "queued": batcher.queued,
        }

    @app.get("/info")
    def info() -> dict[str, Any]:
        return {  # the figures `ragcompress info --json` prints, and the server's own
            **describe(Path(batcher.index_dir)),
            "server": {
                "version": __version__,
                "model": served_model,
                "device": batcher.device,
                "dtype": batcher.dtype,
                "compile_decode": batcher.compile_decode,
                "search_route": batcher.search_route,
                "max_batch": batcher.max_batch,
                "batch_window_ms": round(batcher.window * 1000, 3),
                "batches": batcher.batches,
                "batched_questions": batcher.batched_questions,
            },
        }

    @app.post("/search")
    async def search(body: SearchRequest) -> dict[str, Any]:
        passages = await wait(batcher.search(body.query, body.k))
        return {"query": body.query, "passages": [passage_json(p) for p in passages]}

    @app.post("/answer")
    async def answer(body: AnswerRequest):
        options = body.answer_options(body.max_new_tokens)
        if not body.stream:
            return answer_json(await wait(batcher.answer(body.question, options)))
        items = _start_stream(batcher, body.question, options)  # a full queue is refused here, with a 503
        return StreamingResponse(_answer_events(items), media_type="text/event-stream")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": served_model, "object": "model", "owned_by": "ragcompress"}],
        }

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest):
        try:
            question = body.question()
        except ValueError as error:
            raise RequestError(400, one_line(error)) from None
        options = body.answer_options(body.new_tokens())
        model = body.model or served_model
        if not body.stream:
            result = await wait(batcher.answer(question, options))
            return chat_completion(result, model, options.max_new_tokens)
        items = _start_stream(batcher, question, options)
        return StreamingResponse(
            _chat_events(items, model, options.max_new_tokens), media_type="text/event-stream"
        )

    return app


def _start_stream(batcher: Batcher, question: str, options: AnswerOptions) -> AsyncIterator[Any]:
    """Queue a streamed answer now; iterate the result for the worker's ``AnswerStream``, then each text
    piece, then the final ``Answer`` (or the exception that ended it)."""
    loop = asyncio.get_running_loop()
    items: asyncio.Queue = asyncio.Queue()

    def emit(item: Any) -> None:
        loop.call_soon_threadsafe(items.put_nowait, item)

    future = batcher.stream(question, options, emit)
    # settled after the worker's last emit, so the end marker arrives after the last piece
    future.add_done_callback(lambda _: loop.call_soon_threadsafe(items.put_nowait, _END))

    async def drain() -> AsyncIterator[Any]:
        while (item := await items.get()) is not _END:
            yield item
        error = future.exception()
        yield error if error is not None else future.result()

    return drain()


async def _answer_events(items: AsyncIterator[Any]) -> AsyncIterator[str]:
    """``start`` (mode, note, passages), ``data: {"delta": piece}`` per piece, then ``answer`` or ``error``."""
    async for item in items:
        if isinstance(item, AnswerStream):
            passages = [passage_json(p) for p in item.passages]
            yield _sse({"mode": item.mode, "note": item.note, "passages": passages}, "start")
        elif isinstance(item, str):
            yield _sse({"delta": item})
        elif isinstance(item, Answer):
            yield _sse(answer_json(item), "answer")
        else:
            yield _sse({"error": one_line(item), "status": status_of(item)}, "error")


async def _chat_events(items: AsyncIterator[Any], model: str, max_new_tokens: int) -> AsyncIterator[str]:
    """OpenAI ``chat.completion.chunk`` events, ending with ``data: [DONE]``."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    async for item in items:
        if isinstance(item, AnswerStream):
            yield _sse(chat_chunk(ident, created, model, {"role": "assistant", "content": ""}))
        elif isinstance(item, str):
            yield _sse(chat_chunk(ident, created, model, {"content": item}))
        elif isinstance(item, Answer):
            yield _sse(chat_chunk(ident, created, model, {}, item, max_new_tokens))
        else:
            yield _sse(_error_body("/v1/", status_of(item), one_line(item)))
    yield _sse("[DONE]")
