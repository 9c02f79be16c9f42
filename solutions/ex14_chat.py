"""Exercise 14, reference: the Instruct models' chat formats (Llama 3's and ChatML), and a conversation that keeps its
KV cache across turns."""

from collections.abc import Callable, Iterator

import tiktoken
import torch

from .ex02_checkpoint import ModelArgs
from .ex11_forward import forward
from .ex12_generation import KVCache

ROLES = ("system", "user", "assistant")
FORMATS = ("llama3", "chatml")


def check_message(message: dict) -> None:
    """A ValueError, in one line, unless message is {"role": one of ROLES, "content": text that is not blank}."""
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: a message's role is one of {', '.join(ROLES)}")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ValueError(f"the {role} message is empty: give it some text")


def _special(encoding: tiktoken.Encoding, name: str) -> int:
    return encoding.encode_single_token(name)


def _text(encoding: tiktoken.Encoding, text: str) -> list[int]:
    return encoding.encode(text, allowed_special=set(), disallowed_special=())


def encode_header(encoding: tiktoken.Encoding, role: str, chat_format: str = "llama3") -> list[int]:
    """The tokens that open a message of role: Llama 3's header and "\\n\\n", or ChatML's <|im_start|>role\\n."""
    if chat_format == "llama3":
        return [_special(encoding, "<|start_header_id|>"), *_text(encoding, role),
                _special(encoding, "<|end_header_id|>"), *_text(encoding, "\n\n")]
    return [_special(encoding, "<|im_start|>"), *_text(encoding, f"{role}\n")]


def end_of_turn(encoding: tiktoken.Encoding, chat_format: str = "llama3") -> list[int]:
    """The tokens that close a message: <|eot_id|>, or ChatML's <|im_end|>\\n."""
    if chat_format == "llama3":
        return [_special(encoding, "<|eot_id|>")]
    return [_special(encoding, "<|im_end|>"), *_text(encoding, "\n")]


def encode_message(encoding: tiktoken.Encoding, message: dict, chat_format: str = "llama3") -> list[int]:
    """One whole message: header, content (stripped, in Llama 3's format), end of turn."""
    check_message(message)
    if chat_format == "llama3":
        return (encode_header(encoding, message["role"]) + _text(encoding, message["content"].strip())
                + end_of_turn(encoding))
    # ChatML is a text template: the text between two special tokens is encoded as one piece, role and content together
    return [_special(encoding, "<|im_start|>"), *_text(encoding, f"{message['role']}\n{message['content']}"),
            *end_of_turn(encoding, chat_format)]


def encode_dialog(encoding: tiktoken.Encoding, messages: list[dict], chat_format: str = "llama3") -> list[int]:
    """A conversation as the model reads it: (<|begin_of_text|> for Llama 3,) every message, an open assistant
    header."""
    if chat_format not in FORMATS:
        raise ValueError(f"unknown chat format {chat_format!r}: use one of {', '.join(FORMATS)}")
    start = [_special(encoding, "<|begin_of_text|>")] if chat_format == "llama3" else []
    body = [t for message in messages for t in encode_message(encoding, message, chat_format)]
    return start + body + encode_header(encoding, "assistant", chat_format)


class Chat:
    """A conversation with the model: each turn feeds only the tokens the KV cache does not hold yet."""

    def __init__(self, weights: dict[str, torch.Tensor], args: ModelArgs, encoding: tiktoken.Encoding,
                 chat_format: str = "llama3", stop_tokens=(), max_seq_len: int = 2048, system: str | None = None):
        self.weights, self.args, self.encoding, self.chat_format = weights, args, encoding, chat_format
        self.stop_tokens = tuple(stop_tokens)
        embeddings = weights["tok_embeddings.weight"]
        self.device = embeddings.device  # where the model runs: the cache and the tokens fed go there
        self.cache = KVCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, embeddings.dtype,
                             device=self.device)
        self.max_seq_len = max_seq_len
        self.tokens: list[int] = []  # the conversation so far, as the model reads it
        self.cached = 0  # how many of self.tokens the cache holds (positions 0 .. cached - 1)
        # messages not yet in self.tokens
        self.pending = [] if system is None else [{"role": "system", "content": system}]

    def ask(self, content: str, max_new_tokens: int = 256,
            sampler: Callable[[torch.Tensor], int] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Add a user message, then yield the reply's (token, logits) as they come; the reply stays in the conversation,
        closed with the end of turn, however it ends (a stop token, max_new_tokens, or the caller closing it)."""
        messages = [*self.pending, {"role": "user", "content": content}]
        # every message of this turn, an open assistant header
        turn = encode_dialog(self.encoding, messages, self.chat_format)
        if self.tokens and self.chat_format == "llama3":
            turn = turn[1:]  # <|begin_of_text|> starts the conversation only
        if len(self.tokens) + len(turn) + max_new_tokens > self.max_seq_len:
            raise ValueError(f"the conversation would pass {self.max_seq_len} tokens: start a new one")
        self.pending, self.tokens = [], self.tokens + turn
        try:
            for _ in range(max_new_tokens):
                new = torch.tensor(self.tokens[self.cached:], device=self.device)  # [n]: what the cache lacks
                logits = forward(new, self.weights, self.args, self.cache, self.cached)[-1]  # [vocab_size]
                self.cached = len(self.tokens)  # only once forward has returned: an interrupted one is fed again
                token = sampler(logits) if sampler is not None else int(logits.argmax())
                if token in self.stop_tokens:
                    return
                self.tokens.append(token)
                yield token, logits
        finally:
            self.tokens += end_of_turn(self.encoding, self.chat_format)
