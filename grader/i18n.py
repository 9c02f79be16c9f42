"""The learner's language: --lang, else LLAMA3_KIT_LANG, else English."""

import os

LANGS = ("en", "zh")


def lang(override: str | None = None) -> str:
    choice = override or os.environ.get("LLAMA3_KIT_LANG", "en")
    return choice if choice in LANGS else "en"


def pick(en: str, zh: str, override: str | None = None) -> str:
    return zh if lang(override) == "zh" else en
