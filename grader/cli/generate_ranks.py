"""`llama3-grader generate --ranks N` and `--distributed`: the implementation's tensor-parallel generation (exercise
17), each rank holding its share of the checkpoint (one file, or Meta's shards: resharded to any rank count).

--ranks N starts N processes on this machine (grader/engine/ranks.py, gloo). --distributed makes this process one rank
of a group that torchrun started, on one machine or several:

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-id llama3-kit --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        -m grader.cli generate --distributed --checkpoint DIR

and rank 0 prints what generate prints. Tokens come out at the end, not streamed."""

import datetime
import os
import sys
import types

from ..errors import KitError

JOB_TIMEOUT = 3600.0


def rank_generate(parallel_generate, folder, prompt_ids, max_new_tokens, stop_tokens, dtype):
    """On one rank: its share, then parallel_generate; the tokens and the first step's top 10."""
    import torch
    import torch.distributed as dist

    from ..formats import checkpoint, shards

    args, weights = shards.rank_share(folder, dist.get_rank(), dist.get_world_size())
    if dtype:
        weights = checkpoint.cast(weights, dtype)
    tokens, top10 = [], []
    with torch.no_grad():  # not inference_mode: gloo's collectives have failed there
        for token, logits in parallel_generate(prompt_ids, weights, args, max_new_tokens, stop_tokens):
            if not tokens:
                values, ids = logits.float().topk(10)
                top10 = [[int(i), round(float(v), 4)] for i, v in zip(ids, values)]
            tokens.append(int(token))
    return {"generated_ids": tokens, "top10": top10}


def run(args, impl: str) -> int:
    from .textio import check_length, json_line, notes, text_codec
    from ..engine import impl as impls, ranks
    from ..engine.calls import GradeFailure, NotStarted, invoke
    from ..formats import checkpoint, shards, tokenizer as tokenizers

    folder = checkpoint.resolve(args.checkpoint)
    if args.distributed:  # one of many processes, maybe on many machines: each reads its share only
        model_args = checkpoint.read_args(folder, checkpoint.detect_layout(folder), args.rope_scale_factor)
        file_dtype = None
    else:  # what one process checks, checked here before the ranks start
        model_args, file_dtype = checkpoint.check(folder, args.rope_scale_factor)
    path = checkpoint.tokenizer_path(folder)
    dtype = str(checkpoint.parse_dtype(args.dtype)).removeprefix("torch.") if args.dtype else ""
    try:
        tok = invoke(impls.module, impl, "ex01_tokenizer")
        fn = invoke(impls.module, impl, "ex17_tensor_parallel").parallel_generate
        ck = types.SimpleNamespace(tokenizer=tokenizers.load(path), tokenizer_path=path, folder=folder)  # text_codec's
        encode, decode, stop_ids = text_codec(tok, ck)
        prompt_ids = encode(args.prompt)
        if not prompt_ids:
            raise KitError("the prompt is empty and this tokenizer has no BOS token to start from: pass --prompt TEXT")
        check_length(len(prompt_ids), args.max_new_tokens, model_args.max_seq_len)
        kwargs = {"folder": str(folder), "prompt_ids": prompt_ids, "max_new_tokens": args.max_new_tokens,
                  "stop_tokens": list(stop_ids), "dtype": dtype}
        if args.distributed:
            n, rank, result = _as_one_rank(fn, kwargs)
        else:
            shards.check_rank_count(model_args, args.ranks, str(folder))
            n, rank, result = args.ranks, 0, ranks.run(args.ranks, rank_generate, fn, kwargs, JOB_TIMEOUT,
                                                       isolated=False)[0]
        text = decode(result["generated_ids"])
    except NotStarted as e:
        raise KitError(f"{e} (or run the reference with --impl solutions)") from None
    except GradeFailure as e:
        raise KitError(" ".join(str(e).split())) from None
    finally:
        ranks.close_all()
    if rank != 0:
        return 0
    if args.json:
        print(json_line({"checkpoint": str(folder), "impl": impl, "ranks": n, "prompt": args.prompt,
                         "prompt_ids": prompt_ids, **result, "text": text, "tokenizer": tokenizers.load(path).name}))
    else:
        print(args.prompt + text)
        for line in notes(ck, checkpoint.parse_dtype(dtype) if dtype else file_dtype):
            print(line, file=sys.stderr)
    return 0


def _as_one_rank(fn, kwargs: dict) -> tuple[int, int, dict]:
    """Join torchrun's group (its environment variables), run rank_generate, leave: (world size, rank, result)."""
    import torch.distributed as dist

    from ..engine.ranks import COLLECTIVE_TIMEOUT

    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise KitError(f"--distributed is for a process torchrun started, and {', '.join(missing)} is not set: run "
                       "`torchrun --nproc-per-node N -m grader.cli generate --distributed ...`, or use --ranks N")
    dist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT * 30))
    try:
        from ..formats import checkpoint, shards

        folder = kwargs["folder"]
        shards.check_rank_count(checkpoint.read_args(checkpoint.resolve(folder),
                                                     checkpoint.detect_layout(checkpoint.resolve(folder))),
                                dist.get_world_size(), folder)
        return dist.get_world_size(), dist.get_rank(), rank_generate(fn, **kwargs)
    finally:
        dist.destroy_process_group()
