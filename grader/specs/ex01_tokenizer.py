"""Exercise 1, the tokenizer: golden calls and named mistakes."""

from solutions import ex01_tokenizer as tok

from ..engine.calls import Call, Ref
from .inputs import PROMPTS, SPECIAL_TEXT, TOKENIZER_TEXTS
from .spec import Spec, driver

spec = Spec("ex01_tokenizer")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Llama 3's tokenizer, graded on the checkpoints that use it: the special tokens, loading, encoding the prompts
    and a text for each rule of the split pattern, with EOS and with special-token text, and decoding them back."""
    m = spec.module
    if not model.checkpoint.tokenizer.is_llama3:
        return []
    prompts = {name: a.prompt for name, a in acts.items()}
    texts = {**prompts, **TOKENIZER_TEXTS}
    ids = {name: tok.encode(model.tokenizer, text) for name, text in texts.items()}
    load = {"path": Ref("tokenizer_path"), "texts": [*texts.values(), SPECIAL_TEXT]}
    out = [Call(m, "special_tokens", "table", {}),
           Call(m, "load_tokenizer", "prompts", load, driver=drive_tokenizer)]
    out += [Call(m, "encode", name, {"tokenizer": Ref("tokenizer"), "text": text}) for name, text in texts.items()]
    out += [Call(m, "encode", "with_eos", {"tokenizer": Ref("tokenizer"), "text": PROMPTS["prompt42"], "bos": True,
                                           "eos": True}),
            Call(m, "encode", "special_text", {"tokenizer": Ref("tokenizer"), "text": SPECIAL_TEXT})]
    out += [Call(m, "decode", name, {"tokenizer": Ref("tokenizer"), "ids": i}) for name, i in ids.items()]
    return out


@driver
def drive_tokenizer(load_tokenizer, path, texts):
    """Load a tokenizer and encode texts with special tokens allowed."""
    t = load_tokenizer(path)
    return {"n_vocab": t.n_vocab, "ids": [t.encode(s, allowed_special="all") for s in texts]}


@spec.mistake("encode", "forgot_bos",
              en="the ids lack BOS: with bos=True the list must start with 128000 (<|begin_of_text|>)",
              zh="缺少 BOS：bos=True 时列表必须以 128000（<|begin_of_text|>）开头")
def encode_without_bos(tokenizer, text, bos=True, eos=False):
    return tok.encode(tokenizer, text, bos=False, eos=eos)
