"""Address helpers shared by settings and registration rules. Pure."""

from __future__ import annotations

import ipaddress
import re
import socket


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


def is_odd_ipv4(host: str) -> bool:
    """A host the C resolver reads as an IPv4 address although it is not dotted decimal: ``2130706433``,
    ``0x7f.1``, ``0177.0.0.1``. Such forms hide where a URL really points; nothing legitimate uses them."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return True
    return False


_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def has_control_or_space(text: str) -> bool:
    """CR, LF and every other control character or white space: never part of a URL we store or send."""
    return _CONTROL_OR_SPACE.search(text) is not None


def is_private_address(address: str) -> bool:
    """An address a name resolved to, checked before connecting to it."""
    try:
        return not ipaddress.ip_address(address).is_global
    except ValueError:
        return True
