"""The values a checkpoint's metadata holds (params.json, config.json, a GGUF's keys, tokenizer_params.json), checked
for type and range with their key named, before anything is sized from them. What only the tensors can tell (how many
layers there are) is checked against the tensors present: checkpoint.shape_problems."""

import math

from ..errors import KitError
from ..i18n import say

SHOWN = 40  # characters of a value a message echoes


def shown(value) -> str:
    """A value as a message shows it: repr, cut to SHOWN characters."""
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def whole(value, key: str, where, low: int = 1) -> int:
    """value when it is an int (not a bool, not a float) of at least low."""
    if type(value) is not int or value < low:
        raise KitError(say("formats.metadata.whole", where=where, key=key, value=shown(value), low=low))
    return value


def number(value, key: str, where, above: float = 0.0, below: float = math.inf) -> float:
    """value as a float when it is a JSON number (not a bool, not a string) strictly between above and below."""
    if type(value) not in (int, float) or not above < value < below:
        if below == math.inf:
            raise KitError(say("formats.metadata.above", where=where, key=key, value=shown(value), above=above))
        raise KitError(say("formats.metadata.between", where=where, key=key, value=shown(value), above=above,
                           below=below))
    return float(value)


def flag(value, key: str, where) -> bool:
    if type(value) is not bool:
        raise KitError(say("formats.metadata.flag", where=where, key=key, value=shown(value)))
    return value


def text(value, key: str, where) -> str:
    if not isinstance(value, str):
        raise KitError(say("formats.metadata.text", where=where, key=key, value=shown(value)))
    return value


def token_id(value, key: str, where, n_vocab: int) -> int:
    """value when it is the id of a token of a vocabulary of n_vocab."""
    if type(value) is not int or not 0 <= value < n_vocab:
        raise KitError(say("formats.metadata.token_id", where=where, key=key, value=shown(value), n_vocab=n_vocab))
    return value


def optional(check, value, *args, **kwargs):
    """None stays None (the key is absent or null); anything else is checked."""
    return None if value is None else check(value, *args, **kwargs)


NORM_EPS = {"above": 0.0, "below": 1.0}
ROPE_THETA = {"above": 1.0}


def meta_params(params: dict, where) -> None:
    """The keys of a Meta params.json that ModelArgs is made from."""
    for key in ("dim", "n_layers", "n_heads", "vocab_size", "multiple_of"):
        whole(params.get(key), key, where)
    optional(whole, params.get("n_kv_heads"), "n_kv_heads", where)
    optional(number, params.get("ffn_dim_multiplier"), "ffn_dim_multiplier", where)
    number(params.get("norm_eps"), "norm_eps", where, **NORM_EPS)
    number(params.get("rope_theta"), "rope_theta", where, **ROPE_THETA)
    optional(flag, params.get("use_scaled_rope"), "use_scaled_rope", where)
    optional(number, params.get("rope_scaling_factor"), "rope_scaling_factor", where)


def hf_config(cfg: dict, theta, where) -> None:
    """The keys of a Hugging Face config.json that ModelArgs is made from (theta: rope_theta, wherever it was)."""
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        whole(cfg.get(key), key, where)
    for key in ("num_key_value_heads", "max_position_embeddings", "head_dim"):
        optional(whole, cfg.get(key), key, where)
    number(cfg.get("rms_norm_eps"), "rms_norm_eps", where, **NORM_EPS)
    number(theta, "rope_theta", where, **ROPE_THETA)
    optional(flag, cfg.get("tie_word_embeddings"), "tie_word_embeddings", where)


def model_shape(args, where) -> None:
    """What Llama's attention needs of the sizes: heads that divide dim, K/V heads that divide the heads, and a head
    size that RoPE splits into pairs."""
    if args.dim % args.n_heads or args.n_heads % args.n_kv_heads:
        raise KitError(say("formats.metadata.heads", where=where, dim=args.dim, n_heads=args.n_heads,
                           n_kv_heads=args.n_kv_heads))
    if args.head_dim % 2:
        raise KitError(say("formats.metadata.odd_head_dim", where=where, dim=args.dim, n_heads=args.n_heads,
                           head_dim=args.head_dim))
