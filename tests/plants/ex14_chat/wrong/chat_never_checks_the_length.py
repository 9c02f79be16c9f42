"""Chat.ask never checks that the conversation fits in its cache: a message too long runs the cache over."""

import torch

from solutions.ex14_chat import Chat, encode_dialog, end_of_turn, forward

FAILURE_SAYS = "should raise ValueError before anything changes"


def _ask_unchecked(self, content, max_new_tokens=256, sampler=None):
    turn = encode_dialog(self.encoding, [*self.pending, {"role": "user", "content": content}], self.chat_format)
    if self.tokens and self.chat_format == "llama3":
        turn = turn[1:]
    self.pending, self.tokens = [], self.tokens + turn
    try:
        for _ in range(max_new_tokens):
            logits = forward(torch.tensor(self.tokens[self.cached:]), self.weights, self.args, self.cache,
                             self.cached)[-1]
            self.cached = len(self.tokens)
            token = sampler(logits) if sampler is not None else int(logits.argmax())
            if token in self.stop_tokens:
                return
            self.tokens.append(token)
            yield token, logits
    finally:
        self.tokens += end_of_turn(self.encoding, self.chat_format)


Chat.ask = _ask_unchecked
