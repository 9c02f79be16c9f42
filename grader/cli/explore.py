"""`llama3-grader explore [N]`: exercise 15's experiments on a checkpoint, with the implementation under test: the
tables printed, the pictures written as PNGs. 1 attention map, 2 the prediction from every position, 3 the same
without the causal mask, 4 RoPE drawn."""

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import KitError
from ..i18n import LANGS, say
from . import on_device

NAMES = {1: "attention", 2: "predictions", 3: "unmasked", 4: "rope"}
DEFAULT_PROMPT = "The capital of France is Paris, and the capital of Italy is"
ROPE_POSITIONS = 64
TELLING = (5, 2)  # the layer and head whose map shows the attention sink on SmolLM2 (docs/experiments.md)


@dataclass
class Result:
    number: int
    title: str
    table: str
    draw: Callable  # () -> a matplotlib Figure

    @property
    def file_name(self) -> str:
        return f"{self.number}-{NAMES[self.number]}.png"


def register(sub) -> None:
    p = sub.add_parser("explore", help="exercise 15's experiments: attention maps, predictions, no mask, RoPE "
                                       "(tables and PNGs)")
    p.add_argument("number", type=int, nargs="?", choices=sorted(NAMES), help="one experiment: " +
                   ", ".join(f"{n} {name}" for n, name in NAMES.items()) + " (default: all four)")
    p.add_argument("--checkpoint", help="model folder (default: LLAMA3_CHECKPOINT, else fixtures/models/tiny-llama3)")
    p.add_argument("--impl", help="exercises (yours, the default) or solutions; or set LLAMA3_KIT_IMPL")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="the text to look at")
    p.add_argument("--layer", type=int, help=f"the layer of the attention map (default {TELLING[0]}, or the last)")
    p.add_argument("--head", type=int, help=f"the head of the attention map (default {TELLING[1]}, or the last)")
    p.add_argument("--top-k", type=int, default=5, help="predictions per position (default 5)")
    p.add_argument("--out", type=Path, default=Path("pictures"), help="folder for the PNGs (default: ./pictures)")
    on_device.add_argument(p)
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..engine import impl as impls
    from ..engine.calls import GradeFailure, NotStarted, invoke
    from ..formats import checkpoint
    from .. import pictures

    device = on_device.choice(args)
    pictures.require()  # before any table is printed
    ck = checkpoint.load(args.checkpoint)
    checkpoint.page_in(ck.weights, ck.folder)
    impl = impls.choice(args.impl)
    layer, head = telling_head(ck.args)
    numbers = [args.number] if args.number else sorted(NAMES)
    try:
        mod, fwd = (invoke(impls.module, impl, name) for name in ("ex15_experiments", "ex11_forward"))
        results = explore(mod, fwd.forward, ck, args.prompt, numbers, layer if args.layer is None else args.layer,
                          head if args.head is None else args.head, args.top_k, device)
    except NotStarted as e:
        raise KitError(f"{e} (or explore with the reference: --impl solutions)") from None
    except GradeFailure as e:
        raise KitError(" ".join(str(e).split())) from None
    from ..files import make_folder

    make_folder(args.out.expanduser())
    for r in results:
        print(f"{r.title}\n{r.table}\n")
    for r in results:
        path = pictures.save(r.draw(), args.out.expanduser() / r.file_name)
        print(say("cli.explore.wrote", lang=getattr(args, "lang", None), path=path))
    return 0


def telling_head(args) -> tuple[int, int]:
    """The default (layer, head) of the attention map: the one the docs show, or the model's last where it has
    fewer."""
    return min(TELLING[0], args.n_layers - 1), min(TELLING[1], args.n_heads - 1)


def explore(mod, forward, ck, prompt: str, numbers: list[int], layer: int = 0, head: int = 0, k: int = 5,
            device: str = "cpu") -> list[Result]:
    """The experiments numbered, run with mod (an exercise 15 module) and forward (exercise 11's, for the masked
    predictions) on the checkpoint, in float32, on device; what they give comes back to the CPU."""
    import torch

    from .. import devices, pictures
    from ..engine.calls import invoke

    args = ck.args
    if not 0 <= layer < args.n_layers:
        raise KitError(f"--layer {layer}: the model has layers 0 to {args.n_layers - 1}")
    if not 0 <= head < args.n_heads:
        raise KitError(f"--head {head}: the model has heads 0 to {args.n_heads - 1}")
    if not 1 <= k <= args.vocab_size:
        raise KitError(f"--top-k must be between 1 and {args.vocab_size}, got {k}")
    ids = ck.tokenizer.encode(prompt)
    if not ids:
        raise KitError("the prompt is empty: pass --prompt TEXT")
    weights = on_device.weights(ck, torch.float32, device)  # cast as each is read

    def piece(i):
        return ck.tokenizer.decode([i])

    def on_cpu(t):
        return devices.to_device(t, "cpu")

    labels = [piece(i) for i in ids]
    results = []
    with devices.on(device), torch.inference_mode():
        tokens = torch.tensor(ids)  # [seq]
        for n in numbers:
            if n == 1:
                probs = on_cpu(invoke(mod.attention_probs, tokens, weights, args, layer)[head])  # [seq, seq]
                title = f"attention, layer {layer}, head {head}"
                results.append(Result(n, title, attention_table(probs, labels),
                                      lambda p=probs, t=title: pictures.attention_map(p, labels, t)))
            elif n in (2, 3):
                fwd = mod.forward_unmasked if n == 3 else forward
                logits = invoke(fwd, tokens, weights, args)  # [seq, vocab_size]
                top_probs, top_ids = on_cpu(invoke(mod.top_predictions, logits, k))  # [seq, k] x 2
                title = "the next token after each position" + (", without the causal mask" if n == 3 else "")
                results.append(Result(n, title, predictions_table(top_probs, top_ids, labels, piece),
                                      lambda p=top_probs, i=top_ids, t=title:
                                      pictures.predictions(p, i, labels, piece, t)))
            else:
                from solutions.ex05_qkv import project_qkv
                from solutions.ex04_rms_norm import rms_norm
                from solutions.ex06_rope import precompute_freqs_cis

                x = rms_norm(weights["tok_embeddings.weight"][tokens[-1:]], weights["layers.0.attention_norm.weight"],
                             args.norm_eps)
                q = project_qkv(x, weights["layers.0.attention.wq.weight"], weights["layers.0.attention.wk.weight"],
                                weights["layers.0.attention.wv.weight"], args.n_heads,
                                args.n_kv_heads)[0][0, head]  # [head_dim]
                freqs_cis = precompute_freqs_cis(args.head_dim, ROPE_POSITIONS, args.rope_theta, args.rope_scale_factor)
                points = invoke(mod.rope_rotation, q, freqs_cis)  # [positions, head_dim // 2, 2]
                points, freqs_cis = on_cpu((points, freqs_cis))
                title = (f"RoPE: the pairs of layer 0's query (head {head}, last token) at positions "
                         f"0..{ROPE_POSITIONS - 1} (dark to light)")
                results.append(Result(n, title, rope_table(freqs_cis),
                                      lambda p=points, t=title: pictures.rope_pairs(p, t)))
    return results


def _show(piece: str) -> str:
    return repr(piece)[1:-1] if piece else "''"


def attention_table(probs, labels: list[str], top: int = 3) -> str:
    """Each token, and the tokens it attends to most."""
    lines = []
    for i, row in enumerate(probs):
        values, where = row.topk(min(top, i + 1))
        seen = ", ".join(f"{_show(labels[j])!s:>12} {float(v):.2f}" for v, j in zip(values, where.tolist()))
        lines.append(f"  {i:3d} {_show(labels[i]):>14} -> {seen}")
    return "\n".join(lines)


def predictions_table(probs, ids, labels: list[str], piece) -> str:
    """Each token, and the k tokens predicted after it."""
    return "\n".join(f"  {i:3d} {_show(labels[i]):>14} -> "
                     + " · ".join(f"{_show(piece(int(t)))} {float(p):.2f}" for p, t in zip(ps, ts))
                     for i, (ps, ts) in enumerate(zip(probs, ids)))


def rope_table(freqs_cis) -> str:
    """The pairs the picture draws: radians per position, positions per full turn."""
    import math

    from ..pictures import rope_shown

    freqs = freqs_cis[1].angle().abs()  # [head_dim // 2]: the angle at position 1 is the frequency
    return "\n".join(f"  pair {i:3d}: {float(freqs[i]):.4g} rad per position, a full turn every "
                     f"{2 * math.pi / float(freqs[i]):.4g} positions" for i in rope_shown(len(freqs)))
