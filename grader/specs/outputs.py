"""What is kept of whole-vocabulary logits where a golden would be too large: some columns of every position."""

import torch

from ..engine.compare import GradeFailure
from ..i18n import say

LOGITS_STRIDE = 251  # of whole-vocabulary logits, every 251st column: about 500, some in every rank's slice
HEAD_COLUMNS = 256  # of the cached path's and generation's logits, the first columns (a cache's fault moves them all)


def sampled(logits, label: str) -> dict[str, torch.Tensor]:
    """Of logits [seq, vocab_size], every LOGITS_STRIDE-th column of every position."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise GradeFailure(say("calls.not_logits", label=label, what="logits", shape=shape))
    return {"columns": logits[:, ::LOGITS_STRIDE]}


def first_columns(out: dict) -> dict:
    """A driver's outputs with only the first HEAD_COLUMNS columns of its 2-D logits kept."""
    return {k: v[:, :HEAD_COLUMNS] if isinstance(v, torch.Tensor) and v.dim() == 2 else v for k, v in out.items()}
