"""Exercise 15, the notebooks' experiments: golden calls and named mistakes."""

import contextlib

import torch

from solutions import ex03_embeddings, ex06_rope, ex07_attention, ex10_transformer_block, ex11_forward, ex15_experiments

from ..engine.calls import Call, Ref, logits_head
from .ex13_sampling import SAMPLED_LOGITS
from .ex06_rope import apply_rope_on_halves
from .ex08_multi_head_attention import repeat_kv_tiled
from .spec import Spec, driver

spec = Spec("ex15_experiments")
TOP_K = 5  # predictions per position in the tables


@spec.cases
def calls(model, acts) -> list[Call]:
    """Attention maps of the first, second and last layers; the unmasked forward's predictions; the top predictions
    of synthetic logits; RoPE drawn for the first and last query heads over 64 positions."""
    m = spec.module
    name0, a0 = next(iter(acts.items()))
    args, last = model.checkpoint.args, model.checkpoint.args.n_layers - 1
    model_in = {"tokens": a0.tokens, "weights": Ref("weights", dtype="float32"), "args": Ref("args")}
    out = [Call(m, "attention_probs", f"{name0}_layer{layer}", {**model_in, "layer_id": layer},
                tolerance="float32 layers") for layer in sorted({0, 1, last})]
    out += [Call(m, "forward_unmasked", name0, model_in, tolerance="float32 layers", driver=drive_logits_table)]
    table = torch.randn(6, 512, generator=torch.Generator().manual_seed(15)) * 3  # [seq, vocab]
    out += [Call(m, "top_predictions", f"k{k}", {"logits": table, "k": k}, outputs=("probs", "ids"),
                 tolerance="float32") for k in (1, TOP_K)]
    freqs_cis = ex06_rope.precompute_freqs_cis(args.head_dim, 64, args.rope_theta,
                                               args.rope_scale_factor)  # [64, head_dim // 2]
    out += [Call(m, "rope_rotation", f"query_head{h}", {"x": a0.q[0, h].float(), "freqs_cis": freqs_cis},
                 tolerance="float32 angles") for h in (0, args.n_heads - 1)]
    return out


@driver
def drive_logits_table(forward_unmasked, tokens, weights, args):
    """What is compared of a forward's logits [seq, vocab]: the first columns of every row, and every row's TOP_K
    probabilities (sorted values, so near-tied tokens may swap)."""
    logits = forward_unmasked(tokens, weights, args)
    head = logits_head(logits, "forward_unmasked")["head"]
    return {"head": head[:, :SAMPLED_LOGITS], "top_probs": ex15_experiments.top_predictions(logits, TOP_K)[0]}


@contextlib.contextmanager
def rebound(module, **names):
    """Within the block, module's names are bound to other values (a variant that differs from the reference in one
    call)."""
    saved = {name: getattr(module, name) for name in names}
    vars(module).update(names)
    try:
        yield
    finally:
        vars(module).update(saved)


@spec.mistake("attention_probs", "attention_maps_unmasked",
              en="the attention maps have weight above the diagonal: add the causal mask to the scores before the "
                 "softmax",
              zh="注意力图在对角线上方有权重：在 softmax 之前把因果掩码加到分数上")
def attention_probs_unmasked(tokens, weights, args, layer_id):
    with rebound(ex15_experiments, causal_mask=lambda seqlen, start_pos=0: torch.zeros(seqlen, start_pos + seqlen)):
        return ex15_experiments.attention_probs(tokens, weights, args, layer_id)


@spec.mistake("attention_probs", "attention_maps_from_the_embeddings",
              en="layer 0's map is right, later ones are not: layer L's queries and keys come from the output of "
                 "layers 0 .. L - 1 (run transformer_block for each), not from the embeddings",
              zh="第 0 层的图是对的，后面的层不对：第 L 层的 query 和 key 来自第 0 .. L - 1 层的输出（对每层调用 "
                 "transformer_block），而不是来自嵌入")
def attention_probs_from_the_embeddings(tokens, weights, args, layer_id):
    with rebound(ex15_experiments, transformer_block=lambda h, *rest, **kw: h):
        return ex15_experiments.attention_probs(tokens, weights, args, layer_id)


@spec.mistake("attention_probs", "attention_maps_one_layer_late",
              en="the maps are those of the next layer's input: layer L's queries and keys come from the output of "
                 "layers 0 .. L - 1 (range(layer_id) blocks), normed with layer L's attention_norm, not from layer L's "
                 "own output",
              zh="这是下一层输入的注意力图：第 L 层的 query 和 key 来自第 0 .. L - 1 层的输出（range(layer_id) 个"
                 "块），再用第 L 层的 attention_norm 归一化，而不是来自第 L 层自己的输出")
def attention_probs_one_layer_late(tokens, weights, args, layer_id):
    seqlen = tokens.shape[0]
    freqs_cis = ex06_rope.precompute_freqs_cis(args.head_dim, seqlen, args.rope_theta, args.rope_scale_factor)
    h = ex03_embeddings.embed(tokens, weights["tok_embeddings.weight"])  # [seq, dim]
    for i in range(layer_id + 1):  # one block too many: layer L's own output
        h = ex10_transformer_block.transformer_block(h, weights, i, args, freqs_cis, ex07_attention.causal_mask(seqlen))
    with rebound(ex15_experiments, embed=lambda tokens, table: h, transformer_block=lambda h, *rest, **kw: h):
        return ex15_experiments.attention_probs(tokens, weights, args, layer_id)


@spec.mistake("attention_probs", "attention_maps_kv_heads_tiled",
              en="the K heads are tiled (0, 1, 0, 1, as repeat does) instead of repeated in place (0, 0, 1, 1): query "
                 "head h reads K/V head h // n_rep, so use repeat_kv (repeat_interleave on the head dimension)",
              zh="K 头被平铺了（0, 1, 0, 1，即 repeat 的做法），而不是原地重复（0, 0, 1, 1）：query 头 h 读取的是第 "
                 "h // n_rep 个 K/V 头，所以要用 repeat_kv（在头的维度上 repeat_interleave）")
def attention_probs_kv_heads_tiled(tokens, weights, args, layer_id):
    with rebound(ex15_experiments, repeat_kv=repeat_kv_tiled):
        return ex15_experiments.attention_probs(tokens, weights, args, layer_id)


@spec.mistake("forward_unmasked", "unmasked_forward_still_masked",
              en="these are the masked logits: pass mask=None to every transformer_block (exercise 11's forward builds "
                 "the causal mask)",
              zh="这是带掩码的 logits：要给每个 transformer_block 传 mask=None（练习 11 的 forward 会构造因果掩码）")
def forward_unmasked_still_masked(tokens, weights, args):
    return ex11_forward.forward(tokens, weights, args)


@spec.mistake("top_predictions", "predictions_of_logits",
              en="the table holds logits: take the softmax over the vocabulary first, so each row shows probabilities",
              zh="表中是 logits：要先在整个词表上做 softmax，每一行显示的才是概率")
def top_predictions_of_logits(logits, k):
    top = logits.float().topk(k, dim=-1)
    return top.values, top.indices


@spec.mistake("rope_rotation", "rope_drawn_on_halves",
              en="RoPE rotates halves (i, i + head_dim/2) here, Hugging Face's layout: Meta's pairs are adjacent "
                 "elements (2i, 2i+1)",
              zh="这里 RoPE 旋转的是前后两半 (i, i + head_dim/2)，那是 Hugging Face 的布局：Meta 的一对是相邻元素 (2i, "
                 "2i+1)")
def rope_rotation_on_halves(x, freqs_cis):
    with rebound(ex15_experiments, apply_rope=apply_rope_on_halves):
        return ex15_experiments.rope_rotation(x, freqs_cis)
