"""A loopback OAuth 2.0 provider that behaves as GitHub's endpoints do (authorize, access_token, /user,
/user/emails), for tests of upstream sign-in with a plain OAuth 2.0 provider.

The person who "signs in" at the provider is whoever the test names in ``next_person``; the authorize endpoint
answers at once with a redirect carrying a code, as GitHub does for someone signed in who approved the app
before. The token endpoint checks the client's credentials, the redirect URI and PKCE (S256), and a code
works once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.pg import free_port


@dataclass
class GitHubPerson:
    id: int
    login: str
    email: str | None  # the public email of /user (GitHub leaves it null when the person keeps it private)
    emails: list[dict[str, Any]] = field(default_factory=list)  # /user/emails
    name: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)  # more of /user's fields


class FakeGitHub:
    def __init__(self, client_id: str = "gh-client", client_secret: str = "gh-secret") -> None:
        self.port = free_port()
        self.client_id, self.client_secret = client_id, client_secret
        self.next_person: GitHubPerson | None = None
        self.codes: dict[str, tuple[GitHubPerson, str, str]] = {}  # code -> person, redirect_uri, challenge
        self.tokens: dict[str, GitHubPerson] = {}
        self.token_requests = 0
        self.expiring = False  # as a GitHub App: tokens that expire in 8 hours, with a refresh token
        self.refresh_tokens: dict[str, GitHubPerson] = {}
        github = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/login/oauth/authorize":
                    self._authorize(query)
                elif parts.path == "/user":
                    person = self._bearer()
                    if person is not None:
                        self._json(200, {"id": person.id, "login": person.login, "email": person.email,
                                         "name": person.name, **person.profile})  # fmt: skip
                elif parts.path == "/user/emails":
                    person = self._bearer()
                    if person is not None:
                        self._json(200, person.emails)
                else:
                    self._json(404, {"message": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/login/oauth/access_token":
                    self._json(404, {"message": "Not Found"})
                    return
                github.token_requests += 1
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
                if (client_id, client_secret) != (github.client_id, github.client_secret):
                    self._json(200, {"error": "incorrect_client_credentials"})  # GitHub answers 200
                    return
                if form.get("grant_type") == "refresh_token":
                    person = github.refresh_tokens.pop(form.get("refresh_token", ""), None)
                    if person is None:
                        self._json(200, {"error": "bad_refresh_token"})
                    else:
                        self._json(200, github.issue(person))
                    return
                issued = github.codes.pop(form.get("code", ""), None)
                if issued is None or issued[1] != form.get("redirect_uri"):
                    self._json(200, {"error": "bad_verification_code"})
                    return
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                if challenge.decode() != issued[2]:
                    self._json(200, {"error": "bad_verification_code", "error_description": "PKCE"})
                    return
                self._json(200, github.issue(issued[0]))

            def _authorize(self, query: dict[str, str]) -> None:
                person = github.next_person
                if query.get("client_id") != github.client_id or person is None:
                    self._json(400, {"message": "unknown client or nobody signed in"})
                    return
                if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                    self._json(400, {"message": "PKCE S256 expected"})
                    return
                code = secrets.token_urlsafe(16)
                github.codes[code] = (person, query["redirect_uri"], query["code_challenge"])
                target = (
                    query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _bearer(self) -> GitHubPerson | None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ").removeprefix("token ")
                person = github.tokens.get(token)
                if person is None:
                    self._json(401, {"message": "Bad credentials"})
                return person

            def _json(self, status: int, body: object) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def issue(self, person: GitHubPerson) -> dict[str, Any]:
        token = "gho_" + secrets.token_urlsafe(24)
        self.tokens[token] = person
        issued: dict[str, Any] = {
            "access_token": token,
            "token_type": "bearer",
            "scope": "read:user,user:email",
        }
        if self.expiring:
            refresh = "ghr_" + secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = person
            issued |= {"expires_in": 28800, "refresh_token": refresh, "refresh_token_expires_in": 15897600}
        return issued

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
