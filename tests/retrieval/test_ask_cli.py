"""`ragcompress ask` through typer's CliRunner, on a small app holding only this command."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import typer
from typer.testing import CliRunner

from ragcompress.commands import ask

runner = CliRunner()


def ask_app() -> typer.Typer:
    app = typer.Typer()
    ask.register(app)

    @app.command("noop")  # with two commands typer keeps "ask" as a subcommand name, as in the real CLI
    def noop() -> None:
        pass

    return app


def test_ask_prints_the_answer_and_its_sources(index_dir):
    # no model arguments: the Retriever loads the defaults the index names, as a user's call would
    result = runner.invoke(
        ask_app(),
        [
            "ask",
            "Who founded Pelville?",
            "--index",
            str(index_dir),
            "--k",
            "2",
            "--mode",
            "text",
            "--max-new-tokens",
            "6",
            "--show-passages",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Sources (most relevant first): pelville" in result.output
    assert "\n[2] pelville (chars " in result.output  # the best passage, fed last
    assert "Tomas Varro" in result.output


def test_ask_without_an_index_says_to_build_one(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGCOMPRESS_HOME", str(tmp_path))
    result = runner.invoke(ask_app(), ["ask", "anything"])
    assert result.exit_code == 2
    assert "run `ragcompress index CORPUS` first" in result.output
    assert "Traceback" not in result.output


def test_ask_uses_the_last_index_and_reports_a_mismatch_in_one_line(
    index_dir, default_models, tmp_path, monkeypatch
):
    copy = tmp_path / "copy"
    shutil.copytree(index_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["compressor"]["weights_hash"] = "feedfacefeedface"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("RAGCOMPRESS_HOME", str(tmp_path / "home"))
    from ragcompress import Compressor, Embedder, paths

    paths.remember_last_index(copy)
    compressor, embedder = default_models
    loads = []
    # the models are already loaded in this session: hand them out instead of loading them again
    monkeypatch.setattr(
        Compressor, "load", lambda spec=None, device=None, dtype=None: loads.append(spec) or compressor
    )
    monkeypatch.setattr(Embedder, "load", lambda spec=None, device=None: loads.append(spec) or embedder)
    result = runner.invoke(ask_app(), ["ask", "Who founded Pelville?"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the index at")
    assert "feedfacefeedface" in lines[0] and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert loads == ["default"]  # the spec the index names; the mismatch stops it before the embedder


def test_ask_rejects_bad_options_before_loading_anything(index_dir):
    result = runner.invoke(ask_app(), ["ask", "q", "--index", str(index_dir), "--mode", "fusion"])
    assert result.exit_code == 2
    assert "error: --mode 'fusion' is not one of fused, text, replug, none" in result.output
    for tokens in ("0", "-1"):
        result = runner.invoke(ask_app(), ["ask", "q", "--index", str(index_dir), "--max-new-tokens", tokens])
        assert (
            result.exit_code == 2 and f"error: --max-new-tokens {tokens} must be at least 1" in result.output
        )


def test_ask_extractive_copies_its_answer_from_the_passages(index_dir):
    result = runner.invoke(
        ask_app(),
        ["ask", "Who founded Pelville?", "--index", str(index_dir), "--k", "2", "--extractive"]
        + ["--max-new-tokens", "8", "--no-stream", "--device", "cpu", "--show-passages"],
    )
    assert result.exit_code == 0, result.output
    printed = result.stdout  # the loading progress goes to stderr
    answer = " ".join(printed.split("\nSources")[0].split())
    assert answer and answer in " ".join(printed.split("Passages (")[1].split()), printed


def test_ask_extractive_refuses_replug_before_loading_anything(index_dir):
    result = runner.invoke(
        ask_app(), ["ask", "q", "--index", str(index_dir), "--mode", "replug", "--extractive"]
    )
    assert result.exit_code == 2
    assert "error: --extractive works with --mode fused or text, not 'replug'" in result.output


def test_questions_piped_in_are_answered_with_the_models_loaded_once_quiet(index_dir, retriever):
    questions = ["Who founded Pelville?", "Where does the Zarnok river flow?"]
    expected = [retriever.answer(q, k=2, mode="text", max_new_tokens=6).text.strip() for q in questions]
    result = runner.invoke(
        ask_app(),
        ["ask", "--index", str(index_dir), "--k", "2", "--mode", "text", "--max-new-tokens", "6"]
        + ["--device", "cpu", "--quiet"],
        input=f"{questions[0]}\n\n  \n{questions[1]}\n",  # blank lines are skipped
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected  # only the answers: no sources, no blank lines
    assert "Loading weights" not in result.output  # transformers' progress bars are silenced


def test_json_prints_the_whole_answer_and_a_quit_word_stops(index_dir, retriever):
    expected = retriever.answer("Who founded Pelville?", k=2, mode="fused", max_new_tokens=6)
    result = runner.invoke(
        ask_app(),
        ["ask", "--interactive", "--index", str(index_dir), "--k", "2", "--max-new-tokens", "6"]
        + ["--device", "cpu", "--json"],
        input="Who founded Pelville?\nquit\nnot asked\n",
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    got = json.loads(lines[0])
    assert got["text"] == expected.text and got["mode"] == "fused" and got["sources"] == expected.sources
    assert [p["chunk_id"] for p in got["passages"]] == [p.chunk_id for p in expected.passages]
    assert set(got["timings"]) >= {"retrieve", "fuse", "prefill", "decode", "total"}
    assert got["softprompt_slots"] == expected.softprompt_slots > 0


def test_a_question_and_interactive_together_are_refused(index_dir):
    result = runner.invoke(ask_app(), ["ask", "q", "--interactive", "--index", str(index_dir)])
    assert result.exit_code == 2 and "give a question or --interactive, not both" in result.output


def test_version():
    from ragcompress import __version__
    from ragcompress.cli import app

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"ragcompress {__version__}\n"


def test_help_names_the_environment_variables():
    from ragcompress.cli import app

    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name in ("RAGCOMPRESS_DTYPE", "RAGCOMPRESS_HOME", "RAGCOMPRESS_CACHE", "RAGCOMPRESS_SMOLLM2_GGUF"):
        assert name in result.stdout


def test_quiet_model_loading_is_scoped():
    from transformers.utils import logging as hf_logging

    from ragcompress.commands import quiet_model_loading

    hf_logging.enable_progress_bar()
    before = hf_logging.get_verbosity()
    with quiet_model_loading():
        assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.get_verbosity() == hf_logging.ERROR
    assert hf_logging.is_progress_bar_enabled() and hf_logging.get_verbosity() == before


def test_compile_decode_reaches_the_retriever_and_a_wrong_value_is_refused(index_dir, retriever, monkeypatch):
    result = runner.invoke(ask_app(), ["ask", "q", "--index", str(index_dir), "--compile-decode", "yes"])
    assert result.exit_code == 2
    assert (
        "error: --compile-decode 'yes' is unknown; use one of off, static, dynamic, regional" in result.output
    )
    opened, options = [], []
    real = ask.open_retriever

    def open_retriever(*args, **kwargs):
        opened.append(real(*args, **kwargs))
        options.append(kwargs)
        return opened[-1]

    monkeypatch.setattr(ask, "open_retriever", open_retriever)
    expected = retriever.answer("Who founded Pelville?", k=2, max_new_tokens=6).text.strip()
    result = runner.invoke(
        ask_app(),
        ["ask", "Who founded Pelville?", "--index", str(index_dir), "--k", "2", "--max-new-tokens", "6"]
        + ["--device", "cpu", "--quiet", "--compile-decode", "dynamic"],
    )
    assert result.exit_code == 0, result.output
    assert [r.compile_decode for r in opened] == ["dynamic"]  # ignored on a CPU, where generate decodes
    assert options == [{"gpu_vectors": False}]  # one question: its k chunks' vectors, not whole shards
    assert result.stdout.strip() == expected


def test_sources_named_with_a_newline_stay_on_one_line(capsys):
    passage = SimpleNamespace(
        doc_id="notes\nday 2", score=0.5, rerank_score=None, char_start=0, char_end=4, text="some text"
    )
    result = SimpleNamespace(passages=[passage], sources=["notes\nday 2"], mode="fused")
    ask._print_sources(result, show_passages=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Sources (most relevant first): notes\\nday 2"
    assert lines[2] == "[1] notes\\nday 2 (chars 0–4, score 0.500)"
