"""LoRA through peft, with the summary embeddings always trained and saved beside the adapter.

An adapter directory is peft's own format (``adapter_config.json`` + ``adapter_model.safetensors``) plus
``ragcompress.json`` (summary length, base model, training facts), so ``PeftModel.from_pretrained`` also
reads it. Weights are stored in fp16 by default: the shipped default adapter must stay ≤ 16 MiB.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

# reading and attaching adapters is runtime code (query-time loading must not import training)
from ragcompress.defaults import ADAPTER_META, adapter_meta, load_adapter

__all__ = [
    "ADAPTER_META",
    "adapter_meta",
    "apply_lora",
    "lineage",
    "load_adapter",
    "load_adapter_weights",
    "save_adapter",
    "training_meta",
    "with_parent",
]


def apply_lora(model, r: int = 16, alpha: int = 32, dropout: float = 0.0, targets=None):
    """Wrap an AutoCompressor in a peft LoRA model; ``embed_summary`` is trained in full."""
    from peft import LoraConfig, get_peft_model

    from ragcompress.training.config import DEFAULT_LORA_TARGETS

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets or DEFAULT_LORA_TARGETS),
        modules_to_save=["embed_summary"]
        + (["summary_readout"] if hasattr(model, "summary_readout") else []),
        bias="none",
    )
    return get_peft_model(model, config)


def save_adapter(peft_model, out_dir: str | Path, meta: dict | None = None, dtype=torch.float16) -> Path:
    """Write the adapter (LoRA + summary embeddings) to ``out_dir``; returns the directory."""
    from peft import get_peft_model_state_dict

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(peft_model)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    save_file(state, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    peft_model.peft_config["default"].save_pretrained(str(out_dir))
    config_path = out_dir / "adapter_config.json"  # peft writes its module set in hash order: sort it
    config = json.loads(config_path.read_text())
    for key in ("target_modules", "modules_to_save"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    core = peft_model.get_base_model()
    info = {
        "summary_length": core.config.summary_length,
        "accumulate_summary": core.config.accumulate_summary,
        "summary_readout": getattr(core.config, "summary_readout", "none"),
    }
    info.update(meta or {})
    (out_dir / ADAPTER_META).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out_dir


RECIPE_KEYS = (
    "qa_kind_weights",
    "learning_rate",
    "summary_learning_rate",
    "max_steps",
    "max_seconds",
    "seed",
    "repeat_fraction",
)


def lineage(adapter_dir: str | Path | None) -> dict | None:
    """What an adapter was trained from, for the metadata of one that continues it (``init_adapter``).

    The parent's own record without its full config: steps, the recipe's key settings and, nested, its
    own parent, so a shipped adapter says every run it went through. ``None`` without a parent.
    """
    if not adapter_dir:
        return None
    meta = adapter_meta(adapter_dir)
    config = meta.get("config", {})
    kept = ("steps", "finalized_from", "total_steps", "data_parallel")
    record = {key: meta[key] for key in kept if key in meta}
    record["recipe"] = {
        "stage": "qa+lm" if config.get("qa_data") else "lm",
        **{key: config[key] for key in RECIPE_KEYS if key in config},
    }
    if meta.get("parent"):
        record["parent"] = meta["parent"]
    return record


def training_meta(cfg, steps: int, **extra) -> dict:
    """``ragcompress.json`` facts of a trained adapter: its config, steps and lineage (see ``lineage``).

    ``data_parallel=N`` (passed by a run over N ranks) records that every step read N times the config's
    batch sizes.
    """
    meta = {"base_model": cfg.model, "steps": steps, "config": cfg.to_dict(), **extra}
    return with_parent(meta, cfg.init_adapter)


def with_parent(meta: dict, parent_dir: str | Path | None) -> dict:
    """``meta`` with the lineage of the adapter in ``parent_dir`` (if any) and the steps of all runs."""
    parent = lineage(parent_dir)
    if parent is not None:
        meta["parent"] = parent
        meta["total_steps"] = meta["steps"] + parent.get("total_steps", parent.get("steps", 0))
    return meta


def load_adapter_weights(peft_model, adapter_dir: str | Path) -> list[str]:
    """Copy a saved adapter's weights into an already wrapped model (same LoRA shape).

    Trainable modules the saved adapter lacks (e.g. a summary readout added since) keep their current
    values; their keys are returned.
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    saved = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    current = get_peft_model_state_dict(peft_model)
    unexpected = sorted(set(saved) - set(current))
    if unexpected:
        raise ValueError(f"{adapter_dir} does not match the model's LoRA layout (e.g. {unexpected[0]})")
    kept = sorted(set(current) - set(saved))
    set_peft_model_state_dict(peft_model, {**{k: current[k] for k in kept}, **saved})
    return kept
