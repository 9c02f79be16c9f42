"""Exercise 6, RoPE: golden calls and named mistakes."""

import torch

from solutions import ex06_rope

from ..engine.calls import Call
from .spec import Spec

spec = Spec("ex06_rope")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Llama 3.1's frequency scaling for both head sizes and factors; the tables of released shapes and of each
    prompt; each prompt's q and k rotated, in float32 and (on the tiny models) in bf16."""
    m, args = spec.module, model.checkpoint.args
    base = {hd: ex06_rope.precompute_freqs_cis(hd, 2, 500000.0)[1].angle() for hd in (64, 128)}  # f_i: angle at t = 1
    out = [Call(m, "apply_scaling", f"head_dim{hd}_factor{int(f)}", {"freqs": base[hd], "scale_factor": f},
                tolerance="float32") for hd in (64, 128) for f in (8.0, 32.0)]

    def table(head_dim, end, theta, scale_factor):
        return {"head_dim": head_dim, "end": end, "theta": theta, "scale_factor": scale_factor}

    out += [Call(m, "precompute_freqs_cis", "llama3-8b", table(128, 64, 500000.0, None), tolerance="float32 angles"),
            Call(m, "precompute_freqs_cis", "llama3.2-1b", table(64, 64, 500000.0, 32.0), tolerance="float32 angles")]
    out += [Call(m, "precompute_freqs_cis", name, table(args.head_dim, len(a.ids), args.rope_theta,
                                                       args.rope_scale_factor),
                 tolerance="float32 angles") for name, a in acts.items()]
    out += [Call(m, "apply_rope", f"{name}_{which}", {"x": x.float(), "freqs_cis": a.freqs_cis}, tolerance="float32")
            for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]
    if model.is_tiny:
        out += [Call(m, "apply_rope", f"{name}_{which}_bf16", {"x": x, "freqs_cis": a.freqs_cis},
                     tolerance="bf16 rotation") for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]
    return out


@spec.mistake("precompute_freqs_cis", "positions_from_one",
              en="positions start at 1: the first token is position 0, so its rotation is the identity",
              zh="位置从 1 开始了：第一个 token 的位置是 0，它的旋转是恒等变换")
def precompute_from_position_one(head_dim, end, theta, scale_factor=None):
    return ex06_rope.precompute_freqs_cis(head_dim, end + 1, theta, scale_factor)[1:]


@spec.mistake("precompute_freqs_cis", "rope_scaling_ignored",
              en="the frequencies are not scaled: when scale_factor is given, pass the base frequencies through "
                 "apply_scaling first",
              zh="频率没有缩放：给定 scale_factor 时，要先把基础频率交给 apply_scaling")
def precompute_without_scaling(head_dim, end, theta, scale_factor=None):
    return ex06_rope.precompute_freqs_cis(head_dim, end, theta, None)


@spec.mistake("apply_rope", "rope_on_halves",
              en="RoPE rotates halves (i, i + head_dim/2), Hugging Face's layout: Meta's weights pair adjacent "
                 "elements (2i, 2i+1)",
              zh="RoPE 旋转了前后两半 (i, i + head_dim/2)，那是 Hugging Face 的布局：Meta 的权重把相邻元素 (2i, 2i+1) "
                 "配成一对")
def apply_rope_on_halves(x, freqs_cis):
    half = x.shape[-1] // 2
    x1, x2 = x.float()[..., :half], x.float()[..., half:]
    cos, sin = freqs_cis.real[:, None, :], freqs_cis.imag[:, None, :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)
