"""Wrong programs a learner writes that are none of the named mistakes' variants: each fails in its own exercise
(and only there), with a message that says what went wrong. Every other exercise holds the reference."""

import pytest

from learners import by_exercise, dedent, grade_all, rounds, solution, tree

# exercise -> (wrong code appended to the reference module, words its failure message must contain)
WRONG = {
    "kv_repeated_before_caching": ("ex08_multi_head_attention", '''
        def self_attention(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
            p = f"layers.{layer_id}.attention."
            q, k, v = project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"], args.n_heads, args.n_kv_heads)
            q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)
            k, v = repeat_kv(k, args.n_rep), repeat_kv(v, args.n_rep)
            if cache is not None:
                k, v = cache.update(layer_id, start_pos, k, v)
            out = attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), mask).transpose(0, 1)
            return linear(out.reshape(x.shape[0], -1), weights[p + "wo.weight"])
        ''', "update the cache before repeat_kv"),
    "cache_never_updated": ("ex08_multi_head_attention", '''
        def self_attention(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
            p = f"layers.{layer_id}.attention."
            q, k, v = project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"], args.n_heads, args.n_kv_heads)
            q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)
            return linear(grouped_query_attention(q, k, v, mask), weights[p + "wo.weight"])
        ''', "cache was not updated"),
    "rope_after_the_cache_write": ("ex08_multi_head_attention", '''
        def self_attention(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
            p = f"layers.{layer_id}.attention."
            q, k, v = project_qkv(x, weights[p + "wq.weight"], weights[p + "wk.weight"], weights[p + "wv.weight"], args.n_heads, args.n_kv_heads)
            if cache is not None:
                k, v = cache.update(layer_id, start_pos, k, v)
            q = apply_rope(q, freqs_cis)
            k = apply_rope(k, freqs_cis)
            return linear(grouped_query_attention(q, k, v, mask), weights[p + "wo.weight"])
        ''', "the cache holds keys without RoPE"),
    "block_drops_the_cache": ("ex10_transformer_block", '''
        def transformer_block(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
            p = f"layers.{layer_id}."
            h = x + self_attention(rms_norm(x, weights[p + "attention_norm.weight"], args.norm_eps), weights, layer_id, args, freqs_cis, mask)
            normed = rms_norm(h, weights[p + "ffn_norm.weight"], args.norm_eps)
            return h + feed_forward(normed, *(weights[p + f"feed_forward.w{i}.weight"] for i in (1, 2, 3)))
        ''', "pass cache and start_pos on"),
    "forward_positions_restart_at_zero": ("ex11_forward", '''
        def forward(tokens, weights, args, cache=None, start_pos=0):
            seqlen = tokens.shape[0]
            h = embed(tokens, weights["tok_embeddings.weight"])
            freqs_cis = precompute_freqs_cis(args.head_dim, seqlen, args.rope_theta, args.rope_scale_factor)
            mask = causal_mask(seqlen, start_pos) if seqlen > 1 else None
            for layer_id in range(args.n_layers):
                h = transformer_block(h, weights, layer_id, args, freqs_cis, mask, cache, start_pos)
            return linear(rms_norm(h, weights["norm.weight"], args.norm_eps), weights["output.weight"]).float()
        ''', "positions restart at 0"),
    "forward_without_start_pos": ("ex11_forward", '''
        _reference_forward = forward
        def forward(tokens, weights, args, cache=None, start_pos=0):
            seqlen = tokens.shape[0]
            h = embed(tokens, weights["tok_embeddings.weight"])
            freqs_cis = precompute_freqs_cis(args.head_dim, start_pos + seqlen, args.rope_theta, args.rope_scale_factor)[start_pos:]
            mask = causal_mask(seqlen, start_pos) if seqlen > 1 else None
            for layer_id in range(args.n_layers):
                h = transformer_block(h, weights, layer_id, args, freqs_cis, mask, cache)
            return linear(rms_norm(h, weights["norm.weight"], args.norm_eps), weights["output.weight"]).float()
        ''', "pass start_pos on unchanged"),
    "next_token_reads_the_first_row": ("ex11_forward", '''
        def next_token(logits):
            return int(logits[0].argmax())
        ''', "next_token"),
    "uncached_generation_ignores_stop_tokens": ("ex11_forward", '''
        def generate_uncached(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            ids = list(prompt_ids)
            for _ in range(max_new_tokens):
                logits = forward(torch.tensor(ids), weights, args)[-1]
                token = int(logits.argmax())
                yield token, logits
                ids.append(token)
        ''', "yielded the stop token"),
    "uncached_generation_yields_the_stop_token": ("ex11_forward", '''
        def generate_uncached(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            ids = list(prompt_ids)
            for _ in range(max_new_tokens):
                logits = forward(torch.tensor(ids), weights, args)[-1]
                token = int(logits.argmax())
                yield token, logits
                if token in stop_tokens:
                    return
                ids.append(token)
        ''', "yielded the stop token"),
    "generate_recomputes_everything": ("ex12_generation", '''
        def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            ids = list(prompt_ids)
            for _ in range(max_new_tokens):
                cache = KVCache(args.n_layers, len(ids), args.n_kv_heads, args.head_dim, weights["tok_embeddings.weight"].dtype)
                logits = forward(torch.tensor(ids), weights, args, cache, 0)[-1]
                token = int(logits.argmax())
                if token in stop_tokens:
                    return
                yield token, logits
                ids.append(token)
        ''', "new cache"),
    "generate_without_a_cache": ("ex12_generation", '''
        def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            ids = list(prompt_ids)
            for _ in range(max_new_tokens):
                logits = forward(torch.tensor(ids), weights, args)[-1]
                token = int(logits.argmax())
                if token in stop_tokens:
                    return
                yield token, logits
                ids.append(token)
        ''', "without a cache"),
    "generate_refeeds_the_sequence": ("ex12_generation", '''
        def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            ids = list(prompt_ids)
            cache = KVCache(args.n_layers, len(ids) + max_new_tokens, args.n_kv_heads, args.head_dim, weights["tok_embeddings.weight"].dtype)
            for _ in range(max_new_tokens):
                logits = forward(torch.tensor(ids), weights, args, cache, 0)[-1]
                token = int(logits.argmax())
                if token in stop_tokens:
                    return
                yield token, logits
                ids.append(token)
        ''', "after the prefill, feed only the token just chosen"),
    "cache_always_float32": ("ex12_generation", '''
        _Reference = KVCache
        class KVCache(_Reference):
            def __init__(self, n_layers, max_seq_len, n_kv_heads, head_dim, dtype, device=None):
                super().__init__(n_layers, max_seq_len, n_kv_heads, head_dim, torch.float32, device)
        ''', "generate raised RuntimeError"),
    "ffn_rounded_to_the_nearest_multiple": ("ex02_checkpoint", '''
        def ffn_hidden_dim(dim, multiple_of, ffn_dim_multiplier):
            hidden = int(2 * (4 * dim) / 3)
            if ffn_dim_multiplier is not None:
                hidden = int(ffn_dim_multiplier * hidden)
            return multiple_of * round(hidden / multiple_of)
        ''', "ffn_hidden_dim (tiny-llama3, rounds_up)"),
    "n_kv_heads_without_fallback": ("ex02_checkpoint", '''
        _reference_model_args = model_args
        def model_args(params):
            return dataclasses.replace(_reference_model_args(params), n_kv_heads=params.get("n_kv_heads"))
        ''', "n_kv_heads"),
    "digits_not_grouped_by_three": ("ex01_tokenizer", '''
        PAT_STR = PAT_STR.replace(r"\\p{N}{1,3}", r"\\p{N}+")
        ''', "load_tokenizer (tiny-llama3, prompts)"),
    # the extras
    "sampler_ignores_its_generator": ("ex13_sampling", '''
        def sample(logits, temperature, top_k, top_p, generator):
            if temperature == 0:
                return int(logits.argmax())
            return int(torch.multinomial(probabilities(logits, temperature, top_k, top_p), num_samples=1))
        ''', "tokens drawn twice with the same seed"),
    "chat_forgets_the_cache_between_turns": ("ex14_chat", '''
        _reference_ask = Chat.ask
        def _ask_afresh(self, content, max_new_tokens=256, sampler=None):
            self.cache = KVCache(self.args.n_layers, self.max_seq_len, self.args.n_kv_heads, self.args.head_dim,
                                 self.weights["tok_embeddings.weight"].dtype)
            self.cached = 0
            yield from _reference_ask(self, content, max_new_tokens, sampler)
        Chat.ask = _ask_afresh
        ''', "Chat.ask passed a new cache to forward"),
    "attention_map_unscaled": ("ex15_experiments", '''
        _reference_attention_probs = attention_probs
        def attention_probs(tokens, weights, args, layer_id):
            p = _reference_attention_probs(tokens, weights, args, layer_id)
            return torch.softmax(torch.log(p) * args.head_dim ** 0.5, dim=-1)
        ''', "attention_probs (tiny-llama3, prompt42_layer0) does not match the reference"),
    "int8_one_scale_per_matrix": ("ex16_int8", '''
        def quantize(weight):
            w = weight.float()
            scale = (w.abs().max().clamp_min(1e-12) / 127).expand(w.shape[0]).clone()
            return Int8Weight(torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8), scale)
        ''', "scale: 14 of 16 values outside the tolerance"),
    "parallel_logits_not_gathered": ("ex17_tensor_parallel", '''
        _reference_parallel_forward = parallel_forward
        def parallel_forward(tokens, weights, args, cache=None, start_pos=0):
            full = _reference_parallel_forward(tokens, weights, args, cache, start_pos)
            width = full.shape[-1] // dist.get_world_size()
            return full[:, dist.get_rank() * width:(dist.get_rank() + 1) * width]
        ''', "columns: shape [17, 256], expected [17, 511]"),
    "parallel_generate_caches_every_kv_head": ("ex17_tensor_parallel", '''
        def parallel_generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
            cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                            weights["tok_embeddings.weight"].dtype)
            tokens, start_pos = torch.tensor(prompt_ids), 0
            for _ in range(max_new_tokens):
                logits = parallel_forward(tokens, weights, args, cache, start_pos)[-1]
                token = int(logits.argmax())
                if token in stop_tokens:
                    return
                yield token, logits
                start_pos += tokens.shape[0]
                tokens = torch.tensor([token])
        ''', "parallel_generate made its KVCache for 2 K/V heads, but the keys and values written into it have 1"),
}


def _rounds() -> list[list[str]]:
    """The wrong programs grouped so that no two in a round replace the same module: one tree per round."""
    return rounds(WRONG, key=lambda name: WRONG[name][0])


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, list[dict]]:
    """name -> the graded results of that wrong program's exercise (every round graded in one subprocess)."""
    jobs = []
    for i, names in enumerate(_rounds()):
        planted = {}
        for name in names:
            module, source, _ = WRONG[name]
            planted[module] = (solution(module) + "\n\n# planted by the kit's tests\nimport dataclasses  # noqa: E402\n"
                               "import torch  # noqa: E402\n" + dedent(source))
        jobs.append((tree(tmp_path_factory.mktemp(f"round{i}"), planted), ("--impl", "exercises", "-k", " or ".join(planted))))
    results = {}
    for names, found in zip(_rounds(), grade_all(jobs)):
        results |= {name: by_exercise(found)[WRONG[name][0]] for name in names}
    return results


@pytest.mark.parametrize("name", list(WRONG))
def test_a_wrong_program_fails_in_its_own_exercise_and_says_why(graded, name):
    module, _, words = WRONG[name]
    failed = [r for r in graded[name] if r["outcome"] == "failed"]
    assert failed, f"{name}: every test of {module} passed"
    assert any(words in r["message"] for r in failed), f"{name}: no failure says {words!r}:\n" + "\n\n".join(r["message"] for r in failed)
