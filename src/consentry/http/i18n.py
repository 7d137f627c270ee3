"""The pages' languages: English (the source text) and Bahasa Indonesia, from Babel message catalogs.

A page's language is, in order: the ``ui_locales`` a request names (OpenID Connect Core §3.1.2.1; remembered
for the rest of the visit in a cookie, as the sign-in and consent pages that follow do not carry it), the
language the person chose (the switcher's cookie, else the ``locale`` saved in their profile), then the
browser's ``Accept-Language``. A saved choice comes before the browser's because it is the person's own word.

The catalogs are ``.po`` files compiled in memory when the module loads, so the package ships no binaries.
"""

from __future__ import annotations

import io
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations
from starlette.requests import Request
from starlette.responses import Response

from consentry.errors import N_, ConsentryError

DEFAULT_LOCALE = "en"
LOCALES = {"en": "English", "id": "Bahasa Indonesia"}
LOCALE_COOKIE = "consentry_locale"
LOCALE_DIRECTORY = files("consentry") / "locale"


def _load(locale: str) -> NullTranslations:
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    with (LOCALE_DIRECTORY / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


CATALOGS: dict[str, NullTranslations] = {locale: _load(locale) for locale in LOCALES}
# The built-in scopes' descriptions (migration 0001 stores them): pages translate a description by its text,
# so an operator's own descriptions show as written.
STANDARD_SCOPE_DESCRIPTIONS = (
    N_("Sign you in with your Consentry account"),
    N_("See your name, username, picture, language and time zone"),
    N_("See your email address"),
    N_("See your phone number"),
    N_("Keep access while you are away (refresh tokens)"),
)
_current: ContextVar[str] = ContextVar("consentry_locale", default=DEFAULT_LOCALE)


def supported(tag: str | None) -> str | None:
    """The supported language a BCP 47 tag names (``id-ID`` → ``id``), if any."""
    if not tag:
        return None
    primary = tag.strip().split("-")[0].split("_")[0].lower()
    return primary if primary in LOCALES else None


def first_of_ui_locales(value: str | None) -> str | None:
    """The first supported language of a space-separated ``ui_locales`` list."""
    for tag in (value or "").split()[:10]:
        if found := supported(tag):
            return found
    return None


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most (RFC 9110 §12.5.4 weights)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")[:20]):
        tag, _, parameters = item.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        found = supported(tag)
        if found and weight > 0:
            ranked.append((-weight, position, found))
    return min(ranked)[2] if ranked else None


def page_locale(request: Request, preference: str | None = None) -> str:
    """The language of the page answering ``request`` (the order is the module's docstring)."""
    return (
        first_of_ui_locales(request.query_params.get("ui_locales"))
        or supported(request.cookies.get(LOCALE_COOKIE))
        or supported(preference)
        or from_accept_language(request.headers.get("accept-language"))
        or DEFAULT_LOCALE
    )


def use_locale(locale: str) -> Token[str]:
    """Make ``locale`` the current language (for the page being rendered)."""
    return _current.set(locale)


def reset_locale(token: Token[str]) -> None:
    _current.reset(token)


def remember_ui_locales(response: Response, ui_locales: str | None, *, secure: bool) -> str | None:
    """An app's ``ui_locales`` lasts the visit: the sign-in and consent pages that follow do not carry it."""
    locale = first_of_ui_locales(ui_locales)
    if locale is not None:
        remember_locale(response, locale, secure=secure, for_visit=True)
    return locale


def remember_locale(response: Response, locale: str, *, secure: bool, for_visit: bool = False) -> None:
    """The browser keeps the language: for the visit (an app's ``ui_locales``) or a year (the person's
    choice)."""
    response.set_cookie(
        LOCALE_COOKIE,
        locale,
        max_age=None if for_visit else 365 * 86400,
        httponly=True,
        samesite="lax",
        path="/",
        secure=secure,
    )


def gettext(message: str) -> str:
    return CATALOGS[_current.get()].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return CATALOGS[_current.get()].ngettext(singular, plural, n)


def lazy_gettext(message: str, **values: Any) -> LazyProxy:
    """Text translated when the page shows it (in the page's language), ``values`` filled in then."""
    return LazyProxy(_translated, message, values, enable_cache=False)


def error_text(error: ConsentryError) -> LazyProxy:
    """An error's description as the page's language says it."""
    return lazy_gettext(error.message, **error.values)


def lazy_gettext_lowered(message: str) -> LazyProxy:
    """A scope's description inside a sentence: translated, its first letter in lower case."""
    return LazyProxy(_lowered, message, enable_cache=False)


def _lowered(message: str) -> str:
    text = gettext(message)
    return text[:1].lower() + text[1:]


def _translated(message: str, values: dict[str, Any]) -> str:
    text = gettext(message)
    return text % values if values else text


def format_day(value: datetime | str) -> str:
    """A date as the page's language writes it (``7 Des 2026``)."""
    return format_date(_as_datetime(value), format="medium", locale=_current.get())


def format_moment(value: datetime | str) -> str:
    """A moment, in UTC, as the page's language writes it."""
    moment = format_datetime(_as_datetime(value), format="medium", tzinfo=UTC, locale=_current.get())
    return f"{moment} UTC"


def _as_datetime(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value
