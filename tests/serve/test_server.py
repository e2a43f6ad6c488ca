"""`ragcompress serve`'s HTTP API through a real client: answers equal `Retriever.answer`, concurrent
questions are batched, streams join to the answer, the OpenAI shape, and one-line 4xx for bad requests."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import httpx
import pytest

from tests.serve.conftest import QUESTIONS

TOKENS = 6


def events(response: httpx.Response) -> list[tuple[str, str]]:
    """(event name, data) of every server-sent event in a finished response."""
    parsed = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((fields.get("event", "message"), fields["data"]))
    return parsed


def same_passages(got: list[dict], expected) -> bool:
    """Equal passages; scores within float noise (a query embedded in a batch differs in the last bits)."""
    want = [asdict(p) for p in expected]
    strip = [[{**p, "score": None} for p in side] for side in (got, want)]
    return strip[0] == strip[1] and [p["score"] for p in got] == pytest.approx(
        [p["score"] for p in want], abs=1e-5
    )


def post_all(url: str, path: str, bodies: list[dict]) -> list[httpx.Response]:
    """All bodies at once, one connection each, as concurrent clients would."""

    def post(body: dict) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=120) as client:
            return client.post(path, json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


@pytest.mark.parametrize("mode", ["fused", "text"])
def test_concurrent_answers_equal_retriever_answer_and_share_a_batch(server, reference, mode):
    url, batcher = server
    expected = [reference.answer(q, k=2, mode=mode, max_new_tokens=TOKENS) for q in QUESTIONS]
    batches = batcher.batches
    body = {"k": 2, "mode": mode, "max_new_tokens": TOKENS}
    responses = post_all(url, "/answer", [{"question": q, **body} for q in QUESTIONS])
    for response, answer in zip(responses, expected):
        assert response.status_code == 200, response.text
        got = response.json()
        assert got["text"] == answer.text and got["query"] == answer.query and got["mode"] == mode
        assert same_passages(got["passages"], answer.passages)
        assert got["sources"] == answer.sources and got["generated_tokens"] == answer.generated_tokens
        assert got["softprompt_slots"] == answer.softprompt_slots
    # four questions sent together within the 200 ms window: fewer answer_batch calls than questions
    assert batcher.batches - batches < len(QUESTIONS)


def test_search_equals_retriever_search(client, reference):
    response = client.post("/search", json={"query": QUESTIONS[0], "k": 3})
    assert response.status_code == 200
    assert same_passages(response.json()["passages"], reference.search(QUESTIONS[0], k=3))
    assert client.post("/search", json={"query": "x", "k": 0}).json()["passages"] == []


def test_streamed_answer_joins_to_the_answer(client, reference):
    expected = reference.answer(QUESTIONS[1], k=2, max_new_tokens=TOKENS)
    body = {"question": QUESTIONS[1], "k": 2, "max_new_tokens": TOKENS, "stream": True}
    response = client.post("/answer", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    sent = events(response)
    assert sent[0][0] == "start" and same_passages(json.loads(sent[0][1])["passages"], expected.passages)
    pieces = [json.loads(data)["delta"] for name, data in sent[1:-1]]
    assert all(name == "message" for name, _ in sent[1:-1]) and pieces
    assert sent[-1][0] == "answer"
    final = json.loads(sent[-1][1])
    assert "".join(pieces) == final["text"] == expected.text


def test_extractive_answer_equals_retriever(client, reference):
    expected = reference.answer(QUESTIONS[2], k=2, mode="text", max_new_tokens=TOKENS, extractive=True)
    body = {"question": QUESTIONS[2], "k": 2, "mode": "text", "extractive": True, "max_new_tokens": TOKENS}
    assert client.post("/answer", json=body).json()["text"] == expected.text


def test_openai_chat_completion(client, reference):
    expected = reference.answer(QUESTIONS[3], k=2, max_new_tokens=TOKENS)
    messages = [
        {"role": "system", "content": "You answer questions."},
        {"role": "user", "content": "an earlier question"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "user", "content": [{"type": "text", "text": QUESTIONS[3]}]},
    ]
    body = {"model": "anything", "messages": messages, "max_tokens": TOKENS, "k": 2, "temperature": 0}
    got = client.post("/v1/chat/completions", json=body).json()
    assert got["object"] == "chat.completion" and got["model"] == "anything"
    choice = got["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": expected.text}
    assert choice["finish_reason"] == ("length" if expected.generated_tokens >= TOKENS else "stop")
    assert got["usage"]["completion_tokens"] == expected.generated_tokens
    assert got["usage"]["total_tokens"] == expected.prompt_tokens + expected.generated_tokens
    assert got["ragcompress"]["sources"] == expected.sources

    sent = events(client.post("/v1/chat/completions", json={**body, "stream": True}))
    assert sent[-1] == ("message", "[DONE]")
    chunks = [json.loads(data) for _, data in sent[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == expected.text and chunks[-1]["choices"][0]["finish_reason"] == choice["finish_reason"]
    models = client.get("/v1/models").json()
    assert models["data"][0]["id"].startswith("ragcompress:")


def test_health_and_info(client, serve_index):
    assert client.post("/search", json={"query": "where", "k": 2}).status_code == 200
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["index"] == str(serve_index)
    assert isinstance(health["generation"], int)
    info = client.get("/info").json()
    assert info["documents"] == 6 and info["chunks"] > 0 and info["bytes_per_token"] > 0
    assert info["server"]["max_batch"] == 8 and info["server"]["batch_window_ms"] == 200
    assert (info["server"]["device"], info["server"]["dtype"]) == ("cpu", "float32")  # tests/conftest.py
    assert info["server"]["compile_decode"] == "off"  # the Retriever's default
    assert info["server"]["search_route"] == "faiss-cpu"  # a CPU server's search


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("/answer", {}, 422, "question: Field required"),
        ("/answer", {"question": "  "}, 422, "question: question is empty"),
        ("/answer", {"question": "q", "k": -1}, 422, "k: Input should be greater than or equal to 0"),
        ("/answer", {"question": "q", "mode": "fusion"}, 422, "mode: mode 'fusion' is not one of fused"),
        ("/answer", {"question": "q", "mode": "replug", "extractive": True}, 422, "extractive works with"),
        ("/answer", {"question": "q", "kk": 3}, 422, "unknown field 'kk'"),
        ("/answer", {"question": "q", "max_new_tokens": 0}, 422, "max_new_tokens: Input should be greater"),
        ("/answer", {"question": 3}, 422, "question: Input should be a valid string"),
        ("/search", {"query": "q", "k": 1000}, 422, "k: Input should be less than or equal to 100"),
        ("/answer", "{not json", 400, "the request body is not valid JSON"),
        ("/answer", None, 400, "the request has no body"),
        ("/v1/chat/completions", {"messages": []}, 422, "messages: List should have at least 1 item"),
        ("/v1/chat/completions", {"messages": [{"role": "system", "content": "hi"}]}, 400, "no message"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "n": 2}, 422, "n: Input"),
    ],
)
def test_bad_requests_get_4xx_with_one_line(client, path, body, status, reason):
    if isinstance(body, str):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    elif body is None:
        response = client.post(path)
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    message = error["message"] if path.startswith("/v1/") else error
    assert message.startswith(reason) or reason in message, message
    assert "\n" not in message and "Traceback" not in message


def test_unknown_routes_and_methods_get_one_line(client):
    assert client.get("/nope").json() == {"error": "no such endpoint: GET /nope"}
    response = client.get("/answer")
    assert response.status_code == 405 and response.json() == {"error": "GET is not allowed on /answer"}
