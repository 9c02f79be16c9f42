"""The tolerance table is not too tight: implementations that are right but order their arithmetic differently
from solutions/ pass every graded test. (That it is not too loose is test_grading's job: every known mistake
and every bad learner fails.)"""

from learners import dedent, grade, solution, tree

ALTERNATIVES = {
    "ex04_rms_norm": '''
        def rms_norm(x, weight, eps):
            x32 = x.to(torch.float32)
            return (x32 / torch.sqrt((x32 * x32).mean(dim=-1, keepdim=True) + eps)).to(x.dtype) * weight
        ''',
    "ex05_qkv": '''
        def project_qkv(x, wq, wk, wv, n_heads, n_kv_heads):
            head_dim = wq.shape[0] // n_heads
            q, k, v = (x @ torch.cat([wq, wk, wv]).T).split([wq.shape[0], wk.shape[0], wv.shape[0]], dim=-1)
            return q.unflatten(-1, (n_heads, head_dim)), k.unflatten(-1, (n_kv_heads, head_dim)), v.unflatten(-1, (n_kv_heads, head_dim))
        ''',
    "ex06_rope": '''
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
        ''',
    "ex07_attention": '''
        def attention(q, k, v, mask):
            scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask.to(scores.dtype)
            scores = scores.float()
            weights = (scores - scores.amax(-1, keepdim=True)).exp()
            return (weights / weights.sum(-1, keepdim=True)).to(q.dtype) @ v
        ''',
    "ex08_multi_head_attention": '''
        def grouped_query_attention(q, k, v, mask):
            n_rep = q.shape[1] // k.shape[1]
            heads = [attention(q[:, h], k[:, h // n_rep], v[:, h // n_rep], mask) for h in range(q.shape[1])]
            return torch.cat(heads, dim=-1)
        ''',
    "ex09_feed_forward": '''
        def feed_forward(x, w1, w2, w3):
            return (torch.nn.functional.silu(x @ w1.T) * (x @ w3.T)) @ w2.T
        ''',
    "ex12_generation": '''
        def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                            weights["tok_embeddings.weight"].dtype)
            logits = forward(torch.tensor(prompt_ids), weights, args, cache, 0)[-1]
            position = len(prompt_ids)
            for _ in range(max_new_tokens):
                token = int(torch.argmax(logits))
                if token in stop_tokens:
                    break
                yield token, logits
                logits = forward(torch.tensor([token]), weights, args, cache, position)[-1]
                position += 1
        ''',
}


def test_differently_ordered_correct_implementations_pass_every_graded_test(tmp_path):
    planted = {m: solution(m) + "\n\nimport math  # noqa: E402\n" + dedent(src) for m, src in ALTERNATIVES.items()}
    results = grade(tree(tmp_path, planted), "--impl", "exercises", "-k", " or ".join(ALTERNATIVES))
    own = [r for r in results if r["exercise"] in ALTERNATIVES]
    failed = [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert {r["exercise"] for r in own if r["outcome"] == "passed"} == set(ALTERNATIVES)
