"""Exercise 1: Tokenizer.

A language model never sees text. It sees a list of integers, the token ids, and
what it produces in the end is one score for every integer that could come next.
The tokenizer is the dictionary between the two worlds: encode turns a string into
ids, decode turns ids back into a string. Everything after this exercise works on ids.

Byte-level BPE
--------------
Llama 3 uses byte-level byte-pair encoding (BPE), run by OpenAI's tiktoken library.

1. The text is first cut into pieces by a regular expression, PAT_STR below. A piece
   is roughly a word together with the space in front of it (" answer"), a run of at
   most three digits, a run of punctuation, or a run of whitespace. BPE never merges
   across two pieces, so "12345" always becomes "123" + "45", and " answer" can be one
   token including its leading space.
2. Each piece is turned into its UTF-8 bytes. Every one of the 256 byte values is a
   token by itself, so any string at all (Chinese, emoji, source code, random bytes)
   can be encoded. There is no "unknown" token.
3. Inside a piece, adjacent tokens are merged again and again, always the pair whose
   merged byte string has the lowest rank in the vocabulary, until no adjacent pair
   is in the vocabulary any more. The rank of the final byte string is its token id.

The file tokenizer.model is that vocabulary: 128000 lines of "base64(bytes) rank".
Frequent strings got low ranks early in training ("the" is 1820, " answer" is 4320).
You do not write the merge loop yourself: tiktoken does it in Rust. Your job is to
hand it the three ingredients, the ranks, the regex and the special tokens.

    tiktoken.load.load_tiktoken_bpe(path)   -> dict[bytes, int], 128000 entries
    tiktoken.Encoding(name=..., pat_str=..., mergeable_ranks=..., special_tokens=...)

The 256 special tokens
----------------------
After the 128000 ordinary tokens come 256 special ones, ids 128000..128255, so the
vocabulary has 128256 entries: the number of rows of the embedding matrix you will
meet in exercise 3. Special tokens are control signals that ordinary text can never
produce: <|begin_of_text|> (BOS, 128000) starts every document, <|end_of_text|> (EOS,
128001) ends it, the chat models frame each message with <|start_header_id|> ...
<|end_header_id|> ... <|eot_id|> (end of turn, 128009), and Llama 3.1 added <|eom_id|>
(end of message, 128008) and <|python_tag|> for tool calls.

Why reserve a whole block of 256 when only about a dozen have a meaning? Because the
block is fixed in advance, later versions can give a name to a reserved slot without
changing the vocabulary size. Llama 3, 3.1 and 3.2 therefore share one tokenizer.model
and one embedding shape; only the names of a few reserved slots differ between them.
(128256 = 1002 x 128 is also a friendly size for matrix kernels.)

Meta's encode treats special-token text typed by a user as ordinary text: the string
"<|eot_id|>" becomes seven ordinary tokens [27, 91, 68, 354, 851, 91, 29], never 128009.
So nobody can forge a control token by typing it; only code (the chat format) inserts
special ids. In tiktoken you ask for this with allowed_special=set() and
disallowed_special=() (without the second, tiktoken raises an error on such text).

BOS
---
Every training document started with BOS, so the model always expects to see it at
position 0. Encode adds it by default (bos=True). Without it the first real token sits
where BOS should be, and the predictions get noticeably worse.

Our prompt, with BOS, is 17 tokens:

    "the answer to the ultimate question of life, the universe, and everything is "
    -> [128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11,
        323, 4395, 374, 220]
    pieces: '<|begin_of_text|>' 'the' ' answer' ' to' ' the' ' ultimate' ' question'
            ' of' ' life' ',' ' the' ' universe' ',' ' and' ' everything' ' is' ' '

Note the last token 220, a lone space: the prompt ends with a space, and the model
must then continue with "42" (token 2983) rather than " 42".

Decoding
--------
decode maps ids to their byte strings, joins them and reads the result as UTF-8. One
token is not always a whole character: the llama emoji is three tokens [9468, 99, 247],
and decoding any one of them alone gives the replacement character U+FFFD. When you
print a stream of generated tokens, decode the whole list so far, not each token alone.

Pitfalls
--------
- Forgetting BOS, or adding it twice (encode already adds it; do not also put it in
  the text).
- Special ids that start at the wrong number: they begin right after the ordinary
  tokens, at len(mergeable_ranks) = 128000.
- Not exactly 256 special tokens: then the tokenizer no longer has 128256 entries
  and will not match the model's vocab_size.
- decode(encode(s)) == s holds only with bos=False: BOS decodes to the text
  "<|begin_of_text|>".

Run the tests: pytest exercises/ -k ex01
"""

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
    """The 256 special tokens, named as in Meta's Llama 3.1 tokenizer, with ids n_base.. n_base+255.

    The first eleven have names; the rest are reserved slots numbered from 2:

        n_base + 0    <|begin_of_text|>
        n_base + 1    <|end_of_text|>
        n_base + 2    <|reserved_special_token_0|>
        n_base + 3    <|reserved_special_token_1|>
        n_base + 4    <|finetune_right_pad_id|>
        n_base + 5    <|step_id|>
        n_base + 6    <|start_header_id|>
        n_base + 7    <|end_header_id|>
        n_base + 8    <|eom_id|>
        n_base + 9    <|eot_id|>
        n_base + 10   <|python_tag|>
        n_base + 11   <|reserved_special_token_2|>
        ...
        n_base + 255  <|reserved_special_token_246|>

    Args:
        n_base: the id of the first special token, which is the number of ordinary
            tokens (128000 for Llama 3).

    Returns:
        A dict from name to id with exactly NUM_SPECIAL_TOKENS (256) entries.

    Hints:
        - Write out the eleven named ones as a list, then extend it with the reserved
          names until the list is NUM_SPECIAL_TOKENS long.
        - enumerate gives each name its offset from n_base.
    """
    raise NotImplementedError("not started: implement special_tokens in exercises/ex01_tokenizer.py (exercise 1)")


def load_tokenizer(path: str | Path) -> tiktoken.Encoding:
    """Build the tiktoken Encoding from tokenizer.model (base64 token, rank per line).

    Args:
        path: the tokenizer.model file.

    Returns:
        A tiktoken.Encoding with the 128000 ranks of the file, the regex PAT_STR and
        the 256 special tokens numbered from right after the ordinary ones. Its
        n_vocab is 128256.

    Hints:
        - load_tiktoken_bpe(str(path)) reads the file into a dict[bytes, int].
        - The special ids start at the number of ordinary tokens: ask the dict you
          just loaded rather than writing 128000 again.
        - tiktoken.Encoding wants a name too; the file name will do.
    """
    raise NotImplementedError("not started: implement load_tokenizer in exercises/ex01_tokenizer.py (exercise 1)")


def encode(tokenizer: tiktoken.Encoding, text: str, bos: bool = True, eos: bool = False) -> list[int]:
    """Text to token ids; special-token text is encoded as ordinary text, as in Meta's encode.

    Args:
        tokenizer: the Encoding from load_tokenizer.
        text: any string.
        bos: put BOS_ID (128000) in front.
        eos: put EOS_ID (128001) at the end.

    Returns:
        A list of Python ints. For the prompt of this kit, 17 ids starting with 128000.

    Hints:
        - tokenizer.encode takes allowed_special and disallowed_special; you want no
          special token to be recognised in the text and no error raised about one.
        - Add BOS and EOS as ids around the encoded text, never as text.
    """
    raise NotImplementedError("not started: implement encode in exercises/ex01_tokenizer.py (exercise 1)")


def decode(tokenizer: tiktoken.Encoding, ids: list[int]) -> str:
    """Token ids to text.

    Args:
        tokenizer: the Encoding from load_tokenizer.
        ids: token ids (a list, or anything iterable of ints).

    Returns:
        The decoded string. [2983] decodes to "42".

    Hints:
        - tiktoken's decode expects a list; convert what you are given.
    """
    raise NotImplementedError("not started: implement decode in exercises/ex01_tokenizer.py (exercise 1)")
