"""Chat.ask yields the stop token, then ends the reply: the caller shows it (in the CLI, a reply ending in
<|im_end|>)."""

from solutions.ex14_chat import Chat

FAILURE_SAYS = "yielded the stop token"

_reference_ask = Chat.ask


def _ask_yielding_the_stop(self, content, max_new_tokens=256, sampler=None):
    stops, self.stop_tokens = self.stop_tokens, ()
    try:
        for token, logits in _reference_ask(self, content, max_new_tokens, sampler):
            yield token, logits
            if token in stops:
                self.tokens.pop()  # the stop is not kept in the conversation
                return
    finally:
        self.stop_tokens = stops


Chat.ask = _ask_yielding_the_stop
