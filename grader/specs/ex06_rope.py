"""Exercise 6, RoPE: golden calls and named mistakes."""

import torch

from solutions import ex06_rope

from ..engine.calls import Call
from ..engine.compare import GradeFailure
from ..i18n import say
from .spec import Spec, driver

spec = Spec("ex06_rope")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Llama 3.1's frequency scaling for both head sizes and factors; the tables of released shapes and of each
    prompt, and long tables (past 256, and past 8192 where the model allows it) of the model's shape and of Llama 3.1's;
    each prompt's q and k rotated, in float32 and (on the tiny models) in bf16."""
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
    long_end = min(args.max_seq_len, LONG_END)
    out += [Call(m, "precompute_freqs_cis", "long", table(args.head_dim, long_end, args.rope_theta,
                                                          args.rope_scale_factor),
                 tolerance="float32 angles", driver=drive_long_table),
            Call(m, "precompute_freqs_cis", "llama3.1-8b_long", table(128, LONG_END, 500000.0, 8.0),
                 tolerance="float32 angles", driver=drive_long_table)]
    out += [Call(m, "apply_rope", f"{name}_{which}", {"x": x.float(), "freqs_cis": a.freqs_cis}, tolerance="float32")
            for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]
    if model.is_tiny:
        out += [Call(m, "apply_rope", f"{name}_{which}_bf16", {"x": x, "freqs_cis": a.freqs_cis},
                     tolerance="bf16 rotation") for name, a in acts.items() for which, x in (("q", a.q), ("k", a.k))]
    return out


LONG_END = 8192 + 1024  # positions of a long table: past 8192, where float32 angles still keep half the tolerance
WINDOW = 6  # rows kept of a long table around each position that matters


def windows(end: int) -> list[int]:
    """Where the windows of a long table start: position 0; 256, the last integer bf16 holds exactly; 2048, float16's;
    8192, the context Llama 3.1's scaling stretches; the end."""
    return sorted({0, 254, 2046, min(8190, end - WINDOW), end - WINDOW})


@driver
def drive_long_table(precompute_freqs_cis, head_dim, end, theta, scale_factor):
    """A table of end positions; what is compared: WINDOW rows from each of windows(end), named by their positions."""
    table = precompute_freqs_cis(head_dim, end, theta, scale_factor)
    if not isinstance(table, torch.Tensor):
        raise GradeFailure(say("compare.not_a_tensor", name="precompute_freqs_cis", shape=f"[{end}, {head_dim // 2}]",
                               dtype="complex64", kind=type(table).__name__))
    if tuple(table.shape) != (end, head_dim // 2):
        raise GradeFailure(say("compare.shape", name="precompute_freqs_cis", got=list(table.shape),
                               expected=[end, head_dim // 2]))
    return {f"positions {s}..{s + WINDOW - 1}": table[s:s + WINDOW] for s in windows(end)}


@spec.mistake("precompute_freqs_cis", "positions_in_bf16",
              en="positions past 256 are wrong: they were made in bfloat16, which holds integers exactly only up to "
                 "256 (257 becomes 256, 1001 becomes 1000), so those tokens turn by another token's angle; make the "
                 "positions in float32, torch.arange(end, dtype=torch.float32)",
              zh="256 之后的位置错了：它们是用 bfloat16 生成的，而 bfloat16 只能精确表示不超过 256 的整数"
                 "（257 变成 256，1001 变成 1000），这些 token 于是按别的 token 的角度旋转；位置要用 float32 生成，"
                 "torch.arange(end, dtype=torch.float32)")
def precompute_with_bf16_positions(head_dim, end, theta, scale_factor=None):
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim)  # [head_dim // 2]
    if scale_factor is not None:
        freqs = ex06_rope.apply_scaling(freqs, scale_factor)
    t = torch.arange(end, dtype=torch.bfloat16).float()  # [end]: 257 -> 256
    angles = torch.outer(t, freqs)
    return torch.polar(torch.ones_like(angles), angles)


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
