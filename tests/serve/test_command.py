"""`ragcompress serve` as a user starts it: a process that loads the index's models, prints its address,
answers over HTTP as `Retriever.answer` does, and stops on Ctrl-C; start-up problems are one line."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

QUESTION = "Which planet has the Great Red Spot?"


def start(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "RAGCOMPRESS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "ragcompress", "serve", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def first_line(stream, timeout: float) -> str:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


@pytest.mark.slow
def test_serve_answers_like_the_retriever_and_stops_on_ctrl_c(serve_index, reference, tmp_path):
    expected = reference.answer(QUESTION, k=2, mode="text", max_new_tokens=5)
    process = start("--index", str(serve_index), "--port", "0", "--device", "cpu", home=tmp_path)
    try:
        line = first_line(process.stdout, timeout=240)
        assert line.startswith(f"serving {serve_index} on http://127.0.0.1:"), process.stderr.read()
        assert "answering on cpu in float32;" in line  # the subprocess inherits tests/conftest.py's dtype
        url = line.split(" on ")[1].split()[0]
        with httpx.Client(base_url=url, timeout=120) as client:
            assert client.get("/health").json()["status"] == "ok"
            body = {"question": QUESTION, "k": 2, "mode": "text", "max_new_tokens": 5}
            assert client.post("/answer", json=body).json()["text"] == expected.text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130  # 128 + SIGINT, as for any program stopped by Ctrl-C
        errors = process.stderr.read()
        assert "Loading weights" not in errors and "Traceback" not in errors, errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_problems_at_start_are_one_line(tmp_path):
    missing = start("--index", str(tmp_path / "nothing"), "--port", "0", home=tmp_path)
    _, err = missing.communicate(timeout=240)
    assert missing.returncode == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    no_index = start("--port", "0", home=tmp_path)
    _, err = no_index.communicate(timeout=240)
    assert no_index.returncode == 2 and "run `ragcompress index CORPUS` first" in err
    wrong = start("--index", str(tmp_path / "nothing"), "--compile-decode", "yes", home=tmp_path)
    _, err = wrong.communicate(timeout=240)
    assert wrong.returncode == 2 and err.strip() == (
        "error: --compile-decode 'yes' is unknown; use one of auto, off, static, dynamic, regional"
    )


def test_a_failed_warm_up_is_one_line_and_closes_the_index(serve_index, tiny_models, monkeypatch, capsys):
    import typer

    from ragcompress.retrieval import Retriever
    from ragcompress.serve.command import warm_up_or_fail

    def fail(self, *args, **kwargs):
        raise RuntimeError("inductor: no C compiler found\n(a long traceback)")

    retriever = Retriever(serve_index, *tiny_models)
    warmed = []
    monkeypatch.setattr(Retriever, "warm_up", lambda self, batches: warmed.append(batches))
    warm_up_or_fail(retriever, "off", max_batch=20)  # every batch bucket a batch of ≤ 20 runs as
    assert warmed == [[1, 2, 4, 8, 16, 32]]
    monkeypatch.setattr(Retriever, "warm_up", fail)
    with pytest.raises(typer.Exit) as stopped:
        warm_up_or_fail(retriever, "dynamic", max_batch=8)
    assert stopped.value.exit_code == 2
    assert capsys.readouterr().err == (
        "error: answering a warm-up question failed (RuntimeError: inductor: no C compiler found); "
        "start with --compile-decode off\n"
    )
    with pytest.raises(Exception, match="closed"):
        retriever.search("a question", k=1)


def test_auto_compiling_falls_back_to_the_uncompiled_step_with_one_warning(
    serve_index, tiny_models, monkeypatch, capsys
):
    """`--compile-decode auto` (the default) compiles on a GPU; a warm-up that fails while compiling is
    answered again without compiling, and the server starts. Only a second failure stops it."""
    import typer

    from ragcompress.retrieval import Retriever
    from ragcompress.serve.command import warm_up_or_fail

    calls = []

    def fails_compiled(self, batches):
        calls.append(self.compile_decode)
        if self.compile_decode:
            raise RuntimeError("inductor: no C compiler found\n(a long traceback)")

    monkeypatch.setattr(Retriever, "warm_up", fails_compiled)
    retriever = Retriever(serve_index, *tiny_models, compile_decode="dynamic")
    warm_up_or_fail(retriever, "auto", max_batch=2)
    assert calls == ["dynamic", False] and retriever.compile_decode is False
    assert capsys.readouterr().err == (
        "warning: compiling the decode step failed (RuntimeError: inductor: no C compiler found); "
        "answering without it\n"
    )
    assert retriever.search("a question", k=1)  # still open

    monkeypatch.setattr(Retriever, "warm_up", lambda self, batches: 1 / 0)
    retriever.compile_decode = "dynamic"
    with pytest.raises(typer.Exit):
        warm_up_or_fail(retriever, "auto", max_batch=2)
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: answering a warm-up question failed (ZeroDivisionError: division by zero)"
    )
    retriever.compile_decode = False  # auto on a CPU, or after a fallback: no second try
    calls.clear()
    monkeypatch.setattr(Retriever, "warm_up", fails_compiled)
    warm_up_or_fail(Retriever(serve_index, *tiny_models), "auto", max_batch=1)
    assert calls == [False]
