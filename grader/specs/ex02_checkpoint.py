"""Exercise 2, checkpoint and config: golden calls."""

from ..engine.calls import Call, Ref
from .inputs import RELEASED
from .spec import Spec, driver

spec = Spec("ex02_checkpoint")

# params where a rule of exercise 2 matters that the released files never exercise.
CONTRACT = {
    # 2666 rounds up to 2816; to the nearest multiple of 256 it would be 2560
    "rounds_up": {"dim": 1000, "n_layers": 2, "n_heads": 8, "n_kv_heads": 4, "vocab_size": 128256, "multiple_of": 256,
                  "norm_eps": 1e-05, "rope_theta": 500000.0},
    # Llama 2's files: no n_kv_heads, so every head has its own K/V (n_kv_heads = n_heads)
    "no_n_kv_heads": {"dim": 4096, "n_layers": 32, "n_heads": 32, "vocab_size": 32000, "multiple_of": 256,
                      "norm_eps": 1e-05, "rope_theta": 10000.0},
    "null_n_kv_heads": {"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": None, "vocab_size": 128256,
                        "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0},
    # an explicit factor written as an integer: the contract is a float
    "int_factor": {"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
                   "ffn_dim_multiplier": 1.5, "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0,
                   "use_scaled_rope": True, "rope_scaling_factor": 32},
}


@spec.cases
def calls(model, acts) -> list[Call]:
    """The derived sizes and ModelArgs of every released params.json and of the contract's corner cases; the loaders
    on a checkpoint in Meta's layout."""
    m = spec.module
    params = {**RELEASED, **CONTRACT}
    out = [Call(m, "ffn_hidden_dim", name, {k: p.get(k) for k in ("dim", "multiple_of", "ffn_dim_multiplier")})
           for name, p in params.items()]
    out += [Call(m, "rope_scale_factor", name, {"params": p}) for name, p in params.items()]
    out += [Call(m, "model_args", name, {"params": p}) for name, p in params.items()]
    if model.checkpoint.layout == "meta":
        names = ["tok_embeddings.weight", "layers.0.attention.wq.weight", "norm.weight"]
        out += [Call(m, "load_params", "folder", {"folder": Ref("folder")}),
                Call(m, "load_weights", "folder", {"folder": Ref("folder"), "names": names}, driver=drive_load_weights)]
    return out


@driver
def drive_load_weights(load_weights, folder, names):
    """Load the weights; report their names and the first two rows of a few tensors."""
    w = load_weights(folder)
    return {"names": sorted(w), **{name: w[name][:2] for name in names}}


@spec.mistake("ffn_hidden_dim", "ffn_multiplier_ignored",
              en="the FFN size ignores ffn_dim_multiplier: after int(2 * 4 * dim / 3), multiply by ffn_dim_multiplier "
                 "(1.3 for 8B) before rounding up to a multiple of multiple_of, so that dim 4096 gives 14336",
              zh="FFN 的大小忽略了 ffn_dim_multiplier：算出 int(2 * 4 * dim / 3) 之后，要先乘以 ffn_dim_multiplier"
                 "（8B 是 1.3），再向上取整到 multiple_of 的倍数，这样 dim 4096 才得到 14336")
def ffn_hidden_dim_without_multiplier(dim, multiple_of, ffn_dim_multiplier):
    hidden = int(2 * 4 * dim / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)
