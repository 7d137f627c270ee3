"""The catalogs as tests read them: which English messages a page in Indonesian must not show."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from babel.messages.pofile import read_po

CATALOG = files("consentry") / "locale" / "id" / "LC_MESSAGES" / "messages.po"
# Placeholders and markup split a message into the literal runs a page shows as written.
_SPLIT = re.compile(r"%\(\w+\)s|<[^>]+>|[“”]")


@cache
def english_fragments() -> tuple[str, ...]:
    """The literal runs of every message whose Indonesian differs, long enough to be told apart from names
    and data: several words, or a whole message of one word."""
    with CATALOG.open("rb") as source:
        catalog = read_po(source, locale="id")
    fragments: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english, indonesian in zip(ids, strings, strict=False):
            if english == indonesian:
                continue
            runs = [run.strip(" .,:;?!()·") for run in _SPLIT.split(english)]
            for run in runs:
                several_words = " " in run and sum(c.isalpha() for c in run) >= 6
                if several_words or (len(runs) == 1 and len(run) >= 4):
                    fragments.add(run)
    return tuple(sorted(fragments, key=len, reverse=True))


def untranslated(text: str) -> list[str]:
    """The catalog's English runs that ``text`` (a page in Indonesian: its visible text, or its HTML, whose
    tags are dropped) contains as whole words."""
    text = re.sub(r"<[^>]*>", " ", text)
    return [
        fragment
        for fragment in english_fragments()
        if re.search(rf"(?<![\w]){re.escape(fragment)}(?![\w])", text)
    ]
