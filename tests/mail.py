"""Real local receivers for one-time codes: an SMTP server (aiosmtpd) and an HTTP SMS gateway."""

from __future__ import annotations

import json
import re
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.pg import free_port

CODE = re.compile(r"\b(\d{6})\b")


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []  # (recipient, text)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        body = message.get_payload(decode=True) or b""
        for recipient in envelope.rcpt_tos:
            self.messages.append((recipient, body.decode()))
        return "250 OK"


class Mailbox:
    """An SMTP server on a free loopback port; read the codes it received."""

    def __init__(self) -> None:
        self.port = free_port()
        self._handler = _Collect()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        if self._controller.server is not None:
            self._controller.stop()

    def count(self, recipient: str) -> int:
        return sum(1 for to, _ in self._handler.messages if to == recipient)

    def last_code(self, recipient: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for to, text in reversed(self._handler.messages):
                if to == recipient and (match := CODE.search(text)):
                    return match.group(1)
            time.sleep(0.02)
        raise AssertionError(f"no code was mailed to {recipient}")


class SmsGateway:
    """A JSON-over-HTTP SMS gateway on loopback that records what it was asked to send."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.authorization: list[str | None] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                gateway.received.append(json.loads(self.rfile.read(length)))
                gateway.authorization.append(self.headers.get("authorization"))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()

    def last_code(self, phone: str) -> str:
        for message in reversed(self.received):
            if message["to"] == phone and (match := CODE.search(message["message"])):
                return match.group(1)
        raise AssertionError(f"no code was texted to {phone}")
