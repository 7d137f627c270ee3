"""What every request and response passes through: a body size limit, security headers, metrics, access logs.

Written as one pure ASGI middleware (not BaseHTTPMiddleware) so the hot path pays for one wrapper only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.cpu_threads import CallerGone
from consentry.http.protocol import READ_TIMED_OUT
from consentry.storage.database import is_unavailable

log = logging.getLogger("consentry.access")

SITE_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", SITE_CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
CLIENT_CLOSED_REQUEST = 499  # nginx's status for the access log and metrics; never sent


class RequestMetrics:
    """Prometheus request counts and latencies by route template (never by raw path: bounded cardinality)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "consentry_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "consentry_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        # The labelled children, kept: labels() takes a lock and builds a key on every call. Bounded like the
        # labels themselves (the HTTP parser knows a fixed set of methods; routes are templates).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class BodyRefused(HTTPException):
    """Raised from ``receive`` while a request's body is read. An HTTPException, because FastAPI turns any
    other exception met while reading a body into a 400; the error handlers answer it with its status, and
    the edge does for the hot path, which lets it through."""


class BodyTooLarge(BodyRefused):
    """A body without a (truthful) length grew past the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body exceeds {limit} bytes")


class ClientLeft(BodyRefused):
    """The client went away before its body had arrived (or its body stopped coming: protocol.py's deadline).
    Nothing is sent; the metrics and the access log count 499, or 408 for the deadline."""

    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED_REQUEST, "the client closed the request")


class DatabaseOutages:
    """Whether the database was last seen down: logged once when it goes, once when it is back (not once per
    request), and known to ``/readyz``."""

    def __init__(self) -> None:
        self.down = False

    def seen_down(self, error: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("the database is unavailable; answering 503 until it is back: %r", error)

    def seen_up(self) -> None:
        if self.down:
            self.down = False
            log.warning("the database is reachable again")


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: RequestMetrics,
        outages: DatabaseOutages,
        max_body_bytes: int,
        hsts: bool,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.outages = outages
        self.max_body_bytes = max_body_bytes
        self.extra_headers = (*SECURITY_HEADERS, HSTS) if hsts else SECURITY_HEADERS
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        limit = self.max_body_bytes

        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await _too_large(send, limit)
                    self._observe(scope, 413, started)
                    return
                break

        received = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            elif not body_done:  # http.disconnect before the whole body
                raise ClientLeft
            return message

        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in self.extra_headers if item[0] not in present)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if not response_started:
                if not body_done:
                    await _drain(receive)
                await _too_large(send, limit)
            status = 413
        except (CallerGone, ClientLeft):
            status = CLIENT_CLOSED_REQUEST  # nothing to send: the connection has gone
        except Exception as error:
            if not is_unavailable(error):
                raise
            self.outages.seen_down(error)
            if not response_started:
                await _unavailable(send)
            status = 503
        finally:
            if scope.get(READ_TIMED_OUT):
                status = 408
            self._observe(scope, status, started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.observe(method, template, status, elapsed)
        if self.access_log and log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %d",
                method,
                scope["path"],
                status,
                extra={"route": template, "status": status, "duration_ms": round(elapsed * 1000, 2)},
            )


DRAIN_BYTES = 4 * 1024 * 1024
DRAIN_SECONDS = 2.0


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of a refused body, within bounds, before answering: most HTTP/1.1 clients
    send the whole request before they read the answer, and a connection closed on a body still arriving is
    reset, so they would see a broken connection instead of the 413 (a lingering close, as web servers do)."""
    drained = 0
    with contextlib.suppress(TimeoutError, ClientLeft):
        async with asyncio.timeout(DRAIN_SECONDS):
            while drained < DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def _too_large(send: Send, limit: int) -> None:
    await _error(send, 413, "request_too_large", f"the body exceeds {limit} bytes")


async def _unavailable(send: Send) -> None:
    description = "the database is not answering; try again in a moment"
    await _error(send, 503, "temporarily_unavailable", description, (b"retry-after", b"1"))


async def _error(
    send: Send, status: int, error: str, description: str, *headers: tuple[bytes, bytes]
) -> None:
    body = orjson.dumps({"error": error, "error_description": description})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
