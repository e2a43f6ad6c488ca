"""The name of the KV cache in transformers 5: ``past_key_values`` up to 5.23, ``cache`` from 5.24.

transformers 5.24 renamed the cache everywhere at once: the keyword ``generate`` hands to
``prepare_inputs_for_generation`` and to ``forward``, the keyword every decoder's ``forward`` declares,
and the field of the model outputs. The old name stays as a deprecated alias (a ``FutureWarning`` per
call until 5.40 removes it). An override that only knows one name breaks silently on the other side of
the rename: it sees no cache at all and treats every decoding step as a fresh prompt. So the
AutoCompressor accepts both names from its callers and speaks to transformers in the name that the
installed version declares, found by looking at signatures and output fields rather than at version
numbers (a model whose code lags behind the rename still gets the name it declares).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

NEW, OLD = "cache", "past_key_values"


def _cache_kwarg(function) -> str:
    # inspect follows functools.wraps, so the decorators transformers puts on forward do not hide it
    return NEW if NEW in inspect.signature(function).parameters else OLD


@functools.cache
def forward_cache_kwarg(module_cls: type) -> str:
    """The keyword ``module_cls.forward`` takes its cache under."""
    return _cache_kwarg(module_cls.forward)


@functools.cache
def generate_cache_kwarg() -> str:
    """The keyword ``generate`` passes the cache under (to ``prepare_inputs_for_generation``)."""
    from transformers.generation.utils import GenerationMixin

    return _cache_kwarg(GenerationMixin.prepare_inputs_for_generation)


@functools.cache
def output_cache_field(output_cls: type) -> str:
    """The field an output dataclass keeps the cache in."""
    return NEW if NEW in {f.name for f in dataclasses.fields(output_cls)} else OLD


def output_cache(output):
    """The cache in a model output, read under its declared field (the alias would log a warning)."""
    return getattr(output, output_cache_field(type(output)))


def one_cache(cache, past_key_values):
    """The cache a caller passed under either name; both at once is ambiguous unless it is one object."""
    if cache is not None and past_key_values is not None and cache is not past_key_values:
        raise ValueError("pass the cache as cache= or as past_key_values=, not two different caches")
    return cache if cache is not None else past_key_values


def cache_in(mapping):
    """The cache in a dict of model inputs (``prepare_inputs_for_generation``'s result), or None."""
    for name in (NEW, OLD):
        if mapping.get(name) is not None:
            return mapping[name]
    return None


# How many leading slots of a cache hold a soft prompt. A mask over text tells this (the cached slots it
# does not cover), but since transformers 5.18 ``generate`` drops an all-ones mask and passes none; the
# count is then read from the cache itself, where the forward pass that filled it left it.
_SOFTPROMPT_SLOTS = "_ragcompress_softprompt_slots"


def remember_softprompt_slots(cache, slots: int) -> None:
    setattr(cache, _SOFTPROMPT_SLOTS, int(slots))


def remembered_softprompt_slots(cache) -> int:
    return getattr(cache, _SOFTPROMPT_SLOTS, 0)


def filled_slots(cache, text_cache_position) -> int:
    """How many slots ``cache`` holds, soft prompt included.

    ``generate`` before transformers 5.4 passes ``cache_position``, counted over text tokens, and its static
    cache finds its length by looking for non-zero keys in batch row 0, which undercounts a left-padded
    row whose padding embeds to zeros. There the count is generate's position plus the soft prompt.
    """
    if cache is None:
        return 0
    if text_cache_position is None:
        # int(): some releases (5.4 among them) return a static cache's length as a tensor
        return int(cache.get_seq_length())
    text = int(text_cache_position[0])
    return text + remembered_softprompt_slots(cache) if text else 0


@functools.cache
def takes_cache_position(module_cls: type) -> bool:
    """Whether the decoder numbers cache slots from a ``cache_position`` argument (transformers < 5.4)."""
    return "cache_position" in inspect.signature(module_cls.forward).parameters
