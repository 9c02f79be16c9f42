"""What the bench modules share: an implementation's generator timed token by token, the passes that measure the
kernel and bandwidth bounds, the peak resident memory of this process, and how their reports write sizes and names."""

import resource
import sys
import time


def size(nbytes: float) -> str:
    """Bytes as a person reads them: 16.5 MB below a gigabyte, 2.47 GB above."""
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def whose(impl: str) -> str:
    """The possessive of an implementation's name: exercises', solutions'."""
    return impl + ("'" if impl.endswith("s") else "'s")


def peak_rss_bytes() -> int:
    """This process's peak resident memory. On Linux VmHWM: ru_maxrss also counts the memory of the process this one
    was forked from (a large pytest, say), which the kernel carries over exec."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


class Steps:
    """A generator of (token, logits) from an implementation, advanced one token at a time and timed per token.
    Failures of the implementation become NotStarted / GradeFailure, as in the graded tests."""

    def __init__(self, fn, *args):
        self.fn, self.times = fn, []
        self.gen = self._guard(lambda: iter(fn(*args)))

    def _guard(self, call):
        from ..engine.calls import GradeFailure, NotStarted, learner_error_message, not_started_message

        try:
            return call()
        except NotImplementedError as e:
            raise NotStarted(not_started_message(self.fn, e)) from None
        except StopIteration:
            raise GradeFailure(f"{self.fn.__module__}.{self.fn.__name__} stopped after {len(self.times)} tokens, "
                               "with no stop tokens and more asked for") from None
        except Exception as e:
            raise GradeFailure(learner_error_message(e, self.fn)) from None

    def step(self) -> None:
        start = time.perf_counter()
        self._guard(lambda: next(self.gen))
        self.times.append(time.perf_counter() - start)

    def prefill_ms(self) -> float:
        return self.times[0] * 1000

    def decode_tok_s(self) -> float:
        return (len(self.times) - 1) / sum(self.times[1:])


def kernel_pass(mats: list):
    """A function that pushes one [1, in] activation through every matrix with F.linear (2-D, as the reference does)
    and returns the seconds it took."""
    import torch
    import torch.nn.functional as F

    xs = {(w.shape[1], w.dtype): torch.randn(1, w.shape[1]).to(w.dtype) for w in mats}

    def run() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            for w in mats:
                F.linear(xs[(w.shape[1], w.dtype)], w)
        return time.perf_counter() - start

    return run


def read_pass(mats: list):
    """A function that reads every matrix once (a float32 sum over its bytes, the fastest streaming read torch
    offers) and returns the seconds it took."""
    import torch

    flats = []
    for w in mats:
        flat = w.reshape(-1)
        if flat.element_size() < 4 and (flat.numel() * flat.element_size()) % 4 == 0:
            try:
                flat = flat.view(torch.float32)
            except RuntimeError:
                pass
        flats.append(flat)

    def run() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            for flat in flats:
                flat.sum()
        return time.perf_counter() - start

    return run
