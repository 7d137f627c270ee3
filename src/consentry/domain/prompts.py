"""The ``prompt`` parameter (OIDC Core §3.1.2.1)."""

from __future__ import annotations

KNOWN_PROMPTS: frozenset[str] = frozenset({"none", "login", "consent", "select_account"})


class InvalidPrompt(ValueError):
    pass


def parse_prompt(value: str | None) -> frozenset[str]:
    """Space-delimited prompt values; ``none`` must stand alone."""
    if not value:
        return frozenset()
    prompts = frozenset(token for token in value.split(" ") if token)
    unknown = prompts - KNOWN_PROMPTS
    if unknown:
        raise InvalidPrompt(f"unsupported prompt value: {' '.join(sorted(unknown))}")
    if "none" in prompts and len(prompts) > 1:
        raise InvalidPrompt("prompt=none cannot be combined with other values")
    return prompts
