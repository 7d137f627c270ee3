"""Requests that never finish arriving, and clients that leave (issue: slow requests): a deadline answers 408
and frees the connection; a client that goes away is counted 499, never 500; an over-long chunked body is 413
wherever it is sent. Over real sockets, as `consentry serve` runs."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from consentry.http.protocol import ResponseCoalescingProtocol


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ResponseCoalescingProtocol, "read_timeout", 0.5)


CONTENT_TYPES = {
    "/oauth2/token": "application/x-www-form-urlencoded",
    "/api/v1/auth/register-sync": "application/json",
    "/api/v1/auth/login-password": "application/json",
}


def port_of(served: httpx.AsyncClient) -> int:
    port = served.base_url.port
    assert port is not None
    return port


async def exchange(port: int, sent: bytes, *, then_close: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        await writer.drain()
        if then_close:
            return b""
        return await asyncio.wait_for(reader.read(), 5)  # until the server closes the connection
    finally:
        writer.close()


async def metrics(served: httpx.AsyncClient) -> str:
    return (await served.get("/metrics")).text


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"POST /api/v1/auth/register-sync HTTP/1.1\r\nHost: x\r\n",
        b"POST /api/v1/auth/register-sync HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 100\r\n\r\n{"email"',
    ],
    ids=["nothing", "half-a-head", "half-a-body"],
)
async def test_a_request_that_stops_arriving_gets_408_and_its_connection_ends(
    served: httpx.AsyncClient, sent: bytes
) -> None:
    answer = await exchange(port_of(served), sent)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"error":"request_timeout"' in answer


async def test_a_body_that_stops_is_counted_408_on_its_route(served: httpx.AsyncClient) -> None:
    head = b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n"
    await exchange(port_of(served), head + b"content-length: 50\r\n\r\ngrant_type=")
    assert 'route="/oauth2/token",status="408"' in await metrics(served)


@pytest.mark.parametrize("path", ["/oauth2/token", "/api/v1/auth/register-sync"])
async def test_a_client_that_leaves_mid_body_is_counted_499_and_logs_no_error(
    served: httpx.AsyncClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: {CONTENT_TYPES[path]}\r\ncontent-length: 80\r\n"
    head += "\r\n"
    with caplog.at_level(logging.ERROR):
        await exchange(port_of(served), head.encode() + b'{"a', then_close=True)
        for _ in range(50):
            if f'route="{path}",status="499"' in await metrics(served):
                break
            await asyncio.sleep(0.02)
    text = await metrics(served)
    assert f'route="{path}",status="499"' in text
    assert f'route="{path}",status="500"' not in text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/register-sync", "/api/v1/auth/login-password", "/oauth2/token"]
)
async def test_a_chunked_body_over_the_limit_is_413_everywhere(served: httpx.AsyncClient, path: str) -> None:
    async def chunks() -> object:
        for _ in range(20):
            yield b" " * 65536 + b"\n"

    response = await served.post(path, content=chunks(), headers={"content-type": CONTENT_TYPES[path]})  # type: ignore[arg-type]
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
