"""One spec per exercise, mirroring exercises/ and solutions/: its golden calls (what the builder runs with solutions/
and the graded tests replay), its drivers and its named mistakes. The parts several share have modules of their own:
inputs (prompts, texts, released params), activations (the reference's intermediate tensors on a prompt),
checked_cache (the cached path) and outputs (what is kept of large logits)."""

import importlib
from pathlib import Path

from .activations import Activations
from .inputs import PROMPTS
from .spec import Mistake, Spec, find_driver

# grader/specs/exNN_<topic>.py, found by name: an exercise's spec is added without touching this file
SPECS: dict[str, Spec] = {path.stem: importlib.import_module(f"{__name__}.{path.stem}").spec
                          for path in sorted(Path(__file__).parent.glob("ex[0-9][0-9]_*.py"))}
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
