import pytest
import torch

from ragcompress.store import bytes_per_text_token, bytes_per_vector, dequantize, quantize
from ragcompress.store.quantize import dequantize_many


def _vectors(n=64, hidden=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, hidden, generator=gen)
    # Rows of very different magnitudes, an outlier and a zero row: per-vector scales must cope.
    x[0] *= 1000.0
    x[1] *= 1e-3
    x[2, 5] = 300.0
    x[3] = 0.0
    return x


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_float_modes_round_trip_exactly(dtype):
    torch_dtype = torch.float16 if dtype == "fp16" else torch.bfloat16
    x = _vectors().to(torch_dtype)
    q = quantize(x, dtype)
    assert q.scales is None and q.values.dtype == torch_dtype
    assert torch.equal(dequantize(q, torch_dtype), x)
    assert torch.equal(dequantize(q), x.float())


@pytest.mark.parametrize("scale_dtype", ["fp32", "fp16"])
def test_int8_error_is_at_most_half_a_step(scale_dtype):
    x = _vectors()
    q = quantize(x, "int8", scale_dtype)
    assert q.values.dtype == torch.int8 and q.scales.shape == (len(x),)
    step = q.scales.float()[:, None]
    error = (dequantize(q) - x).abs()
    assert (error <= step / 2 * (1 + 1e-5) + 1e-12).all()
    assert torch.equal(dequantize(q)[3], torch.zeros(x.shape[1]))  # zero row stays zero
    # The outlier row keeps its precision relative to its own scale, not the batch's.
    assert error[1].max() < 1e-4  # a batch-wide scale would give errors around 4


@pytest.mark.parametrize("scale_dtype", ["fp32", "fp16"])
def test_fp8_error_bound(scale_dtype):
    x = _vectors()
    q = quantize(x, "fp8", scale_dtype)
    assert q.values.dtype == torch.float8_e4m3fn
    scale = q.scales.float()[:, None]
    error = (dequantize(q) - x).abs()
    bound = x.abs() / 16 + scale * 2**-10
    assert (error <= bound * (1 + 1e-5) + 1e-12).all()
    relative = error.norm(dim=1) / x.norm(dim=1).clamp_min(1e-12)
    assert relative[x.norm(dim=1) > 0].max() < 0.05


def test_dequantize_dtype_and_device():
    q = quantize(_vectors(4, 8), "int8")
    out = dequantize(q, torch.bfloat16, "cpu")
    assert out.dtype == torch.bfloat16 and out.shape == (4, 8)


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "int8", "fp8"])
def test_dequantize_many_equals_one_at_a_time(dtype):
    parts = [quantize(_vectors(n, 16, seed=n), dtype) for n in (5, 4, 12, 6)]
    for out_dtype in (torch.float32, torch.bfloat16):
        together = dequantize_many(parts, out_dtype, "cpu")
        assert len(together) == len(parts)
        for got, part in zip(together, parts, strict=True):
            assert got.dtype == out_dtype and torch.equal(got, dequantize(part, out_dtype, "cpu"))
    mixed = [parts[0], quantize(_vectors(4, 16), "fp16" if dtype != "fp16" else "int8")]
    assert all(torch.equal(g, dequantize(p)) for g, p in zip(dequantize_many(mixed), mixed, strict=True))
    assert dequantize_many([]) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the pinned-memory transfer needs a CUDA device")
def test_dequantize_many_to_a_gpu_equals_the_cpu_result():
    parts = [quantize(_vectors(n, 16, seed=n), "int8") for n in (5, 7)]
    for got, part in zip(dequantize_many(parts, torch.bfloat16, "cuda"), parts, strict=True):
        assert got.device.type == "cuda" and torch.equal(got.cpu(), dequantize(part, torch.bfloat16))


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        quantize(torch.tensor([[1.0, float("nan")]]), "int8")
    with pytest.raises(ValueError, match="overflow fp16"):
        quantize(torch.tensor([[1e6]]), "fp16")
    with pytest.raises(ValueError, match="dtype"):
        quantize(torch.zeros(2, 2), "int4")
    with pytest.raises(ValueError, match=r"\[n, hidden\]"):
        quantize(torch.zeros(2), "fp16")


def test_bytes_per_text_token():
    assert bytes_per_vector(576, "fp16") == 1152
    assert bytes_per_vector(576, "int8") == 580  # 576 values + one fp32 scale
    assert bytes_per_vector(576, "fp8", "fp16") == 578
    # 50 summary vectors of width 576 for a 512-token chunk
    assert bytes_per_text_token(50, 512, 576, "fp16") == pytest.approx(50 * 1152 / 512)
    assert bytes_per_text_token(50, 512, 576, "int8") == pytest.approx(50 * 580 / 512)
    assert bytes_per_text_token(50, 0, 576, "int8") == 0.0
