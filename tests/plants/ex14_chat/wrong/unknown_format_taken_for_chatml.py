"""Every chat format but Llama 3's is taken for ChatML, so a misspelt one is encoded without a word."""

from solutions.ex14_chat import encode_header, encode_message

FAILURE_SAYS = "got 'accepted', expected 'ValueError'"


def encode_dialog(encoding, messages, chat_format="llama3"):
    if chat_format != "llama3":
        chat_format = "chatml"
    start = [encoding.encode_single_token("<|begin_of_text|>")] if chat_format == "llama3" else []
    body = [t for message in messages for t in encode_message(encoding, message, chat_format)]
    return start + body + encode_header(encoding, "assistant", chat_format)
