"""Checkpoints that resume exactly: trainable weights (safetensors), optimizer state, step, config.

Layout: ``<output_dir>/checkpoints/step-0000123/{weights.safetensors, optimizer.pt, state.json,
config.json}`` and ``checkpoints/latest`` naming the newest. A checkpoint is written to a temporary
folder and renamed into place, so a crash never leaves a half-written one that ``latest`` points to.
The optimizer state is a plain tensor dict, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(
    output_dir: Path, step: int, model, optimizer, state: dict, config, keep: int = 2
) -> Path:
    root = Path(output_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    staging = root / f".{name}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    save_file(trainable_state(model), str(staging / "weights.safetensors"))
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    (staging / "state.json").write_text(json.dumps({"step": step, **state}, indent=2))
    config.save(staging / "config.json")
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    pointer = root / ".latest.tmp"
    pointer.write_text(name)
    os.replace(pointer, root / "latest")
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(output_dir: Path) -> Path | None:
    pointer = Path(output_dir) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if (path / "state.json").is_file() else None


def load_checkpoint(path: Path, model, optimizer) -> dict:
    """Restore weights and optimizer in place; returns the saved trainer state (``step`` etc.)."""
    weights = load_file(str(path / "weights.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in weights]
    if missing:
        raise ValueError(
            f"{path}: checkpoint lacks {len(missing)} trainable weights (e.g. {missing[0]}); "
            "it was written for another model or LoRA setting"
        )
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu"))
    return json.loads((path / "state.json").read_text())
