"""Exercise 1, reference: Llama 3's tiktoken tokenizer."""

from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

# The regex that splits text into pieces before BPE runs on each piece (Meta's tokenizer.py).
PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NUM_SPECIAL_TOKENS = 256

BOS_ID = 128000  # <|begin_of_text|>
EOS_ID = 128001  # <|end_of_text|>
EOM_ID = 128008  # <|eom_id|>
EOT_ID = 128009  # <|eot_id|>
STOP_TOKENS = (EOS_ID, EOM_ID, EOT_ID)


def special_tokens(n_base: int = 128000) -> dict[str, int]:
    """The 256 special tokens, named as in Meta's Llama 3.1 tokenizer, with ids n_base.. n_base+255."""
    names = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>",
        "<|step_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
    ]
    names += [f"<|reserved_special_token_{i}|>" for i in range(2, 2 + NUM_SPECIAL_TOKENS - len(names))]
    return {name: n_base + i for i, name in enumerate(names)}


def load_tokenizer(path: str | Path) -> tiktoken.Encoding:
    """Build the tiktoken Encoding from tokenizer.model (base64 token, rank per line)."""
    mergeable_ranks = load_tiktoken_bpe(str(path))  # 128000 byte strings -> rank
    return tiktoken.Encoding(
        name=Path(path).name,
        pat_str=PAT_STR,
        mergeable_ranks=mergeable_ranks,
        special_tokens=special_tokens(len(mergeable_ranks)),
    )


def encode(tokenizer: tiktoken.Encoding, text: str, bos: bool = True, eos: bool = False) -> list[int]:
    """Text to token ids; special-token text is encoded as ordinary text, as in Meta's encode."""
    ids = tokenizer.encode(text, allowed_special=set(), disallowed_special=())
    return [BOS_ID] * bos + ids + [EOS_ID] * eos


def decode(tokenizer: tiktoken.Encoding, ids: list[int]) -> str:
    """Token ids to text."""
    return tokenizer.decode(list(ids))
