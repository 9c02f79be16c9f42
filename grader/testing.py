"""Small helpers for the graded tests' own checks (properties and facts)."""

import torch

from .compare import GradeFailure, mismatch, tolerance


def randn(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Seeded normal values: hypothesis draws the seed, so examples shrink and replay."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def expect_close(name: str, got, expected: torch.Tensor, depth: str = "op", why: str = "") -> None:
    """Raise a GradeFailure with the full report if got differs from expected beyond the tolerance."""
    report = mismatch(name, got, expected, tolerance(expected, depth))
    if report:
        raise GradeFailure((why + "\n" if why else "") + report)


def expect_equal(name: str, got, expected, why: str = "") -> None:
    if got != expected:
        raise GradeFailure((why + "\n" if why else "") + f"{name}: got {got!r}, expected {expected!r}")
