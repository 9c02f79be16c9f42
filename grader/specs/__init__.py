"""One spec per exercise, mirroring exercises/ and solutions/: its golden calls (what the builder runs with solutions/
and the graded tests replay), its drivers and its named mistakes. The parts several share have modules of their own:
inputs (prompts, texts, released params), activations (the reference's intermediate tensors on a prompt),
checked_cache (the cached path) and outputs (what is kept of large logits)."""

from . import (ex01_tokenizer, ex02_checkpoint, ex03_embeddings, ex04_rms_norm, ex05_qkv, ex06_rope, ex07_attention,
               ex08_multi_head_attention, ex09_feed_forward, ex10_transformer_block, ex11_forward, ex12_generation,
               ex13_sampling, ex14_chat, ex15_experiments, ex16_int8, ex17_tensor_parallel)
from .activations import Activations
from .inputs import PROMPTS
from .spec import Mistake, Spec, find_driver

SPECS: dict[str, Spec] = {m.spec.module: m.spec for m in (
    ex01_tokenizer, ex02_checkpoint, ex03_embeddings, ex04_rms_norm, ex05_qkv, ex06_rope, ex07_attention,
    ex08_multi_head_attention, ex09_feed_forward, ex10_transformer_block, ex11_forward, ex12_generation, ex13_sampling,
    ex14_chat, ex15_experiments, ex16_int8, ex17_tensor_parallel)}
MISTAKES: list[Mistake] = [m for spec in SPECS.values() for m in spec.mistakes]


def calls(model, prompts: dict[str, str] | None = None) -> dict[str, list]:
    """Every golden call on one model, by exercise module.

    Functions with attention in them are graded in float32, where ordering the arithmetic differently stays within
    float32 noise even on a trained model's outlier activations; a real checkpoint's bf16 weights are upcast as each
    is read. The tiny models add one bf16 case each for the model's own dtype: bf16 attention is too sensitive to
    rounding for a tight tolerance (see compare.TOLERANCES), and on trained weights beyond any useful one."""
    acts = {name: Activations(model, text) for name, text in (prompts or PROMPTS).items()}
    return {module: spec.calls(model, acts) for module, spec in SPECS.items()}


def driver(name: str):
    """The driver a golden call names."""
    return find_driver(name)


def mistake(mistake_id: str) -> Mistake:
    return next(m for m in MISTAKES if m.id == mistake_id)


def mistakes_of(module: str, function: str) -> list[Mistake]:
    """The named mistakes of one function, in the order their spec lists them."""
    return [m for m in SPECS[module].mistakes if m.function == function]
