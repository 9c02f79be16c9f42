"""What a graded test needs, in one module: checks that fail with a full report, seeded inputs, the tiny models and
their golden calls, the prompts and the published facts (docs/facts.md), the ranks of exercise 17, and torch.compile
as exercise 18's tests run it."""

import pytest
import torch

from .engine import goldens, ranks
from .engine.calls import Golden
from .engine.compare import GradeFailure, mismatch, tolerance, value_mismatch
from .engine.models import tiny
from .formats.tokenizer import with_chatml
from .i18n import say
from .paths import MODELS, TOKENIZER
from .specs.compiled import counting_compile, dynamo_failure
from .specs.ex17_tensor_parallel import rank_own_generate
from .specs.inputs import PROMPT42_IDS, PROMPTS, RELEASED

__all__ = ["GradeFailure", "MODELS", "PROMPT42_IDS", "PROMPTS", "RELEASED", "TOKENIZER", "close_ranks",
           "counting_compile", "dynamo_failure", "expect_close", "expect_equal", "golden_case", "needs_cuda",
           "own_generation_on_ranks", "randn", "say", "tiny", "with_chatml"]


def randn(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Seeded normal values: hypothesis draws the seed, so examples shrink and replay."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def expect_close(name: str, got, expected: torch.Tensor, tol: str | None = None, why: str = "") -> None:
    """Raise a GradeFailure with the full report if got differs from expected beyond the named tolerance
    (by default "float32" or "bf16" after expected's dtype)."""
    tol = tol or ("bf16" if expected.dtype == torch.bfloat16 else "float32")
    report = mismatch(name, got, expected, tolerance(expected, tol))
    if report:
        raise GradeFailure((why + "\n" if why else "") + report)


def expect_equal(name: str, got, expected, why: str = "") -> None:
    """Raise a GradeFailure if got is not of expected's type or not equal to it, saying where they differ."""
    report = value_mismatch(name, got, expected)
    if report:
        raise GradeFailure((why + "\n" if why else "") + report)


def golden_case(model: str, module: str, function: str, case: str) -> Golden:
    """One golden call of a tiny model: its inputs (.call.kwargs) and the reference's outputs (.expected)."""
    found = goldens.read(tiny(model).golden_dir, module)
    return next(g for g in found if g.call.function == function and g.call.case == case)


def own_generation_on_ranks(parallel_generate, world_size: int, model: str, prompt_ids: list[int],
                            max_new_tokens: int) -> list[list[int]]:
    """Every rank's greedy tokens from the learner's own shard_weights and parallel_generate (and everything they
    call), in float32, on world_size ranks."""
    kwargs = {"folder": str(MODELS / model), "prompt_ids": prompt_ids, "max_new_tokens": max_new_tokens,
              "stop_tokens": []}
    return ranks.run(world_size, rank_own_generate, parallel_generate, kwargs, isolated=False)


close_ranks = ranks.close_all


def needs_cuda() -> None:
    """Skip the calling test where torch sees no CUDA device (such tests are also marked gpu)."""
    if not torch.cuda.is_available():
        pytest.skip(say("testing.needs_cuda"))
