"""`llama3-grader bench --compile`: the implementation's static decode step (exercise 18) run eagerly and compiled by
its own compile_step, beside its exercise 12 (the kit's eager reference), on the chosen device (--device, else
LLAMA3_KIT_DEVICE, else the CPU), against the bounds measured there.

In a round every contender decodes --new-tokens tokens after its prefill. On the CPU they take turns token by token
(ours eager, ours compiled, exercise 12, a read pass, a kernel-bound pass; the order rotating), as bench.py's
contenders do, so that a machine busy for a while slows them alike. On a GPU each decodes its tokens in one run,
synchronised before and after and never between (the static loop never waits for the device), the order rotating
from round to round. Figures are medians over --repeats rounds; ratios are medians of each round's own ratio.

  eager_tok_s              exercise 18's decode_step, not compiled
  compiled_tok_s           the same step through compile_step (on CUDA: CUDA graphs; inductor's coordinate-descent
                           tuning on, as gpt-fast sets it)
  exercise12_tok_s         exercise 12's generate, one token at a time with its KV cache (None when not done)
  compile_s                the first compiled call: tracing, code generation and one run; warmup_s: the next two
                           (CUDA graphs record on them)
  bandwidth_bound_tok_s    read bandwidth measured on the model's matrices / their bytes per token
  kernel_bound_tok_s       1 / the time of one [1, in] x [out, in] F.linear through every matrix
  launches_per_token       one decode step as torch.profiler counts it: kernel and graph launches on CUDA, operators
                           dispatched to aten on the CPU (the C++ a compiled CPU step runs is not counted)
"""

import statistics
import time

FLOOR, AIM = 0.5, 0.7  # of the bandwidth bound, for the reference's compiled decode of the 8B shape on a GPU
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch",
            "cuGraphLaunch")


class StaticDecode:
    """Exercise 18's decode loop on one cache and RoPE table, with the step given (eager or compiled): start()
    prefills, each step() decodes one token, which stays on the device."""

    def __init__(self, mod, weights, args, prompt_ids: list[int], max_seq_len: int, device, step):
        import torch

        dtype = weights["tok_embeddings.weight"].dtype
        self.mod, self.weights, self.args, self.device, self.decode_step = mod, weights, args, device, step
        self.prompt = torch.tensor(prompt_ids, device=device)
        self.cache = mod.StaticCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype,
                                     device=device)
        self.rope = mod.rope_tables(args.head_dim, max_seq_len, args.rope_theta, args.rope_scale_factor,
                                    device=device)
        for tensor in [*weights.values(), *self.rope]:  # as exercise 18's generate does
            torch._dynamo.mark_static_address(tensor)

    def start(self) -> None:
        """The prompt through the implementation's forward: the first token [1] and its position [1]."""
        import torch

        input_pos = torch.arange(self.prompt.shape[0], device=self.device)
        logits = self.mod.forward(self.prompt, input_pos, self.weights, self.args, self.cache, self.rope)[-1]
        self.token, self.input_pos = logits.argmax(-1, keepdim=True), input_pos[-1:] + 1

    def step(self) -> None:
        token, _ = self.decode_step(self.token, self.input_pos, self.weights, self.args, self.cache, self.rope)
        self.token = token.clone()  # a CUDA graph's next replay writes over its outputs
        self.input_pos += 1


class Exercise12:
    """Exercise 12's generate as a contender: start() takes the prefill's token, each step() one more."""

    def __init__(self, generate, prompt_ids, weights, args, new_tokens: int):
        self.run = lambda: iter(generate(prompt_ids, weights, args, new_tokens + 1, ()))

    def start(self) -> None:
        self.tokens = self.run()
        next(self.tokens)

    def step(self) -> None:
        next(self.tokens)


class Pass:
    """A bound's pass as a contender: each step() runs it once, as a token would."""

    def __init__(self, run):
        self.step = run

    def start(self) -> None:
        pass


def bound_passes(mats: list, device) -> tuple[Pass, Pass]:
    """Every matrix read once (a float32 sum over its bytes, the fastest streaming read torch offers), and one
    [1, in] x [out, in] F.linear through every matrix (2-D, as the reference multiplies)."""
    import torch
    import torch.nn.functional as F

    flats = [w.reshape(-1).view(torch.float32) if w.element_size() < 4 and w.nbytes % 4 == 0 else w.reshape(-1)
             for w in mats]
    xs = {(w.shape[1], w.dtype): torch.randn(1, w.shape[1], device=device).to(w.dtype) for w in mats}

    def read():
        for flat in flats:
            flat.sum()

    def kernel():
        for w in mats:
            F.linear(xs[(w.shape[1], w.dtype)], w)

    return Pass(read), Pass(kernel)


def seconds(contender, n: int, device) -> float:
    """n steps of contender, synchronised on device before and after them only."""
    from .. import devices

    devices.synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        contender.step()
    devices.synchronize(device)
    return time.perf_counter() - start


def one_round(contenders: dict, new_tokens: int, device, lockstep: bool, r: int) -> dict:
    """Seconds each contender took for new_tokens steps after its start: token by token in turn (lockstep), or each
    in one run; the order rotates with the token (or with the round r)."""
    names, spent = list(contenders), dict.fromkeys(contenders, 0.0)
    for contender in contenders.values():
        contender.start()
    for i in range(new_tokens if lockstep else 1):
        k = (i if lockstep else r) % len(names)
        for name in names[k:] + names[:k]:
            spent[name] += seconds(contenders[name], 1 if lockstep else new_tokens, device)
    return spent


def launches(contender, device) -> int | None:
    """One step of contender as torch.profiler counts it: kernel and graph launches on CUDA, top-level aten operators
    on the CPU; None where the profiler cannot say (MPS)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from .. import devices

    kind = torch.device(device).type
    if kind not in ("cpu", "cuda"):
        return None
    contender.start()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if kind == "cuda" else [])) as prof:
        contender.step()
        devices.synchronize(device)
    events = prof.events()
    if kind == "cuda":
        return sum(e.name in LAUNCHES for e in events)
    return sum(e.name.startswith("aten::") and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
               for e in events)


def resident(weights) -> dict:
    """The weights copied out of the memory-mapped file into the process's own memory (a tensor held twice, as a tied
    output.weight, copied once): a file's pages can be dropped and read again from disk while the bench runs, when
    the machine runs short of memory, and every contender would then be timing the disk."""
    copies: dict[tuple, object] = {}

    def copy(w):
        key = (w.untyped_storage().data_ptr(), w.storage_offset(), tuple(w.shape), w.dtype)
        if key not in copies:
            copies[key] = w.clone()
        return copies[key]

    return {name: copy(w) for name, w in weights.items()}


def exercise12(impl: str):
    """The implementation's exercise 12 generate, or None where it is not done."""
    from ..engine import impl as impls

    try:
        return impls.module(impl, "ex12_generation").generate
    except Exception:  # not started or broken: the bench measures exercise 18 without it
        return None


def exercise12_tok_s(generate, prompt_ids, weights, args, new_tokens: int, device) -> float:
    """Exercise 12's decode tokens per second after its prefill (its loop waits for each token anyway)."""
    contender = Exercise12(generate, prompt_ids, weights, args, new_tokens)
    contender.start()
    return new_tokens / seconds(contender, new_tokens, device)


def measure(ck, impl: str, prompt_ids: list[int], new_tokens: int, repeats: int, device: str,
            progress=lambda message: None) -> dict:
    import contextlib

    import torch

    from .. import devices
    from ..engine import impl as impls
    from ..formats.int8 import matrices

    mod = impls.module(impl, "ex18_static_decode")
    on_cpu, on_cuda = torch.device(device).type == "cpu", torch.device(device).type == "cuda"
    weights = resident(ck.weights) if on_cpu else devices.to_device(dict(ck.weights), device)
    mats = matrices(weights)
    max_seq_len = len(prompt_ids) + new_tokens + 1
    tuning = contextlib.nullcontext()
    if on_cuda:  # as gpt-fast sets it
        import torch._inductor.config as inductor

        tuning = inductor.patch(coordinate_descent_tuning=True)
    with devices.on(device), torch.no_grad(), tuning:
        read, kernel = bound_passes(mats, device)
        eager = StaticDecode(mod, weights, ck.args, prompt_ids, max_seq_len, device, mod.decode_step)
        compiled = StaticDecode(mod, weights, ck.args, prompt_ids, max_seq_len, device,
                                mod.compile_step(mod.decode_step, device))
        progress("compiling the decode step")
        compiled.start()
        compile_s = seconds(compiled, 1, device)
        warmup_s = seconds(compiled, 2, device)
        counted = {"eager": launches(eager, device), "compiled": launches(compiled, device)}
        contenders = {"eager_tok_s": eager, "compiled_tok_s": compiled, "read_s": read, "kernel_s": kernel}
        generate = exercise12(impl)
        if generate is not None:
            contenders["exercise12_tok_s"] = Exercise12(generate, prompt_ids, weights, ck.args, new_tokens)
        rounds = []
        for r in range(repeats):
            progress(f"round {r + 1}/{repeats}")
            spent = one_round(contenders, new_tokens, device, lockstep=on_cpu, r=r)
            rounds.append({name.replace("_tok_s", "_s"): s for name, s in spent.items()})
    for x in rounds:
        for name in ("eager", "compiled", "exercise12"):
            if f"{name}_s" in x:
                x[f"{name}_tok_s"] = new_tokens / x[f"{name}_s"]
        x["bandwidth_bound_tok_s"], x["kernel_bound_tok_s"] = new_tokens / x["read_s"], new_tokens / x["kernel_s"]
    bytes_per_token = sum(w.numel() * w.element_size() for w in mats)
    return _result(ck, impl, device, prompt_ids, new_tokens, repeats, rounds, bytes_per_token, compile_s, warmup_s,
                   counted, on_cuda)


def _result(ck, impl, device, prompt_ids, new_tokens, repeats, rounds, bytes_per_token, compile_s, warmup_s, counted,
            on_cuda) -> dict:
    import platform

    import torch

    def med(key):
        values = [x[key] for x in rounds if key in x]
        return statistics.median(values) if values else None

    def med_ratio(a, b):
        values = [x[a] / x[b] for x in rounds if a in x and b in x]
        return statistics.median(values) if values else None

    to_bound = med_ratio("compiled_tok_s", "bandwidth_bound_tok_s")
    return {
        "impl": impl, "checkpoint": str(ck.folder), "dtype": str(ck.dtype).removeprefix("torch."),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_cuda else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "prompt_tokens": len(prompt_ids), "new_tokens": new_tokens,
        "repeats": repeats, "torch": torch.__version__,
        "eager_tok_s": med("eager_tok_s"), "compiled_tok_s": med("compiled_tok_s"),
        "exercise12_tok_s": med("exercise12_tok_s"), "compile_s": compile_s, "warmup_s": warmup_s,
        "weight_bytes_per_token": bytes_per_token,
        "read_bandwidth_gb_s": bytes_per_token * med("bandwidth_bound_tok_s") / 1e9,
        "bandwidth_bound_tok_s": med("bandwidth_bound_tok_s"), "kernel_bound_tok_s": med("kernel_bound_tok_s"),
        "launches_per_token": {**counted, "what": "kernel launches" if on_cuda else "aten operators"},
        "coordinate_descent_tuning": on_cuda,
        "ratios": {"compiled_vs_eager": med_ratio("compiled_tok_s", "eager_tok_s"),
                   "compiled_vs_exercise12": med_ratio("compiled_tok_s", "exercise12_tok_s"),
                   "eager_vs_exercise12": med_ratio("eager_tok_s", "exercise12_tok_s"),
                   "compiled_vs_bandwidth_bound": to_bound,
                   "eager_vs_bandwidth_bound": med_ratio("eager_tok_s", "bandwidth_bound_tok_s"),
                   "exercise12_vs_bandwidth_bound": med_ratio("exercise12_tok_s", "bandwidth_bound_tok_s"),
                   "compiled_vs_kernel_bound": med_ratio("compiled_tok_s", "kernel_bound_tok_s")},
        "floor": ({"floor": FLOOR, "aim": AIM, "meets_floor": to_bound >= FLOOR, "meets_aim": to_bound >= AIM}
                  if on_cuda else None),
        "rounds": rounds,
    }


def run(args, impl: str, progress, device: str) -> dict:
    from ..formats import checkpoint
    from .textio import check_length

    dtype = checkpoint.parse_dtype(args.dtype) if args.dtype else None
    ck = checkpoint.load(args.checkpoint, dtype, args.rope_scale_factor)
    checkpoint.page_in(ck.weights, ck.folder)
    prompt_ids = ck.tokenizer.encode(args.prompt)
    check_length(len(prompt_ids), args.new_tokens + 1, ck.args.max_seq_len, "--new-tokens")
    return measure(ck, impl, prompt_ids, args.new_tokens, args.repeats, device, progress)


def report(r: dict) -> str:
    """The figures as a few aligned lines, and on a GPU where the compiled decode stands against the floor."""
    ratios, gb = r["ratios"], 1e9

    def of_bound(key):
        return f"{ratios[key]:5.0%} of the bandwidth bound" if ratios[key] is not None else ""

    launched = r["launches_per_token"]
    count = ("" if launched["eager"] is None else
             f"\n  per token              {launched['eager']:9d} {launched['what']} eager, {launched['compiled']} "
             "compiled")
    versus12 = f", {ratios['compiled_vs_exercise12']:.2f}x exercise 12" if ratios["compiled_vs_exercise12"] else ""
    lines = [
        f"bench --compile: {r['impl']} on {r['checkpoint']} ({r['dtype']}), {r['device']} ({r['device_name']}), "
        f"{r['threads']} thread(s), prompt {r['prompt_tokens']} tokens, {r['new_tokens']} new tokens, "
        f"medians of {r['repeats']}",
        ("  exercise 12, eager     "
         + (f"{r['exercise12_tok_s']:9.2f} tok/s   {of_bound('exercise12_vs_bandwidth_bound')}"
            if r["exercise12_tok_s"] else "     not done")),
        f"  static step, eager     {r['eager_tok_s']:9.2f} tok/s   {of_bound('eager_vs_bandwidth_bound')}",
        f"  static step, compiled  {r['compiled_tok_s']:9.2f} tok/s   {of_bound('compiled_vs_bandwidth_bound')}, "
        f"{ratios['compiled_vs_eager']:.2f}x eager{versus12}",
        f"  compile                {r['compile_s']:9.1f} s       (then {r['warmup_s']:.1f} s for two warm-up steps)"
        + count,
        f"  bandwidth bound        {r['bandwidth_bound_tok_s']:9.2f} tok/s   "
        f"({r['read_bandwidth_gb_s']:.1f} GB/s read, {r['weight_bytes_per_token'] / gb:.2f} GB per token)",
        f"  kernel bound           {r['kernel_bound_tok_s']:9.2f} tok/s   "
        f"(compiled reaches {ratios['compiled_vs_kernel_bound']:.0%})",
    ]
    floor = r["floor"]
    if floor is not None:
        verdict = ("meets the aim" if floor["meets_aim"] else "meets the floor" if floor["meets_floor"]
                   else "is BELOW the floor")
        lines.append(f"  on a GPU the reference's compiled decode of the 8B shape should reach {floor['floor']:.0%} of "
                     f"the bound (aim {floor['aim']:.0%}): this run, at {ratios['compiled_vs_bandwidth_bound']:.0%}, "
                     f"{verdict}")
    return "\n".join(lines)
