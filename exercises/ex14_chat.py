"""Exercise 14: The Instruct chat format, and a conversation.

A base model continues text. An Instruct model (Meta-Llama-3-8B-Instruct, or the
trained SmolLM2-135M-Instruct the kit fetches) was fine-tuned on conversations written
in one exact format, and it answers well only when it reads that format again, token
for token. The format is a few special tokens around each message; the model's reply
ends with a special token too, which is how generation knows the turn is over. This
exercise writes two such formats, then a conversation that keeps its KV cache from
one turn to the next.

Messages
--------
A conversation is a list of messages, {"role": ..., "content": ...}, with role one of
"system" (instructions for the whole conversation, usually first), "user" and
"assistant" (the model's own earlier replies). A message with another role, or with no
text, is a ValueError with a one-line message that says what is wrong: an unknown role
would be encoded as ordinary text, and the model would read nonsense without a word of
complaint.

Llama 3's format (Meta's ChatFormat; docs/facts.md §4.4)
--------------------------------------------------------
    <|begin_of_text|>                                            once, at the start
    <|start_header_id|> system <|end_header_id|> \\n\\n  You are ...  <|eot_id|>
    <|start_header_id|> user   <|end_header_id|> \\n\\n  Hi           <|eot_id|>
    <|start_header_id|> assistant <|end_header_id|> \\n\\n             open: the model writes here

Each message is its header (<|start_header_id|>, the role encoded as text,
<|end_header_id|>, then "\\n\\n" encoded), its content encoded as text and stripped of
surrounding whitespace (Meta's Llama 3 code strips it), and <|eot_id|>. The dialog
ends with an *open* assistant header: the model's next token is the first of its
reply. It writes until it produces <|eot_id|> (128009): that is the stop token of a
chat turn. The ids, from Meta's tokenizer test: "user" = [882], "system" = [9125],
"assistant" = [78191], "\\n\\n" = [271]; system "You are a helpful assistant." and user
"Hi" give

    [128000, 128006, 9125, 128007, 271, 2675, 527, 264, 11190, 18328, 13, 128009,
     128006, 882, 128007, 271, 13347, 128009, 128006, 78191, 128007, 271]

Special tokens are placed by id (encoding.encode_single_token("<|eot_id|>") finds
it); the text around them is encoded with special tokens *disallowed as special*, as
in exercise 1. So a user who types "<|eot_id|>" gets those characters as plain text,
and cannot end the turn for the model.

ChatML (SmolLM2, and many other models)
---------------------------------------
    <|im_start|>system\\nYou are ...<|im_end|>\\n
    <|im_start|>user\\nHi<|im_end|>\\n
    <|im_start|>assistant\\n                                      open

There is no <|begin_of_text|>. ChatML is a text template (a Jinja template shipped with
the model, in its GGUF file's tokenizer.chat_template); Hugging Face renders it to a
string and encodes the text between two special tokens as one piece. So here the
role, "\\n" and the content are encoded together, f"{role}\\n{content}", and the content
is not stripped. (Encoding the role and the content apart gives the same ids for most
texts, but not for content that starts with a newline or spaces: "user\\n\\nWhat" has
"\\n\\n" as one token, "user\\n" then "\\nWhat" has two. The tests include such a
message, on the tiny models as on SmolLM2.) A message ends with <|im_end|>
and "\\n"; the model stops at <|im_end|> (id 2 in SmolLM2).

SmolLM2's template also adds a system message, "You are a helpful AI assistant named
SmolLM, trained by Hugging Face", when the first message is not a system one. Your
encode_dialog does not invent messages: `llama3-grader chat` starts its conversations
with that system message when the model is SmolLM2 (change it with --system), so the
model reads exactly what its template gives.

A conversation that keeps its cache
-----------------------------------
Chat holds one conversation: the tokens so far (self.tokens, exactly what the model has
read or written) and one KVCache. The cache holds the keys and values of the first
self.cached of those tokens. Each turn:

    1. append the turn's tokens: the user message and the open assistant header
       (plus <|begin_of_text|> and any system message on the first turn)
    2. feed forward only self.tokens[self.cached:], at start_pos = self.cached;
       then self.cached = len(self.tokens)
    3. choose the next token (argmax, or sampler(logits) with exercise 13's sampler);
       a stop token ends the reply; otherwise append it, yield it, and go to 2
    4. however the reply ends, append the end of turn (<|eot_id|>, or <|im_end|>\\n)

A turn costs only its new tokens: the whole conversation is never fed again, however
long it grows. Two details make it robust. The end of turn is appended in a `finally:`
block, so a reply that stops early (the caller closes the generator, as the chat
REPL does on Ctrl-C) is still closed properly; the tokens the cache lacks (the last
reply token, the end of turn) are fed at the start of the next turn. And self.cached
moves only after forward returns: a forward interrupted halfway wrote some layers'
rows and not others, and those positions are simply written again next time.

Try it: `llama3-grader chat --checkpoint ~/.cache/llama3-kit/models/smollm2-135m-instruct`
(after `llama3-grader checkpoint fetch smollm2`) holds a conversation with your code.

Pitfalls
--------
- Forgetting the open assistant header: the model then continues the user's message.
- A <|begin_of_text|> on every turn, or on every message.
- "\\n\\n" missing after <|end_header_id|>.
- Feeding the whole conversation again each turn, or a new KVCache per turn.
- Losing the end of turn when a reply is cut short: the next turn's tokens then run on
  from the middle of the model's sentence.
- Keeping the stop token in self.tokens, or yielding it.
- Moving self.cached before forward returns: a forward interrupted halfway is then never
  fed again. The tests interrupt one inside its forward, as Ctrl-C may.
- Refusing a message too long for max_seq_len only after adding it to self.tokens: the
  refused message stays, and every later turn fails.
- Ignoring the sampler passed to ask.
- ChatML's role and content encoded apart (see above).

The tests drive Chat through whole conversations (replies read to the end, closed after
two tokens, interrupted inside a forward, sampled, stopped by a stop token, a message
refused) and name each of these. Where token ids differ, the failure shows each id
decoded beside them, e.g. '\\n', '  What' against '\\n  ', 'What'.

Run the tests: pytest exercises/ -k ex14
"""

from collections.abc import Callable, Iterator

import tiktoken
import torch

# Your functions from exercises 11 and 12: call them here.
from .ex02_checkpoint import ModelArgs
from .ex11_forward import forward
from .ex12_generation import KVCache

ROLES = ("system", "user", "assistant")
FORMATS = ("llama3", "chatml")


def check_message(message: dict) -> None:
    """A ValueError, in one line, unless message is {"role": one of ROLES, "content": text that is not blank}.

    Args:
        message: one message of a conversation, e.g. {"role": "user", "content": "Hi"}.

    Returns:
        None when the message is fine; otherwise it raises ValueError.

    Hints:
        - message.get("role") in ROLES; the content a str whose .strip() is not empty.
        - Name the problem: f"unknown role {role!r}: ..." or f"the {role} message is empty: ...".
    """
    raise NotImplementedError("not started: implement check_message in exercises/ex14_chat.py (exercise 14)")


def encode_header(encoding: tiktoken.Encoding, role: str, chat_format: str = "llama3") -> list[int]:
    """The tokens that open a message of role: Llama 3's header and "\\n\\n", or ChatML's <|im_start|>role\\n.

    Args:
        encoding: the tokenizer (exercise 1's for Llama 3; SmolLM2's for ChatML).
        role: "system", "user" or "assistant".
        chat_format: "llama3" or "chatml".

    Returns:
        Llama 3: [128006] + encode(role) + [128007] + encode("\\n\\n"), e.g. [128006, 882, 128007, 271].
        ChatML: [<|im_start|>] + encode(role + "\\n").

    Hints:
        - encoding.encode_single_token("<|start_header_id|>") is the id of a special token.
        - encoding.encode(text, allowed_special=set(), disallowed_special=()) encodes text.
    """
    raise NotImplementedError("not started: implement encode_header in exercises/ex14_chat.py (exercise 14)")


def end_of_turn(encoding: tiktoken.Encoding, chat_format: str = "llama3") -> list[int]:
    """The tokens that close a message: [<|eot_id|>] for Llama 3, [<|im_end|>] + encode("\\n") for ChatML.

    Args:
        encoding: the tokenizer.
        chat_format: "llama3" or "chatml".

    Returns:
        Llama 3: [128009]. ChatML: [<|im_end|>] followed by the ids of "\\n".

    Hints:
        - encoding.encode_single_token for the special token, as in encode_header.
    """
    raise NotImplementedError("not started: implement end_of_turn in exercises/ex14_chat.py (exercise 14)")


def encode_message(encoding: tiktoken.Encoding, message: dict, chat_format: str = "llama3") -> list[int]:
    """One whole message: header, content (stripped, in Llama 3's format), end of turn.

    Args:
        encoding: the tokenizer.
        message: {"role": ..., "content": ...}.
        chat_format: "llama3" or "chatml".

    Returns:
        Llama 3: encode_header(role) + encode(content.strip()) + end_of_turn.
        ChatML: [<|im_start|>] + encode(f"{role}\\n{content}") + end_of_turn.

    Hints:
        - check_message(message) first.
    """
    raise NotImplementedError("not started: implement encode_message in exercises/ex14_chat.py (exercise 14)")


def encode_dialog(encoding: tiktoken.Encoding, messages: list[dict], chat_format: str = "llama3") -> list[int]:
    """A conversation as the model reads it: (<|begin_of_text|> for Llama 3,) every message, an open assistant header.

    Args:
        encoding: the tokenizer.
        messages: the conversation so far, in order.
        chat_format: "llama3" or "chatml".

    Returns:
        The token ids; for the example above, the 22 ids shown. An unknown chat_format
        is a ValueError.

    Hints:
        - encode_message for each message, then encode_header(encoding, "assistant", ...)
          with no content and no end of turn: the model writes the rest.
    """
    raise NotImplementedError("not started: implement encode_dialog in exercises/ex14_chat.py (exercise 14)")


class Chat:
    """A conversation with the model: each turn feeds only the tokens the KV cache does not hold yet."""

    def __init__(self, weights: dict[str, torch.Tensor], args: ModelArgs, encoding: tiktoken.Encoding,
                 chat_format: str = "llama3", stop_tokens=(), max_seq_len: int = 2048, system: str | None = None):
        """Keep everything given; make one KVCache of max_seq_len positions (the weights' dtype);
        self.tokens = [], self.cached = 0; a system message, if given, goes in with the first turn.

        Args:
            weights, args: the model (exercise 2's state dict and ModelArgs).
            encoding: the tokenizer whose chat format is chat_format.
            chat_format: "llama3" or "chatml".
            stop_tokens: ids that end a reply (<|eot_id|>, or <|im_end|>); never yielded.
            max_seq_len: positions the cache holds: the whole conversation must fit.
            system: the system message's text, or None for no system message.

        Hints:
            - KVCache(args.n_layers, max_seq_len, args.n_kv_heads, args.head_dim, dtype) with
              the dtype of weights["tok_embeddings.weight"].
            - Keep the system message aside until the first ask: it is encoded with that turn.
        """
        raise NotImplementedError("not started: implement Chat.__init__ in exercises/ex14_chat.py (exercise 14)")

    def ask(self, content: str, max_new_tokens: int = 256,
            sampler: Callable[[torch.Tensor], int] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Add a user message, then yield the reply's (token, logits) as they come; the reply stays in the conversation,
        closed with the end of turn, however it ends (a stop token, max_new_tokens, or the caller closing it).

        Args:
            content: the user's message.
            max_new_tokens: the reply has at most this many tokens.
            sampler: token = sampler(logits) (exercise 13's Sampler), or None for argmax.

        Yields:
            (token_id, logits): the reply's tokens as Python ints, each with the [vocab_size]
            float32 logits it was chosen from; the stop token is not yielded.

        Hints:
            - The turn's tokens: encode_dialog of this turn's messages, without its
              <|begin_of_text|> after the first turn.
            - A ValueError (before changing anything) when the conversation would pass
              max_seq_len.
            - try: ... the loop of steps 2 and 3 ... finally: append end_of_turn.
        """
        raise NotImplementedError("not started: implement Chat.ask in exercises/ex14_chat.py (exercise 14)")
