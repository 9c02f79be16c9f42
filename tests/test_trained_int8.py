"""Exercise 16 on the trained SmolLM2-135M-Instruct: the reference's int8 model (every matrix int8, the embedding and
norms bf16, built tensor by tensor by grader/formats/int8.py) against the bf16 model, over the prompts of
tests/prompts.py, teacher-forced: the top-1 token agrees at >= 95% of positions of all 24 prompts (-m slow), and up to
bf16's own ties at >= 97% of positions of the 20 short ones (quickly); the mean KL divergence of the int8 model's
next-token distribution from the bf16 one's is printed. Skipped, with the line that fetches it, when the model is not
in the kit's cache.

Up to ties: where bf16's largest logit and the one of int8's top-1 token are within one bf16 step of each other, bf16
itself cannot order them, and CPUs order them differently (a matrix product's rounding differs by one step between
kernels). On the short prompts, 411 of 433 positions agree exactly on a CPU with AVX-512 BF16, under 95%, where AVX2
machines gave at least 412; 427 agree up to ties. Quantizing by rounding toward zero instead of to the nearest step
gives 408 (94%)."""

from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F

from gguf_kit import trained
from grader.formats import checkpoint, int8
from prompts import PROMPTS
from solutions import ex11_forward, ex16_int8

pytestmark = pytest.mark.usefixtures("one_thread")
MIN_TOP1_AGREEMENT = 0.95
MIN_TOP1_AGREEMENT_UP_TO_TIES = 0.97


# The quick test takes the prompts of at most SHORT tokens (20 of the 24): the long four cost most of the time, bf16
# matrix products being slow on a CPU without bf16 instructions; -m slow takes all 24.
SHORT = 100


@pytest.fixture(scope="module")
def models():
    """The trained model's checkpoint, and its int8 weights."""
    ck = checkpoint.load(trained())
    return ck, int8.quantize_model(ck.weights, ex16_int8)


class Figures(NamedTuple):
    """One prompt's comparison."""
    positions: int
    agree: int  # positions whose top-1 agrees
    kl: float  # KL(bf16 || int8) in nats, summed over the positions
    margins: list[float]  # bf16's top-1/top-2 margins where they disagree
    ties: int  # positions that agree up to bf16's ties


def compare(models, longest: int | None) -> dict[str, Figures]:
    """Per prompt of at most longest tokens (None: every prompt), its Figures."""
    ck, quantized = models
    out = {}
    with torch.no_grad():
        for name, text in PROMPTS.items():
            tokens = torch.tensor(ck.tokenizer.encode(text))
            if longest is not None and len(tokens) > longest:
                continue
            bf16 = ex11_forward.forward(tokens, ck.weights, ck.args)  # [seq, vocab_size] float32
            q = ex16_int8.forward(tokens, quantized, ck.args)
            agree = bf16.argmax(-1) == q.argmax(-1)  # [seq]
            kl = F.kl_div(F.log_softmax(q, -1), F.log_softmax(bf16, -1), log_target=True, reduction="sum")
            top2 = bf16.topk(2, dim=-1).values  # [seq, 2]
            margins = (top2[:, 0] - top2[:, 1])[~agree].tolist()
            out[name] = Figures(len(tokens), int(agree.sum()), float(kl), margins, int(agree_up_to_ties(bf16, q).sum()))
    return out


def agree_up_to_ties(bf16: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """[seq] bool: int8's top-1 token has a bf16 logit within one bf16 step of bf16's largest."""
    top = bf16.max(-1).values  # [seq]
    step = torch.finfo(torch.bfloat16).eps * torch.exp2(torch.floor(torch.log2(top.abs())))  # [seq]
    chosen = bf16.gather(-1, q.argmax(-1, keepdim=True)).squeeze(-1)  # [seq]: bf16's logit of int8's top-1
    return top - chosen <= step


def agreement(compared: dict[str, Figures]) -> tuple[float, float]:
    """The shares of positions whose top-1 agrees, exactly and up to ties, with the figures printed (pytest -s shows
    them)."""
    figures = compared.values()
    positions = sum(f.positions for f in figures)
    agree = sum(f.agree for f in figures)
    kl = sum(f.kl for f in figures) / positions
    margins = sorted(m for f in figures for m in f.margins)
    ties = sum(f.ties for f in figures)
    print(f"\nint8 vs bf16 on SmolLM2-135M-Instruct, {len(compared)} prompts, {positions} positions: top-1 agrees at "
          f"{agree}/{positions} = {agree / positions:.2%}; mean KL(bf16 || int8) = {kl:.4f} nats per position; "
          f"bf16 top-1/top-2 margin where they differ: median {margins[len(margins) // 2] if margins else 0:.3f}, max "
          f"{margins[-1] if margins else 0:.3f}; up to ties {ties}/{positions} = {ties / positions:.2%}")
    for name, f in compared.items():
        print(f"  {name:16} {f.agree:4}/{f.positions:<4} KL {f.kl / f.positions:.4f}")
    return agree / positions, ties / positions


def test_the_int8_model_s_top1_agrees_with_bf16_up_to_ties_at_97_percent_of_positions_of_the_short_prompts(models):
    compared = compare(models, SHORT)
    assert len(compared) == 20
    _, up_to_ties = agreement(compared)
    assert up_to_ties >= MIN_TOP1_AGREEMENT_UP_TO_TIES


@pytest.mark.slow
def test_the_int8_model_s_top1_agrees_with_bf16_at_95_percent_of_positions(models):
    compared = compare(models, None)
    assert len(compared) == 24
    exact, _ = agreement(compared)
    assert exact >= MIN_TOP1_AGREEMENT


def test_the_int8_model_is_about_half_the_bytes(models):
    ck, quantized = models
    matrices = sum(w.numel() * w.element_size() for n, w in ck.weights.items()
                   if w.dim() == 2 and n != "tok_embeddings.weight")
    assert 0.5 * matrices < int8.nbytes(quantized) < 0.52 * matrices
    assert quantized["tok_embeddings.weight"] is ck.weights["tok_embeddings.weight"]
    assert isinstance(quantized["output.weight"], ex16_int8.Int8Weight)  # tied: the output projection is quantized
