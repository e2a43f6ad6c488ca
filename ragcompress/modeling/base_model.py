"""What an AutoCompressor takes over from its base model, through public transformers APIs only.

* The logits head: ``lm_head`` and then whatever transform the base model's forward applies, known by
  the config key that turns it on (`LOGIT_TRANSFORMS`). The segment loop computes logits itself (text
  tokens only), so a transform it does not know would make it silently wrong: such configs are refused.
* Loading a plain base model: the AutoCompressor's own parameters are missing from its checkpoint by
  definition. While `loading_base_model` is active the model declares them expected-missing through
  transformers' documented ``_keys_to_ignore_on_load_missing`` hook, so nothing reports them and
  transformers' logging is left alone.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

# How base models turn the last hidden state into logits after ``lm_head``, by the config key that turns
# it on (None: off). `AutoCompressorMixin._logits` applies these; a config with any other key about
# logits is refused, since its model would be silently wrong here.
LOGIT_TRANSFORMS = {
    "final_logit_softcapping": lambda logits, cap: torch.tanh(logits / cap) * cap,  # Gemma 2/3
    "logit_scale": lambda logits, scale: logits * scale,  # Cohere
    "logits_scaling": lambda logits, scale: logits / scale,  # Granite
}
# config keys about logits that leave the head alone (attention soft-capping, MoE router outputs)
_HEAD_NEUTRAL_KEYS = ("attn_logit_softcapping", "output_router_logits", "router_logits", "return_logits")

# While set, a model being built is a plain base model about to become an AutoCompressor: its new
# parameters are expected to be missing from the checkpoint (see `loading_base_model`).
_LOADING_BASE_MODEL = contextvars.ContextVar("ragcompress_loading_base_model", default=False)
NEW_PARAMETERS = (r"^embed_summary\.", r"^summary_readout\.")


@contextlib.contextmanager
def loading_base_model(active: bool = True):
    """Models built inside declare the AutoCompressor's own parameters expected-missing to transformers."""
    token = _LOADING_BASE_MODEL.set(active)
    try:
        yield
    finally:
        _LOADING_BASE_MODEL.reset(token)


def check_logit_keys(config) -> None:
    for key, value in vars(config).items():
        if "logit" not in key or key in LOGIT_TRANSFORMS or key.startswith(_HEAD_NEUTRAL_KEYS):
            continue
        if value not in (None, False, 1, 1.0):
            raise ValueError(
                f"{type(config).__name__} sets {key}={value!r}, a logit transform the AutoCompressor does not "
                f"apply (it knows {sorted(LOGIT_TRANSFORMS)}); this model is not supported"
            )


def is_loading_base_model() -> bool:
    return _LOADING_BASE_MODEL.get()
