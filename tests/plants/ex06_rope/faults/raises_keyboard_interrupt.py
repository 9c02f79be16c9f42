"""apply_rope raises KeyboardInterrupt: a failure of its own tests, not the end of the run."""


def apply_rope(x, freqs_cis):
    raise KeyboardInterrupt
