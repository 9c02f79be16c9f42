"""Common mistakes, each as a deliberately wrong variant of one reference function. The builder stores what
each variant returns on the golden inputs; when a learner's result matches one, the failure names it."""

import contextlib
import math
from dataclasses import dataclass
from typing import Callable

import torch

from solutions import (ex01_tokenizer, ex03_embeddings, ex04_rms_norm, ex05_qkv, ex06_rope, ex07_attention,
                       ex08_multi_head_attention, ex09_feed_forward, ex10_transformer_block, ex12_generation)
from solutions import ex11_forward, ex13_sampling, ex14_chat, ex15_experiments, ex16_int8, ex17_tensor_parallel

from ..i18n import pick


@dataclass(frozen=True)
class Mistake:
    id: str
    module: str
    function: str
    en: str
    zh: str
    variant: Callable

    def message(self, lang: str | None = None) -> str:
        return pick(self.en, self.zh, lang)


def _encode_without_bos(tokenizer, text, bos=True, eos=False):
    return ex01_tokenizer.encode(tokenizer, text, bos=False, eos=eos)


def _rms_norm_without_eps(x, weight, eps):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True))).type_as(x) * weight


def _precompute_from_position_one(head_dim, end, theta, scale_factor=None):
    return ex06_rope.precompute_freqs_cis(head_dim, end + 1, theta, scale_factor)[1:]


def _precompute_without_scaling(head_dim, end, theta, scale_factor=None):
    return ex06_rope.precompute_freqs_cis(head_dim, end, theta, None)


def _apply_rope_on_halves(x, freqs_cis):
    half = x.shape[-1] // 2
    x1, x2 = x.float()[..., :half], x.float()[..., half:]
    cos, sin = freqs_cis.real[:, None, :], freqs_cis.imag[:, None, :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


def _mask_hiding_the_diagonal(seqlen, start_pos=0):
    mask = torch.full((seqlen, seqlen), float("-inf")).triu(diagonal=0)
    return torch.hstack([torch.zeros(seqlen, start_pos), mask])


def _mask_peeking_ahead(seqlen, start_pos=0):
    mask = torch.full((seqlen, seqlen), float("-inf")).triu(diagonal=2)
    return torch.hstack([torch.zeros(seqlen, start_pos), mask])


def _attention_unscaled(q, k, v, mask):
    return ex07_attention.attention(q * math.sqrt(q.shape[-1]), k, v, mask)


def _attention_unmasked(q, k, v, mask):
    return ex07_attention.attention(q, k, v, None)


def _attention_softmax_over_queries(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask.to(scores.dtype)
    return torch.softmax(scores.float(), dim=-2).nan_to_num().type_as(q) @ v


def _repeat_kv_tiled(x, n_rep):
    return x.repeat(1, n_rep, 1)


def _gqa_tiled(q, k, v, mask):
    seqlen, n_heads, head_dim = q.shape
    n_rep = n_heads // k.shape[1]
    k, v = _repeat_kv_tiled(k, n_rep), _repeat_kv_tiled(v, n_rep)
    out = ex07_attention.attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), mask)
    return out.transpose(0, 1).reshape(seqlen, n_heads * head_dim)


def _feed_forward_w1_w3_swapped(x, w1, w2, w3):
    return ex09_feed_forward.feed_forward(x, w3, w2, w1)


def _block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, first_on_normed, second_on_normed):
    p = f"layers.{layer_id}."
    normed = ex04_rms_norm.rms_norm(x, weights[p + "attention_norm.weight"], args.norm_eps)
    h = (normed if first_on_normed else x) + ex08_multi_head_attention.self_attention(normed, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
    normed = ex04_rms_norm.rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
    return (normed if second_on_normed else h) + ex09_feed_forward.feed_forward(
        normed, weights[p + "feed_forward.w1.weight"], weights[p + "feed_forward.w2.weight"], weights[p + "feed_forward.w3.weight"])


def _block_residual_on_normed(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    return _block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, True, True)


def _block_attention_residual_on_normed(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    return _block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, True, False)


def _block_ffn_residual_on_normed(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    return _block_with_residuals(x, weights, layer_id, args, freqs_cis, mask, cache, start_pos, False, True)


def _forward_without_final_norm(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = ex03_embeddings.embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = ex06_rope.precompute_freqs_cis(args.head_dim, start_pos + seqlen, args.rope_theta, args.rope_scale_factor)
    mask = ex07_attention.causal_mask(seqlen, start_pos) if seqlen > 1 else None
    for layer_id in range(args.n_layers):
        h = ex10_transformer_block.transformer_block(h, weights, layer_id, args, freqs_cis[start_pos:], mask, cache, start_pos)
    return ex05_qkv.linear(h, weights["output.weight"]).float()


def _self_attention_rope_after_cache(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    p = f"layers.{layer_id}.attention."
    q, k, v = ex05_qkv.project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"], args.n_heads, args.n_kv_heads)
    if cache is not None:
        k, v = cache.update(layer_id, start_pos, k, v)
    q, k = ex06_rope.apply_rope(q, freqs_cis), ex06_rope.apply_rope(k, freqs_cis)
    out = ex08_multi_head_attention.grouped_query_attention(q, k, v, mask)
    return ex05_qkv.linear(out, weights[p + "wo.weight"])


def _forward_positions_from_zero(tokens, weights, args, cache=None, start_pos=0):
    seqlen = tokens.shape[0]
    h = ex03_embeddings.embed(tokens, weights["tok_embeddings.weight"])
    freqs_cis = ex06_rope.precompute_freqs_cis(args.head_dim, seqlen, args.rope_theta, args.rope_scale_factor)
    mask = ex07_attention.causal_mask(seqlen, start_pos) if seqlen > 1 else None
    for layer_id in range(args.n_layers):
        h = ex10_transformer_block.transformer_block(h, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
    h = ex04_rms_norm.rms_norm(h, weights["norm.weight"], args.norm_eps)
    return ex05_qkv.linear(h, weights["output.weight"]).float()


class _KVCacheWrittenAtZero(ex12_generation.KVCache):
    def update(self, layer_id, start_pos, k, v):
        seqlen = k.shape[0]
        self.cache_k[layer_id][:seqlen] = k
        self.cache_v[layer_id][:seqlen] = v
        return self.cache_k[layer_id][: start_pos + seqlen], self.cache_v[layer_id][: start_pos + seqlen]


def _top_k_keeping_ties(logits, k):
    kth = logits.topk(k, dim=-1).values[..., -1:]  # [..., 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_p_one_too_few(logits, p):
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    drop = sorted_probs.cumsum(-1) > p  # the token that crosses p is dropped too
    drop[..., 0] = False
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def _filtered(logits, top_k, top_p):
    if top_k is not None:
        logits = ex13_sampling.top_k_filter(logits, top_k)
    if top_p is not None:
        logits = ex13_sampling.top_p_filter(logits, top_p)
    return logits


def _probabilities_temperature_after_softmax(logits, temperature, top_k=None, top_p=None):
    probs = torch.softmax(_filtered(logits.float(), top_k, top_p), dim=-1) / temperature
    return probs / probs.sum(-1, keepdim=True)


def _probabilities_normalised_before_filtering(logits, temperature, top_k=None, top_p=None):
    scaled = logits.float() / temperature
    return torch.softmax(scaled, dim=-1).masked_fill(_filtered(scaled, top_k, top_p) == float("-inf"), 0.0)


def _generate_ignoring_the_sampler(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), sampler=None):
    return ex12_generation.generate(prompt_ids, weights, args, max_new_tokens, stop_tokens)


def _header_without_blank_line(encoding, role, chat_format="llama3"):
    header = ex14_chat.encode_header(encoding, role, chat_format)
    return header[:-1] if chat_format == "llama3" else header


def _message_not_stripped(encoding, message, chat_format="llama3"):
    if chat_format != "llama3":
        return ex14_chat.encode_message(encoding, message, chat_format)
    content = encoding.encode(message["content"], allowed_special=set(), disallowed_special=())
    return ex14_chat.encode_header(encoding, message["role"]) + content + ex14_chat.end_of_turn(encoding)


def _dialog_without_open_header(encoding, messages, chat_format="llama3"):
    return ex14_chat.encode_dialog(encoding, messages, chat_format)[:-len(ex14_chat.encode_header(encoding, "assistant", chat_format))]


def _attention_probs_unmasked(tokens, weights, args, layer_id):
    with _rebound(ex15_experiments, causal_mask=lambda seqlen, start_pos=0: torch.zeros(seqlen, start_pos + seqlen)):
        return ex15_experiments.attention_probs(tokens, weights, args, layer_id)


def _attention_probs_from_the_embeddings(tokens, weights, args, layer_id):
    with _rebound(ex15_experiments, transformer_block=lambda h, *rest, **kw: h):
        return ex15_experiments.attention_probs(tokens, weights, args, layer_id)


def _forward_unmasked_still_masked(tokens, weights, args):
    return ex11_forward.forward(tokens, weights, args)


def _top_predictions_of_logits(logits, k):
    top = logits.float().topk(k, dim=-1)
    return top.values, top.indices


def _rope_rotation_on_halves(x, freqs_cis):
    with _rebound(ex15_experiments, apply_rope=_apply_rope_on_halves):
        return ex15_experiments.rope_rotation(x, freqs_cis)


@contextlib.contextmanager
def _rebound(module, **names):
    """Within the block, module's names are bound to other values (a variant that differs from the reference in one call)."""
    saved = {name: getattr(module, name) for name in names}
    vars(module).update(names)
    try:
        yield
    finally:
        vars(module).update(saved)


def _quantize_truncated(weight):
    w = weight.float()
    scale = w.abs().amax(dim=1).clamp_min(1e-10) / 127
    return ex16_int8.Int8Weight((w / scale[:, None]).to(torch.int8), scale)


def _quantize_without_127(weight):
    w = weight.float()
    scale = w.abs().amax(dim=1).clamp_min(1e-10)
    return ex16_int8.Int8Weight(torch.round(w / scale[:, None]).to(torch.int8), scale)


def _quantize_per_input_channel(weight):
    w = weight.float()
    scale = w.abs().amax(dim=0).clamp_min(1e-10) / 127
    return ex16_int8.Int8Weight(torch.round(w / scale[None, :]).to(torch.int8), scale)


def _int8_linear_unscaled(x, w):
    return torch.nn.functional.linear(x, w.q.to(x.dtype))


def _is_quantized_with_embedding(name):
    return ex16_int8.is_quantized(name) or name == "tok_embeddings.weight"


def _split_dim_all_columns(name):
    return None if ex17_tensor_parallel.split_dim(name) is None else 0


def _shard_kv_tiled(weight, n_kv_heads, rank, world_size):
    if world_size <= n_kv_heads:
        return ex17_tensor_parallel.shard(weight, 0, rank, world_size)
    return weight.view(n_kv_heads, weight.shape[0] // n_kv_heads, -1)[rank % n_kv_heads]


def _local_args_no_kv_head(args, world_size):
    import dataclasses

    n_heads = args.n_heads // world_size
    return dataclasses.replace(args, n_heads=n_heads, n_kv_heads=args.n_kv_heads // world_size, dim=n_heads * args.head_dim)


def _local_args_dim_kept(args, world_size):
    import dataclasses

    return dataclasses.replace(args, n_heads=args.n_heads // world_size, n_kv_heads=max(args.n_kv_heads // world_size, 1))


def _parallel_embed_unmasked(tokens, tok_embeddings):
    import torch.distributed as dist

    rows = tok_embeddings.shape[0]
    h = ex03_embeddings.embed((tokens - dist.get_rank() * rows).clamp(0, rows - 1), tok_embeddings)
    dist.all_reduce(h)
    return h


def _parallel_attention_unreduced(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    import torch.distributed as dist

    local = ex17_tensor_parallel.local_args(args, dist.get_world_size())
    return ex08_multi_head_attention.self_attention(x, weights, layer_id, local, freqs_cis, mask, cache, start_pos)


def _parallel_feed_forward_unreduced(x, w1, w2, w3):
    return ex09_feed_forward.feed_forward(x, w1, w2, w3)


MISTAKES = [
    Mistake("forgot_bos", "ex01_tokenizer", "encode",
            "the ids lack BOS: with bos=True the list must start with 128000 (<|begin_of_text|>)",
            "缺少 BOS：bos=True 时列表必须以 128000（<|begin_of_text|>）开头", _encode_without_bos),
    Mistake("rms_norm_without_eps", "ex04_rms_norm", "rms_norm",
            "this is RMSNorm without eps: add eps to the mean of squares before the square root (it matters for small inputs)",
            "这是没有 eps 的 RMSNorm：在开方之前把 eps 加到平方均值上（输入很小时差别很大）", _rms_norm_without_eps),
    Mistake("positions_from_one", "ex06_rope", "precompute_freqs_cis",
            "positions start at 1: the first token is position 0, so its rotation is the identity",
            "位置从 1 开始了：第一个 token 的位置是 0，它的旋转是恒等变换", _precompute_from_position_one),
    Mistake("rope_scaling_ignored", "ex06_rope", "precompute_freqs_cis",
            "the frequencies are not scaled: when scale_factor is given, pass the base frequencies through apply_scaling first",
            "频率没有缩放：给定 scale_factor 时，要先把基础频率交给 apply_scaling", _precompute_without_scaling),
    Mistake("rope_on_halves", "ex06_rope", "apply_rope",
            "RoPE rotates halves (i, i + head_dim/2), Hugging Face's layout: Meta's weights pair adjacent elements (2i, 2i+1)",
            "RoPE 旋转了前后两半 (i, i + head_dim/2)，那是 Hugging Face 的布局：Meta 的权重把相邻元素 (2i, 2i+1) 配成一对", _apply_rope_on_halves),
    Mistake("mask_hides_diagonal", "ex07_attention", "causal_mask",
            "the mask hides the diagonal: a token may attend to itself, so mask only j > i (triu with diagonal=1)",
            "掩码遮住了对角线：token 可以关注自己，只应遮住 j > i（triu 的 diagonal=1）", _mask_hiding_the_diagonal),
    Mistake("mask_peeks_ahead", "ex07_attention", "causal_mask",
            "the mask lets each token see the next one: mask every j > i (triu with diagonal=1)",
            "掩码让每个 token 看到了下一个 token：要遮住所有 j > i（triu 的 diagonal=1）", _mask_peeking_ahead),
    Mistake("attention_unscaled", "ex07_attention", "attention",
            "the scores are not divided by sqrt(head_dim): without it softmax saturates as head_dim grows",
            "分数没有除以 sqrt(head_dim)：不除的话 head_dim 越大 softmax 越饱和", _attention_unscaled),
    Mistake("attention_unmasked", "ex07_attention", "attention",
            "the mask is not applied: add it to the scores before the softmax",
            "没有使用掩码：在 softmax 之前把它加到分数上", _attention_unmasked),
    Mistake("softmax_over_queries", "ex07_attention", "attention",
            "softmax runs over the wrong dimension: each query's weights over the keys must sum to 1 (dim=-1)",
            "softmax 用错了维度：每个 query 对所有 key 的权重之和应为 1（dim=-1）", _attention_softmax_over_queries),
    Mistake("kv_heads_tiled", "ex08_multi_head_attention", "repeat_kv",
            "K/V heads are tiled (0,1,0,1) instead of repeated in place (0,0,1,1): query head h reads kv head h // n_rep (repeat_interleave, not repeat)",
            "K/V 头被平铺成 (0,1,0,1)，而不是就地重复 (0,0,1,1)：第 h 个 query 头读取第 h // n_rep 个 kv 头（用 repeat_interleave，不是 repeat）", _repeat_kv_tiled),
    Mistake("kv_heads_tiled_in_attention", "ex08_multi_head_attention", "grouped_query_attention",
            "K/V heads are tiled (0,1,0,1) instead of repeated in place (0,0,1,1): query head h reads kv head h // n_rep (repeat_interleave, not repeat)",
            "K/V 头被平铺成 (0,1,0,1)，而不是就地重复 (0,0,1,1)：第 h 个 query 头读取第 h // n_rep 个 kv 头（用 repeat_interleave，不是 repeat）", _gqa_tiled),
    Mistake("w1_w3_swapped", "ex09_feed_forward", "feed_forward",
            "w1 and w3 are swapped: SiLU goes on w1 x (the gate), and w3 x is the plain branch it multiplies",
            "w1 和 w3 弄反了：SiLU 作用在 w1 x（门）上，w3 x 是与它相乘的普通分支", _feed_forward_w1_w3_swapped),
    Mistake("residual_on_normed", "ex10_transformer_block", "transformer_block",
            "the residual is added to the normed input: add each sublayer's output to the un-normed stream (h = x + attention(norm(x)))",
            "残差加在了归一化之后的输入上：每个子层的输出应加到未归一化的残差流上（h = x + attention(norm(x))）", _block_residual_on_normed),
    Mistake("attention_residual_on_normed", "ex10_transformer_block", "transformer_block",
            "the first residual is added to the normed input: h = x + attention(norm(x)) adds to x itself, not to norm(x) "
            "(the second residual is right)",
            "第一个残差加在了归一化之后的输入上：h = x + attention(norm(x)) 要加到 x 本身上，而不是 norm(x)（第二个残差是对的）",
            _block_attention_residual_on_normed),
    Mistake("ffn_residual_on_normed", "ex10_transformer_block", "transformer_block",
            "the second residual is added to the normed input: out = h + feed_forward(norm(h)) adds to h itself, not to "
            "norm(h) (the first residual is right)",
            "第二个残差加在了归一化之后的输入上：out = h + feed_forward(norm(h)) 要加到 h 本身上，而不是 norm(h)（第一个残差是对的）",
            _block_ffn_residual_on_normed),
    Mistake("rope_after_cache", "ex08_multi_head_attention", "self_attention",
            "the cache holds keys without RoPE: rotate k (with this chunk's freqs_cis) before cache.update, so every cached key keeps the rotation of its own position",
            "缓存里存的是没有 RoPE 的 key：先用这一段的 freqs_cis 旋转 k，再调用 cache.update，让每个缓存的 key 保持它自己位置的旋转", _self_attention_rope_after_cache),
    Mistake("positions_from_zero", "ex11_forward", "forward",
            "positions restart at 0 on every call: the tokens sit at positions start_pos .. start_pos + seq - 1, so take freqs_cis[start_pos : start_pos + seq]",
            "每次调用位置都从 0 重新开始：这些 token 位于 start_pos .. start_pos + seq - 1，所以要取 freqs_cis[start_pos : start_pos + seq]", _forward_positions_from_zero),
    Mistake("no_final_norm", "ex11_forward", "forward",
            "the final RMSNorm (norm.weight) is missing: normalise after the last layer, before the output projection",
            "缺少最后的 RMSNorm（norm.weight）：最后一层之后、输出投影之前要再归一化一次", _forward_without_final_norm),
    Mistake("cache_written_at_zero", "ex12_generation", "KVCache",
            "the cache is written at position 0 every time: write the new keys and values at positions start_pos .. start_pos + seq",
            "每次都从位置 0 写缓存：新的 key 和 value 应写在 start_pos .. start_pos + seq", _KVCacheWrittenAtZero),
    Mistake("top_k_keeps_ties", "ex13_sampling", "top_k_filter",
            "every logit tied with the k-th largest is kept, so more than k survive: keep exactly k, the lowest ids among ties "
            "(torch.sort(..., descending=True, stable=True))",
            "与第 k 大的 logit 相等的都被保留了，于是留下的多于 k 个：应恰好保留 k 个，相等时保留 id 较小的"
            "（torch.sort(..., descending=True, stable=True)）", _top_k_keeping_ties),
    Mistake("top_p_one_too_few", "ex13_sampling", "top_p_filter",
            "top-p keeps one token too few: it drops the token whose cumulative probability crosses p, so the kept mass stays "
            "below p; keep a token while the mass ranked before it is below p",
            "top-p 少保留了一个 token：它丢掉了累计概率越过 p 的那个 token，于是保留的概率质量不到 p；"
            "应在排在它之前的质量仍小于 p 时保留该 token", _top_p_one_too_few),
    Mistake("temperature_after_softmax", "ex13_sampling", "probabilities",
            "the temperature is applied after the softmax, where dividing and renormalising changes nothing: divide the logits "
            "by the temperature before the softmax",
            "温度用在了 softmax 之后，此时相除再归一化什么也没改变：应在 softmax 之前把 logits 除以温度", _probabilities_temperature_after_softmax),
    Mistake("normalised_before_filtering", "ex13_sampling", "probabilities",
            "the softmax runs before top-k/top-p, so what the filters leave sums to less than 1: filter the logits first "
            "(-inf for every token removed), then take one softmax",
            "softmax 在 top-k/top-p 之前做了，于是过滤后剩下的概率之和小于 1：应先过滤 logits（被去掉的设为 -inf），再做一次 softmax",
            _probabilities_normalised_before_filtering),
    Mistake("generate_ignores_sampler", "ex13_sampling", "generate",
            "generate ignores its sampler and takes the argmax: choose each token with sampler(logits) (the argmax only when "
            "sampler is None)",
            "generate 没有用它的 sampler，而是取了 argmax：应用 sampler(logits) 选出每个 token（只有 sampler 为 None 时才取 argmax）",
            _generate_ignoring_the_sampler),
    Mistake("header_without_blank_line", "ex14_chat", "encode_header",
            "the header lacks the \"\\n\\n\" after <|end_header_id|> (id 271): Llama 3's header is <|start_header_id|>, the role, "
            "<|end_header_id|>, then \"\\n\\n\" encoded",
            "头部缺少 <|end_header_id|> 之后的 \"\\n\\n\"（id 271）：Llama 3 的头部是 <|start_header_id|>、角色、<|end_header_id|>，"
            "然后是编码后的 \"\\n\\n\"", _header_without_blank_line),
    Mistake("content_not_stripped", "ex14_chat", "encode_message",
            "the content is not stripped: Llama 3's format encodes content.strip() (Meta's ChatFormat), so spaces and newlines "
            "around a message are not tokens the model reads",
            "内容没有去掉首尾空白：Llama 3 的格式编码的是 content.strip()（Meta 的 ChatFormat），消息首尾的空格和换行不是模型读到的 token",
            _message_not_stripped),
    Mistake("no_open_assistant_header", "ex14_chat", "encode_dialog",
            "the dialog does not end with an open assistant header: without it the model continues the last message instead "
            "of answering it; end with encode_header(encoding, \"assistant\", chat_format)",
            "对话没有以打开的 assistant 头结尾：没有它，模型会接着写最后一条消息，而不是回答它；"
            "结尾要加上 encode_header(encoding, \"assistant\", chat_format)", _dialog_without_open_header),
    Mistake("attention_maps_unmasked", "ex15_experiments", "attention_probs",
            "the attention maps have weight above the diagonal: add the causal mask to the scores before the softmax",
            "注意力图在对角线上方有权重：在 softmax 之前把因果掩码加到分数上", _attention_probs_unmasked),
    Mistake("attention_maps_from_the_embeddings", "ex15_experiments", "attention_probs",
            "layer 0's map is right, later ones are not: layer L's queries and keys come from the output of layers 0 .. L - 1 "
            "(run transformer_block for each), not from the embeddings",
            "第 0 层的图是对的，后面的层不对：第 L 层的 query 和 key 来自第 0 .. L - 1 层的输出（对每层调用 transformer_block），"
            "而不是来自嵌入", _attention_probs_from_the_embeddings),
    Mistake("unmasked_forward_still_masked", "ex15_experiments", "forward_unmasked",
            "these are the masked logits: pass mask=None to every transformer_block (exercise 11's forward builds the causal mask)",
            "这是带掩码的 logits：要给每个 transformer_block 传 mask=None（练习 11 的 forward 会构造因果掩码）", _forward_unmasked_still_masked),
    Mistake("predictions_of_logits", "ex15_experiments", "top_predictions",
            "the table holds logits: take the softmax over the vocabulary first, so each row shows probabilities",
            "表中是 logits：要先在整个词表上做 softmax，每一行显示的才是概率", _top_predictions_of_logits),
    Mistake("rope_drawn_on_halves", "ex15_experiments", "rope_rotation",
            "RoPE rotates halves (i, i + head_dim/2) here, Hugging Face's layout: Meta's pairs are adjacent elements (2i, 2i+1)",
            "这里 RoPE 旋转的是前后两半 (i, i + head_dim/2)，那是 Hugging Face 的布局：Meta 的一对是相邻元素 (2i, 2i+1)",
            _rope_rotation_on_halves),
    Mistake("int8_truncated", "ex16_int8", "quantize",
            "the values are truncated, not rounded: .to(torch.int8) cuts toward zero, which shrinks every weight and doubles the "
            "worst error; torch.round first",
            "数值被截断而不是四舍五入：.to(torch.int8) 向零截断，会把每个权重都缩小，最大误差翻倍；先用 torch.round", _quantize_truncated),
    Mistake("int8_scale_is_the_max", "ex16_int8", "quantize",
            "the scale is the row's largest magnitude, so q is only -1, 0 or 1: divide it by 127, so that the largest value maps to 127",
            "scale 取了这一行的最大绝对值，于是 q 只有 -1、0、1：要再除以 127，让最大值映射到 127", _quantize_without_127),
    Mistake("int8_scale_per_input_channel", "ex16_int8", "quantize",
            "the scales are per column (amax over dim 0): per output channel means one scale per row, amax over dim 1, so that "
            "each output of the matmul is scaled once",
            "scale 是按列计算的（在 dim 0 上取 amax）：按输出通道意味着每一行一个 scale，在 dim 1 上取 amax，这样矩阵乘法的每个输出只需缩放一次",
            _quantize_per_input_channel),
    Mistake("int8_linear_unscaled", "ex16_int8", "int8_linear",
            "the scales are missing: x @ q.T must be multiplied by each output row's scale (torch._weight_int8pack_mm takes them)",
            "缺少 scale：x @ q.T 还要乘以每个输出行的 scale（torch._weight_int8pack_mm 接受它们作为参数）", _int8_linear_unscaled),
    Mistake("int8_embedding_quantized", "ex16_int8", "is_quantized",
            "the embedding table is quantized: it is a lookup, one row per token, so int8 saves no reading time there; keep "
            "tok_embeddings.weight as it is (output.weight, a matmul, is quantized)",
            "嵌入表也被量化了：它只是查表，每个 token 读一行，int8 在这里省不了读取时间；保持 tok_embeddings.weight 不变"
            "（output.weight 是矩阵乘法，要量化）", _is_quantized_with_embedding),
    Mistake("tp_row_parallel_as_column", "ex17_tensor_parallel", "split_dim",
            "wo and w2 are cut along dim 0: they are row-parallel, cut along dim 1 (their input), so that each rank multiplies "
            "the heads and hidden units it holds and the all-reduce sums the parts",
            "wo 和 w2 被沿 dim 0 切分：它们是行并行的，要沿 dim 1（输入维度）切分，这样每个 rank 乘的正好是它持有的头和隐藏单元，"
            "all-reduce 再把各部分相加", _split_dim_all_columns),
    Mistake("tp_kv_heads_tiled", "ex17_tensor_parallel", "shard_kv",
            "with more ranks than K/V heads, rank r took K/V head r % n_kv_heads: its query heads read head r // (world_size // "
            "n_kv_heads), the same rule as repeat_kv (h // n_rep)",
            "rank 数多于 K/V 头时，rank r 取了第 r % n_kv_heads 个 K/V 头：它的 query 头读取的是第 r // (world_size // n_kv_heads) 个，"
            "与 repeat_kv 的规则（h // n_rep）相同", _shard_kv_tiled),
    Mistake("tp_no_kv_head", "ex17_tensor_parallel", "local_args",
            "n_kv_heads // world_size is 0 when there are more ranks than K/V heads: each rank still holds one (repeated) K/V head",
            "rank 数多于 K/V 头时 n_kv_heads // world_size 为 0：每个 rank 仍然持有一个（重复的）K/V 头", _local_args_no_kv_head),
    Mistake("tp_head_dim_changed", "ex17_tensor_parallel", "local_args",
            "head_dim changed: it is dim // n_heads, so with n_heads per rank, dim must be the rank's heads times head_dim too",
            "head_dim 变了：它等于 dim // n_heads，所以 n_heads 按 rank 划分后，dim 也要改成这个 rank 的头数乘以 head_dim",
            _local_args_dim_kept),
    Mistake("tp_embedding_not_masked", "ex17_tensor_parallel", "parallel_embed",
            "tokens of other ranks' slices are not zeroed: each rank must contribute zeros for them, so that the all-reduce "
            "leaves exactly one rank's row per token",
            "其他 rank 词表切片中的 token 没有被置零：每个 rank 对这些 token 都要贡献零，这样 all-reduce 之后每个 token 只剩一个 rank 的那一行",
            _parallel_embed_unmasked),
    Mistake("tp_attention_not_reduced", "ex17_tensor_parallel", "parallel_attention",
            "the all-reduce after wo is missing: each rank's heads through its columns of wo give only part of the output; "
            "dist.all_reduce sums the parts",
            "缺少 wo 之后的 all-reduce：每个 rank 的头乘以它那部分 wo 只得到输出的一部分；dist.all_reduce 把各部分相加",
            _parallel_attention_unreduced),
    Mistake("tp_feed_forward_not_reduced", "ex17_tensor_parallel", "parallel_feed_forward",
            "the all-reduce after w2 is missing: each rank's hidden units through its columns of w2 give only part of the "
            "output; dist.all_reduce sums the parts",
            "缺少 w2 之后的 all-reduce：每个 rank 的隐藏单元乘以它那部分 w2 只得到输出的一部分；dist.all_reduce 把各部分相加",
            _parallel_feed_forward_unreduced),
]


def for_function(module: str, function: str) -> list[Mistake]:
    return [m for m in MISTAKES if m.module == module and m.function == function]


def by_id(mistake_id: str) -> Mistake:
    return next(m for m in MISTAKES if m.id == mistake_id)
