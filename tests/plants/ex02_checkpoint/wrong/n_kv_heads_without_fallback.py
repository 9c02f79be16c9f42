"""n_kv_heads read from params.json without the fallback to n_heads: None for a file without the key."""

import dataclasses

from solutions.ex02_checkpoint import model_args

FAILURE_SAYS = "n_kv_heads"

_reference_model_args = model_args


def model_args(params):
    return dataclasses.replace(_reference_model_args(params), n_kv_heads=params.get("n_kv_heads"))
