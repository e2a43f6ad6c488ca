"""`TrainConfig`: every knob of `ragcompress train` in one dataclass (YAML/JSON file + CLI overrides)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ragcompress.eval.qa_metrics import ANSWER_KINDS
from ragcompress.modeling.autocompressor import DEFAULT_SUMMARY_LENGTH

# torch.compile of the fast training path (training/fastpath.py): what each layer or the whole decoder
# is compiled as, and the modes in which inductor replays the kernels as CUDA graph trees
COMPILE_SCOPES = ("layers", "decoder")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
GRAPH_MODES = ("reduce-overhead", "max-autotune")

DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    # --- model
    model: str = "smollm2"  # "smollm2" (the embedded base), a local path, or an HF id already on disk
    summary_length: int = DEFAULT_SUMMARY_LENGTH
    accumulate_summary: bool = True
    segment_gradient_checkpointing: bool = False
    attn_implementation: str = "sdpa"
    summary_readout: str = "none"  # "affine": per-dimension readout initialised from data (see modeling)
    init_adapter: str | None = None  # continue training this LoRA adapter (e.g. stage 2 from stage 1)

    # --- the paper's recipe: a sequence = substeps × segments × ~segment_length tokens
    segment_length: int = 512
    segments_per_substep: int = 2
    training_substeps: int = 2
    randomize_segments: bool = True
    min_segment_length: int | None = None  # default: segment_length // 2
    stop_gradient: bool = True  # detach the soft prompt between substeps (truncated BPTT)
    # share of sequences whose every substep is [x ; x] (second half repeats the first): a strong,
    # autoencoding-style signal that makes the summary vectors carry content early in training
    repeat_fraction: float = 0.0
    # weight of a distillation term: KL from the model reading the context as plain text (the teacher, no
    # gradients) to its predictions after summary vectors (`steps.lm_substeps`); 0 turns it off
    distill_weight: float = 0.0
    # the teacher: "frozen" (a copy of the model as training starts) or "self" (the model being trained,
    # read without gradients; what the shipped v9's stage 2 used, kept to reproduce it)
    distill_teacher: str = "frozen"

    # --- fine-tuning
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS

    # --- optimisation
    learning_rate: float = 2e-4
    summary_learning_rate: float | None = None  # default: learning_rate
    weight_decay: float = 0.0
    warmup_steps: int = 50
    schedule: str = "cosine"  # cosine | linear | constant
    min_lr_ratio: float = 0.1
    max_steps: int = 1000
    batch_size: int = 8  # sequences per device per micro-step
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    bf16: bool | None = None  # default: on for CUDA
    seed: int = 0
    # the fast path (`training.fastpath`): segments padded to multiples of segment_bucket tokens (static
    # shapes), causal attention without masks (no host-device syncs); default on for CUDA, and it falls
    # back with one logged reason for models it cannot reproduce (OPT, sliding windows, non-SDPA)
    fast_path: bool | None = None
    segment_bucket: int = 64
    # torch.compile of the decoder on the fast path (default on for CUDA; compile=false keeps the rest)
    compile: bool | None = None
    # or reduce-overhead, max-autotune, max-autotune-no-cudagraphs (CUDA graphs: for randomize_segments=false)
    compile_mode: str = "default"
    compile_scope: str = "layers"  # each decoder layer (one graph for all, quick to build) or "decoder"

    # --- data
    train_data: list[str] = field(default_factory=list)
    # empty: a hash split of train_data by document (file path under the data path + row id or line), the
    # same wherever the corpus lives
    valid_data: list[str] = field(default_factory=list)
    valid_fraction: float = 0.01
    text_field: str = "text"
    max_train_sequences: int | None = None
    max_valid_sequences: int = 64

    # --- stage 2: fused retrieval-QA mixed into the language-modelling steps
    qa_data: list[str] = field(default_factory=list)  # dirs in the docs/design.md eval format
    qa_batch_size: int = 8  # QA examples per device per micro-step
    qa_k: int = 5
    qa_passage_tokens: int = 256
    qa_loss_weight: float = 1.0
    qa_text_fraction: float = 0.0  # share of QA examples given as plain-text passages
    # sampling weight per answer kind (year, number, name, word; `eval.qa_metrics.answer_kind`), default 1:
    # {year: 3, number: 3} shows questions with numeric answers three times as often; 0 leaves a kind out
    qa_kind_weights: dict[str, float] = field(default_factory=dict)

    # --- output and logging
    output_dir: str = "runs/train"
    log_every: int = 10
    eval_every: int = 200
    save_every: int = 200
    resume: bool = True  # continue from output_dir's latest checkpoint when there is one
    max_seconds: float | None = None  # stop (after a checkpoint) when a wall-clock budget runs out
    # with max_seconds: the decay also runs over the wall-clock budget (progress = the larger of the
    # step and time fractions), so a run that the budget stops early still ends at min_lr_ratio
    time_schedule: bool = False
    # stop (after a checkpoint) before this step, the schedule left as max_steps / max_seconds define it:
    # reproduces a run that was cut short (v8 is step 380 of a 1,200 s schedule, v9 step 420 of 1,348 s)
    stop_at_step: int | None = None
    tensorboard: bool = True  # when the tensorboard package is installed
    progress: bool = True

    # ------------------------------------------------------------------ derived
    @property
    def substep_length(self) -> int:
        return self.segment_length * self.segments_per_substep

    @property
    def shortest_segment(self) -> int:
        """The shortest segment random breakpoints may cut (before the position budget raises it)."""
        return self.min_segment_length or self.segment_length // 2

    @property
    def sequence_length(self) -> int:
        return self.substep_length * self.training_substeps

    def validate(self) -> None:
        checks = [
            (self.segment_length >= 8, "segment_length must be ≥ 8"),
            (self.segments_per_substep >= 1, "segments_per_substep must be ≥ 1"),
            (self.training_substeps >= 1, "training_substeps must be ≥ 1"),
            (self.summary_length >= 1, "summary_length must be ≥ 1"),
            (self.max_steps >= 1, "max_steps must be ≥ 1"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "batch_size and grad_accum must be ≥ 1"),
            (
                self.schedule in ("cosine", "linear", "constant"),
                "schedule must be cosine, linear or constant",
            ),
            (0 <= self.qa_text_fraction <= 1, "qa_text_fraction must be in [0, 1]"),
            (0 <= self.repeat_fraction <= 1, "repeat_fraction must be in [0, 1]"),
            (self.distill_weight >= 0, "distill_weight must be ≥ 0 (0 turns distillation off)"),
            (self.distill_teacher in ("frozen", "self"), "distill_teacher must be frozen or self"),
            (self.segment_bucket >= 0, "segment_bucket must be ≥ 0 (0: no padding)"),
            (
                self.compile_scope in COMPILE_SCOPES,
                f"compile_scope must be one of {', '.join(COMPILE_SCOPES)}",
            ),
            (self.compile_mode in COMPILE_MODES, f"compile_mode must be one of {', '.join(COMPILE_MODES)}"),
            (bool(self.train_data) or bool(self.qa_data), "train_data is empty: give at least one data path"),
            (
                not self.time_schedule or self.max_seconds is not None,
                "time_schedule=true needs max_seconds (the budget the schedule runs over)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"config: {message}")
        if not isinstance(self.qa_kind_weights, dict):
            raise ValueError("config: qa_kind_weights must map answer kinds to weights, e.g. {year: 3}")
        for kind, weight in self.qa_kind_weights.items():
            if kind not in ANSWER_KINDS:
                raise ValueError(
                    f"config: qa_kind_weights has {kind!r}; answer kinds are {list(ANSWER_KINDS)}"
                )
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(f"config: qa_kind_weights[{kind}] must be a number ≥ 0, got {weight!r}")
        if self.min_segment_length is not None and not 1 <= self.min_segment_length <= self.segment_length:
            raise ValueError("config: min_segment_length must be between 1 and segment_length")

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["lora_targets"] = list(self.lora_targets)
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown}; valid keys are {sorted(known)}")
        config = cls(**{k: _coerce(cls, k, v) for k, v in data.items()})
        return config

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config: {path} does not exist")
        text = path.read_text()
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ValueError(
                f"config: {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise ValueError(f"config: {path} must hold a mapping of keys to values")
        return cls.from_dict(data)

    def override(self, assignments: list[str]) -> TrainConfig:
        """Apply ``key=value`` strings (values parsed as YAML: numbers, bools, lists)."""
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ValueError(f"override {item!r} must look like key=value")
            key, raw = item.split("=", 1)
            data[key.strip()] = yaml.safe_load(raw)
        return TrainConfig.from_dict(data)


def _coerce(cls, name: str, value):
    """Turn YAML/JSON values into the field's type (lists for list fields, tuples for tuple fields)."""
    hint = typing.get_type_hints(cls)[name]
    origin = typing.get_origin(hint)
    if origin in (list, tuple) and isinstance(value, str):
        value = [value]
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    floats = hint is float or (origin in (typing.Union, types.UnionType) and float in typing.get_args(hint))
    if floats and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML 1.1 reads "8e-4" (no dot) as a string
        except ValueError:
            raise ValueError(f"config: {name}={value!r} is not a number") from None
    return value
