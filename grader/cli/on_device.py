"""The device of the verbs that run a model (generate, chat, explore, bench): --device, else LLAMA3_KIT_DEVICE, else
the CPU; and a checkpoint's weights placed there. The checkpoint is read on the CPU (memory-mapped) and each tensor
is copied to the device on its own, so the model is never held twice."""

import os
import sys
from collections.abc import Mapping

from ..errors import KitError
from ..i18n import say


def add_argument(p) -> None:
    p.add_argument("--device", help="cpu (the default), cuda, cuda:N, mps or auto (CUDA, then MPS, then the CPU); "
                                    "or set LLAMA3_KIT_DEVICE")


# The options that run on the CPU whatever device is asked for, and why.
CPU_ONLY = {"--ranks": "cli.on_device.ranks", "--distributed": "cli.on_device.ranks", "--int8": "cli.on_device.int8"}


def choice(args, cpu_only: str | None = None) -> str:
    """The device args ask for. cpu_only names an option of CPU_ONLY that args hold: then a --device other than cpu
    is refused in one line that says why, and a LLAMA3_KIT_DEVICE other than cpu is left aside with a line that says
    so (a standing choice in the environment should not stop these)."""
    from .. import devices

    if cpu_only:
        why = say(CPU_ONLY[cpu_only], option=cpu_only)
        if args.device not in (None, "cpu"):
            raise KitError(say("cli.on_device.refused", why=why, device=args.device, option=cpu_only))
        if os.environ.get("LLAMA3_KIT_DEVICE", "cpu") != "cpu":
            print(say("cli.on_device.left_aside", why=why, device=os.environ["LLAMA3_KIT_DEVICE"]), file=sys.stderr)
        return "cpu"
    return devices.choice(args.device)


def moved(weights: Mapping, device: str, dtype=None) -> dict:
    """weights on device in dtype (None: each its own), one tensor at a time: copied there, then cast there. A
    tensor held under two names (tied embeddings) is moved once and stays one tensor."""
    out, done = {}, {}
    for name, w in weights.items():
        key = (w.untyped_storage().data_ptr(), w.storage_offset(), tuple(w.shape), w.dtype)
        if key not in done:
            on = w.to(device)
            done[key] = on.to(dtype) if dtype is not None else on
        out[name] = done[key]
    return out


def weights(ck, dtype, device: str) -> Mapping:
    """The checkpoint's weights to run in dtype on device, with no copy of the model in a wider dtype: on the CPU the
    memory-mapped tensors; elsewhere copies there in the narrower of the checkpoint's dtype and dtype. Where that is
    not dtype, each weight is cast as it is read (a bf16 model run in float32 stays bf16 in memory)."""
    from ..formats.checkpoint import CastOnRead

    if device == "cpu":
        held, held_dtype = ck.weights, ck.dtype
    else:
        held_dtype = dtype if dtype.itemsize < ck.dtype.itemsize else ck.dtype
        held = moved(ck.weights, device, held_dtype)
    return held if held_dtype == dtype else CastOnRead(held, dtype)


def gpu_name(device: str) -> str:
    """'cuda (NVIDIA H100 80GB HBM3)', 'mps', 'cpu': the device, and the GPU's name where torch knows it."""
    import torch

    if torch.device(device).type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device
