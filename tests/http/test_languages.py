"""Two languages (issue #33): every message is in the Indonesian catalog, no template shows text that is not
a message, and a page's language is ``ui_locales``, then the person's choice, then ``Accept-Language``."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment

from consentry.http import i18n
from consentry.runtime import Runtime
from tests.i18n import CATALOG, untranslated
from tests.oauth import make_person

ROOT = Path(__file__).parent.parent.parent
TEMPLATES = files("consentry") / "http" / "templates"
HTML = {"Accept": "text/html"}
# What templates may show as written: names, punctuation, and the words that are the same in both languages.
NOT_WORDS = {"Consentry", "UserInfo"}
# An example value (a placeholder's notes:read, https://…, Asia/Jakarta): one token that is code, not prose.
EXAMPLE = re.compile(r"\S*[:/_@+]\S*|\S+\.\S+")
READ_ATTRIBUTES = re.compile(
    r'\b(?:aria-label|placeholder|title|alt|data-confirm|data-show|data-hide)="([^"]*)"'
)


def test_every_message_of_the_pages_has_its_indonesian(tmp_path: Path) -> None:
    """A fresh extraction (babel.cfg, as `make messages` runs it) has nothing the catalog lacks or leaves
    untranslated."""
    template = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "--quiet", "extract", "-F", str(ROOT / "babel.cfg"),
         "-o", str(template), str(ROOT / "src" / "consentry")],
        check=True,
    )  # fmt: skip
    with template.open("rb") as source:
        extracted = {message.id for message in read_po(source) if message.id}
    with CATALOG.open("rb") as source:
        catalog = {message.id: message.string for message in read_po(source, locale="id") if message.id}
    assert sorted(str(m) for m in extracted - catalog.keys()) == []
    empty = [
        m
        for m, translated in catalog.items()
        if not all(translated if isinstance(translated, tuple) else (translated,))
    ]
    assert empty == []
    assert len(extracted) > 250


def test_no_template_shows_text_that_is_not_a_message() -> None:
    """Between the tags of every template there is only markup, template code, punctuation and names: all a
    person reads goes through the catalog (``_()``, ``{% trans %}``), attributes they hear included."""
    environment = Environment(extensions=["jinja2.ext.i18n"])
    found: dict[str, list[str]] = {}
    for template in TEMPLATES.iterdir():
        if not template.name.endswith(".html") or template.name == "api_docs.html":
            continue
        literal = _shown_as_written(environment, template.read_text())
        texts = READ_ATTRIBUTES.findall(literal)
        texts += re.sub(r"<[^>]*>|\0", " ", literal).split()
        words = [
            t
            for t in texts
            if re.search(r"[A-Za-z]{2}", t)
            and t.strip(" .,:;()·") not in NOT_WORDS
            and not EXAMPLE.fullmatch(t)
        ]
        if words:
            found[template.name] = words
    assert found == {}


def _shown_as_written(environment: Environment, source: str) -> str:
    """The template's text outside template code and outside ``{% trans %}`` blocks; any code stands as one
    NUL, so an attribute whose value is code or a message shows no letters."""
    shown, in_message, previous = [], False, ""
    for _, kind, value in environment.lex(source):
        if kind == "name" and previous == "block_begin" and value in ("trans", "endtrans"):
            in_message = value == "trans"
        if kind == "data" and not in_message:
            shown.append(value)
        elif not shown or shown[-1] != "\0":
            shown.append("\0")
        if kind != "whitespace":
            previous = kind
    return "".join(shown)


def test_the_language_is_ui_locales_then_the_persons_choice_then_the_browsers() -> None:
    assert i18n.from_accept_language("fr-FR, id;q=0.8, en;q=0.5") == "id"
    assert i18n.from_accept_language("en-GB,en;q=0.9,id;q=0.95") == "en"
    assert i18n.from_accept_language("id-ID;q=0, de") is None
    assert i18n.from_accept_language("x;q=abc, id;q=") is None
    assert i18n.first_of_ui_locales("fr-CA id-ID en") == "id"
    assert i18n.supported("ID") == "id" and i18n.supported("de") is None


async def test_a_page_is_in_the_language_asked_for(http: httpx.AsyncClient, runtime: Runtime) -> None:
    english = await http.get("/login", headers=HTML | {"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in or create an account" in english.text and english.headers["content-language"] == "en"
    indonesian = await http.get("/login", headers=HTML | {"Accept-Language": "id-ID,id;q=0.9,en;q=0.5"})
    assert '<html lang="id">' in indonesian.text and "Masuk atau buat akun" in indonesian.text
    assert untranslated(indonesian.text) == []
    asked = await http.get("/login?ui_locales=id", headers=HTML | {"Accept-Language": "en"})
    assert "Masuk atau buat akun" in asked.text
    assert asked.cookies.get(i18n.LOCALE_COOKIE) == "id"  # for the rest of the visit: the steps that follow
    assert "Masuk atau buat akun" in (await http.get("/login", headers=HTML | {"Accept-Language": "en"})).text
    http.cookies.clear()

    # The switcher's choice is kept for a year; it sends the person back only to a page of this site.
    chosen = await http.get("/locale?locale=id&next=/account/apps")
    assert (chosen.status_code, chosen.headers["location"]) == (302, "/account/apps")
    assert "Max-Age=31536000" in chosen.headers["set-cookie"]
    for elsewhere in ("//evil.example/", "/\\evil.example", "https://evil.example/", "/\t/evil.example"):
        assert (await http.get("/locale", params={"locale": "id", "next": elsewhere})).headers[
            "location"
        ] == "/account"
    http.cookies.clear()

    # A person who saved Indonesian in their profile reads their account in it, whatever the browser says.
    person = await make_person(runtime)
    saved = await http.patch("/api/v1/users/me", json={"locale": "id"}, headers=person.headers)
    assert saved.status_code == 200
    account = await http.get("/account", headers=person.headers | HTML | {"Accept-Language": "en"})
    assert "Akun Anda" in account.text and untranslated(account.text) == []


async def test_a_saved_language_the_pages_do_not_speak_is_kept_by_the_profile_page(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A tag an app or a provider saved (``en-GB``) is the person's: saving the page keeps it, and the pages
    speak the language it names."""
    person = await make_person(runtime)
    assert (await http.patch("/api/v1/users/me", json={"locale": "en-GB"}, headers=person.headers)).is_success
    page = await http.get("/account/profile", headers=person.headers | HTML)
    assert '<option value="en-GB" selected>en-GB</option>' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    saved = await http.post(
        "/account/profile",
        data={"csrf_token": token.group(1), "name": "Ada", "locale": "en-GB"},
        headers=person.headers | HTML,
    )
    assert (saved.status_code, saved.headers["location"]) == (302, "/account?done=profile"), saved.text
    assert saved.cookies.get(i18n.LOCALE_COOKIE) == "en"
    me = (await http.get("/api/v1/users/me", headers=person.headers)).json()
    assert (me["name"], me["locale"]) == ("Ada", "en-GB")


@pytest.mark.parametrize("path", ["/login", "/account", "/no-such-page"])
async def test_pages_name_their_language(http: httpx.AsyncClient, path: str) -> None:
    page = await http.get(path, headers=HTML | {"Accept-Language": "id"}, follow_redirects=True)
    assert page.headers["content-language"] == "id" and '<html lang="id">' in page.text
