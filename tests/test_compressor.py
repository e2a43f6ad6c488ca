"""`Compressor`: loading from a spec, identity, device/dtype/pad id, `compress`, one error type; and the
query-time import boundary (loading a compressor never imports ragcompress.training)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tiny import tiny_model, tiny_tokenizer

from ragcompress import Compressor, ModelLoadError, compress, defaults
from ragcompress.compressor import BASE_COMPRESSOR_ID, pad_token_id, spec_for, spec_identity
from ragcompress.store import CompressorInfo
from tests.indexing.pipeline_helpers import TINY_KAPPA, save_tiny_compressor

TEXTS = ["Pelville is a small harbour town.", "The Zarnok river rises in the Karth Mountains and flows east."]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_compressor(tmp_path_factory.mktemp("models") / "tiny-compressor")


@pytest.fixture(scope="module")
def loaded(tiny_dir) -> Compressor:
    return Compressor.load(tiny_dir, device="cpu")


def test_load_records_the_identity_the_manifest_needs(loaded, tiny_dir):
    info = loaded.info
    assert isinstance(info, CompressorInfo)
    assert (info.id, info.weights_hash) == spec_identity(tiny_dir) == (str(tiny_dir), info.weights_hash)
    assert len(info.weights_hash) == 16 and info.weights_hash == defaults.files_hash(
        [tiny_dir / "model.safetensors"]
    )
    assert info.summary_length == loaded.summary_length == TINY_KAPPA
    assert info.hidden_size == loaded.hidden_size == loaded.model.config.hidden_size
    assert loaded.id == str(tiny_dir)


def test_device_dtype_and_pad_id_come_from_the_loaded_model(loaded):
    assert loaded.device == torch.device("cpu") and loaded.dtype == torch.float32  # as tests/conftest.py sets
    assert loaded.pad_id == loaded.tokenizer.pad_token_id
    assert not loaded.model.training


@pytest.mark.parametrize(
    ("device", "cpu_bf16", "expected"),
    [("cpu", True, torch.bfloat16), ("cpu", False, torch.float32), ("cuda", False, torch.bfloat16)],
)
def test_auto_dtype_is_bf16_where_the_hardware_runs_it(device, cpu_bf16, expected, monkeypatch):
    monkeypatch.delenv("RAGCOMPRESS_DTYPE")
    monkeypatch.setattr(defaults, "cpu_runs_bf16", lambda: cpu_bf16)
    assert defaults.pick_dtype(torch.device(device)) == expected
    monkeypatch.setenv("RAGCOMPRESS_DTYPE", "auto")
    assert defaults.pick_dtype(torch.device(device)) == expected
    assert defaults.pick_dtype(torch.device(device), torch.float16) == torch.float16  # the caller's wins


def test_auto_dtype_on_this_cpu_follows_its_instructions(tiny_dir, monkeypatch):
    monkeypatch.delenv("RAGCOMPRESS_DTYPE")
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    if flags:  # Linux: the kernel's flags and torch's probe agree
        assert defaults.cpu_runs_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)
    expected = torch.bfloat16 if defaults.cpu_runs_bf16() else torch.float32
    assert Compressor.load(tiny_dir, device="cpu").dtype == expected


@pytest.mark.parametrize(("named", "expected"), [("bfloat16", torch.bfloat16), ("float32", torch.float32)])
def test_ragcompress_dtype_sets_the_dtype_compressors_load_in(tiny_dir, named, expected, monkeypatch):
    monkeypatch.setenv("RAGCOMPRESS_DTYPE", named)
    assert Compressor.load(tiny_dir, device="cpu").dtype == expected
    assert Compressor.load(tiny_dir, device="cpu", dtype=torch.float16).dtype == torch.float16


def test_an_unknown_ragcompress_dtype_is_one_model_load_error(tiny_dir, monkeypatch):
    monkeypatch.setenv("RAGCOMPRESS_DTYPE", "fp64")
    with pytest.raises(ModelLoadError) as caught:
        Compressor.load(tiny_dir, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and "RAGCOMPRESS_DTYPE='fp64' is unknown; set it to auto, float32" in message


def test_compress_texts_and_ids_agree_with_the_modeling_core(loaded):
    vectors = loaded.compress(TEXTS)
    reference = compress(loaded.model, loaded.tokenizer, TEXTS)
    ids = [loaded.tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    from_ids = loaded.compress(ids, batch_size=1)
    assert [v.shape for v in vectors] == [(TINY_KAPPA, loaded.hidden_size)] * 2
    for a, b, c in zip(vectors, reference, from_ids):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)  # batch of one vs two: padding only
    assert not torch.allclose(vectors[0], vectors[1])


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("/nonexistent/compressor", "no such directory; pass a trained compressor directory"),
        ("./missing-dir", "no such directory"),
    ],
)
def test_a_spec_that_will_not_load_is_one_model_load_error(spec, why):
    with pytest.raises(ModelLoadError) as caught:
        Compressor.load(spec, device="cpu")
    message = str(caught.value)
    assert (
        "\n" not in message
        and message.startswith(f"cannot load the compressor {spec!r}: ")
        and why in message
    )
    assert isinstance(caught.value, ValueError)  # callers that caught ValueError still do


def test_a_folder_without_a_model_names_what_is_missing(tmp_path):
    with pytest.raises(ModelLoadError, match="holds neither an adapter .* nor a model"):
        Compressor.load(tmp_path, device="cpu")


def test_of_accepts_specs_compressors_and_the_older_tuples(loaded, tiny_dir):
    assert Compressor.of(loaded) is loaded
    bare = Compressor.of((loaded.model, loaded.tokenizer))
    assert bare.info is None and bare.id is None and bare.summary_length == TINY_KAPPA
    full = Compressor.of((loaded.model, loaded.tokenizer, loaded.info))
    assert full.info == loaded.info and full.device == loaded.device
    assert Compressor.of(str(tiny_dir), device="cpu").info == loaded.info
    with pytest.raises(TypeError, match="a compressor is None, a spec"):
        Compressor.of(42)


def test_a_wrapped_model_answers_from_its_autocompressor():
    model, tokenizer = tiny_model(summary_length=3).to(torch.bfloat16), tiny_tokenizer()
    plain = Compressor(model, tokenizer)
    wrapped = Compressor(SimpleNamespace(module=model), tokenizer)  # as DistributedDataParallel wraps
    for compressor in (plain, wrapped):
        assert compressor.core is model and compressor.summary_length == 3
        assert compressor.device.type == "cpu" and compressor.dtype == torch.bfloat16
        assert compressor.hidden_size == model.config.hidden_size
        assert compressor.info is None and compressor.pad_id == tokenizer.pad_token_id


def test_pad_id_falls_back_to_eos_then_zero():
    assert pad_token_id(SimpleNamespace(pad_token_id=5, eos_token_id=7)) == 5
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=7)) == 7
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0


def test_a_manifest_identity_maps_back_to_its_spec():
    def info(model_id):
        return CompressorInfo(model_id, "x", 50, 576)

    assert spec_for(info(defaults.DEFAULT_COMPRESSOR_ID)) == "default"
    assert spec_for(info(BASE_COMPRESSOR_ID)) == "base"
    assert spec_for(info(f"{defaults.BASE_ID}+adapter:run7")) is None  # only the adapter's name is kept
    assert spec_for(info("/models/mine")) == "/models/mine"
    assert spec_identity("default") == (defaults.DEFAULT_COMPRESSOR_ID, defaults.adapter_hash())


def test_query_time_imports_never_reach_training_or_tooling():
    code = (
        "import sys, ragcompress\n"
        "from ragcompress import Compressor, Embedder\n"
        "from ragcompress.retrieval import Retriever\n"
        "import ragcompress.defaults, ragcompress.loading\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('ragcompress.training', 'ragcompress.eval', "
        "'ragcompress_tools', 'ragcompress.data.corpus')) or 'synthqa' in m)\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    # the adapter readers live on the runtime side; training uses those same functions
    from ragcompress.training import lora

    assert lora.load_adapter is defaults.load_adapter and lora.adapter_meta is defaults.adapter_meta


def test_a_device_that_cannot_be_used_is_one_line():
    from ragcompress.defaults import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="^device 'bogus' is not a device name: use cpu, cuda or cuda:N$"):
        pick_device("bogus")
    if torch.cuda.is_available():
        beyond = torch.cuda.device_count()
        with pytest.raises(ValueError, match=rf"this machine has {beyond} CUDA GPU\(s\)"):
            pick_device(f"cuda:{beyond}")
    else:
        with pytest.raises(ValueError, match="torch sees no CUDA GPU on this machine; use cpu"):
            pick_device("cuda")
