"""`llama3-grader chat`: a conversation with the implementation under test on an Instruct checkpoint. Exercise 14's Chat
keeps the KV cache across turns (each turn feeds only its new tokens), the reply streams as it is written, Ctrl-C
stops a reply and keeps the conversation, /new starts a new one, Ctrl-D (or /quit) ends it."""

import argparse
import sys

from ..errors import KitError
from ..i18n import LANGS, say
from . import on_device

# The system message a model's chat template adds when the first message is not a system one (SmolLM2's GGUF
# tokenizer.chat_template): the chat starts with it, so the model reads what its template gives.
DEFAULT_SYSTEM = {"SmolLM2-135M-Instruct": "You are a helpful AI assistant named SmolLM, trained by Hugging Face"}
QUIT, NEW = "/quit", "/new"


def register(sub) -> None:
    from .generate import add_sampling_arguments

    p = sub.add_parser("chat", help="talk with your Llama (exercise 14's Chat) on an Instruct checkpoint, e.g. the "
                                    "fetched SmolLM2")
    p.add_argument("--checkpoint", help="model folder (default: LLAMA3_CHECKPOINT, else fixtures/models/tiny-llama3)")
    p.add_argument("--impl", help="exercises (yours, the default) or solutions; or set LLAMA3_KIT_IMPL")
    p.add_argument("--dtype", help="bfloat16 or float32 (default: the checkpoint's)")
    p.add_argument("--system", help="the system message (default: the model's own default, if its template has one)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="tokens of one reply at most (default 256)")
    p.add_argument("--max-seq-len", type=int, default=2048,
                   help="tokens of the whole conversation at most (default 2048)")
    add_sampling_arguments(p, "samples with exercise 13's Sampler (default: greedy)")
    on_device.add_argument(p)
    p.add_argument("--lang", choices=LANGS, default=argparse.SUPPRESS, help="en or zh (or set LLAMA3_KIT_LANG)")
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import devices
    from ..engine import impl as impls
    from ..engine.calls import GradeFailure, NotStarted
    from ..formats import checkpoint
    from .generate import sampling

    lang = getattr(args, "lang", None)
    impl = impls.choice(args.impl)
    settings = sampling(args)
    if args.max_new_tokens < 1 or args.max_seq_len <= args.max_new_tokens:
        raise KitError(f"--max-new-tokens must be at least 1 and below --max-seq-len "
                       f"({args.max_new_tokens}, {args.max_seq_len})")
    device = on_device.choice(args)
    ck = checkpoint.load(args.checkpoint)
    checkpoint.page_in(ck.weights, ck.folder)
    chat_format = ck.tokenizer.chat_format
    if chat_format is None:
        raise KitError(f"{ck.folder} has no chat format its tokenizer knows: chat needs an Instruct model's tokenizer "
                       "(Llama 3's, or ChatML's like the fetched SmolLM2's)")
    system = DEFAULT_SYSTEM.get(ck.tokenizer.name) if args.system is None else (args.system or None)
    weights = on_device.weights(ck, checkpoint.parse_dtype(args.dtype) if args.dtype else ck.dtype, device)
    try:
        with devices.on(device):  # the conversation, its cache and every reply on the device
            return _converse(impl, ck, weights, chat_format, system, settings, args, lang)
    except NotStarted as e:
        raise KitError(f"{e} (or chat with the reference: --impl solutions)") from None
    except GradeFailure as e:
        raise KitError(" ".join(str(e).split())) from None


def _converse(impl: str, ck, weights, chat_format: str, system: str | None, settings, args, lang) -> int:
    """The loop of questions and replies until Ctrl-D or /quit; /new starts a new conversation."""
    from ..engine import impl as impls
    from ..engine.calls import invoke
    from .generate import sampler

    tok = invoke(impls.module, impl, "ex01_tokenizer")
    encoding = invoke(tok.load_tokenizer, ck.tokenizer_path) if ck.tokenizer.is_llama3 else ck.tokenizer.encoding
    chat_class = invoke(impls.module, impl, "ex14_chat").Chat

    def new_chat():
        return invoke(chat_class, weights, ck.args, encoding, chat_format, ck.tokenizer.stop_ids, args.max_seq_len,
                      system)

    chat = new_chat()
    pick_token = sampler(impl, settings)
    with_system = say("cli.chat.system", lang=lang, system=system) if system else ""
    print(say("cli.chat.started", lang=lang, impl=impl, folder=ck.folder, chat_format=chat_format,
              system=with_system, quit=QUIT, new=NEW), flush=True)
    while True:
        try:
            line = input(say("cli.chat.prompt", lang=lang))
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if line.strip() == QUIT:
            return 0
        if line.strip() == NEW:
            chat = new_chat()
            print(say("cli.chat.new", lang=lang), flush=True)
        elif line.strip():
            reply(chat, line, args.max_new_tokens, pick_token, encoding.decode, lang)


def reply(chat, content: str, max_new_tokens: int, pick_token, decode, lang) -> None:
    """Stream one reply after "llama> ", which is printed with the first token (or when Ctrl-C stops the reply before
    it): Ctrl-C closes the reply (the conversation keeps what was written); a ValueError of Chat (a conversation grown
    too long) is one line that says how to start a new one, and the conversation goes on."""
    from ..engine.calls import GradeFailure, NotStarted, learner_error_message, not_started_message
    from .textio import streamer

    show, ids, steps = streamer(decode), [], None
    try:
        steps = chat.ask(content, max_new_tokens, pick_token)
        for token, _ in steps:
            if not ids:
                print("llama> ", end="", flush=True)
            ids.append(token)
            show(ids)
    except KeyboardInterrupt:
        if hasattr(steps, "close"):
            steps.close()
        print(("" if ids else "llama> ") + say("cli.chat.stopped", lang=lang), flush=True)
        return
    except ValueError as e:
        print(("\n" if ids else "") + say("cli.chat.refused", lang=lang, error=e, new=NEW), file=sys.stderr, flush=True)
        return
    except NotImplementedError as e:
        raise NotStarted(not_started_message(chat.ask, e)) from None
    except Exception as e:
        raise GradeFailure(learner_error_message(e, chat.ask)) from None
    print("" if ids else "llama> ", flush=True)
