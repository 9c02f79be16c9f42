"""Checkpoints with seeded random weights: the tiny fixtures and real-shaped Llama 3 / 3.2 models.
torch is imported inside the functions, so the CLI can list the presets without it."""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

VOCAB = 128256
PRESETS = {
    # shaped like Llama 3 8B: untied output, GQA (n_rep 2), rope_theta 500000, no scaling
    "tiny-llama3": {"dim": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": VOCAB,
                    "multiple_of": 16, "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
    # shaped like Llama 3.2: output.weight is tok_embeddings.weight, n_rep 3, scaled RoPE with factor 32
    "tiny-llama3.2": {"dim": 48, "n_layers": 2, "n_heads": 6, "n_kv_heads": 2, "vocab_size": VOCAB,
                      "ffn_dim_multiplier": 1.5, "multiple_of": 16, "norm_eps": 1e-05, "rope_theta": 500000.0,
                      "use_scaled_rope": True, "rope_scaling_factor": 32.0},
    "llama3.2-1b": {"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": VOCAB,
                    "ffn_dim_multiplier": 1.5, "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0,
                    "use_scaled_rope": True},
    "llama3.2-3b": {"dim": 3072, "n_layers": 28, "n_heads": 24, "n_kv_heads": 8, "vocab_size": VOCAB,
                    "ffn_dim_multiplier": 1.0, "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0,
                    "use_scaled_rope": True},
    # shaped like Llama 3 70B, small: 16 heads over 8 K/V heads, 8 files of Meta's tensor-parallel layout with
    # --shards 8
    "tiny-llama3-70b": {"dim": 128, "n_layers": 2, "n_heads": 16, "n_kv_heads": 8, "vocab_size": VOCAB,
                        "multiple_of": 64, "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
    "llama3-8b": {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": VOCAB,
                  "multiple_of": 1024, "ffn_dim_multiplier": 1.3, "norm_eps": 1e-05, "rope_theta": 500000.0},
}
TIED = {"tiny-llama3.2", "llama3.2-1b", "llama3.2-3b"}
SEED = 3
CHUNK = 1 << 24  # elements drawn at a time, so an 8B checkpoint never needs a float32 copy


_buffer: list = []  # one float32 chunk, reused: a fresh 64 MB allocation per chunk costs a page fault per 4 KB


def _uniform(name: str, shape: tuple[int, ...], std: float, mean: float = 0.0) -> torch.Tensor:
    """bf16 values, uniform with the given mean and std, seeded by the tensor's name (torch.rand is exact integer math).
    Each value is ((rand * 2 - 1) * half_width + mean) in float32, rounded once to bf16: the tiny fixtures depend on
    it."""
    import torch

    g = torch.Generator().manual_seed(SEED * 2**32 + zlib.crc32(name.encode()))
    out = torch.empty(shape, dtype=torch.bfloat16)
    flat = out.view(-1)
    half_width = std * math.sqrt(3)
    if not _buffer:
        _buffer.append(torch.empty(CHUNK))
    for start in range(0, flat.numel(), CHUNK):
        n = min(CHUNK, flat.numel() - start)
        chunk = torch.rand(n, generator=g, out=_buffer[0][:n])
        flat[start : start + n] = chunk.mul_(2).sub_(1).mul_(half_width).add_(mean)
    return out


def random_weights(args, tied: bool) -> dict[str, torch.Tensor]:
    """Meta's names and order. Scales (in units of 1/sqrt(fan_in)) chosen so attention is peaked, each block
    outweighs the residual it adds to, and logits are decisive: greedy tokens agree in bf16 and float32."""
    from . import checkpoint
    from ..progress import bar

    shapes = checkpoint.expected_shapes(args)
    weights = {}
    with bar("drawing weights", sum(math.prod(s) for s in shapes.values())) as progress:
        for name, shape in shapes.items():
            unit = 1 / math.sqrt(shape[-1])
            if name == "output.weight" and tied:
                weights[name] = weights["tok_embeddings.weight"]
            elif name.endswith("norm.weight"):
                weights[name] = _uniform(name, shape, 0.1, mean=1.0)
            elif name == "tok_embeddings.weight":
                weights[name] = _uniform(name, shape, 1.0)
            elif name == "output.weight":
                weights[name] = _uniform(name, shape, 4 * unit)
            elif name.endswith(("wq.weight", "wk.weight")):
                weights[name] = _uniform(name, shape, 2 * unit)
            elif name.endswith(("wo.weight", "w2.weight")):
                weights[name] = _uniform(name, shape, 5 * unit)
            else:
                weights[name] = _uniform(name, shape, unit)
            progress.advance(progress.task_ids[0], math.prod(shape))
    return weights


def make(preset: str, out: Path, layout: str = "meta", tokenizer: Path | None = None, checklist: bool = False,
         n_shards: int = 1) -> None:
    """Write a preset checkpoint to out in Meta's or Hugging Face's layout; with tokenizer, copy it in (Meta: beside
    the weights; Hugging Face: original/); with checklist, write checklist.chk (md5sum's format) as Meta does; with
    n_shards (Meta's layout), split the weights over that many files as Meta's 70B."""
    import torch

    from solutions.ex02_checkpoint import model_args

    from . import hf_layout, writers

    params = PRESETS[preset]
    args = model_args(params)
    tied = preset in TIED
    weights = random_weights(args, tied)
    if layout == "meta":
        writers.save_meta(out, weights, params, tokenizer, n_shards)
    else:
        config = hf_layout.config(args, tied, torch.bfloat16)
        writers.save_hf(out, hf_layout.to_hf(weights, args, tied), config, params, tokenizer)
    del weights
    if checklist:
        write_checklist(out)


def write_checklist(folder: Path) -> None:
    """checklist.chk with the md5 of every file in folder, as Meta ships it."""
    from .verify import hash_files

    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "checklist.chk")
    hashes = hash_files(folder, names)
    (folder / "checklist.chk").write_text("".join(f"{hashes[n]['md5']}  {n}\n" for n in names))
