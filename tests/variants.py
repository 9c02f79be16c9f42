"""Correct implementations written differently from solutions/: other orders of arithmetic, other torch calls,
other data structures. Each rebinds some functions of one exercise module (appended to the reference module, so the
rest of it stays). They must pass every graded test, on the tiny models and on the trained one."""

import textwrap

from learners import rounds as by_rounds, solution

# name -> (exercise module, source appended to the reference module)
VARIANTS = {
    "rms_norm_by_division": ("ex04_rms_norm", '''
        def rms_norm(x, weight, eps):
            x32 = x.to(torch.float32)
            return (x32 / torch.sqrt((x32 * x32).mean(dim=-1, keepdim=True) + eps)).to(x.dtype) * weight
        '''),
    "rms_norm_by_torch": ("ex04_rms_norm", '''
        def rms_norm(x, weight, eps):
            return torch.nn.functional.rms_norm(x.float(), (x.shape[-1],), eps=eps).type_as(x) * weight
        '''),
    "rms_norm_weight_in_float32": ("ex04_rms_norm", '''
        def rms_norm(x, weight, eps):
            x32 = x.float()
            return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)
        '''),
    "embedding_function": ("ex03_embeddings", '''
        def embed(tokens, tok_embeddings):
            return torch.nn.functional.embedding(tokens, tok_embeddings)
        '''),
    "fused_einsum_projections": ("ex05_qkv", '''
        def linear(x, weight):
            return torch.einsum("si,oi->so", x, weight)

        def project_qkv(x, wq, wk, wv, n_heads, n_kv_heads):
            head_dim = wq.shape[0] // n_heads
            q, k, v = (x @ torch.cat([wq, wk, wv]).T).split([wq.shape[0], wk.shape[0], wv.shape[0]], dim=-1)
            return q.unflatten(-1, (n_heads, head_dim)), k.unflatten(-1, (n_kv_heads, head_dim)), v.unflatten(-1, (n_kv_heads, head_dim))
        '''),
    "projections_accumulated_in_float32": ("ex05_qkv", '''
        def linear(x, weight):
            return (x.float() @ weight.float().T).to(x.dtype)

        def project_qkv(x, wq, wk, wv, n_heads, n_kv_heads):
            head_dim = wq.shape[0] // n_heads
            return tuple(linear(x, w).view(x.shape[0], n, head_dim) for w, n in ((wq, n_heads), (wk, n_kv_heads), (wv, n_kv_heads)))
        '''),
    "rope_in_the_input_dtype_like_transformers": ("ex06_rope", '''
        def apply_rope(x, freqs_cis):
            cos, sin = freqs_cis.real[:, None, :].to(x.dtype), freqs_cis.imag[:, None, :].to(x.dtype)
            even, odd = x[..., 0::2], x[..., 1::2]
            return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)
        '''),
    "rope_by_cos_and_sin": ("ex06_rope", '''
        def precompute_freqs_cis(head_dim, end, theta, scale_factor=None):
            freqs = torch.exp(-math.log(theta) * torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
            if scale_factor is not None:
                freqs = apply_scaling(freqs, scale_factor)
            angles = torch.arange(end, dtype=torch.float32)[:, None] * freqs[None, :]
            return torch.complex(angles.cos(), angles.sin())

        def apply_rope(x, freqs_cis):
            even, odd = x.float()[..., 0::2], x.float()[..., 1::2]
            cos, sin = freqs_cis.real[:, None, :], freqs_cis.imag[:, None, :]
            return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).to(x.dtype)
        '''),
    "attention_by_sdpa": ("ex07_attention", '''
        def attention(q, k, v, mask):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask.to(q.dtype))
        '''),
    "attention_by_einsum_and_manual_softmax": ("ex07_attention", '''
        def causal_mask(seqlen, start_pos=0):
            i = torch.arange(seqlen)[:, None] + start_pos
            j = torch.arange(start_pos + seqlen)[None, :]
            return torch.where(j > i, float("-inf"), 0.0)

        def attention(q, k, v, mask):
            scores = torch.einsum("...qd,...kd->...qk", q / math.sqrt(q.shape[-1]), k)
            if mask is not None:
                scores = scores + mask.to(scores.dtype)
            scores = scores.float()
            weights = (scores - scores.amax(-1, keepdim=True)).exp()
            return torch.einsum("...qk,...kd->...qd", (weights / weights.sum(-1, keepdim=True)).to(q.dtype), v)
        '''),
    "heads_in_a_loop": ("ex08_multi_head_attention", '''
        def grouped_query_attention(q, k, v, mask):
            n_rep = q.shape[1] // k.shape[1]
            heads = [attention(q[:, h], k[:, h // n_rep], v[:, h // n_rep], mask) for h in range(q.shape[1])]
            return torch.cat(heads, dim=-1)
        '''),
    "repeat_kv_by_expand": ("ex08_multi_head_attention", '''
        def repeat_kv(x, n_rep):
            seqlen, n_kv_heads, head_dim = x.shape
            return x[:, :, None, :].expand(seqlen, n_kv_heads, n_rep, head_dim).reshape(seqlen, n_kv_heads * n_rep, head_dim)

        def grouped_query_attention(q, k, v, mask):
            n_rep = q.shape[1] // k.shape[1]
            out = attention(q.transpose(0, 1), repeat_kv(k, n_rep).transpose(0, 1), repeat_kv(v, n_rep).transpose(0, 1), mask)
            return out.transpose(0, 1).flatten(1)
        '''),
    "gqa_by_sdpa": ("ex08_multi_head_attention", '''
        def grouped_query_attention(q, k, v, mask):
            out = torch.nn.functional.scaled_dot_product_attention(
                q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                attn_mask=None if mask is None else mask.to(q.dtype), enable_gqa=True)
            return out.transpose(0, 1).reshape(q.shape[0], -1)
        '''),
    "silu_by_sigmoid": ("ex09_feed_forward", '''
        def feed_forward(x, w1, w2, w3):
            gate = x @ w1.T
            return (gate * torch.sigmoid(gate) * (x @ w3.T)) @ w2.T
        '''),
    "feed_forward_in_float32": ("ex09_feed_forward", '''
        def feed_forward(x, w1, w2, w3):
            x32 = x.float()
            return ((torch.nn.functional.silu(x32 @ w1.float().T) * (x32 @ w3.float().T)) @ w2.float().T).to(x.dtype)
        '''),
    "block_as_two_residual_steps": ("ex10_transformer_block", '''
        def transformer_block(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
            p = f"layers.{layer_id}."
            attend = lambda h: self_attention(h, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
            ffn = lambda h: feed_forward(h, weights[p + "feed_forward.w1.weight"], weights[p + "feed_forward.w2.weight"], weights[p + "feed_forward.w3.weight"])
            for norm, sublayer in (("attention_norm", attend), ("ffn_norm", ffn)):
                x = x + sublayer(rms_norm(x, weights[p + norm + ".weight"], args.norm_eps))
            return x
        '''),
    "forward_in_inference_mode": ("ex11_forward", '''
        _reference_forward = forward

        @torch.inference_mode()
        def forward(tokens, weights, args, cache=None, start_pos=0):
            seqlen = tokens.shape[0]
            h = embed(tokens, weights["tok_embeddings.weight"])
            freqs_cis = precompute_freqs_cis(args.head_dim, args.max_seq_len, args.rope_theta, args.rope_scale_factor)
            mask = None if seqlen == 1 else causal_mask(seqlen, start_pos)
            for layer_id in range(args.n_layers):
                h = transformer_block(h, weights, layer_id, args, freqs_cis[start_pos:start_pos + seqlen], mask, cache, start_pos)
            return (rms_norm(h, weights["norm.weight"], args.norm_eps) @ weights["output.weight"].T).float()

        def next_token(logits):
            return logits[-1].argmax().item()
        '''),
    "concatenating_cache": ("ex12_generation", '''
        class KVCache:
            def __init__(self, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, device=None):
                self.keys = [torch.empty(0, n_kv_heads, head_dim, dtype=dtype, device=device) for _ in range(n_layers)]
                self.values = [torch.empty(0, n_kv_heads, head_dim, dtype=dtype, device=device) for _ in range(n_layers)]

            def update(self, layer_id, start_pos, k, v):
                self.keys[layer_id] = torch.cat([self.keys[layer_id][:start_pos], k])
                self.values[layer_id] = torch.cat([self.values[layer_id][:start_pos], v])
                return self.keys[layer_id], self.values[layer_id]
        '''),
    "one_4d_cache_tensor_and_inference_mode": ("ex12_generation", '''
        class KVCache:
            def __init__(self, n_layers, max_seq_len, n_kv_heads, head_dim, dtype):
                self.kv = torch.zeros(2, n_layers, max_seq_len, n_kv_heads, head_dim, dtype=dtype)

            def update(self, layer_id, start_pos, k, v):
                end = start_pos + k.shape[0]
                self.kv[0, layer_id, start_pos:end] = k
                self.kv[1, layer_id, start_pos:end] = v
                return self.kv[0, layer_id, :end], self.kv[1, layer_id, :end]

        def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            with torch.inference_mode():
                cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                                weights["tok_embeddings.weight"].dtype)
                logits = forward(torch.tensor(prompt_ids), weights, args, cache, 0)[-1]
            position = len(prompt_ids)
            for _ in range(max_new_tokens):
                token = int(torch.argmax(logits))
                if token in stop_tokens:
                    break
                yield token, logits
                with torch.inference_mode():
                    logits = forward(torch.tensor([token]), weights, args, cache, position)[-1]
                position += 1
        '''),
    "token_by_token_prefill": ("ex12_generation", '''
        def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                            weights["tok_embeddings.weight"].dtype)
            for position, token in enumerate(prompt_ids):  # the prompt one token at a time, through the cache
                logits = forward(torch.tensor([token]), weights, args, cache, position)[0]
            position = len(prompt_ids)
            for _ in range(max_new_tokens):
                token = int(logits.argmax())
                if token in stop_tokens:
                    return
                yield token, logits
                logits = forward(torch.tensor([token]), weights, args, cache, position)[0]
                position += 1
        '''),
    "sampling_by_topk_and_cumsum": ("ex13_sampling", '''
        def top_k_filter(logits, k):
            ranks = torch.argsort(torch.argsort(logits, dim=-1, descending=True, stable=True), dim=-1)
            return torch.where(ranks < k, logits, torch.full_like(logits, float("-inf")))

        def top_p_filter(logits, p):
            probs = logits.float().softmax(-1)
            sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
            keep_sorted = torch.cat([torch.ones_like(sorted_probs[..., :1]), sorted_probs.cumsum(-1)[..., :-1]], -1) < p
            keep_sorted[..., 0] = True
            keep = torch.empty_like(keep_sorted).scatter_(-1, order, keep_sorted)
            return logits.where(keep, float("-inf"))

        def probabilities(logits, temperature, top_k=None, top_p=None):
            scaled = logits.to(torch.float32) / temperature
            if top_k:
                scaled = top_k_filter(scaled, top_k)
            if top_p:
                scaled = top_p_filter(scaled, top_p)
            e = (scaled - scaled.amax(-1, keepdim=True)).exp()
            return e / e.sum(-1, keepdim=True)

        class Sampler:
            def __init__(self, temperature=1.0, top_k=None, top_p=None, seed=0):
                self.settings = (temperature, top_k, top_p)
                self.rng = torch.Generator()
                self.rng.manual_seed(seed)

            def __call__(self, logits):
                return sample(logits, *self.settings, self.rng)
        '''),
    "chat_with_its_own_loop": ("ex14_chat", '''
        def encode_dialog(encoding, messages, chat_format="llama3"):
            if chat_format not in FORMATS:
                raise ValueError(f"no such chat format: {chat_format}")
            ids = [encoding.encode_single_token("<|begin_of_text|>")] if chat_format == "llama3" else []
            for message in messages:
                ids.extend(encode_message(encoding, message, chat_format))
            ids.extend(encode_header(encoding, "assistant", chat_format))
            return ids

        class Chat:
            def __init__(self, weights, args, encoding, chat_format="llama3", stop_tokens=(), max_seq_len=2048, system=None):
                self.model = (weights, args)
                self.encoding, self.chat_format, self.stop_tokens = encoding, chat_format, set(stop_tokens)
                self.cache = KVCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, weights["tok_embeddings.weight"].dtype)
                self.tokens, self.cached = [], 0
                self.system = system

            def ask(self, content, max_new_tokens=256, sampler=None):
                messages = ([{"role": "system", "content": self.system}] if self.system and not self.tokens else [])
                messages.append({"role": "user", "content": content})
                turn = encode_dialog(self.encoding, messages, self.chat_format)
                self.tokens.extend(turn if not self.tokens or self.chat_format != "llama3" else turn[1:])
                try:
                    for _ in range(max_new_tokens):
                        fresh = self.tokens[self.cached:]
                        logits = forward(torch.tensor(fresh), *self.model, self.cache, self.cached)[-1]
                        self.cached += len(fresh)
                        token = int(torch.argmax(logits)) if sampler is None else sampler(logits)
                        if token in self.stop_tokens:
                            break
                        self.tokens.append(token)
                        yield token, logits
                finally:
                    self.tokens.extend(end_of_turn(self.encoding, self.chat_format))
        '''),
    "experiments_by_einsum": ("ex15_experiments", '''
        def attention_probs(tokens, weights, args, layer_id):
            n = len(tokens)
            freqs_cis = precompute_freqs_cis(args.head_dim, n, args.rope_theta, args.rope_scale_factor)
            h = embed(tokens, weights["tok_embeddings.weight"])
            for i in range(layer_id):
                h = transformer_block(h, weights, i, args, freqs_cis, causal_mask(n))
            x = rms_norm(h, weights[f"layers.{layer_id}.attention_norm.weight"], args.norm_eps)
            q, k, _ = project_qkv(x, *(weights[f"layers.{layer_id}.attention.w{w}.weight"] for w in "qkv"), args.n_heads, args.n_kv_heads)
            q, k = apply_rope(q, freqs_cis).float(), apply_rope(k, freqs_cis).float()
            k = k.repeat_interleave(args.n_rep, dim=1)
            scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
            return scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)

        def top_predictions(logits, k):
            probs, ids = torch.sort(torch.softmax(logits.float(), -1), dim=-1, descending=True)
            return probs[:, :k], ids[:, :k]

        def rope_rotation(x, freqs_cis):
            pairs = torch.view_as_complex(x.float().reshape(-1, 2).contiguous())
            return torch.view_as_real(pairs[None, :] * freqs_cis)
        '''),
    "int8_by_max_and_dequantized_product": ("ex16_int8", '''
        def quantize(weight):
            w = weight.to(torch.float32)
            scale = torch.max(w.abs(), dim=1).values / 127
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            q = torch.clamp((w / scale.unsqueeze(1)).round(), -127, 127).to(torch.int8)
            return Int8Weight(q=q, scale=scale)

        def dequantize(w):
            return w.q.to(torch.float32) * w.scale.unsqueeze(-1)

        def int8_linear(x, w):
            return torch.nn.functional.linear(x.float(), dequantize(w)).to(x.dtype)

        def is_quantized(name):
            return name.endswith("weight") and "norm" not in name and not name.startswith("tok_embeddings")

        def forward(tokens, weights, args, cache=None, start_pos=0):
            n = len(tokens)
            h = weights["tok_embeddings.weight"][tokens]
            freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + n, args.rope_theta, args.rope_scale_factor)[start_pos:start_pos + n]
            for i in range(args.n_layers):
                w = lambda name: weights[f"layers.{i}.{name}.weight"]  # noqa: E731
                x = rms_norm(h, w("attention_norm"), args.norm_eps)
                q, k, v = (int8_linear(x, w(f"attention.w{p}")).unflatten(-1, (-1, args.head_dim)) for p in "qkv")
                q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)
                if cache is not None:
                    k, v = cache.update(i, start_pos, k, v)
                o = torch.nn.functional.scaled_dot_product_attention(
                    q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=False, enable_gqa=True,
                    attn_mask=None if n == 1 else torch.ones(n, start_pos + n, dtype=torch.bool).tril(start_pos))
                h = h + int8_linear(o.transpose(0, 1).flatten(1), w("attention.wo"))
                x = rms_norm(h, w("ffn_norm"), args.norm_eps)
                g = int8_linear(x, w("feed_forward.w1"))
                h = h + int8_linear(g * torch.sigmoid(g) * int8_linear(x, w("feed_forward.w3")), w("feed_forward.w2"))
            return int8_linear(rms_norm(h, weights["norm.weight"], args.norm_eps), weights["output.weight"]).to(torch.float32)
        '''),
    "tensor_parallel_by_chunks_and_masks": ("ex17_tensor_parallel", '''
        def split_dim(name):
            if name in ("tok_embeddings.weight", "output.weight"):
                return 0
            kind = name.rsplit(".", 2)[-2] if name.count(".") >= 2 else ""
            return {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "wo": 1, "w2": 1}.get(kind)

        def shard(weight, dim, rank, world_size):
            return torch.chunk(weight, world_size, dim=dim)[rank].clone()

        def shard_kv(weight, n_kv_heads, rank, world_size):
            heads = weight.unflatten(0, (n_kv_heads, -1))  # [n_kv_heads, head_dim, dim]
            if world_size > n_kv_heads:
                heads = heads.repeat_interleave(world_size // n_kv_heads, dim=0)
            return torch.chunk(heads, world_size, dim=0)[rank].flatten(0, 1).clone()

        def local_args(args, world_size):
            import copy

            local = copy.copy(args)
            local.n_heads = args.n_heads // world_size
            local.n_kv_heads = max(1, args.n_kv_heads // world_size)
            local.dim = args.dim // world_size
            return local

        def parallel_embed(tokens, tok_embeddings):
            rows = tok_embeddings.shape[0]
            local = tokens - dist.get_rank() * rows
            inside = (local >= 0) & (local < rows)
            h = torch.nn.functional.embedding(local.clamp(0, rows - 1), tok_embeddings) * inside.unsqueeze(-1).to(tok_embeddings.dtype)
            dist.all_reduce(h, op=dist.ReduceOp.SUM)
            return h

        def parallel_feed_forward(x, w1, w2, w3):
            g = x @ w1.T
            partial = (torch.nn.functional.silu(g) * (x @ w3.T)) @ w2.T
            total = partial.clone()
            dist.all_reduce(total)
            return total

        def parallel_forward(tokens, weights, args, cache=None, start_pos=0):
            n = tokens.shape[0]
            h = parallel_embed(tokens, weights["tok_embeddings.weight"])
            freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + n, args.rope_theta, args.rope_scale_factor)[start_pos:]
            mask = causal_mask(n, start_pos) if n > 1 else None
            for i in range(args.n_layers):
                w = lambda name: weights[f"layers.{i}.{name}.weight"]  # noqa: E731
                h = h + parallel_attention(rms_norm(h, w("attention_norm"), args.norm_eps), weights, i, args, freqs_cis, mask, cache, start_pos)
                h = h + parallel_feed_forward(rms_norm(h, w("ffn_norm"), args.norm_eps), w("feed_forward.w1"), w("feed_forward.w2"), w("feed_forward.w3"))
            mine = rms_norm(h, weights["norm.weight"], args.norm_eps) @ weights["output.weight"].T
            gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, mine.contiguous())
            return torch.cat(gathered, dim=1).to(torch.float32)

        def parallel_generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            local = local_args(args, dist.get_world_size())
            cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, local.n_kv_heads, args.head_dim, weights["norm.weight"].dtype)
            position, pending = 0, list(prompt_ids)
            for _ in range(max_new_tokens):
                logits = parallel_forward(torch.tensor(pending), weights, args, cache, position)[-1]
                position += len(pending)
                token = int(torch.argmax(logits))
                if token in set(stop_tokens):
                    break
                yield token, logits
                pending = [token]
        '''),
}


def planted(names) -> dict[str, str]:
    """module -> source with these variants planted (at most one per module)."""
    out = {}
    for name in names:
        module, source = VARIANTS[name]
        assert module not in out, f"two variants of {module} in one tree"
        out[module] = solution(module) + "\n\n# planted by the kit's tests\nimport math  # noqa: E402\nimport torch  # noqa: E402\n" + textwrap.dedent(source).lstrip()
    return out


def rounds() -> list[list[str]]:
    """The variants grouped so that no two in a round replace the same module."""
    return by_rounds(VARIANTS, key=lambda name: VARIANTS[name][0])
