"""apply_rope returns a numpy array where a tensor is expected."""

from solutions.ex06_rope import apply_rope

_reference_apply_rope = apply_rope


def apply_rope(x, freqs_cis):
    return _reference_apply_rope(x, freqs_cis).numpy()
