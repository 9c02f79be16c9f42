"""tokenizer.model read line by line with base64 instead of load_tiktoken_bpe; the special tokens counted by
itertools; encode_ordinary; decode as the bytes of each token joined, then decoded with replacement characters."""

import base64
import itertools
from pathlib import Path

import tiktoken

from solutions.ex01_tokenizer import BOS_ID, EOS_ID, NUM_SPECIAL_TOKENS, PAT_STR

_NAMED = ("begin_of_text", "end_of_text", "reserved_special_token_0", "reserved_special_token_1",
          "finetune_right_pad_id", "step_id", "start_header_id", "end_header_id", "eom_id", "eot_id", "python_tag")


def special_tokens(n_base=128000):
    reserved = (f"reserved_special_token_{i}" for i in itertools.count(2))
    names = itertools.chain(_NAMED, itertools.islice(reserved, NUM_SPECIAL_TOKENS - len(_NAMED)))
    return {f"<|{name}|>": n_base + i for i, name in enumerate(names)}


def load_tokenizer(path):
    ranks = {}
    for line in Path(path).read_bytes().splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(name=Path(path).name, pat_str=PAT_STR, mergeable_ranks=ranks,
                             special_tokens=special_tokens(len(ranks)))


def encode(tokenizer, text, bos=True, eos=False):
    ids = tokenizer.encode_ordinary(text)
    if bos:
        ids.insert(0, BOS_ID)
    if eos:
        ids.append(EOS_ID)
    return ids


def decode(tokenizer, ids):
    return b"".join(tokenizer.decode_single_token_bytes(i) for i in ids).decode("utf-8", errors="replace")
