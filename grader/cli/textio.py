"""Text into token ids and back, for generate, generate --ranks and chat: the prompt's length, the notes printed
under the text, and JSON that stays JSON."""

import json
import math
import sys

from ..errors import KitError
from ..i18n import say


def text_codec(tok, ck):
    """(encode, decode, stop ids) for the checkpoint: the implementation's own exercise 1 on Llama 3's tokenizer, the
    kit's tokenizer for any other (exercise 1 is Llama 3's tokenizer only)."""
    from ..engine.calls import invoke

    if not ck.tokenizer.is_llama3:
        return ck.tokenizer.encode, ck.tokenizer.decode, ck.tokenizer.stop_ids
    tokenizer = invoke(tok.load_tokenizer, ck.tokenizer_path)

    def encode(text):
        return invoke(tok.encode, tokenizer, text)

    def decode(ids):
        return invoke(tok.decode, tokenizer, ids)

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


def json_line(obj) -> str:
    """obj as one line of JSON, a float that is NaN or infinite as null: JSON has no such numbers, and a learner's
    NaN logits must not make the output unreadable to the tool that asked for it."""
    return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False)


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def check_length(n_prompt: int, n_new: int, max_seq_len: int, option: str = "--max-new-tokens") -> None:
    """A KitError unless the prompt and the n_new tokens made after it (at most; option sets them) fit in the
    model's max_seq_len: generate, chat and bench check the same, with one process or many."""
    if n_prompt + n_new > max_seq_len:
        raise KitError(say("cli.textio.too_long", n_prompt=n_prompt, n_new=n_new, max_seq_len=max_seq_len,
                           option=option))


def notes(ck, dtype, device: str = "cpu", peak: int | None = None) -> list[str]:
    """What to keep in mind when reading the text: random weights write random text, and in bf16 (dtype, what the
    weights are computed in) a correct implementation may part from the reference; off the CPU, where it ran and
    the GPU memory it took at most."""
    import torch

    from ..paths import MODELS
    from .on_device import gpu_name

    lines = []
    if ck.folder.resolve().parent == MODELS.resolve():
        lines.append(say("cli.generate.random_weights"))
    if dtype == torch.bfloat16:
        lines.append(say("cli.generate.bfloat16"))
    if peak is not None:
        lines.append(say("cli.generate.on_device", device=gpu_name(device), peak_gb=peak / 1e9,
                         checkpoint_gb=ck.nbytes / 1e9))
    return lines
