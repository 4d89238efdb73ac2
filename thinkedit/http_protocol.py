"""HTTP limits for the servers ThinkEdit runs: a deadline on a request's headers, and bounds on its body.

uvicorn (0.54) times out only idle keep-alive connections, and every byte received cancels that timer, so a
client that sends half a header, or one byte of it every few seconds, holds its connection forever; a few
hundred such clients hold every socket the process may open. uvicorn has no setting for this (its issue #157,
`--timeout-request-start`, is open), so `HeaderTimeoutProtocol` stretches its own `timeout_keep_alive` over the
wait for a request's headers: counted from the connection (or the next request's first byte), closed by uvicorn's
own keep-alive handler. Pass it as uvicorn's `http` setting. `BodyLimits` bounds the body that follows (the web
app's; serve-editor reads its own bodies with its own bounds).
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutProtocol(H11Protocol):
    """Closes a connection whose request headers are not complete `timeout_keep_alive` seconds after they began."""

    header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            self._cancel_deadline()  # the headers are in (or the connection is going): the app has it now
        elif self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _cancel_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None


BODY_WINDOW_S = 30.0  # every 64 KiB of a request body must arrive within this many seconds


class BodyLimits:
    """ASGI middleware that bounds what a request body may cost the web app: its size and its pace.

    Gradio reads a request's JSON body whole (a 150 MB data URL in a queued call is 150 MB of memory before any
    handler runs) and waits for a body as long as bytes keep coming. Here a body larger than `max_bytes` is refused
    with 413 — from its Content-Length before a byte is read, else as soon as it passes the limit — and a body
    whose every `window_bytes` do not arrive within `window_s` seconds (a one-byte drip) with 408. A legitimate
    upload is never near either: the largest upload, sent as a data URL, fits in `max_bytes`, and 64 KiB per 30 s
    is slower than any real connection.
    """

    def __init__(self, app, max_bytes: int, window_s: float | None = None, window_bytes: int = 64 * 1024) -> None:
        self.app, self.max_bytes, self.window_bytes = app, max_bytes, window_bytes
        self.window_s = window_s or BODY_WINDOW_S

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, self._too_large())
            return
        exchange = _Exchange(send)
        await self.app(scope, self._paced(receive, exchange), exchange.send)

    def _paced(self, receive, exchange: _Exchange):
        """`receive` that refuses a body too large or too slow: the refusal is answered here at once, and the app
        is told the client left (what it makes of that, an error of its own, goes nowhere)."""
        loop = asyncio.get_running_loop()
        state = {"total": 0, "window": 0, "deadline": loop.time() + self.window_s, "done": False}

        async def paced_receive():
            if state["done"] or exchange.refused:  # the body is in (what follows waits for a disconnect), or refused
                return await receive() if not exchange.refused else {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), max(0.0, state["deadline"] - loop.time()))
            except TimeoutError:
                return await exchange.refuse(408, f"The request body arrived too slowly (under {self._pace()}).")
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                state["total"] += size
                state["window"] += size
                if state["total"] > self.max_bytes:
                    return await exchange.refuse(413, self._too_large())
                if state["window"] >= self.window_bytes:
                    state["window"], state["deadline"] = 0, loop.time() + self.window_s
                state["done"] = not message.get("more_body", False)
            return message

        return paced_receive

    def _too_large(self) -> str:
        return f"The request is larger than {self.max_bytes / 2**20:.0f} MB, the most this app reads."

    def _pace(self) -> str:
        return f"{self.window_bytes // 1024} KiB per {self.window_s:g} s"


class _Exchange:
    """One request's response side: the app's own messages, unless the body was refused first."""

    def __init__(self, send) -> None:
        self._send, self.started, self.refused = send, False, False

    async def send(self, message) -> None:
        if self.refused:
            return  # the refusal was the answer
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)

    async def refuse(self, status: int, message: str) -> dict:
        if not self.started:
            await _refuse(self._send, status, message)
        self.refused = True
        return {"type": "http.disconnect"}


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
