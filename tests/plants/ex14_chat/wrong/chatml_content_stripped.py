"""The content stripped in ChatML too, as Llama 3's format does: SmolLM2's template keeps it as it is. (The failure
shows the ids decoded beside them: the reference's '\\n', ' ', ' What' against 'What'.)"""

from solutions.ex14_chat import check_message, encode_header, end_of_turn

FAILURE_SAYS = "'user', '\\n', ' ', ' What'"


def encode_message(encoding, message, chat_format="llama3"):
    check_message(message)
    content = encoding.encode(message["content"].strip(), allowed_special=set(), disallowed_special=())
    if chat_format == "llama3":
        return encode_header(encoding, message["role"]) + content + end_of_turn(encoding)
    role = encoding.encode(f"{message['role']}\n", allowed_special=set(), disallowed_special=())
    return [encoding.encode_single_token("<|im_start|>"), *role, *content, *end_of_turn(encoding, chat_format)]
