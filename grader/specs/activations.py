"""The reference's intermediate tensors on one prompt: what each exercise is fed, so that every exercise gets
realistic activations (layer 0's input is the prompt's embeddings, and so on) without depending on the learner's
earlier work."""

import functools

import torch

from solutions import (ex03_embeddings, ex04_rms_norm, ex05_qkv, ex06_rope, ex07_attention, ex08_multi_head_attention,
                       ex10_transformer_block, ex12_generation)


class Activations:
    """The reference's intermediate tensors on one prompt, computed once."""

    def __init__(self, model, prompt: str):
        ck = model.checkpoint
        self.model, self.prompt, self.args, w = model, prompt, ck.args, model.weights()
        self.ids = ck.tokenizer.encode(prompt)
        self.tokens = torch.tensor(self.ids)  # [seq]
        seq = len(self.ids)
        self.x = ex03_embeddings.embed(self.tokens, w["tok_embeddings.weight"])  # [seq, dim]
        self.x_normed = ex04_rms_norm.rms_norm(self.x, w["layers.0.attention_norm.weight"], self.args.norm_eps)
        self.q, self.k, self.v = ex05_qkv.project_qkv(
            self.x_normed, w["layers.0.attention.wq.weight"], w["layers.0.attention.wk.weight"],
            w["layers.0.attention.wv.weight"], self.args.n_heads, self.args.n_kv_heads)
        self.freqs_cis = ex06_rope.precompute_freqs_cis(self.args.head_dim, seq, self.args.rope_theta,
                                                        self.args.rope_scale_factor)
        self.q_rot = ex06_rope.apply_rope(self.q, self.freqs_cis)
        self.k_rot = ex06_rope.apply_rope(self.k, self.freqs_cis)
        self.mask = ex07_attention.causal_mask(seq)
        self.h = self.x + ex08_multi_head_attention.self_attention(self.x_normed, w, 0, self.args, self.freqs_cis,
                                                                   self.mask)
        self.h_normed = ex04_rms_norm.rms_norm(self.h, w["layers.0.ffn_norm.weight"], self.args.norm_eps)
        self.last_input = self.x  # input of the last layer
        for layer_id in range(self.args.n_layers - 1):
            self.last_input = ex10_transformer_block.transformer_block(self.last_input, w, layer_id, self.args,
                                                                       self.freqs_cis, self.mask)
        # the cached path: a prefill, then two decode steps of one token, or a chunk of three after the cached ones
        self.cached = {"cached_decode": [["prefill", seq - 2], ["decode_step_1", 1], ["decode_step_2", 1]],
                       "cached_chunk": [["prefill", seq - 3], ["chunk", 3]]}

    @functools.cached_property
    def forced_stop(self) -> list[int]:
        """A stop token the model meets at the fourth step of greedy generation in float32 (random weights never
        choose EOS), to grade the branch where generation stops."""
        steps = ex12_generation.generate(self.ids, self.model.weights("float32"), self.args, 4)
        return [[t for t, _ in steps][3]]
