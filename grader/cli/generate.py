"""`llama3-grader generate`: the implementation under test answering a prompt, end to end."""

import json
import sys

from ..errors import KitError

DEFAULT_PROMPT = "the answer to the ultimate question of life, the universe, and everything is "
PAGE_IN_ABOVE = 256 * 2**20  # bytes: show a progress bar while reading weights larger than this


def register(sub) -> None:
    p = sub.add_parser("generate", help="run your Llama (or the reference) on a prompt: tokenize, prefill, cached greedy decode")
    p.add_argument("--checkpoint", help="model folder (default: LLAMA3_CHECKPOINT, else fixtures/models/tiny-llama3)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="text to continue (default: the 42 prompt)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="tokens to generate at most (default 16)")
    p.add_argument("--impl", help="exercises (yours, the default) or solutions; or set LLAMA3_KIT_IMPL")
    p.add_argument("--dtype", help="bfloat16 or float32 (default: the checkpoint's)")
    p.add_argument("--rope-scale-factor", help="override the RoPE scale factor of a Llama 3.1/3.2 checkpoint")
    p.add_argument("--ranks", type=int, help="run your tensor-parallel generation (exercise 17) on this many processes of this machine")
    p.add_argument("--distributed", action="store_true", help="be one rank of the group torchrun started (RANK, WORLD_SIZE, "
                                                               "MASTER_ADDR, MASTER_PORT); rank 0 prints (docs/tensor-parallel.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    p.set_defaults(run=run)


def load_implementation(impl: str):
    """The implementation's tokenizer and generation modules."""
    from ..engine import impl as impls
    return impls.module(impl, "ex01_tokenizer"), impls.module(impl, "ex12_generation")


def text_codec(tok, ck):
    """(encode, decode, stop ids) for the checkpoint: the implementation's own exercise 1 on Llama 3's tokenizer, the
    kit's tokenizer for any other (exercise 1 is Llama 3's tokenizer only)."""
    from ..engine.calls import invoke

    if not ck.tokenizer.is_llama3:
        return ck.tokenizer.encode, ck.tokenizer.decode, ck.tokenizer.stop_ids
    tokenizer = invoke(tok.load_tokenizer, ck.tokenizer_path)
    return (lambda text: invoke(tok.encode, tokenizer, text)), (lambda ids: invoke(tok.decode, tokenizer, ids)), tok.STOP_TOKENS


def run(args) -> int:
    from ..engine import impl as impls

    impl = impls.choice(args.impl)
    if args.max_new_tokens < 1:
        raise KitError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.ranks is not None or args.distributed:
        from . import generate_ranks

        return generate_ranks.run(args, impl)
    return _run(args, impl)


def _run(args, impl: str) -> int:
    import torch

    from ..formats import checkpoint
    from ..engine.calls import GradeFailure, NotStarted, invoke

    dtype = checkpoint.parse_dtype(args.dtype) if args.dtype else None
    ck = checkpoint.load(args.checkpoint, dtype, args.rope_scale_factor)
    if ck.nbytes > PAGE_IN_ABOVE:
        checkpoint.page_in(ck.weights)
    try:
        tok, gen = invoke(load_implementation, impl)
        encode, decode, stop_ids = text_codec(tok, ck)
        prompt_ids = encode(args.prompt)
        if not prompt_ids:
            raise KitError(f"the prompt is empty and {ck.tokenizer.name} has no BOS token to start from: pass --prompt TEXT")
        if len(prompt_ids) + args.max_new_tokens > ck.args.max_seq_len:
            raise KitError(f"the prompt has {len(prompt_ids)} tokens; with --max-new-tokens {args.max_new_tokens} that passes "
                           f"max_seq_len {ck.args.max_seq_len}: shorten the prompt or generate fewer tokens")
        generated, top10 = [], []
        show = _streamer(decode)
        with torch.inference_mode():
            for token, logits in invoke(gen.generate, prompt_ids, ck.weights, ck.args, args.max_new_tokens, stop_ids):
                if not generated:
                    values, ids = logits.float().topk(10)
                    top10 = [[int(i), round(float(v), 4)] for i, v in zip(ids, values)]
                generated.append(int(token))
                if not args.json:
                    show(generated)
        text = decode(generated)
    except NotStarted as e:
        raise KitError(f"{e} (or run the reference with --impl solutions)") from None
    except GradeFailure as e:
        raise KitError(" ".join(str(e).split())) from None
    if args.json:
        print(json.dumps({"checkpoint": str(ck.folder), "impl": impl, "dtype": str(ck.dtype).removeprefix("torch."),
                          "prompt": args.prompt, "prompt_ids": prompt_ids, "generated_ids": generated, "text": text,
                          "top10": top10, "tokenizer": ck.tokenizer.name}, ensure_ascii=False))
    else:
        print()
    return 0


def _streamer(decode):
    """A function that prints the part of the decoded text not yet shown, holding back a half-decoded character."""
    shown = ""

    def show(generated: list[int]) -> None:
        nonlocal shown
        text = decode(generated)
        if not text.endswith("\ufffd"):
            sys.stdout.write(text[len(shown):])
            sys.stdout.flush()
            shown = text

    return show
