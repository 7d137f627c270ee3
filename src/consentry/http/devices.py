"""What a person recognises a device by: "Firefox on Android", not its user-agent string (ua-parser)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from babel.support import LazyProxy
from ua_parser import parse

from consentry.http.i18n import lazy_gettext


@lru_cache(maxsize=1024)
def _device(user_agent: str) -> tuple[str | None, str | None]:
    parsed = parse(user_agent[:512])
    browser = parsed.user_agent.family if parsed.user_agent and parsed.user_agent.family != "Other" else None
    system = parsed.os.family if parsed.os and parsed.os.family != "Other" else None
    return browser, system


def device_names(user_agents: Sequence[str | None]) -> list[str | LazyProxy]:
    """Each user agent's browser and system (parsing compiles ua-parser's rules once: call off the loop)."""
    names: list[str | LazyProxy] = []
    for user_agent in user_agents:
        browser, system = _device(user_agent) if user_agent else (None, None)
        if browser and system:
            names.append(lazy_gettext("%(browser)s on %(system)s", browser=browser, system=system))
        elif browser or system:
            names.append(browser or system or "")
        else:
            names.append(lazy_gettext("An unknown device"))
    return names
