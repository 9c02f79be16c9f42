"""The learner's language (--lang, else LLAMA3_KIT_LANG, else English) and the kit's messages in it.

Every message a person reads is in grader/messages/<lang>.toml, one catalogue per language, under a dotted key
("compare.shape"); `say(key, **fields)` fills its {placeholders} with str.format. tests/test_catalogue.py checks that
both languages hold the same keys with the same placeholders, and that every key the code says exists."""

import functools
import os
import string
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

LANGS = ("en", "zh")
CATALOGUES = Path(__file__).with_name("messages")


def lang(override: str | None = None) -> str:
    choice = override or os.environ.get("LLAMA3_KIT_LANG", "en")
    return choice if choice in LANGS else "en"


def pick(en: str, zh: str, override: str | None = None) -> str:
    return zh if lang(override) == "zh" else en


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": "text"}} -> {"a.b": "text"}"""
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


@functools.cache
def catalogue(language: str) -> dict[str, str]:
    """Every message of one language, by dotted key."""
    return _flatten(tomllib.loads((CATALOGUES / f"{language}.toml").read_text(encoding="utf-8")))


def say(key: str, /, *, lang: str | None = None, **fields) -> str:
    """The message under key in the learner's language (or lang), its placeholders filled from fields."""
    return catalogue(_choice(lang))[key].format(**fields)


_choice = lang  # say's keyword `lang` hides the function within it


def placeholders(text: str) -> set[str]:
    """The names of a message's {placeholders}: "{name}: shape {got:>8}" -> {"name", "got"}."""
    return {field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(text) if field}
