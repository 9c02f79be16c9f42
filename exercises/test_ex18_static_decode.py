"""Exercise 18 graded tests: decoding at the speed of memory. Run: pytest exercises/ -k ex18"""

import inspect
import warnings

import pytest
import torch
from hypothesis import given, settings, strategies as st

from grader.testing import (PROMPTS, GradeFailure, counting_compile, dynamo_failure, expect_close, expect_equal,
                            needs_cuda, say, tiny)
from solutions import ex18_static_decode as reference
from solutions.ex11_forward import forward as full_forward
from solutions.ex18_static_decode import StaticCache, rope_tables


@pytest.mark.goldens("StaticCache")
def test_static_cache(impl, golden):
    golden.check(impl.StaticCache)


@pytest.mark.goldens("rope_tables")
def test_rope_tables(impl, golden):
    golden.check(impl.rope_tables)


@pytest.mark.goldens("apply_rotary")
def test_apply_rotary(impl, golden):
    golden.check(impl.apply_rotary)


@pytest.mark.goldens("attention_mask")
def test_attention_mask(impl, golden):
    golden.check(impl.attention_mask)


@pytest.mark.goldens("forward")
def test_forward(impl, golden):
    golden.check(impl.forward)


@pytest.mark.goldens("decode_step")
def test_decode_step(impl, golden):
    golden.check(impl.decode_step)


@pytest.mark.goldens("compile_step")
def test_compile_step(impl, golden):
    golden.check(impl.compile_step)


@pytest.mark.goldens("generate")
def test_generate(impl, golden):
    golden.check(impl.generate)


def _setup(name: str, max_seq_len: int, device=None):
    """A tiny model's float32 weights and args, a reference cache of max_seq_len positions holding stale values (a
    mask must hide them), and the reference's RoPE tables."""
    model = tiny(name)
    weights, args = model.weights("float32"), model.checkpoint.args
    if device is not None:
        weights = {k: w.to(device) for k, w in weights.items()}
    cache = StaticCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, torch.float32, device=device)
    g = torch.Generator().manual_seed(max_seq_len)
    for buffer in cache.cache_k + cache.cache_v:
        buffer.copy_(torch.randn(buffer.shape, generator=g) * 4)
    rope = rope_tables(args.head_dim, max_seq_len, args.rope_theta, args.rope_scale_factor, device=device)
    return weights, args, cache, rope


@settings(max_examples=8)
@given(prompt=st.lists(st.integers(0, 127999), min_size=1, max_size=12), n_new=st.integers(1, 5),
       spare=st.integers(0, 6), name=st.sampled_from(["tiny-llama3", "tiny-llama3.2"]))
def test_static_decoding_equals_full_recomputation(impl, prompt, n_new, spare, name):
    """A prompt of any length within the cache, then decode steps: each gives the logits of a forward pass over the
    whole sequence so far, and its argmax, whatever the cache held beyond the positions written."""
    weights, args, cache, rope = _setup(name, len(prompt) + n_new + spare)
    logits = impl.forward(torch.tensor(prompt), torch.arange(len(prompt)), weights, args, cache, rope)[-1]
    ids = list(prompt)
    for i in range(n_new):
        full = full_forward(torch.tensor(ids), weights, args)[-1]
        expect_close(f"logits at position {len(ids) - 1}", logits, full, tol="float32 layers",
                     why=say("ex18.equals_full"))
        ids.append(int(full.argmax()))
        token, logits = impl.decode_step(torch.tensor([ids[-1]]), torch.tensor([len(ids) - 1]), weights, args, cache,
                                         rope)
        expect_equal(f"token chosen at position {len(ids) - 1}", int(token.reshape(-1)[0]),
                     int(full_forward(torch.tensor(ids), weights, args)[-1].argmax()))


def test_the_step_compiles_whole_and_once(impl):
    """torch.compile(decode_step, fullgraph=True) traces the step as one graph, and 32 decode steps, to the cache's
    last position, run on it without compiling again; the last step's logits are a forward pass's over the whole
    sequence."""
    prompt = tiny("tiny-llama3.2").tokenizer.encode(PROMPTS["prompt42"])
    weights, args, cache, rope = _setup("tiny-llama3.2", len(prompt) + 32)
    logits = impl.forward(torch.tensor(prompt), torch.arange(len(prompt)), weights, args, cache, rope)[-1]
    ids, input_pos = [*prompt, int(logits.argmax())], torch.tensor([len(prompt)])
    with counting_compile(fullgraph=True) as compiled:
        step = torch.compile(inspect.unwrap(impl.decode_step))
        for i in range(32):
            try:
                out = step(torch.tensor(ids[-1:]), input_pos, weights, args, cache, rope)
            except NotImplementedError:
                raise
            except Exception as e:  # dynamo's own errors say what it could not trace, and where
                raise GradeFailure(dynamo_failure(e, i)) from None
            token, logits = out
            ids.append(int(token.reshape(-1)[0]))
            input_pos += 1
        report = compiled.report()
    expect_equal("compiled only at the first step", report["compiled_once"], True,
                 why=say("ex18.recompiled", what=", ".join(report["recompiled_because"])))
    expect_close("logits of the last step", logits, full_forward(torch.tensor(ids[:-1]), weights, args)[-1],
                 tol="float32 layers", why=say("ex18.equals_full"))


def _first_sync(decode_step, forward, prompt: list[int], steps: int = 8) -> str | None:
    """The first host sync of steps decode steps on CUDA, compiled by dynamo alone and run under
    torch.cuda.set_sync_debug_mode("error"), as "step N: error"; None if there was none."""
    weights, args, cache, rope = _setup("tiny-llama3", len(prompt) + steps + 1, device="cuda")
    logits = forward(torch.tensor(prompt, device="cuda"), torch.arange(len(prompt), device="cuda"), weights, args,
                     cache, rope)[-1]
    token, input_pos = logits.argmax(-1, keepdim=True), torch.tensor([len(prompt)], device="cuda")
    with counting_compile():
        step = torch.compile(inspect.unwrap(decode_step))
        token, _ = step(token, input_pos, weights, args, cache, rope)  # compiles
        input_pos += 1
        for i in range(steps):
            torch.cuda.set_sync_debug_mode("error")
            try:
                token, _ = step(token.clone(), input_pos, weights, args, cache, rope)
                input_pos += 1
            except RuntimeError as e:
                if "synchroniz" not in str(e):
                    raise
                return f"{i + 1}: {str(e).splitlines()[0]}"
            finally:
                torch.cuda.set_sync_debug_mode(0)
    return None


def _syncs(generate, prompt: list[int]) -> tuple[int, int]:
    """Host syncs of generate on CUDA (torch.compile by dynamo alone) for 4 and for 12 new tokens, once compiled."""
    model = tiny("tiny-llama3")
    weights, args = {k: w.to("cuda") for k, w in model.weights("float32").items()}, model.checkpoint.args

    def syncs(n: int) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                generate(prompt, weights, args, n)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        return sum("synchronizing" in str(w.message) for w in caught)

    with counting_compile():
        syncs(4)  # compiles
        return syncs(4), syncs(12)


@pytest.mark.gpu
def test_no_host_sync_while_decoding_on_a_gpu(impl):
    """On CUDA: eight decode steps run under torch.cuda.set_sync_debug_mode("error"), which raises at any .item(),
    int(), .tolist() or copy to the CPU; and generate synchronises as often for 12 new tokens as for 4. (Where the
    reference itself synchronises, on some torch version, nothing can be judged: the test skips, saying so.)"""
    needs_cuda()
    prompt = tiny("tiny-llama3").tokenizer.encode(PROMPTS["prompt42"])
    reference_syncs = _first_sync(reference.decode_step, reference.forward, prompt)
    if reference_syncs or len(set(_syncs(reference.generate, prompt))) > 1:
        pytest.skip(say("ex18.reference_syncs", torch=torch.__version__))
    found = _first_sync(impl.decode_step, impl.forward, prompt)
    if found:
        raise GradeFailure(say("ex18.gpu_sync", step=found.split(":")[0], error=found.partition(": ")[2]))
    few, more = _syncs(impl.generate, prompt)
    expect_equal("host syncs of generate for 12 new tokens", more, few,
                 why=say("ex18.generate_syncs", few=few, more=more))
