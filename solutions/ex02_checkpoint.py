"""Exercise 2, reference: params.json to ModelArgs, and consolidated.00.pth to a dict of tensors."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class ModelArgs:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    norm_eps: float
    rope_theta: float
    hidden_dim: int  # FFN hidden size, derived from dim, multiple_of, ffn_dim_multiplier
    rope_scale_factor: float | None  # None: plain RoPE (Llama 3); 8 or 32: Llama 3.1/3.2 scaling
    max_seq_len: int  # 8192 for Llama 3, 131072 for 3.1 and 3.2

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def n_rep(self) -> int:
        return self.n_heads // self.n_kv_heads


def ffn_hidden_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    """Meta's FFN size: 2/3 of 4*dim, times the multiplier, rounded up to a multiple of multiple_of."""
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * math.ceil(hidden / multiple_of)


def rope_scale_factor(params: dict) -> float | None:
    """None without use_scaled_rope; else an explicit rope_scaling_factor, 32 for 3.2 1B/3B, or 8."""
    if not params.get("use_scaled_rope", False):
        return None
    if "rope_scaling_factor" in params:
        return float(params["rope_scaling_factor"])
    if (params["dim"], params["n_layers"]) in {(2048, 16), (3072, 28)}:  # Llama 3.2 1B, 3B
        return 32.0
    return 8.0


def model_args(params: dict) -> ModelArgs:
    """ModelArgs from the keys of a Meta params.json."""
    scale = rope_scale_factor(params)
    return ModelArgs(
        dim=params["dim"],
        n_layers=params["n_layers"],
        n_heads=params["n_heads"],
        n_kv_heads=params.get("n_kv_heads") or params["n_heads"],
        vocab_size=params["vocab_size"],
        norm_eps=params["norm_eps"],
        rope_theta=params["rope_theta"],
        hidden_dim=ffn_hidden_dim(params["dim"], params["multiple_of"], params.get("ffn_dim_multiplier")),
        rope_scale_factor=scale,
        max_seq_len=8192 if scale is None else 131072,
    )


def load_params(folder: str | Path) -> ModelArgs:
    """Read folder/params.json."""
    return model_args(json.loads((Path(folder) / "params.json").read_text()))


def load_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """Memory-map folder/consolidated.00.pth; weights_only refuses pickles that would run code."""
    return torch.load(Path(folder) / "consolidated.00.pth", map_location="cpu", mmap=True, weights_only=True)
