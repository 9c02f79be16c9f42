"""The tokenizer of a checkpoint: Llama 3's (tokenizer.model alone) or the one its tokenizer_params.json describes
(tokenizer.model in tiktoken's format beside it, e.g. SmolLM2's, imported from a GGUF). The learner's exercise 1 is
Llama 3's tokenizer and stays so; the grader and the CLI use this one for every checkpoint."""

import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

from solutions import ex01_tokenizer as llama3

from . import metadata
from ..errors import KitError
from ..i18n import say

LLAMA3 = "Llama 3"
PARAMS = "tokenizer_params.json"
PARAMS_KEYS = ("name", "pattern", "special_tokens", "bos_id", "stop_ids", "chat_format")


@dataclass(frozen=True)
class Tokenizer:
    name: str  # "Llama 3" or e.g. "SmolLM2-135M-Instruct"
    encoding: tiktoken.Encoding  # ranks from tokenizer.model, the split pattern and the special tokens
    bos_id: int | None  # prepended by encode(bos=True); None: the model has no BOS
    stop_ids: tuple[int, ...]  # generation ends at any of these
    special_tokens: dict[str, int]
    chat_format: str | None  # "llama3", "chatml" or None

    @property
    def is_llama3(self) -> bool:
        return self.name == LLAMA3

    @functools.cached_property
    def _unencodable(self) -> frozenset[int]:
        """Byte values no token holds: tiktoken panics on text that contains one."""
        missing = set()
        for b in range(256):
            try:
                self.encoding.encode_single_token(bytes([b]))
            except KeyError:
                missing.add(b)
        return frozenset(missing)

    def encode(self, text: str, bos: bool = True) -> list[int]:
        """Text to ids; special-token text is encoded as plain text (as Meta's encode). BOS first if bos and the model
        has one."""
        self._check_encodable(text)
        ids = self.encoding.encode(text, allowed_special=set(), disallowed_special=())
        return [self.bos_id] * (bos and self.bos_id is not None) + ids

    def decode(self, ids) -> str:
        return self.encoding.decode(list(ids))

    def _check_encodable(self, text: str) -> None:
        if not self._unencodable:
            return
        # tiktoken replaces lone surrogates too (with U+FFFD, whose bytes it has)
        data = text.encode("utf-8", "replace")
        if self._unencodable.isdisjoint(data):
            return
        char = next(c for c in text if not self._unencodable.isdisjoint(c.encode("utf-8", "replace")))
        raise KitError(f"the text contains {char!r} (U+{ord(char):04X}), which {self.name}'s tokenizer cannot encode "
                       f"(no token holds its UTF-8 bytes): remove that character")


CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")


def with_chatml(t: Tokenizer) -> tiktoken.Encoding:
    """t's encoding when it has ChatML's special tokens; else the same with the first two reserved special tokens
    renamed <|im_start|> and <|im_end|>, as ChatML fine-tunes of Llama 3 do, so that ChatML is graded on the tiny
    models too."""
    if set(CHATML_TOKENS) <= t.special_tokens.keys():
        return t.encoding
    reserved = sorted((i, name) for name, i in t.special_tokens.items() if "reserved" in name)[:len(CHATML_TOKENS)]
    renamed = {old: new for (_, old), new in zip(reserved, CHATML_TOKENS)}
    special = {renamed.get(name, name): i for name, i in t.special_tokens.items()}
    return tiktoken.Encoding(name=f"{t.encoding.name}+chatml", pat_str=t.encoding._pat_str,
                             mergeable_ranks=t.encoding._mergeable_ranks, special_tokens=special)


def load(tokenizer_path: Path) -> Tokenizer:
    """tokenizer.model alone is Llama 3's; with tokenizer_params.json beside it, the tokenizer that file describes."""
    tokenizer_path = Path(tokenizer_path)
    params_path = tokenizer_path.with_name(PARAMS)
    if not params_path.is_file():
        encoding = llama3.load_tokenizer(tokenizer_path)
        return Tokenizer(LLAMA3, encoding, llama3.BOS_ID, llama3.STOP_TOKENS,
                         llama3.special_tokens(encoding.n_vocab - llama3.NUM_SPECIAL_TOKENS), "llama3")
    p = read_params(params_path)
    try:
        ranks = load_tiktoken_bpe(str(tokenizer_path))
        encoding = tiktoken.Encoding(name=p["name"], pat_str=p["pattern"], mergeable_ranks=ranks,
                                     special_tokens=p["special_tokens"])
    except ValueError as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise KitError(say("formats.tokenizer.pattern", where=params_path, why=metadata.shown(why))) from None
    for key in ("bos_id", "stop_ids"):
        for i in [p[key]] if key == "bos_id" else p[key]:
            metadata.optional(metadata.token_id, i, key, params_path, encoding.n_vocab)
    return Tokenizer(p["name"], encoding, p["bos_id"], tuple(p["stop_ids"]), dict(p["special_tokens"]),
                     p["chat_format"])


CHAT_FORMATS = (None, "llama3", "chatml")


def read_params(path: Path) -> dict:
    """tokenizer_params.json, every value of the right type (load checks the ids against the vocabulary)."""
    try:
        params = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KitError(f"{path} is not valid JSON ({e}): import the model again") from None
    missing = [k for k in PARAMS_KEYS if not isinstance(params, dict) or k not in params]
    if missing:
        raise KitError(f"{path} lacks {', '.join(missing)}: import the model again")
    metadata.text(params["name"], "name", path)
    metadata.text(params["pattern"], "pattern", path)
    special = params["special_tokens"]
    if not isinstance(special, dict):
        raise KitError(say("formats.tokenizer.mapping", where=path, value=metadata.shown(special)))
    for text, i in special.items():
        metadata.whole(i, f"special_tokens[{metadata.shown(text)}]", path, 0)
    metadata.optional(metadata.whole, params["bos_id"], "bos_id", path, 0)
    if not isinstance(params["stop_ids"], list):
        raise KitError(say("formats.tokenizer.id_list", where=path, value=metadata.shown(params["stop_ids"])))
    for i in params["stop_ids"]:
        metadata.whole(i, "stop_ids", path, 0)
    if params["chat_format"] not in CHAT_FORMATS:
        raise KitError(say("formats.tokenizer.chat_format", where=path, value=metadata.shown(params["chat_format"])))
    return params


def n_words(tokenizer_path: Path) -> int:
    """Token count without building the tokenizer: the lines of tokenizer.model plus the special tokens."""
    params_path = Path(tokenizer_path).with_name(PARAMS)
    n_special = len(read_params(params_path)["special_tokens"]) if params_path.is_file() else llama3.NUM_SPECIAL_TOKENS
    with open(tokenizer_path, "rb") as f:
        return sum(1 for line in f if line.strip()) + n_special


def copy(tokenizer_path: Path, folder: Path) -> None:
    """tokenizer.model, and tokenizer_params.json if it has one, into folder."""
    shutil.copyfile(tokenizer_path, folder / "tokenizer.model")
    params_path = Path(tokenizer_path).with_name(PARAMS)
    if params_path.is_file():
        shutil.copyfile(params_path, folder / PARAMS)
