"""`llama3-grader generate`: the implementation under test answering a prompt, end to end."""

import math
import sys

from ..errors import KitError
from . import on_device
from ..formats.metadata import shown
from ..i18n import say

DEFAULT_PROMPT = "the answer to the ultimate question of life, the universe, and everything is "


def register(sub) -> None:
    p = sub.add_parser("generate", help="run your Llama (or the reference) on a prompt: tokenize, prefill, cached "
                                        "greedy decode")
    p.add_argument("--checkpoint", help="model folder (default: LLAMA3_CHECKPOINT, else fixtures/models/tiny-llama3)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="text to continue (default: the 42 prompt)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="tokens to generate at most (default 16)")
    p.add_argument("--impl", help="exercises (yours, the default) or solutions; or set LLAMA3_KIT_IMPL")
    p.add_argument("--dtype", help="bfloat16 or float32 (default: the checkpoint's)")
    p.add_argument("--rope-scale-factor", help="override the RoPE scale factor of a Llama 3.1/3.2 checkpoint")
    add_sampling_arguments(p, "runs exercise 13's generate with its Sampler instead of exercise 12's greedy generate")
    on_device.add_argument(p)
    p.add_argument("--ranks", type=int, help="run your tensor-parallel generation (exercise 17) on this many processes "
                                             "of this machine, on the CPU over gloo")
    p.add_argument("--distributed", action="store_true",
                   help="be one rank of the group torchrun started (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), "
                        "on the CPU over gloo; rank 0 prints (docs/tensor-parallel.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    p.set_defaults(run=run)


def add_sampling_arguments(p, effect: str) -> None:
    p.add_argument("--temperature", type=float,
                   help=f"sample at this temperature (0 is greedy); any of these four options {effect}")
    p.add_argument("--top-k", type=int, help="sample from the K most likely tokens only")
    p.add_argument("--top-p", type=float,
                   help="sample from the smallest set of most likely tokens whose probability reaches P")
    p.add_argument("--seed", type=int,
                   help="seed of the sampler's generator (default 0): the same seed gives the same text")


SAMPLING_OPTIONS = ("temperature", "top_k", "top_p", "seed")
SEEDS = 2**63  # torch.Generator.manual_seed takes 0 .. 2**63 - 1 everywhere


def sampling(args) -> dict | None:
    """The sampler's settings when a sampling option is given (temperature 1 unless set), else None: greedy."""
    if all(getattr(args, name, None) is None for name in SAMPLING_OPTIONS):
        return None
    if args.temperature is not None and not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise KitError(f"--temperature must be 0 (greedy) or more, got {args.temperature:g}")
    if args.top_k is not None and args.top_k < 1:
        raise KitError(f"--top-k must be at least 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise KitError(f"--top-p must be above 0 and at most 1, got {args.top_p:g}")
    if args.seed is not None and not 0 <= args.seed < SEEDS:
        raise KitError(say("cli.generate.seed", seed=shown(args.seed), top=SEEDS - 1))
    return {"temperature": 1.0 if args.temperature is None else args.temperature, "top_k": args.top_k,
            "top_p": args.top_p, "seed": args.seed or 0}


def generator(impl: str, settings: dict | None):
    """(generate, its extra keyword arguments): exercise 12's greedy generate, or exercise 13's with its own Sampler."""
    from ..engine import impl as impls
    from ..engine.calls import invoke

    if settings is None:
        return invoke(impls.module, impl, "ex12_generation").generate, {}
    return invoke(impls.module, impl, "ex13_sampling").generate, {"sampler": sampler(impl, settings)}


def sampler(impl: str, settings: dict | None):
    """The implementation's exercise 13 Sampler with these settings; None (greedy) without settings."""
    from ..engine import impl as impls
    from ..engine.calls import invoke

    return None if settings is None else invoke(invoke(impls.module, impl, "ex13_sampling").Sampler, **settings)


def run(args) -> int:
    from ..engine import impl as impls

    impl = impls.choice(args.impl)
    settings = sampling(args)
    if args.max_new_tokens < 1:
        raise KitError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.ranks is not None and args.ranks < 1:
        raise KitError(say("cli.generate.ranks", ranks=args.ranks))
    if args.ranks is not None or args.distributed:
        on_device.choice(args, cpu_only="--ranks" if args.ranks is not None else "--distributed")
        if settings is not None:
            raise KitError("--ranks and --distributed run exercise 17's greedy parallel_generate: drop --temperature, "
                           "--top-k, --top-p and --seed")
        from . import generate_ranks

        return generate_ranks.run(args, impl)
    return _run(args, impl, settings, on_device.choice(args))


def _run(args, impl: str, settings: dict | None, device: str) -> int:
    import torch

    from .. import devices
    from ..formats import checkpoint
    from ..engine import impl as impls
    from ..engine.calls import GradeFailure, NotStarted, invoke
    from .textio import check_length, json_line, notes, streamer, text_codec

    ck = checkpoint.load(args.checkpoint, rope_scale_factor=args.rope_scale_factor)
    dtype = checkpoint.parse_dtype(args.dtype) if args.dtype else ck.dtype
    checkpoint.page_in(ck.weights, ck.folder)
    devices.reset_peak_memory(device)
    weights = on_device.weights(ck, dtype, device)  # no copy of the model in a wider dtype, on the CPU or the device
    try:
        tok = invoke(impls.module, impl, "ex01_tokenizer")
        generate, extra = generator(impl, settings)
        encode, decode, stop_ids = text_codec(tok, ck)
        prompt_ids = encode(args.prompt)
        if not prompt_ids:
            raise KitError(f"the prompt is empty and {ck.tokenizer.name} has no BOS token to start from: "
                           "pass --prompt TEXT")
        check_length(len(prompt_ids), args.max_new_tokens, ck.args.max_seq_len)
        generated, top10 = [], []
        show = streamer(decode)
        if not args.json:
            print(args.prompt, end="", flush=True)
        with devices.on(device), torch.inference_mode():  # a tensor made without a device lands on it
            for token, logits in invoke(generate, prompt_ids, weights, ck.args, args.max_new_tokens, stop_ids, **extra):
                if not generated:
                    values, ids = logits.float().topk(10)
                    top10 = [[int(i), round(float(v), 4)] for i, v in zip(ids, values)]
                generated.append(int(token))
                if not args.json:
                    show(generated)
        text = decode(generated)
        devices.synchronize(device)
    except NotStarted as e:
        raise KitError(f"{e} (or run the reference with --impl solutions)") from None
    except GradeFailure as e:
        raise KitError(" ".join(str(e).split())) from None
    peak = devices.peak_memory(device)
    if args.json:
        print(json_line({"checkpoint": str(ck.folder), "impl": impl, "dtype": str(dtype).removeprefix("torch."),
                         "prompt": args.prompt, "prompt_ids": prompt_ids, "generated_ids": generated, "text": text,
                         "top10": top10, "tokenizer": ck.tokenizer.name, "sampling": settings, "device": device,
                         "peak_gpu_bytes": peak, "checkpoint_bytes": ck.nbytes}))
    else:
        print()
        for line in notes(ck, dtype, device, peak):
            print(line, file=sys.stderr)
    return 0
