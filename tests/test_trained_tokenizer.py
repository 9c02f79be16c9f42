"""The kit's per-checkpoint tokenizer: Llama 3's equals exercise 1's reference, and SmolLM2's (tiktoken, rank = id)
equals an independent byte-level BPE written here from the GGUF's own merges, applied in rank order."""

import json
import zipfile

import pytest
import regex
import tiktoken
from tiktoken.load import load_tiktoken_bpe
from hypothesis import given, settings, strategies as st

from gguf_kit import gguf, importer, pypi, trained
from grader.specs.inputs import PROMPTS
from grader.errors import KitError
from grader.formats import tokenizer as tokenizers
from grader.paths import TOKENIZER
from solutions import ex01_tokenizer as ex01

# The split pattern of llama.cpp's pre-tokenizer "smollm" (the GGUF's tokenizer.ggml.pre): each digit alone, then
# GPT-2's byte-level split.
SMOLLM_PATTERN = r"\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"
SMOLLM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>",
                   "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>",
                   "<jupyter_text>", "<jupyter_code>", "<jupyter_output>", "<jupyter_script>", "<empty_output>"]
VARIED = [
    "The capital of France is Paris.", "Hello, world! It's 12:30 and I'm late; they'll wait, won't they?",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n", "for (int i = 0; i < 10; ++i) { x[i] *= 2; }",
    "In 2024, 1234 + 5678 = 6912 and 3.14159 ≈ π.", "9999 0000 0042 1984", "北京是中国的首都，上海是最大的城市。",
    "東京タワー 🗼 and emoji: 😀🎉👩‍💻", "   leading spaces", "trailing spaces   ", "\n\n\n\t\ttabs\r\nand CRLF",
    "a  b   c    d", "ÀÉÎÕÜ ñ ß ø æ", "<|im_start|>user\nhi<|im_end|>", "'S 'T 'Re CAPS'LL", "x" * 60, "١٢٣ ٤٥٦",
    "", " ", "\u00a0nbsp\u2009thin\u3000ideographic",
]


def test_llama3_s_tokenizer_is_exercise_1_s_reference():
    t = tokenizers.load(TOKENIZER)
    reference = ex01.load_tokenizer(TOKENIZER)
    assert (t.name, t.bos_id, t.stop_ids, t.chat_format, t.is_llama3) == ("Llama 3", 128000, (128001, 128008, 128009),
                                                                          "llama3", True)
    assert t.special_tokens == ex01.special_tokens() and t.encoding.n_vocab == 128256
    for text in [*PROMPTS.values(), *VARIED]:
        assert t.encode(text) == ex01.encode(reference, text)
        assert t.encode(text, bos=False) == ex01.encode(reference, text, bos=False)
    assert t.decode(t.encode("hi there", bos=False)) == "hi there"
    assert 128009 not in t.encode("<|eot_id|>")  # special-token text is plain text
    assert tokenizers.n_words(TOKENIZER) == 128256


# --- SmolLM2, against an independent BPE from the GGUF's merges -------------------------------------------------------

def gpt2_byte_to_char() -> dict[int, str]:
    """GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to chr(256 + n) in byte order."""
    keep = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


class ReferenceBPE:
    """Byte-level BPE as GPT-2's encoder.py does it: split with the pattern, map bytes to GPT-2's characters, then
    repeatedly merge every occurrence of the adjacent pair with the lowest merge rank."""

    def __init__(self, tokens: list[str], merges: list[str]):
        self.ids = {tok: i for i, tok in enumerate(tokens)}
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.byte_char = gpt2_byte_to_char()

    def bpe(self, word: list[str]) -> list[str]:
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text: str) -> list[int]:
        out = []
        for piece in regex.findall(SMOLLM_PATTERN, text):
            out += [self.ids[t] for t in self.bpe([self.byte_char[b] for b in piece.encode("utf-8")])]
        return out


@pytest.fixture(scope="module")
def smollm2():
    return tokenizers.load(trained() / "tokenizer.model")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The BPE from the tokens and merges of the GGUF in the fetched wheel."""
    trained()
    wheel = pypi.cached_wheel()
    if not wheel.is_file():
        pytest.skip(f"the fetched wheel is not in the kit's cache: {importer.FETCH_HINT}")
    folder = tmp_path_factory.mktemp("smollm2-gguf")
    with zipfile.ZipFile(wheel) as z:
        member = next(m for m in z.namelist() if m.endswith(".gguf"))
        path = z.extract(member, folder)
    reader = gguf.GGUFReader(path)
    return ReferenceBPE(reader.get_field("tokenizer.ggml.tokens").contents(),
                        reader.get_field("tokenizer.ggml.merges").contents())


def test_smollm2_s_tokenizer_facts(smollm2):
    assert smollm2.name == "SmolLM2-135M-Instruct" and not smollm2.is_llama3
    assert smollm2.bos_id is None and smollm2.stop_ids == (0, 2) and smollm2.chat_format == "chatml"
    assert smollm2.special_tokens == {name: i for i, name in enumerate(SMOLLM_SPECIALS)}
    assert json.loads((trained() / "tokenizer_params.json").read_text())["pattern"] == SMOLLM_PATTERN
    assert smollm2.encoding.n_vocab == 49152 == tokenizers.n_words(trained() / "tokenizer.model")
    assert smollm2.encode("The capital of France is") == [504, 3575, 282, 4649, 314]  # no BOS
    assert smollm2.encode("<|im_end|>") != [2]  # special-token text is plain text


def test_the_varied_strings_equal_the_reference(smollm2, reference):
    for text in VARIED:
        assert smollm2.encode(text) == reference.encode(text), text
        assert smollm2.decode(smollm2.encode(text)) == text


def test_digits_are_split_one_by_one(smollm2):
    assert [smollm2.decode([i]) for i in smollm2.encode("In 2024")] == ["In", " ", "2", "0", "2", "4"]


def test_the_comparison_catches_a_wrong_split_pattern(reference):
    """The same ranks split with Llama 3's pattern (newlines and tabs grouped otherwise) give other ids."""
    ranks = load_tiktoken_bpe(str(trained() / "tokenizer.model"))
    wrong = tiktoken.Encoding("Llama 3's split", pat_str=ex01.PAT_STR, mergeable_ranks=ranks, special_tokens={})
    text = "\n\n\n\t\ttabs\r\nand CRLF"
    assert wrong.encode(text) != reference.encode(text)


PIECES = st.sampled_from(["the", " The", " cat", "'s", "'ll", " don't", "1234", " 5678", "3.14", "x = f(y)", "{}",
                          "();", "    ", "\n", "\n\n", "\t", "  \n ", "中文", "你好世界", "。", "😀", "👍🏽", "é", "Ω",
                          "-->", "#"])
# Every assigned character (in Python's Unicode tables) but those whose UTF-8 bytes SmolLM2 has no token for (six
# controls, and the planes that F1/F2 lead into). Unassigned ones are left out: tiktoken's regex engine and the regex
# module follow different Unicode versions, so they disagree on which new code points are letters (\p{L}).
CHARS = st.characters(codec="utf-8", max_codepoint=0x3FFFF, exclude_categories=("Cn",),
                      exclude_characters="\x04\x06\x13\x14\x16\x1d")


@settings(max_examples=400, deadline=None)
@given(text=st.lists(PIECES | st.text(CHARS, max_size=12), max_size=8).map("".join))
def test_drawn_strings_equal_the_reference(smollm2, reference, text):
    assert smollm2.encode(text) == reference.encode(text)
    assert smollm2.decode(smollm2.encode(text)) == text


def test_the_21_bytes_without_a_token_are_one_line_errors_not_panics(smollm2, reference):
    singles = {b for b in range(256) if reference.byte_char[b] in reference.ids}
    missing = set(range(256)) - singles
    assert len(missing) == 21
    for char in ["\x04", "\x06", "\x13", "\x14", "\x16", "\x1d", chr(0x40000), chr(0xBFFFF)]:
        with pytest.raises(KitError, match="cannot encode"):
            smollm2.encode(f"ok {char} ok")
