"""The device the kit runs on (--device, else LLAMA3_KIT_DEVICE, else the CPU), and what running on it takes: moving
inputs there, running code within torch.device(...) with TF32 off, timing and memory, and naming code that pins a
device. Goldens stay CPU-computed; outputs come back to the CPU to be compared with them."""

import contextlib
import os
import re
from contextlib import contextmanager

import torch

from .errors import KitError
from .i18n import say

KINDS = ("cpu", "cuda", "mps")  # and "auto": CUDA, then MPS, then the CPU
# What torch says when tensors on two devices meet: CUDA and the CPU, MPS, the meta device, an index tensor.
MIXED = ("Expected all tensors to be on the same device", "is not on the expected device",
         "Placeholder storage has not been allocated on MPS device", "indices should be either on")
META_COPY = "Cannot copy out of meta tensor"  # .cpu() of a tensor on the meta device
GENERATOR = re.compile(r"Expected a '(\w+)' device type for generator but found '(\w+)'")
DEVICE_NAME = re.compile(r"\b(cpu|meta|(?:cuda|mps|xpu)(?::\d+)?)\b")


def choice(option: str | None = None) -> str:
    """--device, else LLAMA3_KIT_DEVICE, else "cpu"; "auto" is CUDA, then MPS, then the CPU."""
    source = "--device" if option else "LLAMA3_KIT_DEVICE"
    name = option or os.environ.get("LLAMA3_KIT_DEVICE") or "cpu"
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    kind, _, index = name.partition(":")
    if kind not in KINDS or (index and not index.isdigit()):
        raise KitError(say("devices.unknown", name=name, source=source))
    if kind == "cuda" and not torch.cuda.is_available():
        raise KitError(say("devices.no_cuda", name=name, source=source, torch=torch.__version__))
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise KitError(say("devices.no_such_gpu", name=name, source=source, count=torch.cuda.device_count()))
    if kind == "mps" and not torch.backends.mps.is_available():
        raise KitError(say("devices.no_mps", name=name, source=source))
    return name


def to_device(value, device):
    """value with every tensor in it (in dicts, lists and tuples, at any depth) on device, dtypes kept; a tensor
    held twice (tied weights) is moved once. Other values are returned as they are."""
    return _moved(value, torch.device(device), {})


def _moved(value, device: torch.device, done: dict):
    if isinstance(value, torch.Tensor):
        if id(value) not in done:
            done[id(value)] = value.to(device)
        return done[id(value)]
    if isinstance(value, dict):
        return {k: _moved(v, device, done) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple, e.g. exercise 16's Int8Weight
        return type(value)(*(_moved(v, device, done) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(v, device, done) for v in value)
    return value


@contextmanager
def on(device):
    """Run the block on device: tensors made without a device land there (torch.device(device)), and on CUDA,
    matmuls and convolutions in float32 are not rounded through TF32 (the goldens are true float32). Where device is
    already the default (the CPU, usually) no torch.device mode is entered: it would only add its cost to every op."""
    device = torch.device(device)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with device if device != torch.get_default_device() else contextlib.nullcontext():
            yield device
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def synchronize(device) -> None:
    """Wait for the work queued on device (a GPU runs asynchronously; time only after this)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def peak_memory(device) -> int | None:
    """Bytes: CUDA's peak allocated by tensors, MPS's memory the driver holds for this process now (MPS keeps no
    peak), None on the CPU (measure the process's RSS there)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    if device.type == "mps" and hasattr(torch.mps, "driver_allocated_memory"):
        return torch.mps.driver_allocated_memory()
    return None


def reset_peak_memory(device) -> None:
    """Start peak_memory's count afresh (CUDA's; MPS keeps no peak, the CPU's is the process's)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def pinned_device_problem(error_or_output, device) -> str | None:
    """A one-line message when code graded on device pinned another one: the error torch raised where tensors on two
    devices met (or a generator on one met probabilities on another), or an output tensor left elsewhere. None when
    it is not that."""
    device = torch.device(device)
    if isinstance(error_or_output, BaseException):
        text = str(error_or_output)
        if m := GENERATOR.search(text):
            return say("devices.generator", device=m.group(1), other=m.group(2))
        if not (any(s in text for s in MIXED) or (device.type == "meta" and META_COPY in text)):
            return None
        other = next((d for d in DEVICE_NAME.findall(text) if d.split(":")[0] != device.type),
                     "cpu" if device.type != "cpu" else None)
        return say("devices.mixed", device=device.type, other=other) if other else None
    stray = next((t for t in tensors(error_or_output) if t.device.type != device.type), None)
    return say("devices.returned", device=device.type, other=str(stray.device)) if stray is not None else None


def tensors(value):
    """Every tensor in value, in dicts, lists and tuples at any depth."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors(v)
