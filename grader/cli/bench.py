"""`llama3-grader bench`: how fast the implementation under test runs on a checkpoint, on the chosen device (--device),
against two bounds measured on the spot and, when transformers is installed, its LlamaForCausalLM on the same weights,
dtype, device and threads.

Figures are medians over --repeats rounds. In a round the contenders run in lockstep, one token each in turn (ours
with the KV cache, transformers', ours recomputing, a kernel-bound pass, a read pass), so a machine that slows down
for a while slows every contender alike; ratios are medians of each round's own ratio.

  prefill_ms            the prompt (the 42 prompt by default) through the model once, up to the first token
  decode_tok_s          new tokens per second after the first, with the KV cache (one token per forward)
  decode_nocache_tok_s  the same without a cache: every new token re-runs the whole sequence (ex11's generate_uncached)
  kernel_bound_tok_s    1 / the time of one [1, in] x [out, in] F.linear through every weight matrix of the model:
                        the matmuls a decode step cannot avoid, with the kernel the reference uses, nothing else
  bandwidth_bound_tok_s measured read bandwidth / bytes of weights read per token (weight_bytes_per_token)
  weight_bytes_per_token  every matrix a decode step reads, once: the embedding table only where it is also the output
                        projection (tied), as gpt-fast and torchao leave the embedding lookup out; norms not counted
  peak_rss_bytes        peak resident memory of this process after our runs (before transformers is imported)
  decode_sampled_tok_s  decode with exercise 13's generate and Sampler (SAMPLING), when the implementation has it;
                        ratios.sampling_overhead is the time it adds per token against greedy decoding

On a GPU (CUDA or MPS) the weights are copied there in the dtype benched, every contender runs there (within
devices.on: TF32 off), each token is timed with the device synchronized before and after, and the passes between
CUDA events. There the read bandwidth is that of one large tensor (read_bytes, up to 1 GiB), summed once per turn: a
decode step's matrices are read by many kernels, and one large read is the bound they approach. peak_gpu_bytes is the
peak torch allocated on the GPU while ours decoded the warm-up tokens (weights, KV cache, activations), and the same
for transformers (its own q/k copies, cache and activations, on the shared weights).
"""

import platform
import statistics
import sys

from ..errors import KitError
from ..i18n import say
from . import on_device, timing
from .generate import DEFAULT_PROMPT

JSON_KEYS = ("prefill_ms", "decode_tok_s", "decode_nocache_tok_s", "peak_rss_bytes", "checkpoint_bytes",
             "bandwidth_bound_tok_s", "kernel_bound_tok_s", "transformers")


def register(sub) -> None:
    p = sub.add_parser("bench", help="prefill ms, decode tokens/s with and without the KV cache, peak RSS, bounds, "
                                     "transformers")
    p.add_argument("--checkpoint", help="model folder (default: LLAMA3_CHECKPOINT, else fixtures/models/tiny-llama3)")
    p.add_argument("--impl", help="exercises (yours, the default) or solutions; or set LLAMA3_KIT_IMPL")
    p.add_argument("--dtype", help="bfloat16 or float32 (default: the checkpoint's)")
    p.add_argument("--threads", type=int,
                   help="torch threads for every contender (default: torch's default, the core count)")
    p.add_argument("--new-tokens", type=int, default=64, help="tokens to decode in each run (default 64)")
    p.add_argument("--repeats", type=int, default=3, help="rounds; figures are their medians (default 3)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt to prefill (default: the 42 prompt)")
    p.add_argument("--no-transformers", action="store_true",
                   help="skip transformers' LlamaForCausalLM even if installed")
    p.add_argument("--rope-scale-factor", help="override the RoPE scale factor of a Llama 3.1/3.2 checkpoint")
    on_device.add_argument(p)
    p.add_argument("--int8", action="store_true",
                   help="your int8 model (exercise 16) against the bf16 reference: decode, bounds, peak RSS "
                        "(on the CPU)")
    p.add_argument("--ranks", type=int,
                   help="your tensor-parallel generation (exercise 17) on 1 and on this many ranks, with the time in "
                        "all-reduce (--threads is then per rank, default 1; on the CPU over gloo)")
    p.add_argument("--compile", action="store_true",
                   help="your static decode step (exercise 18) eager and compiled, beside exercise 12: tok/s, compile "
                        "time, launches per token, bounds")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _hf_generate(model, prompt_ids: list[int], n_tokens: int, _stop=()):
    """Greedy decoding with transformers' own KV cache, one token per forward: what a tuned user loop does
    (generate() adds logits processors and stopping criteria on top of this). The DynamicCache is filled in place;
    forward takes it as `cache` since transformers 5.x renamed `past_key_values`, which older versions take."""
    import inspect

    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True, logits_to_keep=1, **{name: cache})
    for i in range(n_tokens):
        logits = out.logits[0, -1]
        token = int(logits.argmax())
        yield token, logits
        if i + 1 < n_tokens:
            out = model(input_ids=torch.tensor([[token]]), use_cache=True, **{name: cache})


def matmul_weights(weights: dict) -> list:
    """The weight matrices one decode step multiplies by: every 2-D tensor but the embedding table (a lookup);
    a tied output.weight counts, as it is multiplied by. The same as int8.matrices, which --int8 counts."""
    from ..formats import int8

    return int8.matrices(weights)


SAMPLING = {"temperature": 0.8, "top_k": 50, "top_p": 0.9, "seed": 0}


def _sampling(impl: str):
    """(exercise 13's generate, a function making a fresh Sampler) of the implementation, or None where it is not
    done."""
    from ..engine import impl as impls

    try:
        mod = impls.module(impl, "ex13_sampling")
        mod.Sampler(**SAMPLING)
    except Exception:  # not started, or broken: the bench measures the core without it
        return None
    return mod.generate, lambda: mod.Sampler(**SAMPLING)


def measure(ck, impl: str, prompt_ids: list[int], new_tokens: int, repeats: int, with_transformers: bool,
            progress=lambda message: None, device: str = "cpu") -> dict:
    """Every figure of the bench, as one dict (see the module docstring), with ck's weights where they are, on device.

    Each round runs the contenders in lockstep, one token each in turn (ours with the cache, transformers', ours
    recomputing, one kernel-bound pass, one read pass), the order rotating from token to token: whatever else the
    machine does slows them alike, so their ratios hold even where the absolute figures wander."""
    import torch

    from .. import devices
    from ..engine import impl as impls

    gen = impls.module(impl, "ex12_generation")
    fwd = impls.module(impl, "ex11_forward")
    n = new_tokens + 1  # the first token comes from the prefill; new_tokens decode steps follow
    mats = matmul_weights(ck.weights)
    bytes_per_token = sum(w.numel() * w.element_size() for w in mats)
    args = (prompt_ids, ck.weights, ck.args)
    sampling = _sampling(impl)
    on_cpu = device == "cpu"

    def Steps(*a):
        return timing.Steps(*a, device=device)

    progress("warming up (and measuring peak memory)")
    with devices.on(device), torch.inference_mode():
        devices.reset_peak_memory(device)
        warm = Steps(gen.generate, *args, n, ())
        for _ in range(n):
            warm.step()
        del warm  # its KV cache
        peak = devices.peak_memory(device)  # before the passes allocate theirs
        kernel = timing.kernel_pass(mats)
        read, read_bytes = (timing.read_pass(mats), bytes_per_token) if on_cpu else timing.device_read_pass(device)
        if sampling is not None:
            Steps(sampling[0], *args, 2, (), sampling[1]()).step()
        longest = list(prompt_ids) + [prompt_ids[-1]] * new_tokens
        Steps(fwd.generate_uncached, longest, ck.weights, ck.args, 1, ()).step()
        kernel(), read()
    rss = timing.peak_rss_bytes()  # before transformers is imported
    hf_model, hf_version = _transformers(ck, device) if with_transformers else (None, None)
    hf_peak = _hf_peak(hf_model, prompt_ids, n, device) if hf_model is not None and not on_cpu else None

    rounds = []
    for r in range(repeats):
        ours = Steps(gen.generate, *args, n, ())
        theirs = Steps(_hf_generate, hf_model, prompt_ids, n) if hf_model is not None else None
        recompute = Steps(fwd.generate_uncached, *args, n, ())
        sampled = Steps(sampling[0], *args, n, (), sampling[1]()) if sampling is not None else None
        kernel_s, read_s = [], []
        turns = [ours.step, recompute.step, lambda: kernel_s.append(kernel()), lambda: read_s.append(read())]
        if theirs is not None:
            turns.insert(1, theirs.step)
        if sampled is not None:
            turns.insert(1, sampled.step)
        with devices.on(device), torch.inference_mode():
            for i in range(n):
                if i % 8 == 0:
                    progress(f"round {r + 1}/{repeats}: token {i + 1}/{n}")
                for turn in turns[i % len(turns):] + turns[: i % len(turns)]:  # each goes first in turn
                    turn()
        rounds.append({
            "prefill_ms": ours.prefill_ms(),
            "decode_tok_s": ours.decode_tok_s(),
            "decode_nocache_tok_s": recompute.decode_tok_s(),
            # means over the same tokens as the decode figures, so a hiccup weighs on both alike
            "kernel_bound_tok_s": len(kernel_s) / sum(kernel_s),
            "read_bandwidth_gb_s": read_bytes * len(read_s) / sum(read_s) / 1e9,
            "transformers_prefill_ms": theirs.prefill_ms() if theirs else None,
            "transformers_decode_tok_s": theirs.decode_tok_s() if theirs else None,
            "decode_sampled_tok_s": sampled.decode_tok_s() if sampled else None,
        })

    def med(key):
        return statistics.median([r[key] for r in rounds])

    def med_ratio(a, b):
        return statistics.median([r[a] / r[b] for r in rounds])

    result = {
        "impl": impl,
        "checkpoint": str(ck.folder),
        "tokenizer": ck.tokenizer.name,
        "layout": ck.layout,
        "dtype": str(ck.dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "device": device,
        "device_name": on_device.gpu_name(device),
        "prompt_tokens": len(prompt_ids),
        "new_tokens": new_tokens,
        "repeats": repeats,
        "prefill_ms": med("prefill_ms"),
        "decode_tok_s": med("decode_tok_s"),
        "decode_nocache_tok_s": med("decode_nocache_tok_s"),
        "peak_rss_bytes": rss,
        "checkpoint_bytes": ck.nbytes,
        "weight_bytes_per_token": bytes_per_token,
        "read_bytes": read_bytes,
        "peak_gpu_bytes": peak,
        "read_bandwidth_gb_s": med("read_bandwidth_gb_s"),
        "bandwidth_bound_tok_s": med("read_bandwidth_gb_s") * 1e9 / bytes_per_token,
        "kernel_bound_tok_s": med("kernel_bound_tok_s"),
        "transformers": None,
        "decode_sampled_tok_s": med("decode_sampled_tok_s") if sampling is not None else None,
        "sampling": SAMPLING if sampling is not None else None,
        "rounds": rounds,
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    if hf_model is not None:
        result["transformers"] = {"version": hf_version, "prefill_ms": med("transformers_prefill_ms"),
                                  "decode_tok_s": med("transformers_decode_tok_s"), "peak_gpu_bytes": hf_peak}
    # ratios are medians of each round's own ratio: paired figures, measured side by side
    for r in rounds:
        r["bandwidth_bound_tok_s"] = r["read_bandwidth_gb_s"] * 1e9 / bytes_per_token
    result["ratios"] = {
        "decode_vs_kernel_bound": med_ratio("decode_tok_s", "kernel_bound_tok_s"),
        "decode_vs_bandwidth_bound": med_ratio("decode_tok_s", "bandwidth_bound_tok_s"),
        "cached_vs_nocache": med_ratio("decode_tok_s", "decode_nocache_tok_s"),
        "decode_vs_transformers": (med_ratio("decode_tok_s", "transformers_decode_tok_s") if hf_model is not None
                                   else None),
        "peak_rss_vs_checkpoint": rss / ck.nbytes,
        "peak_gpu_vs_checkpoint": peak / ck.nbytes if peak is not None else None,
        # time per token sampling adds to greedy decoding: greedy tok/s over sampled tok/s, minus one
        "sampling_overhead": med_ratio("decode_tok_s", "decode_sampled_tok_s") - 1 if sampling is not None else None,
    }
    return result


def _transformers(ck, device: str = "cpu"):
    """transformers' LlamaForCausalLM on the checkpoint's weights (its buffers made on device, where they are), or
    (None, None) when transformers is not installed."""
    try:
        import transformers
    except ImportError:
        return None, None
    from .. import devices
    from ..formats import hf_layout

    with devices.on(device):
        return hf_layout.transformers_model(ck.weights, ck.args), transformers.__version__


def _hf_peak(model, prompt_ids: list[int], n: int, device: str) -> int | None:
    """The peak memory transformers' model allocates on device while it decodes n tokens (its warm-up, too)."""
    import torch

    from .. import devices

    with devices.on(device), torch.inference_mode():
        devices.reset_peak_memory(device)
        warm = timing.Steps(_hf_generate, model, prompt_ids, n, device=device)
        for _ in range(n):
            warm.step()
        del warm
        return devices.peak_memory(device)


def run(args) -> int:
    import torch

    from ..engine import impl as impls

    impl = impls.choice(args.impl)
    if args.new_tokens < 2:
        raise KitError(f"--new-tokens must be at least 2, got {args.new_tokens}")
    if args.repeats < 1:
        raise KitError(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        raise KitError(f"--threads must be at least 1, got {args.threads}")
    threads = torch.get_num_threads()
    try:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        return _run(args, impl)
    finally:
        torch.set_num_threads(threads)  # run in-process (tests, notebooks): leave the caller's setting as it was


def _run(args, impl: str) -> int:
    import contextlib

    from rich.markup import escape

    from .textio import check_length, json_line
    from ..formats import checkpoint
    from ..engine.calls import GradeFailure, NotStarted
    from ..progress import console

    if args.int8 and args.ranks is not None:
        raise KitError("--int8 and --ranks are two benches: run one, then the other")
    if args.compile and (args.int8 or args.ranks is not None):
        raise KitError(say("cli.bench_compile.alone"))
    device = on_device.choice(args, "--ranks" if args.ranks is not None else "--int8" if args.int8 else None)
    show = console.is_terminal and not args.json
    measuring = escape(say("cli.bench.measuring", impl=impl, folder=checkpoint.resolve(args.checkpoint).name))
    status = console.status(measuring) if show else contextlib.nullcontext()  # one line, rewritten, then gone

    def progress(message: str) -> None:
        if show:
            status.update(f"{measuring}: [dim]{message}[/dim]")

    kind = None  # the module of --int8, --ranks or --compile, whose report prints its figures
    try:
        with status:
            if args.compile:
                from . import bench_compile as kind

                result = kind.run(args, impl, progress, device)
            elif args.ranks is not None:
                from . import bench_ranks as kind

                result = kind.run(args, impl, progress)
            else:
                ck = _load(args, device)
                prompt_ids = ck.tokenizer.encode(args.prompt)  # Llama 3's gives the ids of solutions' exercise 1
                check_length(len(prompt_ids), args.new_tokens + 1, ck.args.max_seq_len, "--new-tokens")
                if args.int8:
                    from . import bench_int8 as kind

                    result = kind.measure(ck, impl, prompt_ids, args.new_tokens, args.repeats, progress)
                else:
                    result = measure(ck, impl, prompt_ids, args.new_tokens, args.repeats, not args.no_transformers,
                                     progress, device)
    except NotStarted as e:
        raise KitError(f"{e} (or bench the reference with --impl solutions)") from None
    except GradeFailure as e:
        raise KitError(" ".join(str(e).split())) from None
    print(json_line(result) if args.json else (kind or sys.modules[__name__]).report(result))
    return 0


def _load(args, device: str):
    """The checkpoint with its weights in the dtype benched, on device: on the CPU cast at load (memory-mapped when no
    cast is asked); elsewhere read memory-mapped, each tensor copied to the device and cast there."""
    import dataclasses

    from ..formats import checkpoint

    dtype = checkpoint.parse_dtype(args.dtype) if args.dtype else None
    ck = checkpoint.load(args.checkpoint, dtype if device == "cpu" else None, args.rope_scale_factor)
    checkpoint.page_in(ck.weights, ck.folder)
    if device != "cpu":
        ck = dataclasses.replace(ck, weights=on_device.moved(ck.weights, device, dtype))
    return ck


def report(r: dict) -> str:
    """The figures as a few aligned lines; on a GPU, its name in the first line, the read bandwidth of its large tensor
    and the peak GPU memory of both contenders in place of the process's peak RSS."""
    ratios, hf = r["ratios"], r["transformers"]
    size = timing.size
    on_gpu = r.get("device", "cpu") != "cpu"
    lines = [
        f"bench: {r['impl']} on {r['checkpoint']} ({r['layout']} layout, {r['dtype']}, {size(r['checkpoint_bytes'])}), "
        + (f"on {r['device_name']}, " if on_gpu else "")
        + f"{r['threads']} thread(s), prompt {r['prompt_tokens']} tokens, {r['new_tokens']} new tokens, "
        f"medians of {r['repeats']}",
        f"  prefill                {r['prefill_ms']:9.1f} ms"
        + (f"      transformers {hf['prefill_ms']:9.1f} ms" if hf else ""),
        f"  decode, KV cache       {r['decode_tok_s']:9.2f} tok/s"
        + (f"   transformers {hf['decode_tok_s']:9.2f} tok/s ({ratios['decode_vs_transformers']:.2f}x)" if hf
           else "   transformers: not installed or skipped"),
        f"  decode, recomputing    {r['decode_nocache_tok_s']:9.2f} tok/s   "
        f"(the cache is {ratios['cached_vs_nocache']:.1f}x faster)",
        (f"  decode, sampling       {r['decode_sampled_tok_s']:9.2f} tok/s   (exercise 13, T 0.8, top-k 50, top-p 0.9: "
         f"{ratios['sampling_overhead']:+.1%} per token)") if r["decode_sampled_tok_s"]
        else "  decode, sampling: exercise 13 not done",
        f"  kernel bound           {r['kernel_bound_tok_s']:9.2f} tok/s   "
        f"(decode reaches {ratios['decode_vs_kernel_bound']:.0%})",
        f"  bandwidth bound        {r['bandwidth_bound_tok_s']:9.2f} tok/s   ({r['read_bandwidth_gb_s']:.1f} GB/s read"
        + (f" from one {r['read_bytes'] / 2**20:.0f} MiB tensor" if on_gpu else "")
        + f", {size(r['weight_bytes_per_token'])} per token"
        + (f"; decode reaches {ratios['decode_vs_bandwidth_bound']:.0%})" if on_gpu else ")"),
    ]
    if on_gpu and r["peak_gpu_bytes"] is not None:
        theirs = hf and hf.get("peak_gpu_bytes")
        lines.append(f"  peak GPU memory        {size(r['peak_gpu_bytes']):>12}      "
                     f"({ratios['peak_gpu_vs_checkpoint']:.2f}x the checkpoint's bytes)"
                     + (f"   transformers {size(theirs)}" if theirs else ""))
    elif not on_gpu:
        lines.append(f"  peak RSS               {size(r['peak_rss_bytes']):>12}      "
                     f"({ratios['peak_rss_vs_checkpoint']:.2f}x the checkpoint's bytes)")
    return "\n".join(lines)
