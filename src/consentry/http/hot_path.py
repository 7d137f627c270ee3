"""The busiest endpoints, dispatched at the application's front door instead of through FastAPI's stack.

Token issuance, introspection, revocation and authorization are called by every client on every sign-in and
API call. Measured on one core, FastAPI's route matching, middleware layers and dependency resolution cost
more than the work of those endpoints. The password sign-in is here too: its event-loop work shares the core
with argon2id, and FastAPI's layers were ~40 % of it. Their routes stay declared on the FastAPI app (OpenAPI,
405 for other methods); for the exact method and path the app hands the request to the edge middleware (size
limit, security headers, metrics, access log) wrapped around this dispatcher, which calls the same endpoint
functions with the same error handling. Nothing else of FastAPI's stack runs for them: this dispatcher is
their last line, so it answers every exception itself (FastAPI's OpenTelemetry hooks do not see them; the
edge's Prometheus metrics and access log do).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from consentry.cpu_threads import CallerGone, caller_gone
from consentry.errors import ConsentryError
from consentry.http.edge import BodyRefused
from consentry.http.errors import refusal_response, unexpected_error_response
from consentry.storage.database import is_unavailable

Endpoint = Callable[[Request], Awaitable[Response]]
Routes = dict[tuple[str, str], tuple[Endpoint, APIRoute]]  # (method, path) → endpoint and its declared route


class HotPath:
    """An ASGI app for the hot routes only: ask ``serves`` first."""

    def __init__(self, routes: Routes, *, hashing: Iterable[tuple[str, str]]) -> None:
        self.routes = routes
        # Routes whose requests wait for a password hash: a client leaving while its hash is queued drops
        # the request (cpu_threads.caller_gone). The others need no watch.
        self.hashing = frozenset(hashing)

    def serves(self, scope: Scope) -> bool:
        return scope["type"] == "http" and (scope["method"], scope["path"]) in self.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope["method"], scope["path"])
        endpoint, route = self.routes[key]
        scope["route"] = route  # the metrics label, as FastAPI's router would set it
        request = Request(scope, receive, send)
        # Hashes are queued once the password, so the whole body, has been read: the watch sees only the end.
        watching = caller_gone.set(functools.partial(_disconnected, receive)) if key in self.hashing else None
        try:
            response = await endpoint(request)
        except (BodyRefused, CallerGone):
            raise  # the edge answers 413, or counts a request nobody waits for
        except ConsentryError as exc:
            response = refusal_response(exc)
        except Exception as exc:
            if is_unavailable(exc):
                raise  # the edge answers 503
            response = unexpected_error_response(request, exc)
        finally:
            if watching is not None:
                caller_gone.reset(watching)
        await response(scope, receive, send)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def hot_routes(routers: Iterable[APIRouter], wanted: Iterable[tuple[str, str]]) -> Routes:
    """The routers' own endpoints for ``wanted`` (method, path); each must take the request alone."""
    declared = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    routes: Routes = {}
    for method, path in wanted:
        route = next(r for r in declared if r.path == path and method in (r.methods or ()))
        if list(inspect.signature(route.endpoint).parameters) != ["request"]:
            raise TypeError(f"{method} {path}: a hot-path endpoint takes only the request")
        routes[(method, path)] = (route.endpoint, route)
    return routes
