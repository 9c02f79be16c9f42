"""Int8 models from checkpoints, as exercise 16 defines them: every weight an implementation's is_quantized names goes
through its quantize, tensor by tensor and block of rows by block of rows, straight from the memory-mapped weights.

Nothing larger than one block (BLOCK_BYTES of the checkpoint's weights) is ever held in float32, and no bf16 or
float32 copy of the model is made. On Linux the pages of the checkpoint file that a block was read from are handed
back to the kernel (madvise) once the block is quantized: they stay in the page cache, but no longer count in this
process's resident memory, so an int8 model costs about its int8 bytes, plus the rows of the embedding table that
are actually looked up. Per-output-channel quantization treats every row alone, so quantizing by blocks of rows
gives exactly what quantizing the whole matrix would."""

import ctypes
import ctypes.util
import mmap
import sys
from collections.abc import Mapping
from types import ModuleType

import torch

BLOCK_BYTES = 1 << 24
MADV_DONTNEED = 4


def file_mappings() -> list[tuple[int, int]]:
    """(start, end) of this process's memory mappings of files (Linux /proc/self/maps; empty elsewhere)."""
    try:
        lines = open("/proc/self/maps").read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            found.append((start, end))
    return found


class PageRelease:
    """Hands the pages under memory-mapped tensors back to the kernel; a no-op for tensors in ordinary memory (whose
    pages madvise would zero) and where madvise is not available."""

    def __init__(self):
        self._maps = file_mappings()
        self._madvise = None
        if self._maps and sys.platform.startswith("linux"):
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            self._madvise = libc.madvise

    def __call__(self, t: torch.Tensor) -> None:
        start, end = t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()
        if self._madvise is None or not any(a <= start and end <= b for a, b in self._maps):
            return
        page = mmap.PAGESIZE
        first, last = -(-start // page) * page, end // page * page  # whole pages inside the tensor only
        if last > first:
            self._madvise(first, last - first, MADV_DONTNEED)


def _check(block, rows: int, cols: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """quantize's result for a block of rows: (q int8 [rows, cols], scale float32 [rows]), or a ValueError that says
    how not."""
    if not (isinstance(block, tuple) and len(block) == 2 and all(isinstance(t, torch.Tensor) for t in block)):
        raise ValueError(f"quantize({name}) should return Int8Weight(q, scale), got {type(block).__name__}")
    q, scale = block
    if q.dtype != torch.int8 or tuple(q.shape) != (rows, cols):
        raise ValueError(f"quantize({name}) gave q {q.dtype} {list(q.shape)}, expected int8 [{rows}, {cols}]")
    if scale.dtype != torch.float32 or tuple(scale.shape) != (rows,):
        raise ValueError(f"quantize({name}) gave scale {scale.dtype} {list(scale.shape)}, expected float32 [{rows}]")
    return q, scale


def quantize_model(weights: Mapping[str, torch.Tensor], module: ModuleType, advance=lambda n: None) -> dict:
    """weights with every tensor module.is_quantized names replaced by module.Int8Weight, built with module.quantize
    block by block; the others are the same tensors (not copied). advance(n) is told the bytes of each block done."""
    release = PageRelease()
    out = {}
    for name in weights:
        w = weights[name]
        if not module.is_quantized(name):
            out[name] = w
            continue
        rows, cols = w.shape  # [out, in]
        q, scale = torch.empty(rows, cols, dtype=torch.int8), torch.empty(rows)
        step = max(1, BLOCK_BYTES // max(1, cols * w.element_size()))
        for start in range(0, rows, step):
            block = w[start:start + step]  # [step, in]
            q[start:start + step], scale[start:start + step] = _check(module.quantize(block), block.shape[0],
                                                                      cols, name)
            release(block)
            advance(block.numel() * block.element_size())
        out[name] = module.Int8Weight(q, scale)
    return out


def matrices(weights: Mapping) -> list[torch.Tensor]:
    """The tensors a decode step reads in full: every 2-D weight but the embedding table, int8 values with their
    scales."""
    out = []
    for name, w in weights.items():
        if isinstance(w, tuple):
            out += list(w)
        elif w.dim() == 2 and name != "tok_embeddings.weight":
            out.append(w)
    return out


def nbytes(weights: Mapping) -> int:
    """Bytes of the matrices a decode step reads (matrices())."""
    return sum(t.numel() * t.element_size() for t in matrices(weights))
