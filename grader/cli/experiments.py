"""The experiment cell of an extra's notebook: experiment(N, file) runs exercise N's experiment with the code the notebook's
cell saved (earlier exercises are the reference's, as in grading), on the trained SmolLM2 when it is fetched and on the
tiny Llama 3 otherwise, and shows its tables and pictures inline."""

import importlib
import shutil
import tempfile
from pathlib import Path

from ..errors import KitError
from ..i18n import pick

PROMPTS = {"tiny": "the answer to the ultimate question of life, the universe, and everything is ",
           "trained": "The capital of France is"}
SETTINGS = {"T 1": (1.0, None, None), "T 0.6, top-p 0.9": (0.6, None, 0.9), "T 1.5, top-k 10": (1.5, 10, None)}
QUESTIONS = ("What is the capital of France?", "And of Italy?")


def experiment(number: int, path: str | Path | None = None, lang: str | None = None) -> None:
    """Run exercise number's experiment on the file the code cell saved (default exNN_<topic>.py here); print and show."""
    from ..engine import impl as impls
    from ..engine.calls import GradeFailure, NotStarted
    from ..engine.grading import first_on_path
    from ..learner import curriculum, workspace

    e = curriculum.get(number, lang)
    runner = RUNNERS.get(number)
    if runner is None:
        raise KitError(pick(f"{e.heading(lang)} has no experiment cell", f"{e.heading(lang)} 没有实验单元格", lang))
    source = Path(path or e.stub)
    if not source.is_file():
        raise KitError(pick(f"{source} not found: run the cell with your code first (its %%writefile line saves it)",
                            f"找不到 {source}：请先运行包含你代码的单元格（它的 %%writefile 行会保存文件）", lang))
    ck = _model()
    with tempfile.TemporaryDirectory(prefix="llama3-experiment-") as tmp:
        shutil.copytree(workspace.exercises(), Path(tmp) / "exercises", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copyfile(source, Path(tmp) / "exercises" / e.stub)
        with first_on_path(Path(tmp)):
            mod = importlib.import_module(f"exercises.{e.module}")
            with impls.isolated(mod):
                print(pick(f"{e.heading(lang)}, on {ck.folder.name}:", f"{e.heading(lang)}，模型 {ck.folder.name}：", lang))
                try:
                    for text, figure in runner(mod, ck):
                        print(text, flush=True)
                        if figure is not None:
                            _show(figure)
                except (NotStarted, GradeFailure) as error:
                    print(str(error))


def _model():
    """The trained SmolLM2 when fetched, else the tiny Llama 3 fixture."""
    from ..formats import checkpoint
    from ..formats.gguf import trained_folder

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


def sampling(mod, ck):
    """Exercise 13: the next-token distribution under three settings (table and bars), then three seeded samples."""
    import torch

    from .. import pictures
    from ..engine.calls import invoke
    from solutions.ex11_forward import forward

    ids = ck.tokenizer.encode(_prompt(ck))
    weights = _float32(ck)
    with torch.inference_mode():
        logits = forward(torch.tensor(ids), weights, ck.args)[-1]  # [vocab_size]
        probs = {name: invoke(mod.probabilities, logits, *s) for name, s in SETTINGS.items()}  # each [vocab_size]
        top = probs["T 1"].topk(10).indices.tolist()
        labels = [ck.tokenizer.decode([i]) for i in top]
        rows = [f"  {'token':>14}  " + "  ".join(f"{name:>16}" for name in SETTINGS)]
        rows += [f"  {label!r:>14}  " + "  ".join(f"{float(p[i]):16.4f}" for p in probs.values()) for i, label in zip(top, labels)]
        yield f"after {_prompt(ck)!r}, the 10 most likely tokens:\n" + "\n".join(rows), \
            pictures.distributions({name: p[top] for name, p in probs.items()}, labels, "the next token under three settings")
        for seed in range(3):
            sampler = invoke(mod.Sampler, 0.8, 50, 0.9, seed)
            steps = invoke(mod.generate, ids, weights, ck.args, 12, ck.tokenizer.stop_ids, sampler=sampler)
            yield f"  seed {seed} (T 0.8, top-k 50, top-p 0.9): {ck.tokenizer.decode([t for t, _ in steps])!r}", None


def chat(mod, ck):
    """Exercise 14: a two-turn conversation with the model, then the tokens of its first turn, one per line."""
    import torch

    from ..engine.calls import invoke
    from .chat import DEFAULT_SYSTEM

    t = ck.tokenizer
    conversation = invoke(mod.Chat, _float32(ck), ck.args, t.encoding, t.chat_format, t.stop_ids, 512, DEFAULT_SYSTEM.get(t.name))
    with torch.inference_mode():
        for question in QUESTIONS:
            reply = invoke(conversation.ask, question, 24)
            yield f"you> {question}\nllama> {t.decode([token for token, _ in reply])}", None
    first = conversation.tokens[:40]
    yield (f"the conversation is {len(conversation.tokens)} tokens ({t.chat_format}); the first {len(first)}:\n"
           + "\n".join(f"  {i:3d} {token:7d} {t.decode([token])!r}" for i, token in enumerate(first))), None


def experiments(mod, ck):
    """Exercise 15: the four experiments of `llama3-grader explore`."""
    from solutions.ex11_forward import forward
    from .explore import explore

    for r in explore(mod, forward, ck, _prompt(ck) + (" Paris, and the capital of Italy is" if not ck.tokenizer.is_llama3 else ""),
                     [1, 2, 3, 4], layer=min(5, ck.args.n_layers - 1)):
        yield f"{r.title}\n{r.table}", r.draw()


def _float32(ck):
    import torch

    from ..formats.checkpoint import CastOnRead

    return CastOnRead(ck.weights, torch.float32)


RUNNERS = {13: sampling, 14: chat, 15: experiments}
