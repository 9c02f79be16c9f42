"""Text into token ids and back, for generate, generate --ranks and chat."""

import sys


def text_codec(tok, ck):
    """(encode, decode, stop ids) for the checkpoint: the implementation's own exercise 1 on Llama 3's tokenizer, the
    kit's tokenizer for any other (exercise 1 is Llama 3's tokenizer only)."""
    from ..engine.calls import invoke

    if not ck.tokenizer.is_llama3:
        return ck.tokenizer.encode, ck.tokenizer.decode, ck.tokenizer.stop_ids
    tokenizer = invoke(tok.load_tokenizer, ck.tokenizer_path)
    encode = lambda text: invoke(tok.encode, tokenizer, text)  # noqa: E731
    decode = lambda ids: invoke(tok.decode, tokenizer, ids)  # noqa: E731
    return encode, decode, tok.STOP_TOKENS


def streamer(decode):
    """A function that prints the part of the decoded text not yet shown, holding back a half-decoded character."""
    shown = ""

    def show(generated: list[int]) -> None:
        nonlocal shown
        text = decode(generated)
        if not text.endswith("\ufffd"):
            sys.stdout.write(text[len(shown):])
            sys.stdout.flush()
            shown = text

    return show
