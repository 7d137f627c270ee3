"""The HTTP protocol `consentry serve` runs: each response in one send, and HTTP/1.1 unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import uvicorn

from consentry.http.protocol import CoalescingTransport, ResponseCoalescingProtocol
from tests.pg import free_port

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RecordingTransport(asyncio.Transport):
    """The transport under the coalescing one: what was sent, one entry per send."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


async def next_turn() -> None:
    """Let the loop finish its current turn (call_soon callbacks run in order)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_head_and_its_body_written_in_one_step_go_out_in_one_send() -> None:
    under = RecordingTransport()
    transport = CoalescingTransport(under, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert under.sent == []
    transport.write(b"{}")
    assert under.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await next_turn()
    assert len(under.sent) == 1


async def test_an_empty_body_sends_the_head_at_once() -> None:
    under = RecordingTransport()
    transport = CoalescingTransport(under, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 302 Found\r\nlocation: /\r\ncontent-length: 0\r\n\r\n")
    transport.write(b"")
    assert under.sent == [b"HTTP/1.1 302 Found\r\nlocation: /\r\ncontent-length: 0\r\n\r\n"]
    transport.write(b"")
    assert len(under.sent) == 1


async def test_a_write_with_nothing_after_it_goes_out_at_the_end_of_the_turn() -> None:
    under = RecordingTransport()
    transport = CoalescingTransport(under, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 100 Continue\r\n\r\n")
    await next_turn()
    assert under.sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert transport.get_write_buffer_size() == 0


async def test_a_stream_holds_at_most_one_chunk() -> None:
    under = RecordingTransport()
    transport = CoalescingTransport(under, asyncio.get_running_loop())
    for chunk in (b"a", b"b", b"c", b"d", b"e"):
        transport.write(chunk)
    assert under.sent == [b"ab", b"cd"]
    await next_turn()
    assert under.sent == [b"ab", b"cd", b"e"]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    under = RecordingTransport()
    transport = CoalescingTransport(under, asyncio.get_running_loop())
    transport.write(b"bye")
    transport.close()
    assert under.sent == [b"bye"] and under.closed

    under = RecordingTransport()
    transport = CoalescingTransport(under, asyncio.get_running_loop())
    transport.write(b"lost")
    transport.abort()
    await next_turn()
    assert under.sent == [] and under.aborted


async def test_nothing_is_sent_on_a_transport_already_closing() -> None:
    under = RecordingTransport()
    transport = CoalescingTransport(under, asyncio.get_running_loop())
    transport.write(b"late")
    under.closed = True  # the peer went away during the turn
    await next_turn()
    assert under.sent == []


# Over real sockets: uvicorn with this protocol class, as `consentry serve` runs it.


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/echo":  # reads its body, so a client that asked for 100 Continue gets one first
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/slow-stream":  # the head, then the body only once the client has seen the head
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await app_state["head_seen"].wait()
        await send({"type": "http.response.body", "body": b"after", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        headers = [(b"location", b"/elsewhere"), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


app_state: dict[str, asyncio.Event] = {}


@pytest.fixture
async def served() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=ResponseCoalescingProtocol, lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = server.force_exit = True  # not waiting for a request a failed test left hanging
        await task


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"content-length")]
    length = lengths[0] if lengths else 0
    return head, await asyncio.wait_for(reader.readexactly(length), 5)


async def test_responses_on_one_connection_and_100_continue_over_real_sockets(served: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    try:
        for _ in range(3):
            writer.write(b"GET /redirect HTTP/1.1\r\nhost: x\r\n\r\n")
            head, body = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 302") and b"location: /elsewhere" in head and body == b""
        writer.write(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        head, body = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 200") and body == b"hello"
    finally:
        writer.close()


async def test_a_head_whose_body_comes_later_is_not_held_back(served: int) -> None:
    app_state["head_seen"] = asyncio.Event()
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    try:
        writer.write(b"GET /slow-stream HTTP/1.1\r\nhost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # would time out if held for the body
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head
        app_state["head_seen"].set()
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        assert rest == b"5\r\nafter\r\n0\r\n\r\n"
    finally:
        writer.close()
