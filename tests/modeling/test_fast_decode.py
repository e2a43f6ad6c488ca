"""The fast decode path (static cache, prepared 4-D mask, one decoder call per token) equals ``generate``.

On CPU the step runs without CUDA-graph capture but through the same code: the same cache, buffers,
mask and position arithmetic that the GPU replays.
"""

import pytest
import torch
from tiny import EOS, random_ids, tiny_model

from ragcompress.modeling import fast_decode, step_graph
from ragcompress.modeling.fast_decode import CACHE_BUCKET, fast_generate, unsupported_reason
from ragcompress.modeling.step_graph import GRAPHS
from ragcompress.retrieval.timing import ForwardTimer


def _left_padded(lengths, seed=1):
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, ids.shape[1] - n :] = random_ids(1, n, seed=seed + row)[0]
        mask[row, ids.shape[1] - n :] = 1
    return ids, mask


GREEDY = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("slots", [7, 0], ids=["fused", "no-softprompt"])
@pytest.mark.parametrize("lengths", [[5], [4, 9, 6]], ids=["one", "padded-batch"])
@pytest.mark.parametrize("prompt", ["short", "long"])
def test_fast_greedy_equals_generate(attn, slots, lengths, prompt, monkeypatch):
    if prompt == "long":  # every prompt takes the long-prompt route (the AutoCompressor's forward)
        monkeypatch.setattr(fast_decode, "PROMPT_GRAPH_TOKENS", 0)
    model = tiny_model("llama", summary_length=3, attn=attn).eval()
    ids, mask = _left_padded(lengths)
    soft = torch.randn(len(lengths), slots, 32) if slots else None
    plain = model.generate(ids, attention_mask=mask, softprompt=soft, eos_token_id=None, **GREEDY)
    fast = fast_generate(model, ids, attention_mask=mask, softprompt=soft, eos_token_id=None, **GREEDY)
    assert fast.tolist() == plain.tolist()
    assert fast.shape == (len(lengths), ids.shape[1] + GREEDY["max_new_tokens"])


def test_fast_stops_and_pads_like_generate():
    """With an end-of-sequence token, finished rows are padded and decoding stops when all are done."""
    model = tiny_model("qwen3", summary_length=3, attn="sdpa").eval()
    ids, mask = _left_padded([4, 9, 6], seed=5)
    soft = torch.randn(3, 6, 32)
    first = fast_generate(model, ids, mask, soft, eos_token_id=None, **GREEDY)
    # each row's second and third tokens end it: rows finish at different steps, all within three
    eos = sorted({int(t) for t in first[:, ids.shape[1] + 1 : ids.shape[1] + 3].flatten()} | {EOS})
    kwargs = {**GREEDY, "max_new_tokens": 20, "eos_token_id": eos}
    plain = model.generate(ids, attention_mask=mask, softprompt=soft, **kwargs)
    fast = fast_generate(model, ids, mask, soft, **kwargs)
    assert fast.tolist() == plain.tolist()
    assert fast.shape[1] <= ids.shape[1] + 3  # stopped once every row was done, not after 20


def test_one_graph_per_bucket_and_reuse():
    """A new question length inside the same cache bucket reuses the step (no new capture or compile)."""
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    soft = torch.randn(1, 7, 32)
    for n in (5, 11, 30):
        ids, mask = _left_padded([n])
        fast = fast_generate(model, ids, mask, soft, eos_token_id=None, **GREEDY)
        plain = model.generate(ids, attention_mask=mask, softprompt=soft, eos_token_id=None, **GREEDY)
        assert fast.tolist() == plain.tolist()
    assert list(GRAPHS[model]) == [(1, CACHE_BUCKET, torch.float32, "cpu", "sdpa")]
    # batch 3 runs in the batch-4 bucket
    ids, mask = _left_padded([5, 8, 3])
    fast_generate(model, ids, mask, torch.randn(3, 7, 32), eos_token_id=None, **GREEDY)
    assert (4, CACHE_BUCKET, torch.float32, "cpu", "sdpa") in GRAPHS[model]


def test_out_of_memory_frees_the_kept_graphs_and_runs_again(monkeypatch, caplog):
    """A call whose new shape does not fit beside the caches kept for earlier shapes frees them and runs
    once more, with generate's tokens; with nothing kept to free, the error is the caller's."""
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    soft = torch.randn(1, 7, 32)
    ids, mask = _left_padded([5])
    fast_generate(model, ids, mask, soft, eos_token_id=None, **GREEDY)  # keeps the batch-1 graph
    real = step_graph.StepGraph
    failures = []

    def short_of_memory(*args, **kwargs):
        if not failures:
            failures.append(args[1:3])  # (batch, length)
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return real(*args, **kwargs)

    monkeypatch.setattr(step_graph, "StepGraph", short_of_memory)
    ids, mask = _left_padded([5, 8, 3])
    soft3 = torch.randn(3, 7, 32)
    with caplog.at_level("WARNING", logger="ragcompress.modeling.fast_decode"):
        fast = fast_generate(model, ids, mask, soft3, eos_token_id=None, **GREEDY)
    plain = model.generate(ids, attention_mask=mask, softprompt=soft3, eos_token_id=None, **GREEDY)
    assert fast.tolist() == plain.tolist() and failures == [(4, CACHE_BUCKET)]
    assert list(GRAPHS[model]) == [(4, CACHE_BUCKET, torch.float32, "cpu", "sdpa")]  # batch 1's freed
    assert "freed the fast path's 1 kept caches and graphs" in caplog.text
    fresh = tiny_model("llama", summary_length=3, attn="sdpa").eval()  # nothing kept: nothing to free
    failures.clear()
    with pytest.raises(torch.OutOfMemoryError):
        fast_generate(fresh, ids, mask, soft3, eos_token_id=None, **GREEDY)


def test_a_dynamic_compile_serves_every_bucket_after_two_compilations(monkeypatch):
    """compile="dynamic": one graph for batch 1 and one for larger batches, whatever the cache bucket
    (the decode step alone here; the next test adds the prompt's)."""
    import torch._dynamo

    monkeypatch.setattr(step_graph, "COMPILE_PROMPT", False)
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for lengths, new in (([5], 4), ([9], CACHE_BUCKET + 8), ([4, 9, 6], 4), ([3, 7], CACHE_BUCKET + 8)):
        ids, mask = _left_padded(lengths)
        soft = torch.randn(len(lengths), 7, 32)
        kwargs = dict(eos_token_id=None, **{**GREEDY, "max_new_tokens": new})
        plain = fast_generate(model, ids, mask, soft, **kwargs)
        assert fast_generate(model, ids, mask, soft, compile="dynamic", **kwargs).tolist() == plain.tolist()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2
    # a static compilation of the same step is an entry of its own, not served by the dynamic one (so a
    # benchmark may time both kinds in one process)
    fast_generate(model, ids, mask, soft, compile=True, **kwargs)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 3
    with pytest.raises(ValueError, match="compile='fast'"):
        fast_generate(model, ids, mask, soft, compile="fast")


def test_a_dynamic_compile_of_the_short_prompt_too():
    """By default (step_graph.COMPILE_PROMPT) compile="dynamic" also compiles the short-prompt step: the
    same tokens, and two more compilations (batch 1, larger batches) whatever the prompt's length."""
    import torch._dynamo

    assert step_graph.COMPILE_PROMPT
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for lengths in ([5], [60], [4, 9, 6], [3, 70]):  # prompts of 64 and 128 slots (7 soft-prompt slots)
        ids, mask = _left_padded(lengths)
        soft = torch.randn(len(lengths), 7, 32)
        kwargs = dict(eos_token_id=None, **GREEDY)
        plain = model.generate(ids, attention_mask=mask, softprompt=soft, **kwargs)
        assert fast_generate(model, ids, mask, soft, compile="dynamic", **kwargs).tolist() == plain.tolist()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 4


def _regional_graphs(layers: int) -> int:
    """Graphs compile="regional" builds for a model of ``layers`` layers, after checking its tokens."""
    import torch._dynamo
    from tiny import tiny_config

    from ragcompress import AutoCompressor

    torch.manual_seed(0)
    config = tiny_config("llama", "sdpa")
    config.num_hidden_layers = layers
    model = AutoCompressor.from_config(config, summary_length=3).eval()
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for lengths in ([5], [60], [4, 9, 6], [3, 70]):  # batch 1 and a larger batch, prompts of 64 and 128 slots
        ids, mask = _left_padded(lengths)
        soft = torch.randn(len(lengths), 7, 32)
        kwargs = dict(eos_token_id=None, **GREEDY)
        plain = model.generate(ids, attention_mask=mask, softprompt=soft, **kwargs)
        assert fast_generate(model, ids, mask, soft, compile="regional", **kwargs).tolist() == plain.tolist()
    # the compiled forward is the fast path's alone: afterwards the layers run their own again
    assert all("forward" not in vars(layer) for layer in model.model.layers)
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_a_regional_compile_builds_one_layer_not_the_whole_decoder():
    """compile="regional" compiles the decoder layer once for all layers (the cache's writes stay out of
    its graphs): the same tokens as generate, and as many graphs for 4 layers as for 2."""
    two = _regional_graphs(2)
    assert two == _regional_graphs(4)
    assert two <= 16  # a few pieces of one layer, for the step and the prompt, at batch 1 and larger


def test_each_generation_leaves_the_cache_zeroed_in_one_launch():
    """Each call wipes the cache as it ends, so the next starts on a clean one without zeroing it first
    (off its path to the first token); a NaN left by a call that failed part-way does not reach the next
    answer; the wipe is one multi-tensor zeroing, not one launch per layer and tensor."""
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    ids, mask = _left_padded([5, 9])
    soft = torch.randn(2, 7, 32)
    kwargs = dict(eos_token_id=None, **GREEDY)
    plain = model.generate(ids, attention_mask=mask, softprompt=soft, **kwargs)
    assert fast_generate(model, ids, mask, soft, **kwargs).tolist() == plain.tolist()
    (graph,) = GRAPHS[model].values()
    assert graph.clean
    for layer in graph.cache.layers:
        assert not layer.keys.any() and not layer.values.any() and layer.get_seq_length() == 0
    with torch.inference_mode():  # the cache was made under inference mode
        for layer in graph.cache.layers:
            layer.keys.fill_(float("nan"))
            layer.values.fill_(float("nan"))
    graph.clean = False  # as a call that failed part-way leaves it
    assert fast_generate(model, ids, mask, soft, **kwargs).tolist() == plain.tolist()
    with (
        torch.inference_mode(),
        torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof,
    ):
        graph.wipe()
    # one call (on CUDA one multi-tensor kernel; on a CPU torch loops over the tensors inside it)
    assert [e.name for e in prof.events()].count("aten::_foreach_zero_") == 1
    for layer in graph.cache.layers:
        assert not layer.keys.any() and not layer.values.any() and layer.get_seq_length() == 0


def test_a_call_that_fails_part_way_leaves_the_next_one_a_wiped_cache(monkeypatch):
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    ids, mask = _left_padded([5, 9])
    soft = torch.randn(2, 7, 32)
    kwargs = dict(eos_token_id=None, **GREEDY)
    plain = fast_generate(model, ids, mask, soft, **kwargs)
    (graph,) = GRAPHS[model].values()

    def poisoned_step():
        with torch.inference_mode():
            for layer in graph.cache.layers:
                layer.keys.fill_(float("nan"))
        raise RuntimeError("a step that fails")

    monkeypatch.setattr(graph, "step", poisoned_step)
    with pytest.raises(RuntimeError, match="a step that fails"):
        fast_generate(model, ids, mask, soft, **kwargs)
    assert not graph.clean
    monkeypatch.undo()
    assert fast_generate(model, ids, mask, soft, **kwargs).tolist() == plain.tolist()


def test_sampling_is_seeded_and_respects_top_k():
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    ids, mask = _left_padded([5, 9])
    soft = torch.randn(2, 7, 32)
    kwargs = dict(max_new_tokens=6, do_sample=True, temperature=0.7, top_k=1, top_p=0.9, eos_token_id=None)
    a = fast_generate(model, ids, mask, soft, generator=torch.Generator().manual_seed(3), **kwargs)
    greedy = fast_generate(model, ids, mask, soft, max_new_tokens=6, eos_token_id=None)
    assert a.tolist() == greedy.tolist()  # top_k=1 leaves one choice
    kwargs["top_k"] = 20
    b = fast_generate(model, ids, mask, soft, generator=torch.Generator().manual_seed(3), **kwargs)
    c = fast_generate(model, ids, mask, soft, generator=torch.Generator().manual_seed(3), **kwargs)
    assert b.tolist() == c.tolist()


def test_unsupported_reasons():
    assert unsupported_reason(tiny_model("llama", attn="sdpa"), {"max_new_tokens": 4}) is None
    assert "opt" in unsupported_reason(tiny_model("opt", attn="sdpa"), {})
    assert "sliding" in unsupported_reason(tiny_model("gemma3", attn="sdpa"), {})
    assert "num_beams" in unsupported_reason(tiny_model("llama", attn="sdpa"), {"num_beams": 2})
    with pytest.raises(ValueError, match="fast decoding does not apply"):
        fast_generate(tiny_model("opt", attn="sdpa"), torch.ones(1, 3, dtype=torch.long))


@pytest.mark.parametrize("mode", ["fused", "text", "none"])
def test_generate_outputs_fast_equals_plain(mode):
    """The product's batched answering gives the same answers and token counts on either path."""
    from tiny import tiny_tokenizer

    from ragcompress.retrieval.generation import generate_outputs

    model, tokenizer = tiny_model("llama", summary_length=3, attn="sdpa"), tiny_tokenizer()
    questions = ["t5 t9 t17", "t40 t41", "t7 t8 t9 t10 t11 t12"]
    passages = [["t20 t21 t22 t23", "t30 t31"], ["t50 t51 t52", "t60"], ["t70 t71", "t80 t81 t82"]]
    kwargs = dict(mode=mode, passages=passages, batch_size=2, max_new_tokens=6)
    plain = generate_outputs(model, tokenizer, questions, fast_decode=False, **kwargs)
    fast = generate_outputs(model, tokenizer, questions, fast_decode=True, **kwargs)
    assert fast == plain
    assert all(o.generated_tokens >= 1 for o in fast)
    if mode == "fused":  # the compiled step through the product's call; ignored where generate decodes
        compiled = generate_outputs(
            model, tokenizer, questions, fast_decode=True, compile_decode="dynamic", **kwargs
        )
        assert compiled == plain
        assert (
            generate_outputs(model, tokenizer, questions, fast_decode=False, compile_decode=True, **kwargs)
            == plain
        )
        with pytest.raises(ValueError, match="compile_decode='yes'"):
            generate_outputs(model, tokenizer, questions, compile_decode="yes", **kwargs)


def test_generate_outputs_fallback(caplog):
    from tiny import tiny_tokenizer

    from ragcompress.retrieval.generation import generate_outputs

    tokenizer = tiny_tokenizer()
    with pytest.raises(ValueError, match="fast_decode=True cannot run here: .*opt"):
        generate_outputs(tiny_model("opt", attn="sdpa"), tokenizer, ["t5"], mode="none", fast_decode=True)
    model = tiny_model("llama", summary_length=3, attn="sdpa")
    with pytest.raises(ValueError, match="num_beams"):
        generate_outputs(model, tokenizer, ["t5"], mode="none", fast_decode=True, num_beams=2)
    # on CPU the default is generate, with nothing to log; extractive answers always take generate
    with caplog.at_level("WARNING"):
        generate_outputs(model, tokenizer, ["t5"], mode="none", max_new_tokens=2)
    assert not caplog.records


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CUDA-graph replay)")
@pytest.mark.parametrize(
    "compile", [False, True, "dynamic", "regional"], ids=["graph", "compiled-graph", "dynamic", "regional"]
)
def test_cuda_graph_replay_equals_generate(compile):
    """On a GPU the step is a captured graph (optionally of the compiled step): same tokens as generate."""
    model = tiny_model("llama", summary_length=3, attn="sdpa").cuda()
    for lengths in ([5], [4, 9, 6], [12, 3]):  # new lengths reuse the captured graphs
        ids, mask = _left_padded(lengths)
        soft = torch.randn(len(lengths), 7, 32, device="cuda")
        kwargs = dict(eos_token_id=None, **GREEDY)
        plain = model.generate(ids.cuda(), attention_mask=mask.cuda(), softprompt=soft, **kwargs)
        with ForwardTimer(model) as timer:  # replayed graphs run no Python: the path reports its phases
            fast = fast_generate(model, ids, mask, soft, compile=compile, **kwargs)
        assert fast.tolist() == plain.tolist()
        assert timer.prefill > 0 and timer.decode > 0
    assert all(graph.graph is not None for graph in GRAPHS[model].values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CUDA-graph replay)")
def test_prompt_graphs_past_the_cap_drop_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(fast_decode, "PROMPT_BUCKET", 1)  # a prompt graph per prompt length
    monkeypatch.setattr(step_graph, "MAX_PROMPT_GRAPHS", 2)
    model = tiny_model("llama", summary_length=3, attn="sdpa").cuda()
    soft = torch.randn(1, 7, 32, device="cuda")
    kwargs = dict(eos_token_id=None, **GREEDY)
    for n in (5, 6, 5, 9, 6, 5):  # 9 drops 6 (5 was used since); 6 again drops 5; 5 again is captured anew
        ids, mask = _left_padded([n])
        plain = model.generate(ids.cuda(), attention_mask=mask.cuda(), softprompt=soft, **kwargs)
        assert fast_generate(model, ids, mask, soft, **kwargs).tolist() == plain.tolist()
    (graph,) = GRAPHS[model].values()
    assert list(graph.prompt_graphs) == [7 + 6, 7 + 5]


def test_watched_calls_report_their_phases_and_a_failed_one_zeros(monkeypatch):
    """A watched call reports the prompt's and the new tokens' seconds (the host clock on a CPU, CUDA
    events on a GPU: the test above); a call that fails part-way reports zeros."""
    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    ids, mask = _left_padded([5, 9])
    soft = torch.randn(2, 7, 32)
    with ForwardTimer(model) as timer:
        fast_generate(model, ids, mask, soft, eos_token_id=None, **GREEDY)
    assert timer.prefill > 0 and timer.decode > 0
    (graph,) = GRAPHS[model].values()

    def failing_step():
        raise RuntimeError("a step that fails")

    monkeypatch.setattr(graph, "step", failing_step)
    with ForwardTimer(model) as timer, pytest.raises(RuntimeError, match="a step that fails"):
        fast_generate(model, ids, mask, soft, eos_token_id=None, **GREEDY)
    assert (timer.prefill, timer.decode) == (0.0, 0.0)


def test_threads_sharing_a_model_take_turns():
    """Concurrent calls on one model (a server's threads) share its cache: each must get its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    model = tiny_model("llama", summary_length=3, attn="sdpa").eval()
    inputs = [_left_padded([n], seed=n) for n in (4, 7, 9, 5)]
    soft = torch.randn(1, 7, 32)
    expected = [
        fast_generate(model, ids, mask, soft, eos_token_id=None, **GREEDY).tolist() for ids, mask in inputs
    ]
    with ThreadPoolExecutor(4) as pool:
        got = list(
            pool.map(lambda im: fast_generate(model, *im, soft, eos_token_id=None, **GREEDY).tolist(), inputs)
        )
    assert got == expected


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
    ],
)
def test_direct_calls_and_answering_share_the_kept_caches(device):
    """Answering (inference mode) and a direct call (any grad mode) reuse one model's kept caches: both run
    in inference mode, so neither finds tensors it may not update (the direct call used to fail)."""
    from tiny import tiny_tokenizer

    from ragcompress.retrieval.generation import generate_outputs

    model, tokenizer = tiny_model("llama", summary_length=3, attn="sdpa").eval().to(device), tiny_tokenizer()
    answered = generate_outputs(model, tokenizer, ["t5 t9"], mode="none", fast_decode=True, max_new_tokens=3)
    ids = tokenizer(["t5 t9"], return_tensors="pt").input_ids
    direct = fast_generate(model, ids.to(device), max_new_tokens=3, eos_token_id=None)  # same buckets, cache
    assert direct.shape[1] - ids.shape[1] == 3 and answered[0].generated_tokens >= 1
