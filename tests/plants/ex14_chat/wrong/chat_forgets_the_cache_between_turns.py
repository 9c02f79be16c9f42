"""Each turn of Chat starts from a new, empty cache, so the conversation so far is fed again."""

from solutions.ex14_chat import Chat, KVCache

FAILURE_SAYS = "Chat.ask passed a new cache to forward"

_reference_ask = Chat.ask


def _ask_afresh(self, content, max_new_tokens=256, sampler=None):
    self.cache = KVCache(self.args.n_layers, self.max_seq_len, self.args.n_kv_heads, self.args.head_dim,
                         self.weights["tok_embeddings.weight"].dtype)
    self.cached = 0
    yield from _reference_ask(self, content, max_new_tokens, sampler)


Chat.ask = _ask_afresh
