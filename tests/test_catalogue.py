"""The message catalogues: both languages hold the same keys with the same placeholders, every key the code says
exists, and every key in them is said somewhere."""

import re

import pytest

from grader.i18n import LANGS, catalogue, placeholders, say
from grader.paths import ROOT

SOURCES = [p for folder in ("grader", "exercises") for p in (ROOT / folder).rglob("*.py")]
LITERAL = re.compile(r"""say\(\s*["']([\w.]+)["']""")  # say("compare.shape", ...)
DYNAMIC = re.compile(r"""say\(\s*f["']([\w.]+)\{""")  # say(f"tolerance.{name}", ...): every key under that prefix


def _code() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)


def test_both_languages_have_every_key_with_the_same_placeholders():
    en, zh = catalogue("en"), catalogue("zh")
    assert sorted(set(en) ^ set(zh)) == [], "keys in one catalogue only"
    differ = {key: (placeholders(en[key]), placeholders(zh[key]))
              for key in en if placeholders(en[key]) != placeholders(zh[key])}
    assert differ == {}, "placeholders differ between en and zh"


def test_every_key_the_code_says_exists():
    said = set(LITERAL.findall(_code()))
    assert sorted(said - set(catalogue("en"))) == []


def test_every_key_is_said_somewhere():
    code = _code()
    said, prefixes = set(LITERAL.findall(code)), tuple(DYNAMIC.findall(code))
    unused = [key for key in catalogue("en")
              if key not in said and not key.startswith(prefixes) and f'"{key}"' not in code]
    assert unused == []


class _Anything:
    """A field value that takes any format spec, index or attribute."""

    def __format__(self, spec: str) -> str:
        return "x"

    def __getitem__(self, key):
        return self

    def __getattr__(self, name: str):
        return self


@pytest.mark.parametrize("language", LANGS)
def test_every_message_formats_with_its_own_placeholders(language):
    for key, text in catalogue(language).items():
        say(key, lang=language, **{name: _Anything() for name in placeholders(text)})
