"""`llama3-grader bench --ranks N`: the implementation's tensor-parallel generation (exercise 17) on 1 rank and on N
ranks of this machine, each rank with --threads threads (default 1), in the checkpoint's dtype.

Rounds alternate: one generation on 1 rank, then one on N (two groups at once would share the cores). On every rank,
the seconds spent inside dist.all_reduce and dist.all_gather are counted, as measured: they include waiting for the
slowest rank.

  decode_tok_s          new tokens per second after the first, on rank 0
  prefill_ms            the prompt through the model once
  collective_ms_per_token  milliseconds per decoded token inside all_reduce and all_gather (mean over ranks)
  collective_share      that time over the time per token
  collectives_per_token the number of those calls per decoded token (2 per layer, 1 for the embedding, 1 gather)
"""

import statistics
import time

from ..errors import KitError

JOB_TIMEOUT = 3600.0


def rank_decode(parallel_generate, folder, prompt_ids, new_tokens, threads):
    """On one rank: this rank's share, then parallel_generate timed token by token, with the collectives' time."""
    import torch
    import torch.distributed as dist

    from ..formats import shards

    torch.set_num_threads(threads)
    args, weights = shards.rank_share(folder, dist.get_rank(), dist.get_world_size())
    spent, calls, original = [0.0], [0], {name: getattr(dist, name) for name in ("all_reduce", "all_gather")}

    def timed(fn):
        def wrapper(*a, **kw):
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - start
                calls[0] += 1
        return wrapper

    for name, fn in original.items():
        setattr(dist, name, timed(fn))
    try:
        times, marks = [], []
        with torch.no_grad():  # not inference_mode: gloo's collectives have failed there
            steps = iter(parallel_generate(prompt_ids, weights, args, new_tokens + 1, ()))
            for _ in range(new_tokens + 1):
                start = time.perf_counter()
                next(steps)
                times.append(time.perf_counter() - start)
                marks.append((spent[0], calls[0]))
    finally:
        for name, fn in original.items():
            setattr(dist, name, fn)
    decode_s = sum(times[1:])
    return {"prefill_ms": times[0] * 1000, "decode_tok_s": new_tokens / decode_s,
            "collective_s": marks[-1][0] - marks[0][0], "collective_calls": marks[-1][1] - marks[0][1],
            "decode_s": decode_s}


def measure(folder, impl: str, prompt_ids: list[int], new_tokens: int, repeats: int, n_ranks: int, threads: int,
            progress=lambda message: None) -> dict:
    from ..engine import impl as impls, ranks

    generate = impls.module(impl, "ex17_tensor_parallel").parallel_generate
    counts = sorted({1, n_ranks})
    rounds = []
    try:
        for r in range(repeats):
            per = {}
            for n in counts:
                progress(f"round {r + 1}/{repeats}: {n} rank(s)")
                results = ranks.run(n, rank_decode, generate, {"folder": str(folder), "prompt_ids": prompt_ids,
                                                               "new_tokens": new_tokens, "threads": threads},
                                    timeout=JOB_TIMEOUT)
                mean_collective = sum(x["collective_s"] for x in results) / n
                per[n] = {"decode_tok_s": results[0]["decode_tok_s"], "prefill_ms": results[0]["prefill_ms"],
                          "collective_ms_per_token": mean_collective / new_tokens * 1000,
                          "collective_share": mean_collective / results[0]["decode_s"],
                          "collectives_per_token": results[0]["collective_calls"] / new_tokens}
                ranks.close_all()  # the next round's other group has the cores to itself
            rounds.append(per)
    finally:
        ranks.close_all()
    out = {"impl": impl, "checkpoint": str(folder), "threads_per_rank": threads, "prompt_tokens": len(prompt_ids),
           "new_tokens": new_tokens, "repeats": repeats, "rounds": [{str(n): v for n, v in x.items()} for x in rounds]}
    for n in counts:
        out[f"{n}_ranks"] = {key: statistics.median([x[n][key] for x in rounds]) for key in rounds[0][n]}
    if n_ranks > 1:
        out["speedup"] = statistics.median([x[n_ranks]["decode_tok_s"] / x[1]["decode_tok_s"] for x in rounds])
    return out


def run(args, impl: str, progress) -> dict:
    from .textio import check_length
    from ..formats import checkpoint, shards, tokenizer

    folder = checkpoint.resolve(args.checkpoint)
    shards.check_rank_count(checkpoint.read_args(folder, checkpoint.detect_layout(folder), args.rope_scale_factor),
                            args.ranks, str(folder))
    model_args, _ = checkpoint.check(folder, args.rope_scale_factor)  # what one process checks, before the ranks start
    prompt_ids = tokenizer.load(checkpoint.tokenizer_path(folder)).encode(args.prompt)
    check_length(len(prompt_ids), args.new_tokens + 1, model_args.max_seq_len, "--new-tokens")
    if args.threads is not None and args.threads < 1:
        raise KitError(f"--threads must be at least 1, got {args.threads}")
    return measure(folder, impl, prompt_ids, args.new_tokens, args.repeats, args.ranks, args.threads or 1, progress)


def report(r: dict) -> str:
    from .timing import whose

    lines = [f"bench --ranks: {whose(r['impl'])} parallel_generate on {r['checkpoint']}, "
             f"{r['threads_per_rank']} thread(s) per rank, "
             f"prompt {r['prompt_tokens']} tokens, {r['new_tokens']} new tokens, medians of {r['repeats']}"]
    for key in sorted(k for k in r if k.endswith("_ranks")):
        x = r[key]
        lines.append(f"  {key.replace('_', ' '):9} decode {x['decode_tok_s']:8.2f} tok/s   "
                     f"prefill {x['prefill_ms']:8.1f} ms   "
                     f"all-reduce/all-gather {x['collective_ms_per_token']:7.2f} ms per token "
                     f"({x['collective_share']:.0%} of it, {x['collectives_per_token']:.0f} calls)")
    if "speedup" in r:
        lines.append(f"  speedup   {r['speedup']:.2f}x")
    return "\n".join(lines)
