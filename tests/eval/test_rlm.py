"""`ragcompress eval rlm`: retrieval-augmented LM through the product (index_corpus + Retriever.score).

The fast tests use the tiny random-weight compressor of the indexing tests with its tiny embedder: the
numbers are noise, so they check that the report's numbers agree with one another and with a direct
`Retriever.score` call. The e2e test uses the embedded default model and checks what retrieval is for:
text that the index holds lowers the perplexity of a held-out continuation, as text and as summary vectors.
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from ragcompress.cli import app
from ragcompress.eval.rlm import RLMResult, make_windows, read_texts
from ragcompress.retrieval import Retriever
from tests.indexing import pipeline_helpers as helpers

tiny_compressor_dir = helpers.tiny_compressor_dir
tiny_embedder_dir = helpers.tiny_embedder_dir
runner = CliRunner()


def invoke(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


def refused(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rlm")
    corpus = helpers.write_corpus(root / "corpus", ["rivers", "baking", "astronomy", "chess"])
    held_out = helpers.write_corpus(root / "heldout", ["bees", "trains"], seed=5)
    return corpus, held_out, root


@pytest.fixture(scope="module")
def run(data, tiny_compressor_dir, tiny_embedder_dir):
    corpus, held_out, root = data
    output = invoke(
        "eval", "rlm", corpus, held_out, "--index", root / "index", "--model", tiny_compressor_dir,
        "--embedder", tiny_embedder_dir, "--k", "2,1", "--modes", "fused,replug,text,fused-rerank",
        "--chunk-tokens", 64, "--overlap", 8, "--context-tokens", 16, "--target-tokens", 12,
        "--per-doc", 2, "--device", "cpu", "--out", root / "out",
    )  # fmt: skip
    return output, RLMResult.load(root / "out" / "rlm.json"), root


def test_report_rows_agree(run):
    output, result, root = run
    assert [(r.mode, r.k) for r in result.rows] == [("none", 0)] + [
        (m, k) for k in (1, 2) for m in ("fused", "replug", "text", "fused-rerank")
    ]
    none = result.row("none", 0)
    assert result.meta["windows"] == 4 and result.meta["documents"] == 2  # 2 held-out docs × 2 windows
    for row in result.rows:
        assert len(row.window_nll) == 4 and row.tokens >= 4 * 11
        assert row.nll == pytest.approx(sum(row.window_nll) / 4)
        assert row.ppl == pytest.approx(math.exp(row.nll))
        assert row.gain_nats == pytest.approx(none.nll - row.nll)
        assert row.ppl_reduction == pytest.approx(1 - row.ppl / none.ppl)
        assert row.examples_per_s > 0
    assert none.gain_nats == 0
    assert (root / "out" / "rlm.md").read_text().count("\n| ") == len(result.rows) + 1
    assert (root / "out" / "rlm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| fused-rerank | 2 |" in output


def test_rows_equal_direct_scores(run, data, tiny_compressor_dir, tiny_embedder_dir):
    """The report's fused k=2 NLL is Retriever.score's, window by window (smoothing ½ by default)."""
    _, result, root = run
    _, held_out, _ = data
    with Retriever(root / "index", device="cpu") as retriever:
        windows = make_windows(read_texts(held_out), retriever.tokenizer, 16, 12, per_doc=2)
        direct = [
            -retriever.score(w.target, w.context, mode="fused", k=2, smoothing=0.5).mean for w in windows
        ]
        none = [-retriever.score(w.target, w.context, mode="none").mean for w in windows]
    assert result.row("fused", 2).window_nll == pytest.approx(direct, abs=1e-5)
    assert result.row("none", 0).window_nll == pytest.approx(none, abs=1e-5)


def test_windows_are_consecutive_token_spans(data):
    from transformers import AutoTokenizer

    from ragcompress.defaults import base_model_dir

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir())
    _, held_out, _ = data
    texts = read_texts(held_out)
    windows = make_windows(texts, tokenizer, 10, 6, per_doc=3, limit=5)
    assert len(windows) == 5 and [w.doc_id for w in windows] == ["bees"] * 3 + ["trains"] * 2
    ids = tokenizer(texts["bees"], add_special_tokens=False)["input_ids"]
    assert windows[1].context == tokenizer.decode(ids[16:26])
    assert windows[1].target == tokenizer.decode(ids[26:32])


def test_refusals(data, tmp_path, tiny_compressor_dir):
    corpus, held_out, _ = data
    same = tmp_path / "same"
    same.mkdir()
    (same / "copy.txt").write_bytes(next(corpus.rglob("*.txt")).read_bytes())
    assert "must not be indexed" in refused("eval", "rlm", corpus, same, "--index", tmp_path / "i")
    assert "--modes: 'fuzed'" in refused(
        "eval", "rlm", corpus, held_out, "--index", tmp_path / "i", "--modes", "fuzed"
    )
    assert "--k '0,2'" in refused("eval", "rlm", corpus, held_out, "--index", tmp_path / "i", "--k", "0,2")
    assert "no such file" in refused("eval", "rlm", corpus, tmp_path / "nope", "--index", tmp_path / "i")
    assert not (tmp_path / "i").exists()  # nothing indexed for a refused run


@pytest.mark.e2e
def test_default_model_retrieval_lowers_perplexity(tmp_path):
    """Facts the index holds make a held-out text that restates them more likely, in every mode."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    facts = {
        "zarnok": "The Zarnok river rises in the Karth Mountains and flows east for 214 kilometres "
        "into Lake Ombra. Its largest tributary is the Vell, which joins it at the town of Pelville.",
        "pelville": "Pelville is a harbour town on the Grey Sea, founded in 1623 by the fisherman Tomas "
        "Varro. Its mayor is Idris Calloway, and its library is kept by Mirren Hale.",
        "saltwind": "The Saltwind was a cargo ship built in 1802 at the yards of Osterby. She sank off Cape "
        "Morrow in 1830 with a cargo of copper and tea.",
    }
    for name, text in facts.items():
        (corpus / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    held = tmp_path / "heldout"
    held.mkdir()
    (held / "notes.txt").write_text(
        "Travel notes on the Zarnok river, written on the road to the Grey Sea. "
        "The Zarnok river rises in the Karth Mountains and flows east for 214 kilometres into Lake Ombra, "
        "and its largest tributary, the Vell, joins it at the town of Pelville.\n",
        encoding="utf-8",
    )
    out = tmp_path / "rlm.json"
    invoke(
        "eval", "rlm", corpus, held, "--index", tmp_path / "index", "--k", "1", "--modes", "text,fused",
        "--chunk-tokens", 64, "--overlap", 0, "--context-tokens", 16, "--target-tokens", 32,
        "--device", "cpu", "--out", out,
    )  # fmt: skip
    result = json.loads(out.read_text())
    gains = {row["mode"]: row["gain_nats"] for row in result["rows"]}
    assert gains["text"] > 0.3, gains  # the passage as text: a large gain on a restated fact
    assert gains["fused"] > 0.02, gains  # its summary vectors keep part of it
