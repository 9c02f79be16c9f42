"""Hugging Face's layout of a Llama checkpoint: key names, q/k row order, config.json (docs/facts.md §5)."""

import re

import torch

from solutions.ex02_checkpoint import ModelArgs, ffn_hidden_dim, rope_scale_factor

# Meta name -> Hugging Face name, with {} for the layer number.
KEY_MAP = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "layers.{}.attention.wq.weight": "model.layers.{}.self_attn.q_proj.weight",
    "layers.{}.attention.wk.weight": "model.layers.{}.self_attn.k_proj.weight",
    "layers.{}.attention.wv.weight": "model.layers.{}.self_attn.v_proj.weight",
    "layers.{}.attention.wo.weight": "model.layers.{}.self_attn.o_proj.weight",
    "layers.{}.feed_forward.w1.weight": "model.layers.{}.mlp.gate_proj.weight",
    "layers.{}.feed_forward.w3.weight": "model.layers.{}.mlp.up_proj.weight",
    "layers.{}.feed_forward.w2.weight": "model.layers.{}.mlp.down_proj.weight",
    "layers.{}.attention_norm.weight": "model.layers.{}.input_layernorm.weight",
    "layers.{}.ffn_norm.weight": "model.layers.{}.post_attention_layernorm.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_TO_HF = [(re.compile("^" + re.escape(m).replace(r"\{\}", r"(\d+)") + "$"), h) for m, h in KEY_MAP.items()]
_TO_META = [(re.compile("^" + re.escape(h).replace(r"\{\}", r"(\d+)") + "$"), m) for m, h in KEY_MAP.items()]

# (dim, FFN hidden) -> (multiple_of, ffn_dim_multiplier) of Meta's released params.json files (docs/facts.md §1.1).
KNOWN_FFN = {
    (4096, 14336): (1024, 1.3),
    (8192, 28672): (4096, 1.3),
    (16384, 53248): (4096, 1.2),
    (2048, 8192): (256, 1.5),
    (3072, 8192): (256, 1.0),
}
LLAMA3_ROPE = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def _rename(key: str, rules) -> str | None:
    for pattern, template in rules:
        m = pattern.match(key)
        if m:
            return template.format(*m.groups())
    return None


def meta_name(hf_key: str) -> str | None:
    """The Meta name of a Hugging Face key, or None for keys Meta has no tensor for (rotary_emb.inv_freq)."""
    return _rename(hf_key, _TO_META)


def hf_name(meta_key: str) -> str:
    name = _rename(meta_key, _TO_HF)
    if name is None:
        raise KeyError(meta_key)
    return name


def permute_to_hf(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of each head from interleaved pairs (2i, 2i+1) to halves (i, i + head_dim/2)."""
    out_features, dim_in = w.shape  # [n_heads * head_dim, dim]
    return w.view(n_heads, out_features // n_heads // 2, 2, dim_in).transpose(1, 2).reshape(out_features, dim_in)


def permute_to_meta(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of permute_to_hf."""
    out_features, dim_in = w.shape  # [n_heads * head_dim, dim]
    return w.view(n_heads, 2, out_features // n_heads // 2, dim_in).transpose(1, 2).reshape(out_features, dim_in)


def _permute(name: str, w: torch.Tensor, args: ModelArgs, permute) -> torch.Tensor:
    if name.endswith("attention.wq.weight"):
        return permute(w, args.n_heads)
    if name.endswith("attention.wk.weight"):
        return permute(w, args.n_kv_heads)
    return w


def to_hf(weights: dict[str, torch.Tensor], args: ModelArgs, tied: bool) -> dict[str, torch.Tensor]:
    """Meta names and q/k order -> Hugging Face's; a tied model has no lm_head."""
    return {
        hf_name(k): _permute(k, w, args, permute_to_hf)
        for k, w in weights.items()
        if not (tied and k == "output.weight")
    }


def to_meta(weights: dict[str, torch.Tensor], args: ModelArgs) -> dict[str, torch.Tensor]:
    """Hugging Face names and q/k order -> Meta's; keys Meta has no name for are dropped."""
    out = {}
    for k, w in weights.items():
        name = meta_name(k)
        if name is not None:
            out[name] = _permute(name, w, args, permute_to_meta)
    return out


def config(args: ModelArgs, tied: bool, dtype: torch.dtype) -> dict:
    """config.json for these args, as Hugging Face's conversion script writes it."""
    rope_scaling = None
    if args.rope_scale_factor is not None:
        rope_scaling = {"factor": args.rope_scale_factor, **LLAMA3_ROPE, "rope_type": "llama3"}
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.dim,
        "intermediate_size": args.hidden_dim,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.n_kv_heads,
        "head_dim": args.head_dim,
        "vocab_size": args.vocab_size,
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "rope_scaling": rope_scaling,
        "max_position_embeddings": args.max_seq_len,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": str(dtype).removeprefix("torch."),
    } | ({"bos_token_id": 128000, "eos_token_id": 128001} if args.vocab_size == 128256 else {})  # Llama 3's ids


def rope_settings(cfg: dict) -> tuple[float, dict | None]:
    """(rope_theta, llama3 scaling dict or None) from either the 4.x keys or 5.x's rope_parameters."""
    params = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else {}
    theta = cfg.get("rope_theta", params.get("rope_theta"))
    scaling = cfg.get("rope_scaling") or (params if params.get("rope_type", "default") != "default" else None)
    return theta, scaling


def params_json(args: ModelArgs) -> dict:
    """A Meta params.json for these args; multiple_of and the multiplier are Meta's where the shape is known."""
    multiple_of, multiplier = KNOWN_FFN.get((args.dim, args.hidden_dim), (args.hidden_dim, None))
    if multiplier is None and ffn_hidden_dim(args.dim, multiple_of, None) != args.hidden_dim:
        multiplier = args.hidden_dim / int(8 * args.dim / 3)
    params = {
        "dim": args.dim,
        "n_layers": args.n_layers,
        "n_heads": args.n_heads,
        "n_kv_heads": args.n_kv_heads,
        "vocab_size": args.vocab_size,
        "multiple_of": multiple_of,
        "ffn_dim_multiplier": multiplier,
        "norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
    }
    if multiplier is None:
        del params["ffn_dim_multiplier"]
    if args.rope_scale_factor is not None:
        params["use_scaled_rope"] = True
        if rope_scale_factor(params) != args.rope_scale_factor:  # only where the shape would not imply it
            params["rope_scaling_factor"] = args.rope_scale_factor
    return params


def transformers_model(weights: dict[str, torch.Tensor], args: ModelArgs, attn_implementation: str = "sdpa"):
    """transformers' LlamaForCausalLM on these weights (Meta names; any one dtype), sharing their memory: built on the
    meta device and loaded with assign=True, so only the permuted q/k rows are copies. Needs
    `pip install transformers`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out, emb = weights["output.weight"], weights["tok_embeddings.weight"]
    tied = out is emb or out.data_ptr() == emb.data_ptr()
    cfg = LlamaConfig(**config(args, tied, emb.dtype))
    cfg._attn_implementation = attn_implementation
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    missing, unexpected = model.load_state_dict(to_hf(weights, args, tied), strict=False, assign=True)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"transformers' Llama does not take these weights: missing {missing}, "
                           f"unexpected {unexpected}")
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight  # assign=True broke the tie
    model.model.rotary_emb = type(model.model.rotary_emb)(config=cfg)  # its inv_freq buffer was left on the meta device
    return model.eval()
