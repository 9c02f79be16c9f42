"""Small helpers for the graded tests' own checks (properties and facts)."""

import torch

from .compare import GradeFailure, mismatch, tolerance, value_mismatch


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
