"""A webhook receiver on loopback whose behaviour a test scripts: fail, hang, or accept."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.pg import free_port


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    fail_first: int = 0  # answer 500 to this many requests
    hang_first: int = 0  # hold this many requests open for hang_seconds
    hang_seconds: float = 60.0
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                number = len(receiver.deliveries)
                status = 500 if number < receiver.fail_first else 204
                receiver.deliveries.append(
                    Delivery({k.lower(): v for k, v in self.headers.items()}, body, status)
                )
                if number < receiver.hang_first:
                    time.sleep(receiver.hang_seconds)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status < 300]

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.deliveries) >= count, f"{len(self.deliveries)} deliveries, expected {count}"

    def stop(self) -> None:
        self._server.shutdown()
