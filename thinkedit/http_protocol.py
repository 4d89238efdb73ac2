"""uvicorn's HTTP/1.1 protocol with a deadline on a request's headers, against slow-loris clients.

uvicorn (0.54) times out only idle keep-alive connections, and every byte received cancels that timer, so a
client that sends half a header, or one byte of it every few seconds, holds its connection forever; a few
hundred such clients hold every socket the process may open. uvicorn has no setting for this (its issue #157,
`--timeout-request-start`, is open), so this protocol stretches its own `timeout_keep_alive` over the wait
for a request's headers: counted from the connection (or the next request's first byte), closed by uvicorn's
own keep-alive handler. Pass it as uvicorn's `http` setting.
"""

from __future__ import annotations

import asyncio

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
