"""rms_norm allocates half a gigabyte, then raises: every failure must let go of it. Its message lists the memory
the process held each time rms_norm was entered, over all its calls so far (Linux)."""

import torch

SEEN: list[float] = []  # resident gigabytes at each entry


def _resident_gb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**30
    except OSError:
        return 0.0


def rms_norm(x, weight, eps):
    SEEN.append(_resident_gb())
    kept = torch.ones(2**27)  # 0.5 GB of float32, held by this frame when it raises
    raise ValueError(f"gave up holding {kept.numel() * 4 / 2**30:g} GB; resident GB at each entry: "
                     + " ".join(f"{gb:.2f}" for gb in SEEN))
