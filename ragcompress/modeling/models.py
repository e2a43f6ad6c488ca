"""Concrete AutoCompressor classes and the loader that picks one from a config.

* `LlamaAutoCompressorModel` and `OPTAutoCompressorModel` (alias `AutoCompressorModel`) carry the class
  names of the official release, so its checkpoints load unchanged: stock HF parameter names plus
  ``embed_summary.weight``.
* `autocompressor_class(base_cls)` turns any other ``*ForCausalLM`` whose decoder accepts
  ``inputs_embeds`` and ``position_ids`` (Qwen2/3, Mistral, Gemma3, SmolLM2 = Llama, ...) into one.
* `AutoCompressor.from_pretrained(path)` dispatches on the config. Given a plain base model it adds
  summary embeddings initialised from the EOS embedding *after* the weights load; given an
  AutoCompressor checkpoint (its config has ``summary_length``) that lacks them, it fails loudly.
"""

from __future__ import annotations

import torch
from transformers import (
    MODEL_FOR_CAUSAL_LM_MAPPING,
    AutoConfig,
    LlamaForCausalLM,
    OPTForCausalLM,
    PreTrainedModel,
)

from ragcompress.modeling.autocompressor import AutoCompressorMixin, set_autocompressor_defaults
from ragcompress.modeling.base_model import loading_base_model

SUMMARY_KEY = "embed_summary.weight"
_CONFIG_KWARGS = ("gguf_file", "revision", "trust_remote_code", "local_files_only", "cache_dir", "token")


class MissingSummaryEmbeddingsError(ValueError):
    """An AutoCompressor checkpoint without ``embed_summary.weight``."""


class _LoadingMixin(AutoCompressorMixin):
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path,
        *model_args,
        summary_length: int | None = None,
        accumulate_summary: bool | None = None,
        segment_gradient_checkpointing: bool | None = None,
        summary_readout: str | None = None,
        **kwargs,
    ):
        """Load an AutoCompressor checkpoint, or turn a base causal LM into one.

        ``summary_length`` etc. override the config; changing the summary length of an existing
        AutoCompressor checkpoint is refused (its ``embed_summary`` has a fixed number of rows).
        """
        config = kwargs.pop("config", None)
        if config is None:
            config_kwargs = {k: kwargs[k] for k in _CONFIG_KWARGS if k in kwargs}
            config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **config_kwargs)
        is_checkpoint = getattr(config, "summary_length", None) is not None
        if is_checkpoint and summary_length is not None and summary_length != config.summary_length:
            raise ValueError(
                f"{pretrained_model_name_or_path} was trained with summary_length={config.summary_length}; "
                f"it cannot be loaded with summary_length={summary_length}"
            )
        set_autocompressor_defaults(config, summary_length)
        if accumulate_summary is not None:
            config.accumulate_summary = accumulate_summary
        if segment_gradient_checkpointing is not None:
            config.segment_gradient_checkpointing = segment_gradient_checkpointing
        if summary_readout is not None:
            if is_checkpoint and getattr(config, "summary_readout", "none") != summary_readout:
                raise ValueError(
                    f"{pretrained_model_name_or_path} was saved with summary_readout="
                    f"{getattr(config, 'summary_readout', 'none')!r}; it cannot be loaded with {summary_readout!r}"
                )
            config.summary_readout = summary_readout
            set_autocompressor_defaults(config)
        want_info = kwargs.pop("output_loading_info", False)
        # A base model has no summary embeddings by definition: while it loads, the model declares them
        # expected-missing (transformers' _keys_to_ignore_on_load_missing), so nothing reports them.
        with loading_base_model(not is_checkpoint):
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, config=config, output_loading_info=True, **kwargs
            )
        if not is_checkpoint:  # new parameters: summary embeddings from EOS, the readout at the identity
            model.init_summary_from_token()
            if getattr(config, "summary_readout", "none") != "none":
                with torch.no_grad():
                    model.summary_readout.weight.fill_(1.0)
                    model.summary_readout.bias.zero_()
        missing = info.get("missing_keys", set())
        readout_missing = [k for k in missing if k.startswith("summary_readout.")]
        if readout_missing and getattr(config, "summary_readout", "none") != "none":
            raise MissingSummaryEmbeddingsError(
                f"{pretrained_model_name_or_path}: config has summary_readout={config.summary_readout!r} but the "
                f"weights lack {readout_missing[0]}; the checkpoint is incomplete"
            )
        if SUMMARY_KEY in missing:
            raise MissingSummaryEmbeddingsError(
                f"{pretrained_model_name_or_path} is an AutoCompressor checkpoint (its config has "
                f"summary_length={config.summary_length}) but its weights have no {SUMMARY_KEY}; "
                "the checkpoint is incomplete: re-save it with the summary embeddings"
            )
        model.config.architectures = [type(model).__name__]
        return (model, info) if want_info else model


class LlamaAutoCompressorModel(_LoadingMixin, LlamaForCausalLM):
    """Llama-family AutoCompressor (official: princeton-nlp/AutoCompressor-Llama-2-7b-6k)."""


def _zero_padding_row(grad: torch.Tensor) -> torch.Tensor:
    grad = grad.clone()
    grad[1] = 0
    return grad


class OPTAutoCompressorModel(_LoadingMixin, OPTForCausalLM):
    """OPT AutoCompressor (official: princeton-nlp/AutoCompressor-2.7b-6k).

    Soft-prompt and summary slots use learned-position row 1, which stays frozen in training as in the
    official models: a gradient hook zeroes its gradient (the trainer also keeps it out of weight decay).
    """

    position_style = "opt"

    def _before_training_forward(self) -> None:
        weight = self.model.decoder.embed_positions.weight
        if weight.requires_grad and not getattr(weight, "_ragcompress_row1_frozen", False):
            weight.register_hook(_zero_padding_row)
            weight._ragcompress_row1_frozen = True


AutoCompressorModel = OPTAutoCompressorModel

_NAMED = {LlamaForCausalLM: LlamaAutoCompressorModel, OPTForCausalLM: OPTAutoCompressorModel}
_GENERATED: dict[type, type] = {}


def autocompressor_class(base_cls: type[PreTrainedModel]) -> type[PreTrainedModel]:
    """The AutoCompressor class for a ``*ForCausalLM`` class (made once, then reused)."""
    if issubclass(base_cls, AutoCompressorMixin):
        return base_cls
    if base_cls in _NAMED:
        return _NAMED[base_cls]
    if base_cls not in _GENERATED:
        name = base_cls.__name__.removesuffix("ForCausalLM") + "AutoCompressorModel"
        _GENERATED[base_cls] = type(name, (_LoadingMixin, base_cls), {"__module__": __name__})
    return _GENERATED[base_cls]


def autocompressor_class_for_config(config) -> type[PreTrainedModel]:
    base = MODEL_FOR_CAUSAL_LM_MAPPING.get(type(config), None)
    if base is None:
        raise ValueError(
            f"model_type {config.model_type!r} has no causal-LM class in transformers; an AutoCompressor needs a "
            "decoder that accepts inputs_embeds and position_ids"
        )
    return autocompressor_class(base)


class AutoCompressor:
    """Entry point: ``AutoCompressor.from_pretrained(path_or_id)`` picks the class from the config."""

    def __init__(self):
        raise TypeError("use AutoCompressor.from_pretrained(...) or AutoCompressor.from_config(...)")

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs) -> PreTrainedModel:
        config = kwargs.get("config")
        if config is None:
            config_kwargs = {k: kwargs[k] for k in _CONFIG_KWARGS if k in kwargs}
            config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **config_kwargs)
            kwargs["config"] = config
        cls = autocompressor_class_for_config(config)
        return cls.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    @staticmethod
    def from_config(config, summary_length: int | None = None, **kwargs) -> PreTrainedModel:
        """A randomly initialised AutoCompressor (tests, training from scratch)."""
        set_autocompressor_defaults(config, summary_length)
        cls = autocompressor_class_for_config(config)
        model = cls._from_config(config, **kwargs)
        model.config.architectures = [cls.__name__]
        return model


def unwrap(model):
    """The AutoCompressor inside a peft wrapper (or the model itself)."""
    inner = model
    while not isinstance(inner, AutoCompressorMixin):
        if hasattr(inner, "get_base_model"):
            inner = inner.get_base_model()
        elif hasattr(inner, "module"):  # DistributedDataParallel
            inner = inner.module
        else:
            raise TypeError(
                f"{type(model).__name__} is not an AutoCompressor (no embed_summary / segment loop)"
            )
    return inner
