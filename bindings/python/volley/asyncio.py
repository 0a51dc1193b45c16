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
import enum
import inspect
import logging
import os
import socket as _socket
import sys
import time
import uuid
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Union

from ._server import Headers, Request, Response, Server, ServerWebSocket, serve as _serve

log = logging.getLogger("volley")

Data = Union[str, bytes]

__all__ = ["ConcurrencyError", "ConnectionClosed", "ConnectionClosedError", "ConnectionClosedOK", "Handshake",
           "ServerConnection", "State", "TLS", "WebSocketServer", "broadcast", "serve"]

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
    from websockets.frames import Close
    from websockets.protocol import State
except ImportError:  # pragma: no cover - exercised by the test without websockets

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
        local_address: tuple[str, int],
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

    # ---- what websockets offers ------------------------------------------

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self.request.remote_address

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
    ``server.sockets[0].getsockname()[1]`` (the port)."""

    def __init__(self, host: str, port: int) -> None:
        self._addr = (host, port)
        self.family = _socket.AF_INET6 if ":" in host else _socket.AF_INET

    def getsockname(self) -> tuple[str, int]:
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
        return [_BoundSocket(self._host, self._server.port)]

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
        if close_connections:
            for conn in list(self.connections):
                if conn.close_code is None and not conn._closing:
                    conn._closing = True
                    conn._ws.close(1001, "")
        task = asyncio.get_running_loop().create_task(self._server.stop(close_active_connections=close_connections))
        task.add_done_callback(lambda _: self._closed.set())

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
    """The ``connection`` argument of ``process_request``: the handshake
    under way (``websockets``' ``ServerConnection`` before it opens)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.remote_address = request.remote_address

    def respond(self, status: int, text: str) -> Response:
        """A plain-text response that refuses the upgrade when returned."""
        return Response(text, int(status), {"Content-Type": "text/plain; charset=utf-8"})


def _as_response(r: Any) -> Response:
    """What ``process_request`` returned, as a refusal: a Volley
    ``Response``, or a ``websockets`` one (``status_code``, ``headers``,
    ``body``). Anything else is a programming error, answered with 500
    (never an accepted upgrade)."""
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
    log.error("volley: process_request returned %r, not a response: refusing the upgrade", r)
    return Response("internal error\n", 500)


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


def serve(
    handler: Callable[[ServerConnection], Awaitable[None]],
    host: str | None = None,
    port: int | None = None,
    *,
    process_request: Callable[[Handshake, Request], Any] | None = None,
    origins: Iterable[Any] | None = None,
    ssl: Any = None,
    max_size: int | None = 2**20,
    max_queue: int | None | tuple[int | None, int | None] = 16,
    compression: str | None = "deflate",
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    workers: int | None = None,
    reuse_port: bool | None = None,
) -> WebSocketServer:
    """Serve ``handler`` on each connection, ``websockets``-style.

    ``process_request(connection, request)`` sees every request, plain HTTP
    ones too (health checks), and may return a response
    (``connection.respond(status, text)``, a Volley ``Response`` or a
    ``websockets`` one) to answer it instead of upgrading. ``origins``: the
    ``Origin`` values allowed (strings, compiled patterns, ``None`` for no
    header); others get 403, as in ``websockets``. ``ssl=TLS(certfile,
    keyfile)`` serves ``wss://``. ``host`` ``None`` or ``""`` binds every
    interface. ``ping_interval``/``ping_timeout`` drop a peer that stops
    answering pings, as websockets' keepalive does. Options ``websockets``
    has and this layer does not raise ``TypeError`` (Python's own, naming
    the argument): nothing is accepted and ignored. When ``handler``
    returns the connection is closed (1000); when it raises, 1011.
    """
    if compression not in (None, "deflate"):
        raise ValueError(f"unsupported compression: {compression}")
    _queue_bounds(max_queue)  # refuse a bad one now, not at the first message
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
    tasks: set[asyncio.Task[None]] = set()
    state: dict[str, Any] = {}

    async def asked(req: WsRequest) -> Response | None:
        if process_request is None:
            return None
        r = process_request(Handshake(req), req)
        if inspect.isawaitable(r):
            r = await r
        return None if r is None else _as_response(r)

    async def upgrade(req: Request) -> Any:
        w = WsRequest.of(req)
        r = await asked(w)
        if r is not None:
            return r
        # websockets checks the origin after process_request.
        if allowed is not None and not _origin_allowed(req.headers.get("origin"), allowed):
            return Response("Forbidden: origin not allowed\n", 403)
        return w

    async def fetch(req: Request) -> Response:
        # A plain request: process_request may answer it (a health check);
        # else what websockets answers a request that is no upgrade.
        r = await asked(WsRequest.of(req))
        if r is not None:
            return r
        return Response("Failed to open a WebSocket connection: missing Upgrade header.\n\n"
                        "You cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n",
                        426, {"Upgrade": "websocket", "Content-Type": "text/plain; charset=utf-8"})

    async def run(conn: ServerConnection) -> None:
        keepalive = None
        if ping_interval:
            keepalive = asyncio.get_running_loop().create_task(conn._keepalive(ping_interval, ping_timeout))
        try:
            await handler(conn)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("volley: connection handler failed")
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
        conn = ServerConnection(ws, ws.data, max_queue, (state["host"], server.port))
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
        )
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
            return srv
        raise OSError("volley.asyncio.serve: could not bind")

    return WebSocketServer(factory)
