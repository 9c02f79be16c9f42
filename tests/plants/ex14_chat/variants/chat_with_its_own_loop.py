"""encode_dialog without building one list per message; a Chat that keeps (weights, args) as one tuple, drops a
repeated <|begin_of_text|> from the turn's tokens, refuses a turn by the room left in its cache, and feeds what the
cache lacks at the top of each step."""

import torch

from solutions.ex14_chat import FORMATS, KVCache, encode_header, encode_message, end_of_turn, forward


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
        self.cache = KVCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim,
                             weights["tok_embeddings.weight"].dtype)
        self.tokens, self.cached = [], 0
        self.system, self.room = system, max_seq_len

    def ask(self, content, max_new_tokens=256, sampler=None):
        messages = ([{"role": "system", "content": self.system}] if self.system and not self.tokens else [])
        messages.append({"role": "user", "content": content})
        turn = encode_dialog(self.encoding, messages, self.chat_format)
        turn = turn if not self.tokens or self.chat_format != "llama3" else turn[1:]
        if len(turn) + max_new_tokens > self.room - len(self.tokens):
            raise ValueError(f"no room for this turn: {len(turn)} tokens and {max_new_tokens} new in {self.room}")
        self.tokens.extend(turn)
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
