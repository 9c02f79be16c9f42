"""Exercise 14, the chat format and a conversation: golden calls and named mistakes."""

import itertools

from solutions import ex14_chat

from ..engine import impl as impls
from ..engine.calls import Call, Ref, generation
from ..engine.compare import GradeFailure, value_mismatch
from ..i18n import say
from .checked_cache import check_cache_use
from .ex11_forward import new_tokens
from .ex13_sampling import SAMPLED_LOGITS
from .spec import Spec, driver

spec = Spec("ex14_chat")
CHAT_MAX_SEQ_LEN = 256
# Dialogs the chat formats are graded on: the published example, spaces to strip, an assistant turn, text that looks
# like a special token, and other scripts.
DIALOGS = {
    "published": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi"}],
    "strip": [{"role": "user", "content": "  What is 6 x 7?\n\n"}],
    "turns": [{"role": "user", "content": "Name a llama."}, {"role": "assistant", "content": "Lima, from Peru."},
              {"role": "user", "content": "  Another one, please: <|eot_id|> <|im_end|>"}],
    "unicode": [{"role": "system", "content": "用中文回答。"},
                {"role": "user", "content": "生命、宇宙以及一切的答案是什么？🦙"}],
}
# (system, [[content, tokens to read before closing the reply (None: all)], ...]): the second conversation's first
# reply is cut short after two tokens, as Ctrl-C does
CONVERSATIONS = {
    "two_turns": ("You are a helpful assistant.", [["What is the capital of France?", None], ["And of Italy?", None]]),
    "interrupted": (None, [["Tell me a long story.", 2], ["Shorter, please.", None]]),
}


@spec.cases
def calls(model, acts) -> list[Call]:
    """Headers, ends of turn, messages and dialogs in Llama 3's format (on its tokenizer) and in ChatML; two
    conversations in each format through one cache."""
    m = spec.module
    own = model.checkpoint.tokenizer.chat_format
    stops = list(model.checkpoint.tokenizer.stop_ids)
    formats = {"llama3": Ref("encoding")} if own == "llama3" else {}
    # ChatML: the trained model's own format; on Llama 3's tokenizer, two reserved tokens renamed
    formats["chatml"] = Ref("encoding", "chatml")
    out = [Call(m, "encode_header", f"{fmt}_{role}", {"encoding": enc, "role": role, "chat_format": fmt})
           for fmt, enc in formats.items() for role in ("system", "user", "assistant")]
    out += [Call(m, "end_of_turn", fmt, {"encoding": enc, "chat_format": fmt}) for fmt, enc in formats.items()]
    out += [Call(m, "encode_message", f"{fmt}_{name}", {"encoding": enc, "message": msgs[-1], "chat_format": fmt})
            for fmt, enc in formats.items() for name, msgs in DIALOGS.items()]
    out += [Call(m, "encode_dialog", f"{fmt}_{name}", {"encoding": enc, "messages": msgs, "chat_format": fmt})
            for fmt, enc in formats.items() for name, msgs in DIALOGS.items()]
    chat = {"weights": Ref("weights", dtype="float32"), "args": Ref("args"), "max_new_tokens": new_tokens(model) // 2}
    im_end = stops if own == "chatml" else [model.resolve(formats["chatml"]).encode_single_token("<|im_end|>")]
    stops_of = {"llama3": stops, "chatml": im_end}
    out += [Call(m, "Chat", f"{fmt}_{case}", {**chat, "encoding": enc, "chat_format": fmt, "stop_tokens": stops_of[fmt],
                                              "system": system, "turns": turns},
                 tolerance="float32 layers", driver=drive_chat)
            for fmt, enc in formats.items() for case, (system, turns) in CONVERSATIONS.items()]
    return out


@driver
def drive_chat(Chat, weights, args, encoding, chat_format, stop_tokens, system, turns, max_new_tokens):
    """A conversation: for each turn [content, taken], ask, read taken reply tokens (all of them when None) and close
    the reply, as Ctrl-C does. Checks that the turns fed forward only what the cache lacked, and that chat.tokens is
    the dialog with the replies in it; returns the replies, compared as generated tokens are."""
    chat = Chat(weights, args, encoding, chat_format, stop_tokens, CHAT_MAX_SEQ_LEN, system)
    steps, expected, pending = [], [], ([{"role": "system", "content": system}] if system else [])
    with impls.spy(Chat, "forward") as calls:
        for content, taken in turns:
            reply = chat.ask(content, max_new_tokens)
            got = list(itertools.islice(reply, taken))
            if hasattr(reply, "close"):
                reply.close()
            steps += got
            turn = ex14_chat.encode_dialog(encoding, [*pending, {"role": "user", "content": content}], chat_format)
            reply_ids = [t for t, _ in got] if all(isinstance(s, tuple) and len(s) == 2 for s in got) else []
            expected += ((turn[1:] if expected and chat_format == "llama3" else turn) + reply_ids
                         + ex14_chat.end_of_turn(encoding, chat_format))
            pending = []
    check_cache_use(calls, "Chat.ask")
    report = value_mismatch("chat.tokens", getattr(chat, "tokens", None), expected)
    if report:
        raise GradeFailure(say("ex14.tokens_not_the_dialog") + "\n" + report)
    out = generation(steps, "Chat.ask", stop_tokens)
    return {**out, "logits_head": out["logits_head"][:, :SAMPLED_LOGITS]}


@spec.mistake("encode_header", "header_without_blank_line",
              en="the header lacks the \"\\n\\n\" after <|end_header_id|> (id 271): Llama 3's header is "
                 "<|start_header_id|>, the role, <|end_header_id|>, then \"\\n\\n\" encoded",
              zh="头部缺少 <|end_header_id|> 之后的 \"\\n\\n\"（id 271）：Llama 3 的头部是 <|start_header_id|>、角色、"
                 "<|end_header_id|>，然后是编码后的 \"\\n\\n\"")
def header_without_blank_line(encoding, role, chat_format="llama3"):
    header = ex14_chat.encode_header(encoding, role, chat_format)
    return header[:-1] if chat_format == "llama3" else header


@spec.mistake("encode_message", "content_not_stripped",
              en="the content is not stripped: Llama 3's format encodes content.strip() (Meta's ChatFormat), so spaces "
                 "and newlines around a message are not tokens the model reads",
              zh="内容没有去掉首尾空白：Llama 3 的格式编码的是 content.strip()（Meta 的 ChatFormat），"
                 "消息首尾的空格和换行不是模型读到的 token")
def message_not_stripped(encoding, message, chat_format="llama3"):
    if chat_format != "llama3":
        return ex14_chat.encode_message(encoding, message, chat_format)
    content = encoding.encode(message["content"], allowed_special=set(), disallowed_special=())
    return ex14_chat.encode_header(encoding, message["role"]) + content + ex14_chat.end_of_turn(encoding)


@spec.mistake("encode_dialog", "no_open_assistant_header",
              en="the dialog does not end with an open assistant header: without it the model continues the last "
                 "message instead of answering it; end with encode_header(encoding, \"assistant\", chat_format)",
              zh="对话没有以打开的 assistant 头结尾：没有它，模型会接着写最后一条消息，而不是回答它；"
                 "结尾要加上 encode_header(encoding, \"assistant\", chat_format)")
def dialog_without_open_header(encoding, messages, chat_format="llama3"):
    n = len(ex14_chat.encode_header(encoding, "assistant", chat_format))
    return ex14_chat.encode_dialog(encoding, messages, chat_format)[:-n]
