"""`llama3-grader bench --int8`: the implementation's int8 model (exercise 16) against the reference in the checkpoint's
dtype, on the same checkpoint, in the same run.

Both decode in lockstep, one token each in turn, as in bench.py, each next to its own bandwidth bound (the bytes of
matrices it reads per token over the read bandwidth measured on those very tensors). Peak memory is measured in two
fresh processes, one per model, each loading, preparing (the int8 one quantizing from the memory-mapped file, tensor
by tensor) and decoding as many tokens: a process's peak resident memory cannot be split between two models.

  decode_tok_s            new tokens per second after the first (the KV cache, one token per forward)
  bandwidth_bound_tok_s   read bandwidth on the model's matrices / their bytes per token
  weight_bytes_per_token  every matrix once (int8 values and float32 scales for the int8 model)
  peak_rss_bytes          VmHWM of the fresh process that ran that model alone
  quantize_s              seconds to build the int8 model from the checkpoint
"""

import json
import statistics
import subprocess
import sys
import time

from ..errors import KitError

PROBE = "import sys; from grader.cli.bench_int8 import probe; probe(sys.argv[1])"


def greedy(forward, prompt_ids: list[int], weights, args, n: int):
    """Greedy cached decoding with any forward of exercise 11's signature: (token, logits) pairs, as ex12's generate."""
    import torch

    from solutions.ex12_generation import KVCache

    cache = KVCache(args.n_layers, len(prompt_ids) + n, args.n_kv_heads, args.head_dim,
                    weights["tok_embeddings.weight"].dtype)
    tokens, start_pos = torch.tensor(prompt_ids), 0
    for _ in range(n):
        logits = forward(tokens, weights, args, cache, start_pos)[-1]  # [vocab_size]
        token = int(logits.argmax())
        yield token, logits
        start_pos += tokens.shape[0]
        tokens = torch.tensor([token])


def int8_model(ck, impl: str, progress=lambda message: None):
    """(the int8 weights of the implementation's quantize and is_quantized, seconds it took)."""
    from ..engine import impl as impls
    from ..formats import int8

    start = time.perf_counter()
    progress("quantizing, tensor by tensor")
    try:
        weights = int8.quantize_model(ck.weights, impls.module(impl, "ex16_int8"))
    except ValueError as e:
        raise KitError(f"{e}: fix quantize (pytest exercises/ -k ex16), or bench the reference with "
                       "--impl solutions") from None
    return weights, time.perf_counter() - start


def measure(ck, impl: str, prompt_ids: list[int], new_tokens: int, repeats: int, progress=lambda message: None) -> dict:
    import torch

    from . import timing
    from ..engine import impl as impls
    from ..formats import int8
    from solutions import ex11_forward

    forward8 = impls.module(impl, "ex16_int8").forward
    weights8, quantize_s = int8_model(ck, impl, progress)
    models = {"bf16": (ex11_forward.forward, ck.weights), "int8": (forward8, weights8)}
    reads = {k: timing.read_pass(int8.matrices(w)) for k, (_, w) in models.items()}
    nbytes = {k: int8.nbytes(w) for k, (_, w) in models.items()}
    n = new_tokens + 1
    rounds = []
    for r in range(repeats):
        steps = {k: timing.Steps(greedy, fwd, prompt_ids, w, ck.args, n) for k, (fwd, w) in models.items()}
        read_s = {k: [] for k in models}
        turns = [*(s.step for s in steps.values()), *(lambda k=k: read_s[k].append(reads[k]()) for k in models)]
        with torch.inference_mode():
            for i in range(n):
                if i % 8 == 0:
                    progress(f"round {r + 1}/{repeats}: token {i + 1}/{n}")
                for turn in turns[i % len(turns):] + turns[: i % len(turns)]:
                    turn()
        rounds.append({k: {"decode_tok_s": steps[k].decode_tok_s(), "prefill_ms": steps[k].prefill_ms(),
                           "bandwidth_bound_tok_s": len(read_s[k]) / sum(read_s[k])} for k in models})

    def med(k, key):
        return statistics.median([x[k][key] for x in rounds])

    progress("peak memory: each model alone in a fresh process")
    rss = {k: _peak_rss(ck, impl, k, prompt_ids, new_tokens) for k in models}
    result = {"impl": impl, "checkpoint": str(ck.folder), "dtype": str(ck.dtype).removeprefix("torch."),
              "threads": torch.get_num_threads(), "prompt_tokens": len(prompt_ids), "new_tokens": new_tokens,
              "repeats": repeats, "quantize_s": quantize_s, "rounds": rounds}
    for k in models:
        result[k] = {"decode_tok_s": med(k, "decode_tok_s"), "prefill_ms": med(k, "prefill_ms"),
                     "bandwidth_bound_tok_s": med(k, "bandwidth_bound_tok_s"),
                     "weight_bytes_per_token": nbytes[k], "peak_rss_bytes": rss[k]}
        per_round = [x[k]["decode_tok_s"] / x[k]["bandwidth_bound_tok_s"] for x in rounds]
        result[k]["decode_vs_bandwidth_bound"] = statistics.median(per_round)
    int8_vs_bf16 = statistics.median([x["int8"]["decode_tok_s"] / x["bf16"]["decode_tok_s"] for x in rounds])
    result["ratios"] = {"int8_vs_bf16_decode": int8_vs_bf16,
                        "int8_vs_bf16_peak_rss": rss["int8"] / rss["bf16"],
                        "int8_vs_bf16_bytes_per_token": nbytes["int8"] / nbytes["bf16"]}
    return result


def _peak_rss(ck, impl: str, which: str, prompt_ids: list[int], new_tokens: int) -> int:
    import torch

    spec = json.dumps({"folder": str(ck.folder), "dtype": str(ck.dtype).removeprefix("torch."), "impl": impl,
                       "which": which, "prompt_ids": prompt_ids, "new_tokens": new_tokens,
                       "threads": torch.get_num_threads()})
    done = subprocess.run([sys.executable, "-c", PROBE, spec], capture_output=True, text=True)
    if done.returncode != 0:
        raise KitError(f"the {which} memory probe failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_bytes"]


def probe(spec: str) -> None:
    """In a fresh process: load, prepare one model (quantize for int8), prefill and decode; print its peak RSS."""
    import torch

    from .timing import peak_rss_bytes
    from ..engine import impl as impls
    from ..formats import checkpoint
    from solutions import ex11_forward

    s = json.loads(spec)
    torch.set_num_threads(s["threads"])
    ck = checkpoint.load(s["folder"], s["dtype"])
    if s["which"] == "int8":
        weights, forward = int8_model(ck, s["impl"])[0], impls.module(s["impl"], "ex16_int8").forward
    else:
        weights, forward = ck.weights, ex11_forward.forward
    with torch.inference_mode():
        for _ in greedy(forward, s["prompt_ids"], weights, ck.args, s["new_tokens"] + 1):
            pass
    print(json.dumps({"peak_rss_bytes": peak_rss_bytes()}))


def report(r: dict) -> str:
    from .timing import size, whose

    b, q = r["bf16"], r["int8"]
    ratios = r["ratios"]
    return "\n".join([
        f"bench --int8: {whose(r['impl'])} int8 model against the reference in {r['dtype']} on {r['checkpoint']}, "
        f"{r['threads']} thread(s), "
        f"prompt {r['prompt_tokens']} tokens, {r['new_tokens']} new tokens, medians of {r['repeats']}",
        f"                         {r['dtype']:>14}   {'int8':>14}",
        f"  decode, KV cache       {b['decode_tok_s']:8.2f} tok/s   {q['decode_tok_s']:8.2f} tok/s   "
        f"({ratios['int8_vs_bf16_decode']:.2f}x)",
        f"  bandwidth bound        {b['bandwidth_bound_tok_s']:8.2f} tok/s   {q['bandwidth_bound_tok_s']:8.2f} tok/s",
        f"  decode / bound         {b['decode_vs_bandwidth_bound']:14.0%}   {q['decode_vs_bandwidth_bound']:14.0%}",
        f"  bytes per token        {size(b['weight_bytes_per_token']):>14}   {size(q['weight_bytes_per_token']):>14}   "
        f"({ratios['int8_vs_bf16_bytes_per_token']:.2f}x)",
        f"  peak RSS (alone)       {size(b['peak_rss_bytes']):>14}   {size(q['peak_rss_bytes']):>14}   "
        f"({ratios['int8_vs_bf16_peak_rss']:.2f}x)",
        f"  prefill                {b['prefill_ms']:11.1f} ms   {q['prefill_ms']:11.1f} ms",
        f"  quantizing took {r['quantize_s']:.1f} s",
    ])
