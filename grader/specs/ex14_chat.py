"""Exercise 14, the chat format and a conversation: golden calls and named mistakes.

Token ids are compared with their decoded pieces beside them, so that a failure shows '\\n', '  What' against
'\\n  ', 'What' and not only the ids. Chat is driven through whole conversations: replies read to the end, closed
after a few tokens as Ctrl-C does, interrupted inside a forward, a sampler, a stop token met, a message too long for
the cache; its conversation (chat.tokens) must be the dialog with the replies in it, and the driver names the known
ways it is not."""

import contextlib
import functools
import inspect
import itertools

import torch

from solutions import ex13_sampling, ex14_chat
from solutions.ex11_forward import forward

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
# like a special token, other scripts, and content that starts with a newline (which ChatML encodes together with the
# role: "user\n\nWhat" is not "user\n" then "\nWhat", on Llama 3's tokenizer as on SmolLM2's).
DIALOGS = {
    "published": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi"}],
    "strip": [{"role": "user", "content": "  What is 6 x 7?\n\n"}],
    "turns": [{"role": "user", "content": "Name a llama."}, {"role": "assistant", "content": "Lima, from Peru."},
              {"role": "user", "content": "  Another one, please: <|eot_id|> <|im_end|>"}],
    "unicode": [{"role": "system", "content": "用中文回答。"},
                {"role": "user", "content": "生命、宇宙以及一切的答案是什么？🦙"}],
    "newline": [{"role": "user", "content": "\nWhat is 6 x 7?"}],
}
TOO_LONG = "Please repeat: " + "llama " * CHAT_MAX_SEQ_LEN  # more tokens than the cache holds, in any tokenizer
# (system, turns, sampler): each turn is [content, how its reply ends]: None reads it to the end (a stop token or
# max_new_tokens), n closes it after n tokens as Ctrl-C does, "prefill" interrupts the turn's first forward halfway
# (after some layers wrote the cache), "refused" is a message ask must refuse before anything changes; sampler is
# (temperature, top_k, top_p, seed) of the reference's Sampler passed to every ask, or None for argmax
CONVERSATIONS = {
    "two_turns": ("You are a helpful assistant.", [["What is the capital of France?", None], ["And of Italy?", None]],
                  None),
    "interrupted": (None, [["Tell me a long story.", 2], ["Shorter, please.", None]], None),
    "interrupted_in_prefill": (None, [["Name a colour.", None], ["And a fruit?", "prefill"], ["And a tree?", None]],
                               None),
    "too_long": ("You are a helpful assistant.", [[TOO_LONG, "refused"], ["Thanks.", None]], None),
    "sampled": ("You are a helpful assistant.", [["Tell me a joke.", None]], (1.5, None, None, 14)),
}
UNKNOWN_FORMAT = "llama2"


@spec.cases
def calls(model, acts) -> list[Call]:
    """Headers, ends of turn, messages and dialogs in Llama 3's format (on its tokenizer) and in ChatML, and a dialog
    in a format that does not exist; conversations in each format through one cache, one of them with a stop token
    met in its first reply; a Chat in a format that does not exist."""
    m = spec.module
    own = model.checkpoint.tokenizer.chat_format
    stops = list(model.checkpoint.tokenizer.stop_ids)
    formats = {"llama3": Ref("encoding")} if own == "llama3" else {}
    # ChatML: the trained model's own format; on Llama 3's tokenizer, two reserved tokens renamed
    formats["chatml"] = Ref("encoding", "chatml")
    out = [Call(m, "encode_header", f"{fmt}_{role}", {"encoding": enc, "role": role, "chat_format": fmt},
                driver=drive_ids) for fmt, enc in formats.items() for role in ("system", "user", "assistant")]
    out += [Call(m, "end_of_turn", fmt, {"encoding": enc, "chat_format": fmt}, driver=drive_ids)
            for fmt, enc in formats.items()]
    out += [Call(m, "encode_message", f"{fmt}_{name}", {"encoding": enc, "message": msgs[-1], "chat_format": fmt},
                 driver=drive_ids) for fmt, enc in formats.items() for name, msgs in DIALOGS.items()]
    out += [Call(m, "encode_dialog", f"{fmt}_{name}", {"encoding": enc, "messages": msgs, "chat_format": fmt},
                 driver=drive_ids) for fmt, enc in formats.items() for name, msgs in DIALOGS.items()]
    out += [Call(m, "encode_dialog", "unknown_format", {"encoding": formats["chatml"], "chat_format": UNKNOWN_FORMAT},
                 driver=drive_unknown_format)]
    chat = {"weights": Ref("weights", dtype="float32"), "args": Ref("args"), "max_new_tokens": new_tokens(model) // 2}
    im_end = stops if own == "chatml" else [model.resolve(formats["chatml"]).encode_single_token("<|im_end|>")]
    stops_of = {"llama3": stops, "chatml": im_end}
    for fmt, enc in formats.items():
        base = {**chat, "encoding": enc, "chat_format": fmt, "stop_tokens": stops_of[fmt]}
        out += [Call(m, "Chat", f"{fmt}_{case}", {**base, "system": system, "turns": turns, "sampler": sampler},
                     tolerance="float32 layers", driver=drive_chat)
                for case, (system, turns, sampler) in CONVERSATIONS.items()]
        system, turns, _ = CONVERSATIONS["two_turns"]
        stop = first_reply(model, base, system, turns)[2:3]  # its third token: random weights never choose a stop
        out += [Call(m, "Chat", f"{fmt}_stop_token", {**base, "stop_tokens": stops_of[fmt] + stop, "system": system,
                                                      "turns": turns[:1], "sampler": None},
                     tolerance="float32 layers", driver=drive_chat)]
    out += [Call(m, "Chat", "unknown_format", {**chat, "encoding": formats["chatml"], "chat_format": UNKNOWN_FORMAT},
                 driver=drive_unknown_format)]
    return out


def first_reply(model, base: dict, system, turns) -> list[int]:
    """The reference Chat's first reply in a conversation."""
    chat = ex14_chat.Chat(model.weights("float32"), model.checkpoint.args, model.resolve(base["encoding"]),
                          base["chat_format"], base["stop_tokens"], CHAT_MAX_SEQ_LEN, system)
    return [token for token, _ in chat.ask(turns[0][0], base["max_new_tokens"])]


def pieces(encoding, ids) -> list[str] | None:
    """Each id of a list decoded on its own ('?' for what is not a token id), or None for what is not a list."""
    if not isinstance(ids, (list, tuple)):
        return None
    def piece(t):
        ok = isinstance(t, int) and not isinstance(t, bool) and 0 <= t < encoding.n_vocab
        return encoding.decode([t]) if ok else "?"
    return [piece(t) for t in ids]


@driver
def drive_ids(fn, encoding, **kwargs):
    """The token ids fn gives, and each decoded beside them."""
    ids = fn(encoding=encoding, **kwargs)
    return {"ids": ids, "pieces": pieces(encoding, ids)}


@driver
def drive_unknown_format(fn, encoding, chat_format, **chat):
    """What fn does with a chat format that does not exist: encode_dialog of a message, or a Chat's first reply.
    The contract: a ValueError."""
    try:
        if chat:  # Chat(weights, args, encoding, chat_format, ...), then ask
            list(itertools.islice(fn(chat["weights"], chat["args"], encoding, chat_format, (), CHAT_MAX_SEQ_LEN)
                                  .ask("Hi", chat["max_new_tokens"]), 1))
        else:
            fn(encoding=encoding, messages=[{"role": "user", "content": "Hi"}], chat_format=chat_format)
    except ValueError:
        return {f"chat_format={chat_format!r}": "ValueError"}
    except Exception as e:  # which one it raised is the result
        return {f"chat_format={chat_format!r}": f"{type(e).__name__}: {str(e).strip()[:80]}"}
    return {f"chat_format={chat_format!r}": "accepted"}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised by the grader inside a forward."""


class HalfWritten:
    """A KV cache whose update of the last layer raises Interrupted: a forward stopped halfway, after the first layers
    wrote their rows and before the last did."""

    def __init__(self, cache, last_layer: int):
        self.cache, self.last_layer = cache, last_layer

    def update(self, layer_id, start_pos, k, v):
        if layer_id == self.last_layer:
            raise Interrupted
        return self.cache.update(layer_id, start_pos, k, v)

    def __getattr__(self, name):
        return getattr(self.cache, name)


@contextlib.contextmanager
def watched_forward(Chat):
    """Within the block, the forward that Chat's ask calls (the global `forward` of every module that defines an ask
    among Chat's classes) records the arguments of each call in calls, and stops halfway when interrupt["next"] is
    set. Yields (calls, interrupt)."""
    calls, interrupt, patched = [], {}, {}
    for klass in getattr(inspect.unwrap(Chat), "__mro__", ()):  # the class under the grader's guard
        mod = inspect.getmodule(vars(klass)["ask"]) if "ask" in vars(klass) else None
        if mod is not None and callable(getattr(mod, "forward", None)):
            patched[mod] = mod.forward

    def watching(original):
        @functools.wraps(original)
        def watched(*args, **kwargs):
            try:
                bound = inspect.signature(original).bind(*args, **kwargs)
                bound.apply_defaults()
            except TypeError:
                return original(*args, **kwargs)  # the call itself raises the learner's TypeError
            if interrupt.pop("next", False) and bound.arguments.get("cache") is not None:
                bound.arguments["cache"] = HalfWritten(bound.arguments["cache"], bound.arguments["args"].n_layers - 1)
            calls.append(dict(bound.arguments))
            return original(*bound.args, **bound.kwargs)
        return watched

    try:
        for mod, original in patched.items():
            mod.forward = watching(original)
        yield calls, interrupt
    finally:
        for mod, original in patched.items():
            mod.forward = original


class Dialog:
    """The tokens a conversation must hold (chat.tokens), built turn by turn from the replies read; and the same with
    a known mistake's fault in it, to name that mistake."""

    def __init__(self, encoding, chat_format: str, system: str | None):
        self.encoding, self.chat_format = encoding, chat_format
        self.pending = [{"role": "system", "content": system}] if system else []
        self.tokens, self.end_of_turn_lost, self.begin_of_text_every_turn = [], [], []

    def add(self, content: str, reply: list[int], cut_short: bool) -> None:
        whole = ex14_chat.encode_dialog(self.encoding, [*self.pending, {"role": "user", "content": content}],
                                        self.chat_format)
        turn = whole[1:] if self.tokens and self.chat_format == "llama3" else whole  # <|begin_of_text|> once
        end = ex14_chat.end_of_turn(self.encoding, self.chat_format)
        self.tokens += turn + reply + end
        self.end_of_turn_lost += turn + reply + ([] if cut_short else end)
        self.begin_of_text_every_turn += whole + reply + end
        self.pending = []

    def check(self, got, stop_tokens) -> None:
        """Raise a GradeFailure unless got is the dialog, naming the known mistake whose dialog it is."""
        if got == self.tokens:
            return
        end = ex14_chat.end_of_turn(self.encoding, self.chat_format)
        report = "\n".join([say("ex14.tokens_not_the_dialog"), value_mismatch("chat.tokens", got, self.tokens),
                            value_mismatch("chat.tokens decoded", pieces(self.encoding, got),
                                           pieces(self.encoding, self.tokens)) or ""])
        if got == self.end_of_turn_lost:
            raise named("chat_end_of_turn_lost", report)
        if got == self.begin_of_text_every_turn:
            raise named("chat_begin_of_text_every_turn", report)
        # without every stop token that stands just before an end of turn
        unkept = isinstance(got, list) and [t for i, t in enumerate(got)
                                            if not (t in stop_tokens and got[i + 1:i + 1 + len(end)] == end)]
        if unkept == self.tokens:
            raise named("chat_keeps_the_stop_token", report)
        raise GradeFailure(report)


def named(mistake_id: str, detail: str = "") -> GradeFailure:
    """A failure that names one of this exercise's mistakes (recognised by a driver rather than by its outputs)."""
    mistake = next(m for m in spec.mistakes if m.id == mistake_id)
    return GradeFailure((detail + "\n" if detail else "") + "=> " + say("checking.known_mistake") + mistake.message(),
                        mistake=mistake_id)


def refuse(chat, content: str, max_new_tokens: int) -> None:
    """ask on a message too long for the cache must raise ValueError, and leave the conversation as it was."""
    before = list(getattr(chat, "tokens", []))
    try:
        first = next(iter(chat.ask(content, max_new_tokens)), None)
    except ValueError:
        after = list(getattr(chat, "tokens", []))
        if after != before:
            raise named("chat_keeps_the_refused_message",
                        value_mismatch("chat.tokens after the refused message", after, before)) from None
        return
    except Exception as e:  # what it did instead is the message
        what = f"raised {type(e).__name__}: {str(e).strip()[:120]}"
    else:
        what = "yielded a token" if first is not None else "returned without an error"
    raise GradeFailure(say("ex14.too_long_not_refused", max_seq_len=CHAT_MAX_SEQ_LEN, what=what))


@driver
def drive_chat(Chat, weights, args, encoding, chat_format, stop_tokens, system, turns, max_new_tokens, sampler):
    """A conversation: for each turn [content, how it ends] (see CONVERSATIONS), ask, read the reply and close it.
    Checks that the turns fed forward only what the cache lacked (a forward interrupted halfway fed again), and that
    chat.tokens is the dialog with the replies in it; returns the replies, compared as generated tokens are (exactly,
    when sampled)."""
    chat = Chat(weights, args, encoding, chat_format, stop_tokens, CHAT_MAX_SEQ_LEN, system)
    steps, dialog, interrupted = [], Dialog(encoding, chat_format, system), None
    with watched_forward(Chat) as (calls, interrupt):
        for content, end in turns:
            if end == "refused":
                refuse(chat, content, max_new_tokens)
                continue
            interrupt["next"] = end == "prefill"
            sampled = {"sampler": ex13_sampling.Sampler(*sampler)} if sampler else {}  # else ask's own default
            reply = chat.ask(content, max_new_tokens, **sampled)
            got = []
            try:
                got = list(itertools.islice(reply, end if isinstance(end, int) else None))
            except Interrupted:
                interrupted = (len(calls) - 1, calls.pop())  # it never returned: its tokens are the next call's
            if hasattr(reply, "close"):
                reply.close()
            steps += got
            ids = [t for t, _ in got] if all(isinstance(s, tuple) and len(s) == 2 for s in got) else []
            dialog.add(content, ids, cut_short=end is not None)
    out = generation(steps, "Chat.ask", stop_tokens)  # the replies are pairs of a token and its logits, no stop token
    if interrupted:
        index, call = interrupted
        resumed = calls[index]["start_pos"] if index < len(calls) else None
        if isinstance(resumed, int) and resumed > call["start_pos"]:
            raise named("chat_cached_before_forward_returned",
                        say("ex14.not_fed_again", start=call["start_pos"], resumed=resumed))
    check_cache_use(calls, "Chat.ask")
    dialog.check(getattr(chat, "tokens", None), stop_tokens)
    if sampler:
        return {"tokens": out["tokens"], "logits_head": out["logits_head"][:, :SAMPLED_LOGITS]}
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


@spec.mistake("encode_message", "chatml_role_and_content_apart",
              en="ChatML's role and content are encoded apart: the template is one text, f\"{role}\\n{content}\", "
                 "encoded as one piece, and a content that starts with a newline or spaces merges with the \"\\n\" "
                 "before it (\"\\n\\n\" is one token)",
              zh="ChatML 的角色和内容被分开编码了：模板是一段文本 f\"{role}\\n{content}\"，要作为一整段编码；内容以换行"
                 "或空格开头时，会与它前面的 \"\\n\" 合并（\"\\n\\n\" 是一个 token）")
def message_role_and_content_apart(encoding, message, chat_format="llama3"):
    if chat_format != "chatml":
        return ex14_chat.encode_message(encoding, message, chat_format)
    content = encoding.encode(message["content"], allowed_special=set(), disallowed_special=())
    return (ex14_chat.encode_header(encoding, message["role"], "chatml") + content
            + ex14_chat.end_of_turn(encoding, "chatml"))


@spec.mistake("encode_dialog", "no_open_assistant_header",
              en="the dialog does not end with an open assistant header: without it the model continues the last "
                 "message instead of answering it; end with encode_header(encoding, \"assistant\", chat_format)",
              zh="对话没有以打开的 assistant 头结尾：没有它，模型会接着写最后一条消息，而不是回答它；"
                 "结尾要加上 encode_header(encoding, \"assistant\", chat_format)")
def dialog_without_open_header(encoding, messages, chat_format="llama3"):
    n = len(ex14_chat.encode_header(encoding, "assistant", chat_format))
    return ex14_chat.encode_dialog(encoding, messages, chat_format)[:-n]


@spec.mistake("Chat", "chat_ignores_the_sampler",
              en="Chat.ask ignores its sampler and takes the argmax: choose each token with sampler(logits) (the "
                 "argmax only when sampler is None), or `llama3-grader chat --temperature` is silently greedy",
              zh="Chat.ask 没有用它的 sampler，而是取了 argmax：应用 sampler(logits) 选出每个 token（只有 sampler 为 "
                 "None 时才取 argmax），否则 `llama3-grader chat --temperature` 会悄悄地变成贪心")
class ChatIgnoringTheSampler(ex14_chat.Chat):
    def ask(self, content, max_new_tokens=256, sampler=None):
        return super().ask(content, max_new_tokens)


@spec.mistake("Chat", "chat_keeps_the_stop_token",
              en="the stop token stays in the conversation (chat.tokens): it ends the reply and is neither yielded nor "
                 "kept; the end of turn closes the reply instead",
              zh="停止 token 留在了对话（chat.tokens）中：它结束回复，既不 yield 也不保留；由轮次结束符来收尾")
class ChatKeepingTheStopToken(ex14_chat.Chat):
    def __init__(self, weights, args, encoding, chat_format="llama3", stop_tokens=(), max_seq_len=2048, system=None):
        super().__init__(weights, args, encoding, chat_format, (), max_seq_len, system)
        self.stops = tuple(stop_tokens)

    def ask(self, content, max_new_tokens=256, sampler=None):
        for token, logits in super().ask(content, max_new_tokens, sampler):  # appends every token, the stop too
            if token in self.stops:
                return
            yield token, logits


@spec.mistake("Chat", "chat_end_of_turn_lost",
              en="a reply cut short (closed, or interrupted) loses its end of turn, so the next turn runs on from the "
                 "middle of the reply: append end_of_turn in a finally: block, which runs however the reply ends",
              zh="被截断（被关闭或被打断）的回复丢了轮次结束符，于是下一轮从回复的半中间接下去：在 finally: 块中追加 "
                 "end_of_turn，无论回复怎样结束它都会执行")
class ChatLosingTheEndOfTurn(ex14_chat.Chat):
    def ask(self, content, max_new_tokens=256, sampler=None):
        reply = super().ask(content, max_new_tokens, sampler)
        try:
            yield from reply
        except BaseException:  # closed or interrupted: what the reference's finally appended is taken back
            del self.tokens[-len(ex14_chat.end_of_turn(self.encoding, self.chat_format)):]
            raise


@spec.mistake("Chat", "chat_begin_of_text_every_turn",
              en="every turn starts with <|begin_of_text|>: it starts the conversation only, so drop it from the "
                 "turn's tokens after the first turn (encode_dialog(...)[1:])",
              zh="每一轮都以 <|begin_of_text|> 开头：它只出现在整段对话的开头，所以第一轮之后要从这一轮的 token "
                 "中去掉它（encode_dialog(...)[1:]）")
class ChatBeginningEveryTurn(ex14_chat.Chat):
    def ask(self, content, max_new_tokens=256, sampler=None):
        turn = ex14_chat.encode_dialog(self.encoding, [*self.pending, {"role": "user", "content": content}],
                                       self.chat_format)  # <|begin_of_text|> kept on every turn
        if len(self.tokens) + len(turn) + max_new_tokens > self.max_seq_len:
            raise ValueError(f"the conversation would pass {self.max_seq_len} tokens: start a new one")
        self.pending, self.tokens = [], self.tokens + turn
        try:
            for _ in range(max_new_tokens):
                logits = forward(torch.tensor(self.tokens[self.cached:]), self.weights, self.args, self.cache,
                                 self.cached)[-1]
                self.cached = len(self.tokens)
                token = sampler(logits) if sampler is not None else int(logits.argmax())
                if token in self.stop_tokens:
                    return
                self.tokens.append(token)
                yield token, logits
        finally:
            self.tokens += ex14_chat.end_of_turn(self.encoding, self.chat_format)


@spec.mistake("Chat", "chat_cached_before_forward_returned",
              en="self.cached moved before forward returned: a forward interrupted halfway wrote some layers' rows and "
                 "not others, so its tokens must be fed again; set self.cached = len(self.tokens) only after forward "
                 "returns",
              zh="self.cached 在 forward 返回之前就移动了：中途被打断的 forward 只写了部分层的行，这些 token 必须重新"
                 "喂入；只在 forward 返回之后才设置 self.cached = len(self.tokens)")
class ChatCachingBeforeForwardReturns(ex14_chat.Chat):
    def ask(self, content, max_new_tokens=256, sampler=None):
        turn = ex14_chat.encode_dialog(self.encoding, [*self.pending, {"role": "user", "content": content}],
                                       self.chat_format)
        if self.tokens and self.chat_format == "llama3":
            turn = turn[1:]
        if len(self.tokens) + len(turn) + max_new_tokens > self.max_seq_len:
            raise ValueError(f"the conversation would pass {self.max_seq_len} tokens: start a new one")
        self.pending, self.tokens = [], self.tokens + turn
        try:
            for _ in range(max_new_tokens):
                start, self.cached = self.cached, len(self.tokens)  # too early: forward may not return
                logits = forward(torch.tensor(self.tokens[start:]), self.weights, self.args, self.cache,
                                 start)[-1]
                token = sampler(logits) if sampler is not None else int(logits.argmax())
                if token in self.stop_tokens:
                    return
                self.tokens.append(token)
                yield token, logits
        finally:
            self.tokens += ex14_chat.end_of_turn(self.encoding, self.chat_format)


@spec.mistake("Chat", "chat_keeps_the_refused_message",
              en="a message too long for max_seq_len was refused, but it stays in the conversation, and every later "
                 "turn carries it: check the length first, and change nothing (self.tokens, the pending messages) "
                 "before the check passes",
              zh="超出 max_seq_len 的消息被拒绝了，却留在了对话中，之后的每一轮都带着它：先检查长度，检查通过之前"
                 "什么都不要改（self.tokens、待发送的消息）")
class ChatKeepingTheRefusedMessage(ex14_chat.Chat):
    def ask(self, content, max_new_tokens=256, sampler=None):
        turn = ex14_chat.encode_dialog(self.encoding, [*self.pending, {"role": "user", "content": content}],
                                       self.chat_format)
        turn = turn[1:] if self.tokens and self.chat_format == "llama3" else turn
        if len(self.tokens) + len(turn) + max_new_tokens > self.max_seq_len:
            self.tokens = self.tokens + turn  # the refused message stays
            raise ValueError(f"the conversation would pass {self.max_seq_len} tokens: start a new one")
        yield from super().ask(content, max_new_tokens, sampler)
