"""Fetching documents that clients name (a sector identifier, later client metadata): safe against SSRF.

A URL a client registers may point anywhere, our own network included. The host is resolved once, every
address it resolves to is checked, and the connection goes to the checked address (the name still sent as
``Host`` and in TLS's SNI, so certificates are verified against it): a name that resolves elsewhere a moment
later (DNS rebinding) cannot redirect the fetch. Redirects are not followed; the answer's size and the time it
takes are bounded.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from consentry.domain.net import is_private_address

MAX_DOCUMENT_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0


class FetchRefused(Exception):
    """The document could not be fetched; the message says why, in words fit for the client."""


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    headers: httpx.Headers
    body: bytes


async def fetch_document(
    url: str,
    *,
    allow_private: bool,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    within: float = FETCH_TIMEOUT_SECONDS,
) -> Fetched:
    """GET ``url`` (http or https) within ``within`` seconds in all; refuses private and loopback addresses
    unless ``allow_private``."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise FetchRefused("not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(within):
            address = await _checked_address(host, port, allow_private=allow_private)
            return await _get(url, parts.scheme, host, address, port, max_bytes)
    except TimeoutError:
        raise FetchRefused(f"{host} did not answer within {within:g} s") from None


async def _checked_address(host: str, port: int, *, allow_private: bool) -> str:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, proto=6)
    except OSError as exc:
        raise FetchRefused(f"cannot resolve {host}: {exc.strerror or exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchRefused(f"cannot resolve {host}")
    if not allow_private and any(is_private_address(address) for address in addresses):
        raise FetchRefused(f"{host} resolves to a private or loopback address")
    return addresses[0]


async def _get(url: str, scheme: str, host: str, address: str, port: int, max_bytes: int) -> Fetched:
    parts = urlsplit(url)
    literal = f"[{address}]" if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address) else address
    pinned = urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1], "Accept": "application/json"}
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    try:
        async with (
            httpx.AsyncClient(follow_redirects=False, timeout=None) as client,  # noqa: S113 (bounded above)
            client.stream("GET", pinned, headers=headers, extensions=extensions) as response,
        ):
            if response.is_redirect:
                raise FetchRefused(f"{host} answered with a redirect, which is not followed")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchRefused(f"the document is larger than {max_bytes // 1024} KiB")
            return Fetched(response.status_code, response.headers, bytes(body))
    except httpx.HTTPError as exc:
        raise FetchRefused(f"cannot fetch it from {host}: {type(exc).__name__}") from None
