"""What the bench modules share: an implementation's generator timed token by token, the passes that measure the
kernel and bandwidth bounds, the peak resident memory of this process, and how their reports write sizes and names.

A GPU runs asynchronously: a clock read after a launch measures the launch, not the work. So on a device every time
is taken with the device synchronized before and after (a token), or between two CUDA events recorded around the
work (the passes); on the CPU the clock alone, as before."""

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


def seconds(run, device="cpu") -> float:
    """Seconds run() takes on device: between two CUDA events on CUDA, else by the clock with the device synchronized
    before and after (a no-op on the CPU)."""
    import torch

    from .. import devices

    if torch.device(device).type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000
    devices.synchronize(device)
    begin = time.perf_counter()
    run()
    devices.synchronize(device)
    return time.perf_counter() - begin


class Steps:
    """A generator of (token, logits) from an implementation, advanced one token at a time and timed per token (the
    wall clock, the device synchronized before and after each). Failures of the implementation become NotStarted /
    GradeFailure, as in the graded tests."""

    def __init__(self, fn, *args, device="cpu"):
        from .. import devices

        self.fn, self.times = fn, []
        self.sync = lambda: devices.synchronize(device)
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
        self.sync()
        start = time.perf_counter()
        self._guard(lambda: next(self.gen))
        self.sync()
        self.times.append(time.perf_counter() - start)

    def prefill_ms(self) -> float:
        return self.times[0] * 1000

    def decode_tok_s(self) -> float:
        return (len(self.times) - 1) / sum(self.times[1:])


def kernel_pass(mats: list):
    """A function that pushes one [1, in] activation through every matrix with F.linear (2-D, as the reference does:
    one GEMV per matrix, where the matrices are) and returns the seconds it took."""
    import torch
    import torch.nn.functional as F

    device = mats[0].device
    xs = {(w.shape[1], w.dtype): torch.randn(1, w.shape[1], device=w.device).to(w.dtype) for w in mats}

    def gemvs() -> None:
        with torch.inference_mode():
            for w in mats:
                F.linear(xs[(w.shape[1], w.dtype)], w)

    return lambda: seconds(gemvs, device)


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


DEVICE_READ_BYTES = 1 << 30  # at most; a quarter of the free memory where that is less


def device_read_pass(device):
    """(a function that reads one large tensor on device once, a float32 sum, and returns the seconds it took; the
    bytes it reads): the device's read bandwidth, which a decode step's many matrices can approach but not pass."""
    import torch

    device = torch.device(device)
    nbytes = DEVICE_READ_BYTES
    if device.type == "cuda":
        nbytes = min(nbytes, torch.cuda.mem_get_info(device)[0] // 4)
    big = torch.ones(nbytes // 4, device=device)  # float32

    def read() -> None:
        with torch.inference_mode():
            big.sum()

    return (lambda: seconds(read, device)), big.numel() * big.element_size()
