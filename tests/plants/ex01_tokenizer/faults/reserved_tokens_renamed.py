"""special_tokens names the reserved tokens <|reserved_N|> instead of <|reserved_special_token_N|>: a dict whose
reserved keys all differ."""

from solutions.ex01_tokenizer import special_tokens

_reference_special_tokens = special_tokens


def special_tokens(n_base=128000):
    table = _reference_special_tokens(n_base)
    return {name.replace("reserved_special_token_", "reserved_"): i for name, i in table.items()}
