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
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Union

from ._server import Headers, Request, Response, Server, ServerWebSocket, serve as _serve

log = logging.getLogger("volley")

Data = Union[str, bytes]

__all__ = ["ConnectionClosed", "ConnectionClosedError", "ConnectionClosedOK", "Handshake", "ServerConnection", "TLS",
           "broadcast", "serve"]


class ConnectionClosed(Exception):
    """The connection is closed (as in ``websockets.exceptions``)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """Closed with 1000 or 1001."""


class ConnectionClosedError(ConnectionClosed):
    """Closed with any other code."""


def _closed(code: int, reason: str) -> ConnectionClosed:
    return (ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError)(code, reason)


class ServerConnection:
    """One client, as ``websockets.asyncio.server.ServerConnection`` has it."""

    def __init__(self, ws: ServerWebSocket[ServerConnection], request: Request, max_queue: int) -> None:
        self._ws = ws
        self.request = request
        self._max_queue = max_queue
        self._inbox: deque[Data] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._paused = False
        self._closed_fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
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
    def id(self) -> int:
        return id(self)

    async def recv(self) -> Data:
        """The next message; ``ConnectionClosed`` once the connection is closed."""
        while not self._inbox:
            if self.close_code is not None:
                raise _closed(self.close_code, self.close_reason or "")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        m = self._inbox.popleft()
        if self._paused and len(self._inbox) <= self._max_queue // 2:
            self._paused = False
            self._ws.resume_reading()
        return m

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    async def send(self, message: Data | Iterable[Data]) -> None:
        """Send a message (or each of an iterable's); waits while the
        connection is backpressured."""
        if not isinstance(message, (str, bytes, bytearray, memoryview)):
            for part in message:
                await self.send(part)
            return
        data: Data = message if isinstance(message, (str, bytes)) else bytes(message)
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
        if self.close_code is None:
            self._ws.close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed_fut)

    async def ping(self, data: Data = b"") -> Awaitable[None]:
        """Send a ping (the engine answers the client's pings by itself)."""
        self._ws.ping(data)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    # ---- events from the server -------------------------------------------

    def _message(self, m: Data) -> None:
        self._inbox.append(m)
        if not self._paused and len(self._inbox) >= self._max_queue:
            self._paused = True
            self._ws.pause_reading()
        self._wake()

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


def broadcast(connections: Iterable[ServerConnection], message: Data) -> None:
    """Send ``message`` to every open connection without waiting (as in
    ``websockets.broadcast``): one backpressured client slows nobody down."""
    for conn in connections:
        if conn.close_code is None:
            conn._ws.send(message)


class WebSocketServer:
    """What ``serve`` gives: the running server, as an async context manager."""

    def __init__(self, factory: Callable[[], Awaitable[Server]]) -> None:
        self._factory = factory
        self._server: Server | None = None
        self._closed = asyncio.Event()

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
            self._server = await self._factory()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def sockets(self) -> list[Any]:
        return []

    @property
    def server(self) -> Server:
        assert self._server is not None
        return self._server

    def close(self) -> None:
        """Close every connection (1001) and stop; ``wait_closed`` waits."""
        if self._server is not None and not self._closed.is_set():
            task = asyncio.get_running_loop().create_task(self._server.stop())
            task.add_done_callback(lambda _: self._closed.set())

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._closed.wait()

    async def serve_forever(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.close()
            await self.wait_closed()


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
    host: str | None = "127.0.0.1",
    port: int | None = 0,
    *,
    process_request: Callable[[Handshake, Request], Any] | None = None,
    origins: Iterable[Any] | None = None,
    ssl: Any = None,
    max_size: int | None = 2**20,
    max_queue: int = 16,
    compression: str | None = "deflate",
    ping_interval: float | None = 20,
    workers: int | None = None,
    reuse_port: bool | None = None,
) -> WebSocketServer:
    """Serve ``handler`` on each connection, ``websockets``-style.

    ``process_request(connection, request)`` may return a response
    (``connection.respond(status, text)``, a Volley ``Response`` or a
    ``websockets`` one) to refuse the upgrade. ``origins``: the ``Origin``
    values allowed (strings, compiled patterns, ``None`` for no header);
    others get 403, as in ``websockets``. ``ssl=TLS(certfile, keyfile)``
    serves ``wss://``. Options ``websockets`` has and this layer does not
    raise ``TypeError`` (Python's own, naming the argument): nothing is
    accepted and ignored. When ``handler`` returns the connection is closed
    (1000); when it raises, 1011.
    """
    conns: dict[int, ServerConnection] = {}
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

    async def upgrade(req: Request) -> Any:
        if allowed is not None and not _origin_allowed(req.headers.get("origin"), allowed):
            return Response("Forbidden: origin not allowed\n", 403)
        if process_request is not None:
            r = process_request(Handshake(req), req)
            if inspect.isawaitable(r):
                r = await r
            if r is not None:
                return _as_response(r)
        return req

    async def run(conn: ServerConnection) -> None:
        try:
            await handler(conn)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("volley: connection handler failed")
            conn._ws.close(1011, "internal error")
            return
        if conn.close_code is None:
            conn._ws.close(1000, "")

    def open_(ws: ServerWebSocket[Any]) -> None:
        req = ws.data
        conn = ServerConnection(ws, req, max_queue)
        ws.data = conn
        conns[id(conn)] = conn
        t = asyncio.get_running_loop().create_task(run(conn))
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    def message(ws: ServerWebSocket[ServerConnection], m: Data) -> None:
        ws.data._message(m)

    def drain(ws: ServerWebSocket[ServerConnection]) -> None:
        ws.data._drain()

    def close(ws: ServerWebSocket[Any], code: int, reason: str) -> None:
        conn = ws.data
        if isinstance(conn, ServerConnection):
            conn._close(code, reason)
            conns.pop(id(conn), None)

    tasks: set[asyncio.Task[None]] = set()

    async def factory() -> Server:
        return await _serve(
            host=host or "127.0.0.1",
            port=port or 0,
            upgrade=upgrade,
            open=open_,
            message=message,
            drain=drain,
            close=close,
            per_message_deflate=compression == "deflate",
            # None (unbounded in websockets): the engine's most, 2 GiB.
            max_payload_length=max_size if max_size is not None else 2**31,
            idle_timeout=ping_interval if ping_interval else 0,
            send_pings=bool(ping_interval),
            workers=workers,
            reuse_port=reuse_port,
            tls=tls,
        )

    return WebSocketServer(factory)

