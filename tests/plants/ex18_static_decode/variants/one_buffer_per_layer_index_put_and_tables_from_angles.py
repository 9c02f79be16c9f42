"""Keys and values of a layer in one buffer [2, max_seq_len, n_kv_heads, head_dim] written by index_put (buf[0,
input_pos] = k); RoPE tables from the angles themselves (cos and sin of t * f_k); rotation of
strided halves of each pair; the mask by torch.where; generate writing its tokens and logits into preallocated device
tensors; CUDA graphs asked for by inductor's option triton.cudagraphs."""

import torch

from solutions.ex18_static_decode import decode_step, forward, precompute_freqs_cis


class StaticCache:
    def __init__(self, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, device=None):
        self.kv = [torch.zeros(2, max_seq_len, n_kv_heads, head_dim, dtype=dtype, device=device)
                   for _ in range(n_layers)]
        for buffer in self.kv:
            torch._dynamo.mark_static_address(buffer)

    def update(self, layer_id, input_pos, k, v):
        buffer = self.kv[layer_id]
        buffer[0, input_pos] = k
        buffer[1, input_pos] = v
        return buffer[0], buffer[1]


def rope_tables(head_dim, max_seq_len, theta, scale_factor=None, device=None):
    freqs = precompute_freqs_cis(head_dim, 2, theta, scale_factor, device=device)[1].angle()  # f_k: the angle at t = 1
    angles = torch.arange(max_seq_len, dtype=torch.float32, device=device)[:, None] * freqs[None, :]
    return torch.cos(angles), torch.sin(angles)


def apply_rotary(x, cos, sin):
    x32 = x.float()
    a, b = x32[..., ::2], x32[..., 1::2]
    c, s = cos.unsqueeze(1), sin.unsqueeze(1)
    out = torch.empty_like(x32)
    out[..., ::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out.to(x.dtype)


def attention_mask(input_pos, max_seq_len):
    columns = torch.arange(max_seq_len, device=input_pos.device)
    return torch.where(columns[None, :] > input_pos[:, None], float("-inf"), 0.0)


def compile_step(step, device):
    options = {"triton.cudagraphs": True} if torch.device(device).type == "cuda" else None
    return torch.compile(step, fullgraph=True, options=options)


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), max_seq_len=None):
    if max_new_tokens == 0:
        return []
    table = weights["tok_embeddings.weight"]
    size = max_seq_len if max_seq_len is not None else len(prompt_ids) + max_new_tokens
    cache = StaticCache(args.n_layers, size, args.n_kv_heads, args.head_dim, table.dtype, table.device)
    rope = rope_tables(args.head_dim, size, args.rope_theta, args.rope_scale_factor, table.device)
    for w in weights.values():
        torch._dynamo.mark_static_address(w)
    step = compile_step(decode_step, table.device)
    chosen = torch.empty(max_new_tokens, dtype=torch.long, device=table.device)
    all_logits = torch.empty(max_new_tokens, args.vocab_size, device=table.device)
    positions = torch.arange(len(prompt_ids), device=table.device)
    all_logits[0] = forward(torch.tensor(prompt_ids, device=table.device), positions, weights, args, cache, rope)[-1]
    chosen[0:1] = all_logits[0].argmax(-1, keepdim=True)
    position = positions[-1:] + 1
    token = chosen[0:1].clone()
    for i in range(1, max_new_tokens):
        token, logits = step(token, position, weights, args, cache, rope)
        token = token.clone()
        chosen[i:i + 1] = token
        all_logits[i] = logits
        position += 1
    tokens = chosen.tolist()
    end = next((i for i, t in enumerate(tokens) if t in stop_tokens), len(tokens))
    return [(tokens[i], all_logits[i]) for i in range(end)]
