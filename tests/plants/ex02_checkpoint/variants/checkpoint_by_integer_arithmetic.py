"""The FFN size in integer arithmetic (8 * dim // 3, a ceiling division by negation); the RoPE factor from a table of
shapes; ModelArgs filled from the dataclass's own fields; params.json read with json.load."""

import dataclasses
import json
import os

import torch

from solutions.ex02_checkpoint import ModelArgs

_FACTOR_BY_SHAPE = {(2048, 16): 32.0, (3072, 28): 32.0}  # (dim, n_layers) of Llama 3.2 1B and 3B


def ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier):
    hidden = 8 * dim // 3
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return -(-hidden // multiple_of) * multiple_of


def rope_scale_factor(params):
    if not params.get("use_scaled_rope"):
        return None
    shape = (params.get("dim"), params.get("n_layers"))
    return float(params.get("rope_scaling_factor", _FACTOR_BY_SHAPE.get(shape, 8.0)))


def model_args(params):
    fields = {f.name: params[f.name] for f in dataclasses.fields(ModelArgs) if f.name in params}
    scale = rope_scale_factor(params)
    fields |= {"n_kv_heads": params.get("n_kv_heads") or params["n_heads"],
               "hidden_dim": ffn_hidden_dim(params["dim"], params["multiple_of"], params.get("ffn_dim_multiplier")),
               "rope_scale_factor": scale,
               "max_seq_len": 131072 if scale else 8192}
    return ModelArgs(**fields)


def load_params(folder):
    with open(os.path.join(folder, "params.json")) as f:
        return model_args(json.load(f))


def load_weights(folder):
    return torch.load(os.path.join(folder, "consolidated.00.pth"), map_location=torch.device("cpu"), weights_only=True,
                      mmap=True)
