"""Address helpers shared by settings and registration rules. Pure."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and any loopback IP literal (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_private_host(host: str) -> bool:
    """Loopback names, and IP literals that are not globally routable (private, link-local, reserved...)."""
    if is_loopback_host(host):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower().endswith((".localhost", ".local", ".internal"))
    return not address.is_global


def is_private_address(address: str) -> bool:
    """An address a name resolved to, checked before connecting to it."""
    try:
        return not ipaddress.ip_address(address).is_global
    except ValueError:
        return True
