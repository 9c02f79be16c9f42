"""After a reply interrupted by Ctrl-C, Chat throws its cache away and starts a new one: the next turn feeds the whole
conversation again."""

from solutions.ex14_chat import Chat, KVCache

FAILURE_SAYS = "passed a new cache to forward"

_reference_ask = Chat.ask


def _ask_afresh_after_an_interruption(self, content, max_new_tokens=256, sampler=None):
    try:
        yield from _reference_ask(self, content, max_new_tokens, sampler)
    except KeyboardInterrupt:
        self.cache = KVCache(self.args.n_layers, self.max_seq_len, self.args.n_kv_heads, self.args.head_dim,
                             self.weights["tok_embeddings.weight"].dtype)
        self.cached = 0
        raise


Chat.ask = _ask_afresh_after_an_interruption
