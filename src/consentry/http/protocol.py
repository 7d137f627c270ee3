"""uvicorn's httptools HTTP/1.1 protocol, with each response going out in one send.

uvicorn writes a response's status line and headers, then its body, as two writes, and uvloop sends each at
once: every response cost two ``send`` system calls and, on loopback, two passes through the peer's TCP
receive path. Here a write is held until the next one, which goes out joined with it, or until the end of
the event loop's turn, whichever comes first: the head waits for the body that follows it in the same step,
and nothing is held longer than that step (a ``100 Continue`` still goes out before the body is awaited).
At most one write is held, so the transport's flow control sees a streamed body as it comes.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport(asyncio.Transport):
    """A transport that sends each write together with the next one made in the same turn of the loop."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held + data)  # an empty write (uvicorn's empty body) sends the head too
        elif data:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send the held write, if any (called at the end of the turn in which it was made)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # what was written belongs to the protocol handing over
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


READ_TIMED_OUT = "consentry.read_timed_out"  # set in a request's scope when its body stopped coming
_TIMEOUT_BODY = (
    b'{"error":"request_timeout","error_description":"the request did not arrive in time; send it again"}'
)
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class ResponseCoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`, with a deadline for reading each
    request: uvicorn waits for a head or a body that never finishes for as long as the client keeps the
    connection, so a few idle sockets per client would hold connections (and requests) open forever."""

    read_timeout = 30.0  # seconds for a request's head and body, from its first byte (or the connection's)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Flow control keeps the real transport (it pauses reading on it); responses are written through this.
        self.transport = CoalescingTransport(transport, self.loop)
        self._read_deadline: asyncio.TimerHandle | None = self.loop.call_later(
            self.read_timeout, self._read_timed_out
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._stop_read_deadline()
        self._read_deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def on_message_complete(self) -> None:
        self._stop_read_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_read_deadline()
        super().connection_lost(exc)

    def _stop_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        """408 and close; an application waiting for the body then sees the client leave."""
        self._read_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cast(dict[str, Any], cycle.scope)[READ_TIMED_OUT] = True
            if cycle.response_started:  # a response under way cannot become a 408: end the connection
                self.transport.close()
                return
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()
