"""Storage dtypes for summary vectors: fp16, bf16, int8 and fp8 (e4m3) with per-vector scales.

A "vector" is one row of a chunk's ``[κ·steps, hidden]`` summary tensor. int8 and fp8 keep one scale per
row, so a single outlier vector does not cost the precision of its neighbours.

Error bounds (``x`` one input element, ``s`` its row's stored scale):
- fp16/bf16: exact for inputs already in that dtype; otherwise one rounding of the target dtype.
- int8: ``s = absmax/127`` and ``|x - x̂| <= s/2`` (round to nearest).
- fp8:  ``s = absmax/448`` and ``|x - x̂| <= |x|/16 + s·2^-10`` (3 mantissa bits: half an ulp is 2^-4
  relative; below the normal range the spacing is ``s·2^-9``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The one list of vector storage dtypes (the manifest, the checker and the CLIs import it from here):
# name -> (the torch dtype the values are held in, that dtype's name in a safetensors header).
_STORAGE: dict[str, tuple[torch.dtype, str]] = {
    "fp16": (torch.float16, "F16"),
    "bf16": (torch.bfloat16, "BF16"),
    "int8": (torch.int8, "I8"),
    "fp8": (torch.float8_e4m3fn, "F8_E4M3"),
}
VECTOR_DTYPES: tuple[str, ...] = tuple(_STORAGE)
STORAGE_DTYPES: dict[str, torch.dtype] = {name: dtype for name, (dtype, _) in _STORAGE.items()}
SAFETENSORS_DTYPES: dict[str, str] = {name: header for name, (_, header) in _STORAGE.items()}
SCALED = ("int8", "fp8")  # the dtypes stored with one scale per vector
SCALE_TORCH_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16}
SCALE_DTYPES: tuple[str, ...] = tuple(SCALE_TORCH_DTYPES)
INT8_MAX = 127.0
FP8_MAX = 448.0  # largest finite float8_e4m3fn


@dataclass
class QuantizedVectors:
    """Vectors in their storage dtype, plus one scale per row for the scaled dtypes (else None)."""

    values: torch.Tensor
    scales: torch.Tensor | None
    dtype: str

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def nbytes(self) -> int:
        scale_bytes = 0 if self.scales is None else self.scales.numel() * self.scales.element_size()
        return self.values.numel() * self.values.element_size() + scale_bytes


def quantize(vectors: torch.Tensor, dtype: str, scale_dtype: str = "fp32") -> QuantizedVectors:
    """Convert ``[n, hidden]`` float vectors to the storage ``dtype`` (see the module doc for bounds)."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"vector dtype {dtype!r} not one of {tuple(STORAGE_DTYPES)}")
    if scale_dtype not in SCALE_TORCH_DTYPES:
        raise ValueError(f"scale dtype {scale_dtype!r} not one of {tuple(SCALE_TORCH_DTYPES)}")
    if vectors.dim() != 2:
        raise ValueError(f"expected [n, hidden] vectors, got shape {tuple(vectors.shape)}")
    if not vectors.is_floating_point():
        raise ValueError(f"expected floating-point vectors, got {vectors.dtype}")
    values = vectors.detach().to("cpu", torch.float32)
    if not torch.isfinite(values).all():
        raise ValueError("vectors contain NaN or infinity; refusing to store them")
    if dtype in ("fp16", "bf16"):
        stored = values.to(STORAGE_DTYPES[dtype])
        if not torch.isfinite(stored).all():
            raise ValueError(f"vectors overflow {dtype}; use bf16, int8 or fp8 for values this large")
        return QuantizedVectors(stored.contiguous(), None, dtype)

    limit = INT8_MAX if dtype == "int8" else FP8_MAX
    absmax = values.abs().amax(dim=1)
    # Quantise against the scale as it will be stored (after rounding to the scale dtype), so that the
    # rounding of the scale never adds error on top of the bound.
    scales = (absmax / limit).to(SCALE_TORCH_DTYPES[scale_dtype])
    if not torch.isfinite(scales).all():
        raise ValueError(f"vector magnitudes overflow {scale_dtype} scales; use fp32 scales")
    # A zero vector (or one whose scale underflows) gets scale 1: its values then quantise to ~0.
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    scaled = values / scales.to(torch.float32)[:, None]
    if dtype == "int8":
        stored = scaled.round().clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    else:
        # Clamp first: float8_e4m3fn has no infinity, out-of-range casts would become NaN.
        stored = scaled.clamp_(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return QuantizedVectors(stored.contiguous(), scales.contiguous(), dtype)


def dequantize(
    quantized: QuantizedVectors, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Back to floating point ``[n, hidden]`` in ``dtype`` on ``device``."""
    values = quantized.values
    if device is not None:
        values = values.to(device)
    if quantized.scales is None:
        return values.to(dtype)
    scales = quantized.scales.to(values.device, torch.float32)
    return (values.to(torch.float32) * scales[:, None]).to(dtype)


def dequantize_many(
    parts: list[QuantizedVectors],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> list[torch.Tensor]:
    """`dequantize` of each part, done at once: one copy to ``device`` (from pinned memory for a GPU,
    so it is one fast transfer instead of one small blocking copy per chunk) and one conversion.

    The results are consecutive views of one tensor. Parts of different storage dtypes or widths are
    dequantized one by one.
    """
    if not parts:
        return []
    first = parts[0]
    if any(
        p.dtype != first.dtype
        or (p.scales is None) != (first.scales is None)
        or p.values.shape[1:] != first.values.shape[1:]
        for p in parts
    ):
        return [dequantize(p, dtype, device) for p in parts]
    values = _gather([p.values for p in parts], device)
    scales = None if first.scales is None else _gather([p.scales for p in parts], device)
    whole = dequantize(QuantizedVectors(values, scales, first.dtype), dtype)
    return list(whole.split([len(p) for p in parts]))


def _gather(tensors: list[torch.Tensor], device: torch.device | str | None) -> torch.Tensor:
    """``torch.cat(tensors)`` on ``device``; for a GPU staged in pinned memory and copied asynchronously
    (the caching host allocator keeps the staging buffer until the copy has run)."""
    device = tensors[0].device if device is None else torch.device(device)
    if device.type != "cuda":
        return torch.cat(tensors).to(device)
    rows = sum(t.shape[0] for t in tensors)
    staging = torch.empty((rows, *tensors[0].shape[1:]), dtype=tensors[0].dtype, pin_memory=True)
    torch.cat(tensors, out=staging)
    return staging.to(device, non_blocking=True)


def bytes_per_vector(hidden_size: int, dtype: str, scale_dtype: str = "fp32") -> int:
    """Storage of one summary vector (values plus its scale)."""
    value_bytes = hidden_size * torch.empty((), dtype=STORAGE_DTYPES[dtype]).element_size()
    scale_bytes = (
        torch.empty((), dtype=SCALE_TORCH_DTYPES[scale_dtype]).element_size() if dtype in SCALED else 0
    )
    return value_bytes + scale_bytes


def bytes_per_text_token(
    n_vectors: int, n_tokens: int, hidden_size: int, dtype: str, scale_dtype: str = "fp32"
) -> float:
    """Bytes of summary vectors stored per token of source text (e.g. κ=50 vectors for a 512-token chunk)."""
    if n_tokens <= 0:
        return 0.0
    return n_vectors * bytes_per_vector(hidden_size, dtype, scale_dtype) / n_tokens
