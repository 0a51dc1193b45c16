"""A ``websockets``-style server on Volley: ``handler(ws)`` per connection,
``async for message in ws``, ``await ws.send(…)``, ``await ws.close()``.

A server written for ``websockets.asyncio.server`` moves over by changing
its import::

    from volley.asyncio import serve          # was: from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()

``send`` waits while the connection is backpressured (until the engine's
``drain``); incoming messages wait in a queue of ``max_queue`` (reading
stops while it is full). The protocol itself runs in the engine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import enum
import errno
import hashlib
import hmac
import http
import inspect
import logging
import os
import re
import socket as _socket
import stat
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Union

from ._server import Accept, Headers, Request, Response, Server, ServerWebSocket, serve as _serve

log = logging.getLogger("volley")

Data = Union[str, bytes]

__all__ = ["ConcurrencyError", "ConnectionClosed", "ConnectionClosedError", "ConnectionClosedOK", "Handshake",
           "NegotiationError", "ServerConnection", "State", "TLS", "WebSocketServer", "basic_auth", "broadcast", "serve",
           "unix_serve"]

# The exceptions: websockets' own classes when it is installed (15 and 16
# are what this is tested with; 14 brought ConcurrencyError and the
# (rcvd, sent) constructor), so `except websockets.exceptions.X` catches
# what volley raises; equivalents with the same names and attributes when
# it is not.
try:
    from websockets.exceptions import (
        ConcurrencyError,
        ConnectionClosed,
        ConnectionClosedError,
        ConnectionClosedOK,
    )
    from websockets.datastructures import Headers as HandshakeHeaders
    from websockets.exceptions import NegotiationError
    from websockets.frames import Close
    from websockets.http11 import Response as HandshakeResponse
    from websockets.protocol import State
except ImportError:  # pragma: no cover - exercised by the test without websockets

    class HandshakeHeaders:  # type: ignore[no-redef]
        """Response headers as websockets has them: case-insensitive,
        ``headers[name] = value`` adds one, repeats kept in order."""

        def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
            self._items = list(items)

        def __getitem__(self, name: str) -> str:
            for k, v in self._items:
                if k.lower() == name.lower():
                    return v
            raise KeyError(name)

        def __setitem__(self, name: str, value: str) -> None:
            self._items.append((name, value))

        def __delitem__(self, name: str) -> None:
            if name not in self:
                raise KeyError(name)
            self._items = [(k, v) for k, v in self._items if k.lower() != name.lower()]

        def __contains__(self, name: object) -> bool:
            return isinstance(name, str) and any(k.lower() == name.lower() for k, _ in self._items)

        def get(self, name: str, default: Any = None) -> Any:
            return self[name] if name in self else default

        def get_all(self, name: str) -> list[str]:
            return [v for k, v in self._items if k.lower() == name.lower()]

        def raw_items(self) -> list[tuple[str, str]]:
            return list(self._items)

    class HandshakeResponse:  # type: ignore[no-redef]
        """An HTTP response as websockets' ``Response``."""

        def __init__(self, status_code: int, reason_phrase: str, headers: HandshakeHeaders, body: bytes = b"") -> None:
            self.status_code = status_code
            self.reason_phrase = reason_phrase
            self.headers = headers
            self.body = body

    class NegotiationError(Exception):  # type: ignore[no-redef]
        """Raised by ``select_subprotocol`` to refuse the handshake (400)."""

    class Close:  # type: ignore[no-redef]
        """A close frame's code and reason."""

        def __init__(self, code: int, reason: str) -> None:
            self.code = code
            self.reason = reason

        def __str__(self) -> str:
            return f"{self.code} ({self.reason})" if self.reason else str(self.code)

    class ConnectionClosed(Exception):  # type: ignore[no-redef]
        """The connection is closed: ``rcvd`` and ``sent`` are the close
        frames received and sent (``None`` when there was none)."""

        def __init__(self, rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None = None) -> None:
            super().__init__()
            self.rcvd = rcvd
            self.sent = sent
            self.rcvd_then_sent = rcvd_then_sent

        def __str__(self) -> str:
            if self.rcvd is None:
                return "no close frame received or sent" if self.sent is None else f"sent {self.sent}"
            return f"received {self.rcvd}; then sent {self.sent}" if self.sent else f"received {self.rcvd}"

        @property
        def code(self) -> int:
            return 1006 if self.rcvd is None else self.rcvd.code

        @property
        def reason(self) -> str:
            return "" if self.rcvd is None else self.rcvd.reason

    class ConnectionClosedOK(ConnectionClosed):  # type: ignore[no-redef]
        """Closed with 1000, 1001 or no code, both ways."""

    class ConnectionClosedError(ConnectionClosed):  # type: ignore[no-redef]
        """Closed with another code, or without a closing handshake."""

    class ConcurrencyError(RuntimeError):  # type: ignore[no-redef]
        """Two coroutines did what only one at a time may (two ``recv``)."""

    class State(enum.IntEnum):  # type: ignore[no-redef]
        CONNECTING = 0
        OPEN = 1
        CLOSING = 2
        CLOSED = 3


def _closed(code: int, reason: str) -> ConnectionClosed:
    """The exception for a connection closed with ``code``: 1006 means no
    close frame either way; otherwise the engine answered the peer's frame
    (or the peer ours) with the same code."""
    if code == 1006:
        return ConnectionClosedError(None, None, None)
    frame = Close(code, reason)
    cls = ConnectionClosedOK if code in (1000, 1001, 1005) else ConnectionClosedError
    return cls(frame, frame, True)


class WsRequest(Request):
    """The handshake request as ``websockets`` shows it: ``path`` keeps the
    query string (``/room?user=ann``); ``query`` alone is there too."""

    @classmethod
    def of(cls, r: Request) -> WsRequest:
        w = cls.__new__(cls)
        w.__dict__.update(r.__dict__)
        w.path = r.path + (f"?{r.query}" if r.query else "")
        return w

    @property
    def url(self) -> str:
        host = self.headers.get("host", "localhost")
        return f"{'https' if self.secure else 'http'}://{host}{self.path}"


def _queue_bounds(max_queue: int | None | tuple[int | None, int | None]) -> tuple[int | None, int]:
    """websockets' ``max_queue``: a high-water mark (``None``: unbounded),
    or ``(high, low)``; reading resumes below ``low`` (default high // 4)."""
    if isinstance(max_queue, tuple):
        high, low = max_queue
    else:
        high, low = max_queue, None
    if high is not None and high < 1:
        raise ValueError("max_queue must be at least 1 (or None)")
    if low is None:
        low = 0 if high is None else high // 4
    return high, low


class ServerConnection:
    """One client, as ``websockets.asyncio.server.ServerConnection`` has it."""

    def __init__(
        self,
        ws: ServerWebSocket[ServerConnection],
        request: WsRequest,
        max_queue: int | None | tuple[int | None, int | None],
        local_address: tuple[str, int] | str,
    ) -> None:
        self._ws = ws
        self.request = request
        self.response: Any = None
        self.id = uuid.uuid4()
        self.local_address = local_address
        self.latency = 0.0
        self._high, self._low = _queue_bounds(max_queue)
        self._inbox: deque[Data] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._receiving = False
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._closed_fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = False
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.subprotocol: str | None = None
        self.logger: LoggerLike = log

    # ---- what websockets offers ------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int] | str | None:
        # On a Unix socket, asyncio's peername: "" (the peer is unnamed).
        return "" if isinstance(self.local_address, str) else self.request.remote_address

    @property
    def request_headers(self) -> Headers:
        return self.request.headers

    @property
    def state(self) -> State:
        if self.close_code is not None:
            return State.CLOSED
        return State.CLOSING if self._closing else State.OPEN

    async def recv(self, decode: bool | None = None) -> Data:
        """The next message (``str`` for text, ``bytes`` for binary; with
        ``decode=False`` text comes as bytes, with ``decode=True`` binary
        as str); ``ConnectionClosed`` once the connection is closed, and
        ``ConcurrencyError`` while another coroutine is receiving."""
        if self._receiving:
            raise ConcurrencyError("cannot call recv while another coroutine is already running recv or recv_streaming")
        self._receiving = True
        try:
            while not self._inbox:
                if self.close_code is not None:
                    raise _closed(self.close_code, self.close_reason or "")
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
            m = self._inbox.popleft()
        finally:
            self._receiving = False
        if self._paused and len(self._inbox) <= self._low:
            self._paused = False
            self._ws.resume_reading()
        if decode is False and isinstance(m, str):
            return m.encode()
        if decode is True and isinstance(m, bytes):
            return m.decode()
        return m

    async def recv_streaming(self, decode: bool | None = None) -> AsyncIterator[Data]:
        """The next message as fragments: the engine reassembles messages,
        so it is one fragment, the whole message."""
        yield await self.recv(decode)

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    async def send(
        self,
        message: Data | Iterable[Data] | AsyncIterable[Data],
        text: bool | None = None,
    ) -> None:
        """Send a message; waits while the connection is backpressured.
        An iterable (or async iterable) of str or of bytes is one message
        (websockets sends it fragmented; the engine frames it whole, which
        a peer receives the same). ``text=True`` sends bytes as a text
        frame (they must be UTF-8), ``text=False`` a str as binary. A
        mapping raises ``TypeError``, as in websockets."""
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            data: Data = message if isinstance(message, (str, bytes)) else bytes(message)
        elif isinstance(message, Mapping):
            raise TypeError("data is a dict-like object")
        elif isinstance(message, AsyncIterable):
            data = _join([part async for part in message])
        elif isinstance(message, Iterable):
            data = _join(list(message))
        else:
            raise TypeError("data must be str, bytes, iterable, or async iterable")
        if text is True and isinstance(data, bytes):
            data = data.decode()
        elif text is False and isinstance(data, str):
            data = data.encode()
        await self._send(data)

    async def _send(self, data: Data) -> None:
        while True:
            if self.close_code is not None:
                raise _closed(self.close_code, self.close_reason or "")
            while self._drained is not None:
                await self._drained
            r = self._ws.send(data)
            if r == 0 and self._ws.ready_state == 1 and self.close_code is None:
                # Dropped on an open connection (its worker's mailbox, or
                # its backlog, was full): a drain follows (Bun's contract).
                # Wait for it and send again; a close wakes us too.
                self._drained = asyncio.get_running_loop().create_future()
                await self._drained
                continue
            if r == 0:
                if self.close_code is None:
                    await self.wait_closed()
                raise _closed(self.close_code or 1006, self.close_reason or "")
            if r == -1:
                self._drained = asyncio.get_running_loop().create_future()
                await self._drained
            return

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake and wait for it to finish."""
        if self.close_code is None and not self._closing:
            self._closing = True
            self._ws.close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed_fut)

    async def ping(self, data: Data | None = None) -> Awaitable[float]:
        """Send a ping; the returned future resolves with the round-trip
        time in seconds when its pong arrives (and never without one).
        ``latency`` keeps the last. A closed connection raises
        ``ConnectionClosed``; a ping whose data is still awaited raises
        ``ConcurrencyError``."""
        if self.close_code is not None or self._closing:
            raise _closed(self.close_code or 1000, self.close_reason or "")
        if data is None:
            payload = os.urandom(4)
            while payload in self._pings:
                payload = os.urandom(4)
        else:
            payload = data.encode() if isinstance(data, str) else bytes(data)
            if payload in self._pings:
                raise ConcurrencyError("already waiting for a pong with the same data")
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pings[payload] = (waiter, time.monotonic())
        self._ws.ping(payload)
        return waiter

    async def pong(self, data: Data = b"") -> None:
        """Send an unsolicited pong."""
        if self.close_code is not None or self._closing:
            raise _closed(self.close_code or 1000, self.close_reason or "")
        self._ws.pong(data)

    async def __aenter__(self) -> ServerConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- events from the server -------------------------------------------

    def _message(self, m: Data) -> None:
        self._inbox.append(m)
        if not self._paused and self._high is not None and len(self._inbox) >= self._high:
            self._paused = True
            self._ws.pause_reading()
        self._wake()

    def _pong(self, data: bytes) -> None:
        """A pong answers the ping with its data and every earlier one."""
        if data not in self._pings:
            return
        now = time.monotonic()
        for payload in list(self._pings):
            waiter, sent = self._pings.pop(payload)
            if not waiter.done():
                waiter.set_result(now - sent)
            if payload == data:
                self.latency = now - sent
                break

    def _drain(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def _close(self, code: int, reason: str) -> None:
        self.close_code = code
        self.close_reason = reason
        self._wake()
        self._drain()
        if not self._closed_fut.done():
            self._closed_fut.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
        self._waiter = None

    async def _keepalive(self, interval: float, timeout: float | None) -> None:
        """websockets' keepalive: a ping every ``interval`` seconds; no pong
        within ``timeout`` closes the connection (1011 "keepalive ping
        timeout"), so a dead peer is dropped at about interval + timeout."""
        try:
            while self.close_code is None:
                await asyncio.sleep(interval)
                if self.close_code is not None or self._closing:
                    return
                waiter = await self.ping()
                if timeout is None:
                    continue
                try:
                    await asyncio.wait_for(asyncio.shield(waiter), timeout)
                except asyncio.TimeoutError:
                    if self.close_code is None:
                        log.info("volley: keepalive ping timeout, closing %s", self.id)
                        self._closing = True
                        self._ws.close(1011, "keepalive ping timeout")
                    return
        except ConnectionClosed:
            return


def _join(parts: list[Any]) -> Data:
    """The fragments of one message: all str or all bytes-like."""
    if not parts:
        raise TypeError("data iterable is empty")
    if all(isinstance(p, str) for p in parts):
        return "".join(parts)
    if all(isinstance(p, (bytes, bytearray, memoryview)) for p in parts):
        return b"".join(bytes(p) for p in parts)
    raise TypeError("data iterable must contain only str or only bytes-like objects")


def broadcast(
    connections: Iterable[ServerConnection], message: Data | bytearray | memoryview, raise_exceptions: bool = False
) -> None:
    """Send ``message`` to every open connection without waiting (as in
    ``websockets.broadcast``): one backpressured client slows nobody down.
    A connection that could not take it is skipped (logged); with
    ``raise_exceptions`` the failures are raised together as an
    ``ExceptionGroup`` at the end."""
    if not isinstance(message, (str, bytes, bytearray, memoryview)):
        raise TypeError("data must be str or bytes")
    data: Data = message if isinstance(message, (str, bytes)) else bytes(message)
    errors: list[Exception] = []
    for conn in connections:
        if conn.close_code is not None or conn._closing:
            continue
        if conn._ws.send(data) == 0:
            e = ConcurrencyError(f"skipped broadcast: connection {conn.id} is backpressured past its limit")
            if raise_exceptions:
                errors.append(e)
            else:
                log.warning("volley: %s", e)
    if errors:
        if sys.version_info >= (3, 11):
            raise ExceptionGroup("skipped broadcast", errors)  # novermin (guarded: 3.11+)
        raise errors[0]


class _BoundSocket:
    """What ``server.sockets`` lists: the listener's address, for the idiom
    ``server.sockets[0].getsockname()[1]`` (the port); a Unix socket's
    path, family ``AF_UNIX``, as asyncio lists it."""

    def __init__(self, host: str, port: int, unix: str | None = None) -> None:
        self._addr: tuple[str, int] | str = unix if unix is not None else (host, port)
        self.family = (_socket.AF_UNIX if unix is not None
                       else _socket.AF_INET6 if ":" in host else _socket.AF_INET)

    def getsockname(self) -> Any:
        return self._addr


class WebSocketServer:
    """What ``serve`` gives: the running server, as an async context manager."""

    def __init__(self, factory: Callable[[WebSocketServer], Awaitable[Server]]) -> None:
        self._factory = factory
        self._server: Server | None = None
        self._closed = asyncio.Event()
        self._closing = False
        self.connections: set[ServerConnection] = set()
        self._host = ""
        self._unix: str | None = None
        self._logger: LoggerLike = log

    async def __aenter__(self) -> WebSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.start().__await__()

    async def start(self) -> WebSocketServer:
        if self._server is None:
            self._server = await self._factory(self)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def sockets(self) -> list[_BoundSocket]:
        if self._server is None or self._closing:
            return []
        return [_BoundSocket(self._host, self._server.port, self._unix)]

    @property
    def server(self) -> Server:
        assert self._server is not None
        return self._server

    def close(self, close_connections: bool = True) -> None:
        """Stop accepting; with ``close_connections`` close every connection
        with 1001 and no reason (as websockets does), else let them end by
        themselves. ``wait_closed`` waits for the end."""
        if self._server is None or self._closing:
            return
        self._closing = True
        self._logger.info("server closing")
        if close_connections:
            for conn in list(self.connections):
                if conn.close_code is None and not conn._closing:
                    conn._closing = True
                    conn._ws.close(1001, "")
        task = asyncio.get_running_loop().create_task(self._server.stop(close_active_connections=close_connections))
        task.add_done_callback(lambda _: self._ended())

    def _ended(self) -> None:
        # asyncio removes a Unix server's socket file when it closes from
        # Python 3.13 on (create_unix_server's cleanup_socket), and leaves
        # it before: websockets' unix_serve does what the running Python
        # does, and so does this.
        if self._unix is not None and sys.version_info >= (3, 13):
            try:
                if stat.S_ISSOCK(os.stat(self._unix).st_mode):
                    os.remove(self._unix)
            except OSError:
                pass
        self._logger.info("server closed")
        self._closed.set()

    @property
    def logger(self) -> LoggerLike:
        return self._logger

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._closed.wait()

    def is_serving(self) -> bool:
        return self._server is not None and not self._closing

    async def serve_forever(self) -> None:
        """Serve until cancelled (then close and wait), or until ``close()``,
        which ends it with ``CancelledError`` as ``asyncio.Server``'s (and
        so websockets') does."""
        try:
            await self._closed.wait()
        except asyncio.CancelledError:
            self.close()
            await self.wait_closed()
            raise
        raise asyncio.CancelledError()


class TLS:
    """Serve ``wss://`` with Volley's own TLS (rustls): ``ssl=TLS(certfile,
    keyfile)``. An ``ssl.SSLContext`` cannot be read back (its certificate,
    key and client-certificate checks are hidden), so ``serve`` refuses one
    rather than copy part of it and fail open."""

    def __init__(self, certfile: str, keyfile: str) -> None:
        self.certfile = certfile
        self.keyfile = keyfile


class Handshake:
    """The ``connection`` argument of ``process_request``,
    ``select_subprotocol`` and ``process_response``: the handshake under way
    (``websockets``' ``ServerConnection`` before it opens). Attributes set
    on it (``basic_auth`` sets ``username``) stay on the open connection."""

    def __init__(self, request: WsRequest, logger: LoggerLike) -> None:
        self.request = request
        self.remote_address: tuple[str, int] | str | None = request.remote_address
        self.id = uuid.uuid4()
        self.logger = logger
        self.response: Any = None
        self.subprotocol: str | None = None

    def respond(self, status: int, text: str) -> HandshakeResponse:
        """A plain-text response that refuses the upgrade when returned (as
        websockets': ``response.headers[...] = ...`` adds to it)."""
        return _plain(status, text)


LoggerLike = Union[logging.Logger, logging.LoggerAdapter]  # type: ignore[type-arg]

# What the engine writes itself on a 101 (and so what process_response's
# changes to them cannot reach): everything else it sees added is sent.
_ENGINE_101 = {"upgrade", "connection", "sec-websocket-accept", "sec-websocket-extensions", "sec-websocket-protocol"}

# What websockets sends as ``Server`` by default, with this library's name.
SERVER = f"Python/{sys.version_info.major}.{sys.version_info.minor} volley"


def _plain(status: int, text: str) -> HandshakeResponse:
    st = http.HTTPStatus(status)
    body = text.encode()
    headers = HandshakeHeaders()
    headers["Date"] = email.utils.formatdate(usegmt=True)
    headers["Connection"] = "close"
    headers["Content-Length"] = str(len(body))
    headers["Content-Type"] = "text/plain; charset=utf-8"
    return HandshakeResponse(st.value, st.phrase, headers, body)


def _as_handshake_response(r: Any) -> Any:
    """A Volley ``Response`` as websockets' (what ``process_response``
    sees); a websockets one as it is."""
    if isinstance(r, Response):
        st = http.HTTPStatus(r.status)
        return HandshakeResponse(st.value, st.phrase, HandshakeHeaders(list(r.headers)), bytes(r.body))
    return r


def _as_response(r: Any, logger: LoggerLike) -> Response:
    """What ``process_request`` or ``process_response`` returned, as a
    refusal: a Volley ``Response``, or a ``websockets`` one
    (``status_code``, ``headers``, ``body``). Anything else is a programming
    error, answered with 500 (never an accepted upgrade)."""
    if isinstance(r, Response):
        return r
    status = getattr(r, "status_code", None)
    if isinstance(status, int):
        headers: Any = getattr(r, "headers", None)
        if headers is None:
            items: list[tuple[str, str]] = []
        elif hasattr(headers, "raw_items"):
            items = list(headers.raw_items())
        else:
            items = list(dict(headers).items())
        body = getattr(r, "body", b"") or b""
        return Response(bytes(body), status, items)
    logger.error("opening handshake failed: process_request or process_response returned %r, not a response", r)
    return _as_response(_handshake_failed(), logger)


def _handshake_failed() -> HandshakeResponse:
    return _plain(500, "Failed to open a WebSocket connection.\nSee server log for more information.\n")


def _origin_allowed(origin: str | None, origins: Iterable[Any]) -> bool:
    for o in origins:
        if o is None:
            if origin is None:
                return True
        elif isinstance(o, str):
            if origin == o:
                return True
        elif origin is not None and hasattr(o, "fullmatch") and o.fullmatch(origin):
            return True
    return False


def _accept_key(key: str) -> str:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def _default_subprotocol(available: list[str], offered: list[str]) -> str | None:
    """websockets' rule: none when the server has none; else the first of
    the server's that the client offered; NegotiationError (400) when the
    client offered none or none of them."""
    if not available:
        return None
    if not offered:
        raise NegotiationError("missing subprotocol")
    for p in available:
        if p in offered:
            return p
    raise NegotiationError("invalid subprotocol; expected one of " + ", ".join(available))


async def _maybe_await(r: Any) -> Any:
    return await r if inspect.isawaitable(r) else r


ProcessRequest = Callable[[Handshake, WsRequest], Any]
ProcessResponse = Callable[[Handshake, WsRequest, Any], Any]
SelectSubprotocol = Callable[[Handshake, list[str]], Union[str, None]]


def basic_auth(
    realm: str = "",
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Callable[[str, str], bool | Awaitable[bool]] | None = None,
) -> ProcessRequest:
    """HTTP Basic authentication as websockets' ``basic_auth``: a
    ``process_request`` that answers 401 (with ``WWW-Authenticate``) to a
    request without valid credentials and sets ``connection.username``
    otherwise. Give ``credentials`` (a pair or pairs) or
    ``check_credentials(username, password)`` (may be a coroutine)."""
    if (credentials is None) == (check_credentials is None):
        raise ValueError("provide either credentials or check_credentials")
    if credentials is not None:
        pairs: list[Any] = [credentials] if _is_pair(credentials) else list(credentials)
        if not all(_is_pair(c) for c in pairs):
            raise TypeError(f"invalid credentials argument: {credentials}")
        known = {u: pw.encode() for u, pw in pairs}

        def check(username: str, password: str) -> bool:
            expected = known.get(username)
            # Compared in constant time whether or not the user exists.
            ok = hmac.compare_digest(expected or b"\0" * 32, password.encode())
            return ok and expected is not None

        checker: Callable[[str, str], Any] = check
    else:
        assert check_credentials is not None
        checker = check_credentials
    challenge = 'Basic realm="{}", charset="UTF-8"'.format(realm.replace("\\", "\\\\").replace('"', '\\"'))

    def refuse(connection: Handshake, why: str) -> HandshakeResponse:
        r = connection.respond(401, why)
        r.headers["WWW-Authenticate"] = challenge
        return r

    async def process_request(connection: Handshake, request: WsRequest) -> HandshakeResponse | None:
        header = request.headers.get("Authorization")
        if header is None:
            return refuse(connection, "Missing credentials\n")
        parsed = _parse_basic(header)
        if parsed is None:
            return refuse(connection, "Unsupported credentials\n")
        if not await _maybe_await(checker(*parsed)):
            return refuse(connection, "Invalid credentials\n")
        connection.username = parsed[0]  # type: ignore[attr-defined]
        return None

    return process_request


def _is_pair(c: Any) -> bool:
    return isinstance(c, (tuple, list)) and len(c) == 2 and all(isinstance(x, str) for x in c)


def _parse_basic(header: str) -> tuple[str, str] | None:
    scheme, sep, token = header.partition(" ")
    if scheme.lower() != "basic" or not sep or not _TOKEN68.fullmatch(token):
        return None
    try:
        user, colon, password = base64.b64decode(token.encode(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon else None


_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _seconds_ms(v: float | None, what: str) -> int:
    """A timeout in seconds as the engine's milliseconds; ``None``: never
    (the engine's longest, 49 days)."""
    if v is None:
        return 2**32 - 1
    if v < 0:
        raise ValueError(f"{what} must be >= 0 or None")
    return min(int(v * 1000), 2**32 - 1)


def serve(
    handler: Callable[[ServerConnection], Awaitable[None]],
    host: str | None = None,
    port: int | None = None,
    *,
    process_request: ProcessRequest | None = None,
    process_response: ProcessResponse | None = None,
    server_header: str | None = SERVER,
    origins: Iterable[Any] | None = None,
    subprotocols: Iterable[str] | None = None,
    select_subprotocol: SelectSubprotocol | None = None,
    ssl: Any = None,
    open_timeout: float | None = 10,
    close_timeout: float | None = 10,
    max_size: int | None = 2**20,
    max_queue: int | None | tuple[int | None, int | None] = 16,
    compression: str | None = "deflate",
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    logger: LoggerLike | None = None,
    workers: int | None = None,
    reuse_port: bool | None = None,
    unix: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> WebSocketServer:
    """Serve ``handler`` on each connection, ``websockets``-style.

    ``process_request(connection, request)`` sees every request, plain HTTP
    ones too (health checks), and may return a response
    (``connection.respond(status, text)``, a Volley ``Response`` or a
    ``websockets`` one) to answer it instead of upgrading;
    ``process_response(connection, request, response)`` sees every answer
    (the 101 too) and may change its headers or return another.
    ``server_header`` is sent as ``Server`` (``None``: none).
    ``origins``: the ``Origin`` values allowed (strings, compiled patterns,
    ``None`` for no header); others get 403, as in ``websockets``.
    ``subprotocols`` / ``select_subprotocol(connection, offered)`` choose
    the subprotocol as websockets does (400 when none fits). ``ssl=TLS(
    certfile, keyfile)`` serves ``wss://``. ``host`` ``None`` or ``""``
    binds every interface. ``open_timeout`` closes a client that has not
    finished its handshake; ``close_timeout`` bounds the closing handshake;
    ``ping_interval``/``ping_timeout`` drop a peer that stops answering
    pings, as websockets' keepalive does. ``logger`` gets the records
    websockets logs (default ``logging.getLogger("websockets.server")``).
    Options ``websockets`` has and this layer does not raise ``TypeError``
    (Python's own, naming the argument): nothing is accepted and ignored.
    When ``handler`` returns the connection is closed (1000); when it
    raises, 1011. ``unix=True, path=...`` (what ``unix_serve`` passes)
    listens on a Unix socket instead, as asyncio's ``create_unix_server``
    does: a socket file left at ``path`` is replaced, any other file is
    "address already in use".
    """
    if unix and (host is not None or port is not None):
        raise TypeError("volley.asyncio.serve: host and port do not apply with unix=True (give path)")
    if path is not None and not unix:
        raise TypeError("volley.asyncio.serve: path= needs unix=True (or use unix_serve)")
    if compression not in (None, "deflate"):
        raise ValueError(f"unsupported compression: {compression}")
    _queue_bounds(max_queue)  # refuse a bad one now, not at the first message
    handshake_ms = _seconds_ms(open_timeout, "open_timeout")
    close_ms = _seconds_ms(close_timeout, "close_timeout")
    tls: dict[str, str] | None = None
    if ssl is not None:
        if not isinstance(ssl, TLS):
            raise TypeError(
                "volley.asyncio.serve: ssl= takes volley.asyncio.TLS(certfile, keyfile), not "
                f"{type(ssl).__name__}: an ssl.SSLContext cannot be read back (its certificate, key "
                "and client-certificate checks are hidden), and serving without them would fail open"
            )
        tls = {"cert": ssl.certfile, "key": ssl.keyfile}
    allowed = list(origins) if origins is not None else None
    available = list(subprotocols) if subprotocols is not None else []
    lg: LoggerLike = logger if logger is not None else logging.getLogger("websockets.server")
    tasks: set[asyncio.Task[None]] = set()
    state: dict[str, Any] = {}

    async def answer(hs: Handshake, req: WsRequest, upgrading: bool) -> Any:
        """websockets' handshake: process_request, then (upgrades) the
        origin and the subprotocol, then process_response on whatever the
        answer is. A websockets-style response, or the 101's."""
        if state.get("unix") is not None:
            hs.remote_address = ""  # asyncio's peername on a Unix socket
        try:
            r = None if process_request is None else await _maybe_await(process_request(hs, req))
        except Exception:
            lg.error("opening handshake failed", exc_info=True)
            r = _handshake_failed()
        if r is None and not upgrading:
            r = _plain(426, "Failed to open a WebSocket connection: missing Upgrade header.\n\n"
                            "You cannot access a WebSocket server directly with a browser. "
                            "You need a WebSocket client.\n")
            r.headers["Upgrade"] = "websocket"
        if r is None and allowed is not None and not _origin_allowed(req.headers.get("origin"), allowed):
            r = _plain(403, "Failed to open a WebSocket connection: invalid Origin header: "
                            f"{req.headers.get('origin')}.\n")
        if r is None:
            try:
                offered = list(req.protocols)
                if select_subprotocol is not None:
                    hs.subprotocol = select_subprotocol(hs, offered)
                else:
                    hs.subprotocol = _default_subprotocol(available, offered)
            except NegotiationError as e:
                r = _plain(400, f"Failed to open a WebSocket connection: {e}.\n")
            except Exception:
                lg.error("opening handshake failed", exc_info=True)
                r = _handshake_failed()
        if r is None:
            headers = HandshakeHeaders()
            headers["Upgrade"] = "websocket"
            headers["Connection"] = "Upgrade"
            headers["Sec-WebSocket-Accept"] = _accept_key(req.headers.get("sec-websocket-key", ""))
            if hs.subprotocol is not None:
                headers["Sec-WebSocket-Protocol"] = hs.subprotocol
            r = HandshakeResponse(101, "Switching Protocols", headers, b"")
        else:
            r = _as_handshake_response(r)
        if server_header:
            r.headers["Server"] = server_header
        hs.response = r
        if process_response is not None:
            try:
                other = await _maybe_await(process_response(hs, req, r))
            except Exception:
                lg.error("opening handshake failed", exc_info=True)
                other = _handshake_failed()
            if other is not None:
                hs.response = r = _as_handshake_response(other)
        return r

    def refused(r: Any) -> Response:
        out = _as_response(r, lg)
        lg.info("connection rejected (%d %s)", out.status, http.HTTPStatus(out.status).phrase)
        return out

    async def upgrade(req: Request) -> Any:
        w = WsRequest.of(req)
        hs = Handshake(w, lg)
        r = await answer(hs, w, True)
        if getattr(r, "status_code", None) != 101:
            return refused(r)
        # The 101 goes out as the engine writes it, with what
        # process_response added (its own headers it writes itself).
        extra = {k: v for k, v in r.headers.raw_items() if k.lower() not in _ENGINE_101}
        protocol = r.headers.get("Sec-WebSocket-Protocol")
        w._handshake = hs  # type: ignore[attr-defined]
        return Accept(w, protocol, extra)

    async def fetch(req: Request) -> Response:
        # A plain request: process_request may answer it (a health check);
        # else what websockets answers a request that is no upgrade.
        w = WsRequest.of(req)
        r = await answer(Handshake(w, lg), w, False)
        if getattr(r, "status_code", None) == 101:
            lg.error("opening handshake failed: a 101 to a request that is no upgrade")
            r = _handshake_failed()
        return refused(r)

    async def run(conn: ServerConnection) -> None:
        keepalive = None
        if ping_interval:
            keepalive = asyncio.get_running_loop().create_task(conn._keepalive(ping_interval, ping_timeout))
        try:
            await handler(conn)
        except ConnectionClosed:
            pass
        except Exception:
            lg.error("connection handler failed", exc_info=True)
            if conn.close_code is None:
                conn._closing = True
                conn._ws.close(1011, "internal error")
            return
        finally:
            if keepalive is not None:
                keepalive.cancel()
        if conn.close_code is None and not conn._closing:
            conn._closing = True
            conn._ws.close(1000, "")

    def open_(ws: ServerWebSocket[Any]) -> None:
        server: WebSocketServer = state["server"]
        w: WsRequest = ws.data
        local: tuple[str, int] | str = state["unix"] if state["unix"] is not None else (state["host"], server.port)
        conn = ServerConnection(ws, w, max_queue, local)
        hs: Handshake = w._handshake  # type: ignore[attr-defined]
        conn.response = hs.response
        conn.subprotocol = hs.subprotocol
        conn.logger = lg
        conn.id = hs.id
        if hasattr(hs, "username"):
            conn.username = hs.username  # type: ignore[attr-defined]
        lg.info("connection open")
        ws.data = conn
        server.connections.add(conn)
        t = asyncio.get_running_loop().create_task(run(conn))
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    def message(ws: ServerWebSocket[ServerConnection], m: Data) -> None:
        ws.data._message(m)

    def drain(ws: ServerWebSocket[ServerConnection]) -> None:
        ws.data._drain()

    def pong(ws: ServerWebSocket[Any], data: bytes) -> None:
        if isinstance(ws.data, ServerConnection):
            ws.data._pong(bytes(data))

    def close(ws: ServerWebSocket[Any], code: int, reason: str) -> None:
        conn = ws.data
        if isinstance(conn, ServerConnection):
            conn._close(code, reason)
            state["server"].connections.discard(conn)

    async def factory(server: WebSocketServer) -> Server:
        state["server"] = server
        server._logger = lg
        opts: dict[str, Any] = dict(
            port=port or 0,
            upgrade=upgrade,
            fetch=fetch,
            open=open_,
            message=message,
            drain=drain,
            pong=pong,
            close=close,
            per_message_deflate=compression == "deflate",
            # None (unbounded in websockets): the engine's most, 2 GiB.
            max_payload_length=max_size if max_size is not None else 2**31,
            # Keepalive is this layer's (above); the engine's idle timeout
            # stays as a backstop past it.
            idle_timeout=(ping_interval + (ping_timeout or ping_interval)) * 2 if ping_interval else 0,
            send_pings=False,
            workers=workers,
            reuse_port=reuse_port,
            tls=tls,
            handshake_timeout=handshake_ms / 1000,
            close_timeout=close_ms / 1000,
        )
        state["unix"] = None
        if unix:
            if path is None:
                raise ValueError("path was not specified, and no sock specified")
            p = os.fsdecode(path)
            try:
                # A socket left by an earlier run is replaced, as asyncio's
                # create_unix_server does; any other file stays and the
                # bind fails.
                if stat.S_ISSOCK(os.stat(p).st_mode):
                    os.remove(p)
            except FileNotFoundError:
                pass
            try:
                srv = await _serve(unix=p, **opts)
            except OSError as e:
                if os.path.exists(p):
                    raise OSError(errno.EADDRINUSE, f"Address {p!r} is already in use") from e
                raise
            srv._unlink_on_stop = False  # asyncio's rule, in WebSocketServer._ended
            state["unix"] = server._unix = p
            lg.info("server listening on %s", p)
            return srv
        # None or "": every interface, IPv6 and IPv4 where the system has
        # both, as websockets binds them.
        for h in [host] if host else ["::", "0.0.0.0"]:
            try:
                srv = await _serve(host=h, **opts)
            except OSError:
                if h != "::":
                    raise
                continue
            state["host"] = server._host = h
            lg.info("server listening on %s", f"[{h}]:{srv.port}" if ":" in h else f"{h}:{srv.port}")
            return srv
        raise OSError("volley.asyncio.serve: could not bind")

    return WebSocketServer(factory)


def unix_serve(
    handler: Callable[[ServerConnection], Awaitable[None]],
    path: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> WebSocketServer:
    """``serve`` on a Unix socket at ``path`` (websockets' ``unix_serve``:
    a server behind a local reverse proxy such as nginx). Takes ``serve``'s
    keyword arguments but ``host`` and ``port``."""
    return serve(handler, unix=True, path=path, **kwargs)
