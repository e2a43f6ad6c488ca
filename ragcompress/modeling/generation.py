"""How an AutoCompressor takes part in ``generate``.

The soft prompt goes in once, with the prompt, and from then on lives in the KV cache: the cache holds
``soft-prompt slots + text tokens`` while ``generate`` only counts text tokens. Two places in
``generate`` assume the two are equal, and both matter for a static cache (the one ``torch.compile`` and
CUDA graphs need):

* it sizes a static cache for ``prompt + new tokens``, so the soft prompt's slots overflow it (on GPU a
  device-side ``index_copy_`` assert that takes the CUDA context down);
* for a compileable cache it turns the 2-D text mask into the decoder's 4-D mask, but the AutoCompressor
  builds the decoder's mask itself, from a 2-D mask over text, so it must get that one.
"""

from __future__ import annotations

from transformers import StaticCache
from transformers.generation.configuration_utils import ALL_STATIC_CACHE_IMPLEMENTATIONS

from ragcompress.modeling.cache_api import cache_in, generate_cache_kwarg


def _static_cache_for(model, args, kwargs, slots: int):
    """A static cache sized for the soft prompt too, or None when ``generate`` would not use one."""
    config = kwargs.get("generation_config") or model.generation_config
    implementation = kwargs.get("cache_implementation", config.cache_implementation)
    if implementation not in ALL_STATIC_CACHE_IMPLEMENTATIONS or cache_in(kwargs) is not None:
        return None
    prompt = args[0] if args else kwargs.get("input_ids", kwargs.get("inputs"))
    if prompt is None:
        prompt = kwargs["inputs_embeds"]
    new_tokens = kwargs.get("max_new_tokens", config.max_new_tokens)
    if new_tokens is not None:
        text = prompt.shape[1] + new_tokens
    else:
        text = kwargs.get("max_length", config.max_length)
    # a larger max_cache_len (transformers >= 5.13) asks for one cache size across calls, against recompiles
    floor = kwargs.get("max_cache_len", getattr(config, "max_cache_len", None)) or 0
    return StaticCache(
        config=model.config, max_cache_len=max(slots + text, floor), offloading="offloaded" in implementation
    )


class SoftPromptGenerationMixin:
    """``generate`` and ``prepare_inputs_for_generation`` for a model that reads a soft prompt."""

    def generate(self, *args, softprompt=None, **kwargs):
        slots = 0 if softprompt is None else softprompt.shape[-2]
        cache = _static_cache_for(self, args, kwargs, slots) if slots else None
        if cache is not None:
            # generate refuses a cache together with cache_implementation: the cache says it all
            kwargs = {**kwargs, "cache_implementation": None, generate_cache_kwarg(): cache}
            if hasattr(self.generation_config, "max_cache_len"):  # spent on the cache above
                kwargs["max_cache_len"] = None
        return super().generate(*args, softprompt=softprompt, **kwargs)

    def prepare_inputs_for_generation(self, input_ids, softprompt=None, attention_mask=None, **kwargs):
        # The cache arrives as past_key_values (transformers < 5.24) or cache (>= 5.24): pass it on under
        # the name it came in and read it back from the result, whichever that is. The mask stays out of
        # super(): it would come back 4-D for a static cache (see the module docstring).
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        inputs.pop("attention_mask", None)  # newer releases make a 4-D one even from no mask
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        cache = cache_in(inputs)
        # The soft prompt goes in once, with the prompt; afterwards it lives in the cache.
        if cache is None or cache.get_seq_length() == 0:
            inputs["softprompt"] = softprompt
        inputs.pop("position_ids", None)
        return inputs
