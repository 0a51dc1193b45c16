"""The Bun-shaped layer: ``await serve(open=…, message=…, …)`` and
``ServerWebSocket``, on the C ABI's event-queue mode.

The engine's workers run the protocol and the fan-out on every core; the
asyncio loop watches one descriptor (``loop.add_reader``), drains events in
packed batches (one C call per batch, not per event), calls the handlers,
and sends back with one C call per send, corked so that each worker is
woken once per batch. Sends answer like Bun at once: bytes, -1, 0.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import json
import logging
import os
import stat
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, Union

from . import _native as n
from . import _wire as W

log = logging.getLogger("volley")

# The packed records' layout, kinds, flags and codes: the library's own
# definitions (_wire.py is generated from them and checked by
# ffi/tests/wire.rs), never a copy kept here.
UPGRADE = W.EVENT_KIND_UPGRADE
REQUEST = W.EVENT_KIND_REQUEST
OPEN = W.EVENT_KIND_OPEN
MESSAGE = W.EVENT_KIND_MESSAGE
CLOSE = W.EVENT_KIND_CLOSE
DRAIN = W.EVENT_KIND_DRAIN
PING = W.EVENT_KIND_PING
PONG = W.EVENT_KIND_PONG
EV_BINARY = W.EVENT_BINARY
DATA_BY_ADDRESS = W.PACKED_DATA_BY_ADDRESS
TOPIC_BY_ADDRESS = W.PACKED_TOPIC_BY_ADDRESS
SEND_BINARY = W.SEND_BINARY
SEND_COMPRESS = W.SEND_COMPRESS
SEND_NO_COMPRESS = W.SEND_NO_COMPRESS
STOP_GRACEFUL = W.STOP_GRACEFUL
STOP_NOW = W.STOP_NOW
STOP_NO_WAIT = W.STOP_NO_WAIT
STOP_LISTEN_ONLY = W.STOP_LISTEN_ONLY
RESULT_OK = W.RESULT_OK
RESULT_CLOSED = W.RESULT_CLOSED
RESULT_STOPPED = W.RESULT_STOPPED
POLL_BYTES = 1 << 20
# kind, flags, code, key, generation, user, data length, topic length.
_RECORD = struct.Struct(W.RECORD_FORMAT)
_HEADER = W.RECORD_HEADER
_PAD = W.RECORD_ALIGN - 1
assert _RECORD.size == _HEADER, "_wire.py: RECORD_FORMAT does not cover the record's fixed part"

T = TypeVar("T")
Data = Union[str, bytes]


def _compress(c: bool | None) -> int:
    return SEND_COMPRESS if c is True else SEND_NO_COMPRESS if c is False else 0


# The library's log records (warnings and errors: a TLS configuration
# refused, a panic caught at the C boundary, an answer dropped) wait in its
# queue and are taken on the loop's thread, never by a callback on a worker
# thread (which would need the GIL the loop's thread may hold while it
# waits for that worker): they go to logging.getLogger("volley").
n.set_log(None, None, 2)
_log = logging.getLogger("volley")
_LOG_BUF = ctypes.create_string_buffer(4096)
_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: logging.DEBUG}


def _take_logs() -> None:
    level = ctypes.c_uint32()
    while True:
        size = int(n.log_take(ctypes.byref(level), _LOG_BUF, len(_LOG_BUF)))
        if size == 0:
            return
        text = _LOG_BUF.raw[: min(size, len(_LOG_BUF))].decode("utf-8", "replace")
        _log.log(_LEVELS.get(level.value, logging.WARNING), "%s", text)


def _check(r: int, what: str) -> bool:
    if r not in (RESULT_OK, RESULT_CLOSED):
        raise RuntimeError(f"volley: {what}: {n.error_message(r).decode()}")
    return r == RESULT_OK


class Headers(Mapping[str, str]):
    """Request headers: case-insensitive, in order, repeats kept."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    def __getitem__(self, name: str) -> str:
        low = name.lower()
        for k, v in self._items:
            if k.lower() == low:
                return v
        raise KeyError(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        seen = set()
        for k, _ in self._items:
            if k.lower() not in seen:
                seen.add(k.lower())
                yield k

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._items})

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self._items if k.lower() == low]

    def raw_items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request:
    """An upgrade or plain HTTP request."""

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: Headers,
        params: dict[str, str],
        protocols: list[str],
        remote_address: tuple[str, int] | None,
        secure: bool,
        body: bytes,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.params = params
        self.protocols = protocols
        self.remote_address = remote_address
        self.secure = secure
        self.body = body

    @property
    def url(self) -> str:
        host = self.headers.get("host", "localhost")
        q = f"?{self.query}" if self.query else ""
        return f"{'https' if self.secure else 'http'}://{host}{self.path}{q}"

    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


class Response:
    """An HTTP answer (to a plain request, or to refuse an upgrade)."""

    def __init__(
        self,
        body: str | bytes = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.body = body.encode() if isinstance(body, str) else bytes(body)
        self.status = status
        items = headers.items() if isinstance(headers, Mapping) else (headers or [])
        self.headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in items]
        self.topics: list[str] | None = None

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(json.dumps(value), status, {"Content-Type": "application/json"})


def event_stream(topics: str | Iterable[str], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A response that streams publishes to ``topics`` as Server-Sent Events."""
    r = Response(b"", status, headers)
    r.topics = [topics] if isinstance(topics, str) else list(topics)
    return r


class Accept(Generic[T]):
    """Accept an upgrade with this data, a subprotocol the client offered, extra headers."""

    def __init__(self, data: T, protocol: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.data = data
        self.protocol = protocol
        self.headers = dict(headers or {})


def _headers(items: Iterable[tuple[str, str]]) -> tuple[Any, int, list[bytes]]:
    keep: list[bytes] = []
    hs = []
    for k, v in items:
        kb, vb = k.encode(), v.encode()
        keep += [kb, vb]
        h = n.Header()
        h.name.data = ctypes.cast(ctypes.c_char_p(kb), ctypes.c_void_p)
        h.name.len = len(kb)
        h.value.data = ctypes.cast(ctypes.c_char_p(vb), ctypes.c_void_p)
        h.value.len = len(vb)
        hs.append(h)
    arr = (n.Header * len(hs))(*hs) if hs else None
    return arr, len(hs), keep


def _split_address(a: str) -> tuple[str, int] | None:
    if not a:
        return None
    host, _, port = a.rpartition(":")
    return (host.strip("[]"), int(port))


def _parse_request(b: bytes, p: int) -> Request:
    """A packed request (see volley_server_poll_packed): its fields in the
    library's order (``_wire.REQUEST_FIELDS``), each a length-prefixed
    string or a counted list of them."""
    u32 = struct.Struct("<I").unpack_from

    def field() -> bytes:
        nonlocal p
        (ln,) = u32(b, p)
        p += 4
        v = b[p : p + ln]
        p += ln
        return v

    r: dict[str, Any] = {}
    for name, kind in W.REQUEST_FIELDS:
        if kind == "list":
            (count,) = u32(b, p)
            p += 4
            r[name] = [field() for _ in range(count)]
        else:
            r[name] = field()
    hs: list[bytes] = r["headers"]
    ps: list[bytes] = r["params"]
    headers = [(hs[i].decode(), hs[i + 1].decode("latin-1")) for i in range(0, len(hs) - 1, 2)]
    params = {ps[i].decode(): ps[i + 1].decode() for i in range(0, len(ps) - 1, 2)}
    protocols = [x.decode() for x in r["protocols"]]
    return Request(r["method"].decode(), r["path"].decode(), r["query"].decode(), Headers(headers), params, protocols,
                   _split_address(r["address"].decode()), bool(r["secure"]), r["body"])


class ServerWebSocket(Generic[T]):
    """A WebSocket, with Bun's methods (snake_case)."""

    __slots__ = ("_server", "_key", "_gen", "_index", "_state", "_topics", "_remote", "data")

    def __init__(self, server: Server, key: int, gen: int, index: int, data: T, remote: tuple[str, int] | None) -> None:
        self._server = server
        self._key = key
        self._gen = gen
        self._index = index
        self._state = 0
        self._topics: set[str] = set()
        self._remote = remote
        self.data: T = data

    def _ws(self) -> n.Ws:
        return n.Ws(self._gen, self._key, 0)

    @property
    def ready_state(self) -> int:
        """0 connecting, 1 open, 2 closing, 3 closed."""
        return self._state

    @property
    def remote_address(self) -> str:
        return self._remote[0] if self._remote else ""

    def send(self, data: Data, compress: bool | None = None) -> int:
        """Bun's send: the bytes sent, -1 when queued behind a backlog (``drain`` follows), 0 when dropped
        (also after the server stopped, as in Bun)."""
        s = self._server
        if s._srv is None:
            return 0
        if not s._draining:
            s._ensure_cork()
        if isinstance(data, str):
            b = data.encode()
            flags = _compress(compress)
        else:
            b = bytes(data) if not isinstance(data, bytes) else data
            flags = SEND_BINARY | _compress(compress)
        r = int(n.send_parts(s._srv, self._key, self._gen, b, len(b), flags))
        if r <= -100:
            raise ValueError(f"volley: send: {n.error_message(-r).decode()}")
        return r

    def send_text(self, data: str, compress: bool | None = None) -> int:
        return self.send(str(data), compress)

    def send_binary(self, data: bytes | bytearray | memoryview, compress: bool | None = None) -> int:
        return self.send(bytes(data), compress)

    def publish(self, topic: str, data: Data, compress: bool | None = None) -> int:
        """Publish to every subscriber but this one (unless ``publish_to_self``)."""
        s = self._server
        if s._srv is None:
            return 0
        if self._state == 3:
            # In (or after) the close handler the connection is gone from the
            # engine, which refuses a publish "as" it. Bun delivers it (its
            # docs' chat room announces a leave from close): the socket is no
            # longer subscribed, so a server publish reaches the same peers.
            return s.publish(topic, data, compress)
        s._ensure_cork()
        t = topic.encode()
        if isinstance(data, str):
            b, flags = data.encode(), _compress(compress)
        else:
            b, flags = bytes(data), SEND_BINARY | _compress(compress)
        r = int(n.publish_parts(s._srv, self._key, self._gen, t, len(t), b, len(b), flags))
        # Bun's number, as server.publish gives it: the bytes, or 0 when
        # nobody but this socket is subscribed (the engine counts the
        # workers it went to, this socket's own among them).
        if r <= 0 or (topic in self._topics and s.subscriber_count(topic) <= 1):
            return 0
        return len(b)

    def publish_text(self, topic: str, data: str, compress: bool | None = None) -> int:
        return self.publish(topic, str(data), compress)

    def publish_binary(self, topic: str, data: bytes, compress: bool | None = None) -> int:
        return self.publish(topic, bytes(data), compress)

    def subscribe(self, topic: str) -> None:
        if self._state != 1 or topic in self._topics or self._server._srv is None:
            return
        self._server._ensure_cork()
        t = topic.encode()
        if _check(n.subscribe(self._server._srv, self._ws(), t, len(t)), "subscribe"):
            self._topics.add(topic)

    def unsubscribe(self, topic: str) -> None:
        if topic not in self._topics:
            return
        self._topics.discard(topic)
        if self._state == 3 or self._server._srv is None:
            return
        self._server._ensure_cork()
        t = topic.encode()
        _check(n.unsubscribe(self._server._srv, self._ws(), t, len(t)), "unsubscribe")

    def is_subscribed(self, topic: str) -> bool:
        return topic in self._topics

    @property
    def subscriptions(self) -> list[str]:
        return sorted(self._topics)

    def cork(self, callback: Callable[[ServerWebSocket[T]], Any]) -> Any:
        """Run ``callback(ws)`` with sends batched."""
        n.cork(self._server._srv)
        try:
            return callback(self)
        finally:
            n.uncork(self._server._srv)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._state != 1 or self._server._srv is None:
            return
        r = reason.encode()
        self._server._ensure_cork()
        res = n.close(self._server._srv, self._ws(), code, r, len(r))
        if res not in (RESULT_OK, RESULT_CLOSED):
            raise ValueError(f"volley: close({code}): {n.error_message(res).decode()}")
        self._state = 2

    def terminate(self) -> None:
        if self._state == 3 or self._server._srv is None:
            return
        self._server._ensure_cork()
        n.terminate(self._server._srv, self._ws())
        self._state = 2

    def ping(self, data: Data = b"") -> int:
        b = data.encode() if isinstance(data, str) else bytes(data)
        if self._server._srv is None:
            return 0
        self._server._ensure_cork()
        return len(b) + 2 if n.ping(self._server._srv, self._ws(), b, len(b)) == RESULT_OK else 0

    def pong(self, data: Data = b"") -> int:
        b = data.encode() if isinstance(data, str) else bytes(data)
        if self._server._srv is None:
            return 0
        self._server._ensure_cork()
        return len(b) + 2 if n.pong(self._server._srv, self._ws(), b, len(b)) == RESULT_OK else 0

    def get_buffered_amount(self) -> int:
        if self._server._srv is None:
            return 0
        return int(n.buffered_amount(self._server._srv, self._ws()))

    def pause_reading(self) -> None:
        """Stop reading from this client until ``resume_reading`` (TCP holds it back)."""
        if self._server._srv is None:
            return
        n.pause(self._server._srv, self._ws())

    def resume_reading(self) -> None:
        if self._server._srv is None:
            return
        n.resume(self._server._srv, self._ws())

    def __repr__(self) -> str:
        return f"<ServerWebSocket {self._index} state={self._state}>"


Handler = Callable[..., Any]
# What each handler is called with (each may also be a coroutine function:
# the return value is awaited when it is awaitable).
SocketHandler = Callable[[ServerWebSocket[Any]], Any]
"""``open(ws)``, ``drain(ws)``."""
MessageHandler = Callable[[ServerWebSocket[Any], Data], Any]
"""``message(ws, msg)``: ``str`` for a text message, ``bytes`` for binary."""
CloseHandler = Callable[[ServerWebSocket[Any], int, str], Any]
"""``close(ws, code, reason)``."""
ControlHandler = Callable[[ServerWebSocket[Any], bytes], Any]
"""``ping(ws, payload)``, ``pong(ws, payload)``."""
RequestHandler = Callable[[Request], Any]
"""``upgrade(request)``, ``fetch(request)``."""


class Server:
    """A running server (from ``serve``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handlers: dict[str, Handler | None], opts: dict[str, Any]) -> None:
        self._loop = loop
        self._h = handlers
        self._on_message = handlers.get("message")
        self._sockets: list[ServerWebSocket[Any] | None] = [None]
        self._free: list[int] = []
        self._open = 0
        self._draining = False
        self._corked = False
        self._stopping: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        o = n.Options()
        n.options_init_sized(ctypes.byref(o), ctypes.sizeof(o))
        o.port = int(opts.get("port") or 0)
        host = str(opts.get("host") or "127.0.0.1")
        self._host_bytes = host.encode()
        o.host = self._host_bytes
        self.host = host
        self.unix: str | None = None
        if opts.get("unix") is not None:
            # Bun's `unix`: a Unix stream socket instead of TCP (the port
            # is then 0; a port besides it is refused by the library).
            self.unix = os.fsdecode(opts["unix"])
            self._unix_bytes = os.fsencode(self.unix)
            o.unix_path = self._unix_bytes
        # Bun removes its socket file when the server stops (the library
        # leaves it; volley.asyncio keeps it where asyncio does).
        self._unlink_on_stop = True
        simple = {
            "workers": "workers",
            "max_payload_length": "max_payload_length",
            "backpressure_limit": "backpressure_limit",
            "close_on_backpressure_limit": "close_on_backpressure_limit",
            "send_pings": "send_pings",
            "publish_to_self": "publish_to_self",
            "max_request_body_size": "max_body_bytes",
            "max_connections": "max_connections",
            "reuse_port": "reuse_port",
        }
        for k, field in simple.items():
            if opts.get(k) is not None:
                setattr(o, field, opts[k])
        if opts.get("idle_timeout") is not None:
            o.idle_timeout_ms = int(float(opts["idle_timeout"]) * 1000)
        for k, field in (("handshake_timeout", "handshake_timeout_ms"), ("close_timeout", "close_timeout_ms")):
            if opts.get(k) is not None:
                setattr(o, field, min(int(float(opts[k]) * 1000), 2**32 - 1))
        pmd = opts.get("per_message_deflate")
        if pmd:
            def mode(v: Any) -> int:
                return 0 if v in (False, "disable") else 2 if v == "dedicated" else 1

            if pmd is True:
                o.deflate_compress = o.deflate_decompress = 1
            else:
                o.deflate_compress = mode(pmd.get("compress", True))
                o.deflate_decompress = mode(pmd.get("decompress", True))
                if "threshold" in pmd:
                    o.deflate_threshold = int(pmd["threshold"])
        tls = opts.get("tls")
        if tls:
            def pem(v: Any) -> bytes:
                if isinstance(v, (bytes, bytearray)):
                    return bytes(v)
                s = str(v)
                if "-----BEGIN" in s:
                    return s.encode()
                with open(s, "rb") as f:
                    return f.read()

            self._cert, self._key = pem(tls["cert"]), pem(tls["key"])
            o.tls_cert_pem = ctypes.cast(ctypes.c_char_p(self._cert), ctypes.c_void_p)
            o.tls_cert_pem_len = len(self._cert)
            o.tls_key_pem = ctypes.cast(ctypes.c_char_p(self._key), ctypes.c_void_p)
            o.tls_key_pem_len = len(self._key)
        self.tls = bool(tls)
        if opts.get("pubsub_bridge"):
            self._bridge = str(opts["pubsub_bridge"]).encode()
            o.pubsub_bridge = self._bridge
        srv = ctypes.c_void_p()
        r = n.server_new(ctypes.byref(o), None, None, ctypes.byref(srv))
        _take_logs()
        if r != RESULT_OK:
            detail = (n.last_error() or b"").decode()
            raise OSError(f"volley: serve: {n.error_message(r).decode()}" + (f": {detail}" if detail else ""))
        self._srv: ctypes.c_void_p | None = srv
        self.port = int(n.server_port(srv))
        fd = ctypes.c_int()
        _check(n.server_fd(srv, ctypes.byref(fd)), "fd")
        self._fd = fd.value
        self._buf = ctypes.create_string_buffer(POLL_BYTES)
        self._addr = ctypes.addressof(self._buf)
        loop.add_reader(self._fd, self._drain)

    # ---- batching -----------------------------------------------------------

    def _ensure_cork(self) -> None:
        """Sends outside a drained batch are corked until the loop's next turn."""
        if self._draining or self._corked or self._srv is None:
            return
        self._corked = True
        n.cork(self._srv)
        self._loop.call_soon(self._uncork)

    def _uncork(self) -> None:
        self._corked = False
        if self._srv is not None:
            n.uncork(self._srv)

    def _drain(self) -> None:
        _take_logs()
        if self._draining or self._srv is None:
            return
        self._draining = True
        n.cork(self._srv)
        try:
            while True:
                used = n.poll_packed(self._srv, self._addr, POLL_BYTES)
                if used <= 0:
                    break
                self._dispatch(ctypes.string_at(self._addr, used))
                if used < POLL_BYTES // 2:
                    break
        finally:
            n.uncork(self._srv)
            self._draining = False

    def _field(self, data: bytes, p: int, ln: int, by_address: int) -> bytes:
        if not by_address:
            return data[p : p + ln]
        (addr,) = struct.unpack_from("<Q", data, p)
        out = ctypes.create_string_buffer(ln)
        n.copy(out, addr, ln)
        return out.raw

    def _dispatch(self, data: bytes) -> None:
        unpack = _RECORD.unpack_from
        sockets = self._sockets
        on_message = self._on_message
        used = len(data)
        off = 0
        while off < used:
            kind, flags, code, key, gen, user, dlen, tlen = unpack(data, off)
            p = off + _HEADER
            nxt = off + ((_HEADER + (8 if flags & DATA_BY_ADDRESS else dlen) + (8 if flags & TOPIC_BY_ADDRESS else tlen)
                          + _PAD) & ~_PAD)
            off = nxt
            if kind == MESSAGE:
                ws = sockets[user]
                if ws is None or on_message is None:
                    continue
                raw = data[p : p + dlen] if not flags & DATA_BY_ADDRESS else self._field(data, p, dlen, 1)
                msg: Data = raw if flags & EV_BINARY else raw.decode()
                try:
                    r = on_message(ws, msg)
                    if r is not None and inspect.isawaitable(r):
                        self._spawn(r, ws)
                except Exception:
                    self._failed(ws)
                continue
            if kind in (UPGRADE, REQUEST):
                req = _parse_request(self._field(data, p, dlen, flags & DATA_BY_ADDRESS), 0)
                self._spawn(self._http(kind == UPGRADE, key, gen, req), None)
                continue
            ws = sockets[user]
            if ws is None:
                continue
            if kind == OPEN:
                ws._state = 1
                self._open += 1
                self._call("open", ws)
            elif kind == CLOSE:
                reason = self._field(data, p, dlen, flags & DATA_BY_ADDRESS).decode()
                was_open = ws._state != 0
                ws._state = 3
                # Never opened (an accepted upgrade whose client left first):
                # no close handler, as on Bun; the slot is freed all the same.
                if was_open:
                    self._open -= 1
                    self._call("close", ws, code, reason)
                ws._topics.clear()
                sockets[user] = None
                self._free.append(user)
            elif kind == DRAIN:
                self._call("drain", ws)
            elif kind in (PING, PONG):
                self._call("ping" if kind == PING else "pong", ws, self._field(data, p, dlen, flags & DATA_BY_ADDRESS))

    def _call(self, name: str, ws: ServerWebSocket[Any], *args: Any) -> None:
        h = self._h.get(name)
        if h is None:
            return
        try:
            r = h(ws, *args)
            if r is not None and inspect.isawaitable(r):
                self._spawn(r, ws)
        except Exception:
            self._failed(ws)

    def _spawn(self, aw: Awaitable[Any], ws: ServerWebSocket[Any] | None) -> None:
        async def run() -> None:
            try:
                await aw
            except Exception:
                if ws is not None:
                    self._failed(ws)
                else:
                    log.exception("volley: handler failed")

        t = self._loop.create_task(run())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _failed(self, ws: ServerWebSocket[Any]) -> None:
        """A handler raised: log it, close only that connection (1011)."""
        log.exception("volley: handler failed; closing the connection with 1011")
        if ws._state == 1:
            try:
                ws.close(1011, "internal error")
            except ValueError:
                pass

    async def _http(self, upgrade: bool, key: int, gen: int, req: Request) -> None:
        wsid = n.Ws(gen, key, 0)
        name = "upgrade" if upgrade else "fetch"
        h = self._h.get(name)
        try:
            if h is None:
                result: Any = None if upgrade else Response("not found\n", 404)
            else:
                result = h(req)
                if inspect.isawaitable(result):
                    result = await result
        except Exception:
            log.exception("volley: %s handler failed", name)
            result = Response("internal error\n", 500)
        if self._srv is None:
            return
        self._ensure_cork()
        if isinstance(result, Response):
            hs, hn, keep = _headers(result.headers)
            if result.topics is not None and not upgrade:
                names = [t.encode() for t in result.topics]
                arr = (n.Bytes * len(names))(*[n.Bytes(ctypes.cast(ctypes.c_char_p(t), ctypes.c_void_p), len(t)) for t in names])
                n.respond_events(self._srv, wsid, result.status, hs, hn, arr, len(names))
            else:
                f = n.upgrade_reject if upgrade else n.respond
                status = 500 if result.status == 101 else result.status
                f(self._srv, wsid, status, hs, hn, result.body, len(result.body))
            del keep
            return
        if not upgrade:
            body = result.encode() if isinstance(result, str) else bytes(result or b"")
            n.respond(self._srv, wsid, 200 if result is not None else 404, None, 0, body, len(body))
            return
        a = result if isinstance(result, Accept) else Accept(result)
        index = self._free.pop() if self._free else len(self._sockets)
        ws: ServerWebSocket[Any] = ServerWebSocket(self, key, gen, index, a.data, req.remote_address)
        if index == len(self._sockets):
            self._sockets.append(ws)
        else:
            self._sockets[index] = ws
        hs, hn, keep = _headers(a.headers.items())
        proto = a.protocol.encode() if a.protocol else None
        if n.upgrade_accept(self._srv, ws._ws(), index, proto, hs, hn) != RESULT_OK:
            self._sockets[index] = None
            self._free.append(index)
        del keep

    # ---- the server as users see it -------------------------------------

    @property
    def pending_websockets(self) -> int:
        return self._open

    def publish(self, topic: str, data: Data, compress: bool | None = None) -> int:
        """Publish to every subscriber of ``topic``: the bytes published, 0
        when nobody is subscribed (Bun's numbers)."""
        if self._srv is None:
            return 0  # stopped: as Bun's publish after stop
        self._ensure_cork()
        t = topic.encode()
        if isinstance(data, str):
            b, flags = data.encode(), _compress(compress)
        else:
            b, flags = bytes(data), SEND_BINARY | _compress(compress)
        out = (ctypes.c_uint64 * 4)()  # volley_publish_result: delivered, backpressured, dropped, forwarded
        r = n.server_publish(self._srv, t, len(t), b, len(b), flags, ctypes.cast(out, ctypes.c_void_p))
        if r == RESULT_STOPPED:
            return 0
        _check(r, "publish")
        # Bun's number: the bytes, or 0 when nobody is subscribed.
        return len(b) if out[0] + out[1] + out[3] > 0 else 0

    def subscriber_count(self, topic: str) -> int:
        t = topic.encode()
        out = ctypes.c_size_t()
        _check(n.subscriber_count(self._srv, t, len(t), ctypes.byref(out)), "subscriber_count")
        return int(out.value)

    def stats(self) -> dict[str, int]:
        """The engine's counters."""
        names = ["connections", "opened", "refused", "messages_in", "requests", "publishes", "frames_encoded",
                 "compressions", "delivered", "dropped", "mailbox_full", "bytes_out", "buffered", "polls",
                 "polled_events", "bridged_out", "bridged_in", "bridge_lost"]
        buf = ctypes.create_string_buffer(8 + 8 * len(names))
        struct.pack_into("<I", buf, 0, len(buf))
        _check(n.stats(self._srv, buf), "stats")
        return dict(zip(names, struct.unpack_from(f"<{len(names)}Q", buf, 8)))

    async def stop(self, close_active_connections: bool = True) -> None:
        """Stop listening; with ``close_active_connections`` (the default
        here) close 1001 to every WebSocket (they have the close timeout to
        finish), else let the open connections end on their own (Bun's
        ``stop(false)``). Returns once they have: the last events are
        delivered and the server freed. Never blocks the loop."""
        if self._stopping is not None:
            return await self._stopping
        self._stopping = self._loop.create_future()
        # Bun's stop(closeActiveConnections): with it, every WebSocket gets
        # 1001; without, the server stops listening and the open
        # connections finish on their own (stop returns when they have).
        flags = STOP_GRACEFUL if close_active_connections else STOP_LISTEN_ONLY
        n.server_stop(self._srv, flags | STOP_NO_WAIT)
        while n.server_is_running(self._srv):
            self._drain()
            await asyncio.sleep(0.005)
        self._drain()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._loop.remove_reader(self._fd)
        srv, self._srv = self._srv, None
        if self._corked:
            # The cork depth is this thread's: end ours before the server goes
            # (its scheduled uncork will find no server), or every later send
            # from this thread, to any server, would wait for another wake-up.
            self._corked = False
            n.uncork(srv)
        n.server_free(srv)
        if self.unix is not None and self._unlink_on_stop:
            try:
                if stat.S_ISSOCK(os.stat(self.unix).st_mode):
                    os.remove(self.unix)
            except OSError:
                pass
        self._stopping.set_result(None)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    open: SocketHandler | None = None,
    message: MessageHandler | None = None,
    close: CloseHandler | None = None,
    drain: SocketHandler | None = None,
    ping: ControlHandler | None = None,
    pong: ControlHandler | None = None,
    upgrade: RequestHandler | None = None,
    fetch: RequestHandler | None = None,
    per_message_deflate: bool | dict[str, Any] = False,
    max_payload_length: int | None = None,
    idle_timeout: float | None = None,
    backpressure_limit: int | None = None,
    close_on_backpressure_limit: bool | None = None,
    send_pings: bool | None = None,
    publish_to_self: bool | None = None,
    workers: int | None = None,
    tls: Mapping[str, Any] | None = None,
    max_request_body_size: int | None = None,
    pubsub_bridge: str | None = None,
    reuse_port: bool | None = None,
    handshake_timeout: float | None = None,
    close_timeout: float | None = None,
    unix: str | os.PathLike[str] | None = None,
) -> Server:
    """Start a server on the running loop, Bun-style.

    Handlers may be plain functions or coroutines. ``upgrade(request)``
    returns the connection's data (or an ``Accept``) to accept, or a
    ``Response`` to refuse; without it every upgrade is accepted.
    ``fetch(request)`` answers plain HTTP with a ``Response`` (or str/bytes;
    ``event_stream(topics)`` for Server-Sent Events). ``pubsub_bridge``
    (``redis://[:password@]host[:port][/prefix]`` or ``rediss://``) carries
    publishes to every process bridged to the same Redis. The port is this
    server's alone (``OSError`` "address in use" when taken) unless
    ``reuse_port`` (Bun's ``reusePort``) shares it with other processes.
    ``handshake_timeout`` (seconds, default 10): time for a request and an
    upgrade's answer; ``close_timeout`` (default 5): time for the peer to
    answer our close frame. ``unix`` (Bun's ``unix``): listen on a Unix
    stream socket at this path instead of TCP (``port`` must then be 0;
    the path must not exist; the socket file is removed when the server
    stops, as Bun removes it).
    """
    loop = asyncio.get_running_loop()
    handlers = {"open": open, "message": message, "close": close, "drain": drain, "ping": ping, "pong": pong,
                "upgrade": upgrade, "fetch": fetch}
    opts = dict(port=port, host=host, per_message_deflate=per_message_deflate, max_payload_length=max_payload_length,
                idle_timeout=idle_timeout, backpressure_limit=backpressure_limit,
                close_on_backpressure_limit=close_on_backpressure_limit, send_pings=send_pings,
                publish_to_self=publish_to_self, workers=workers, tls=tls, max_request_body_size=max_request_body_size,
                pubsub_bridge=pubsub_bridge, reuse_port=reuse_port, handshake_timeout=handshake_timeout,
                close_timeout=close_timeout, unix=unix)
    return Server(loop, handlers, opts)


def serve_forever(**kwargs: Any) -> None:
    """``serve(**kwargs)`` for scripts without asyncio: runs until Ctrl-C,
    then stops cleanly (1001 to every client)."""

    async def main() -> None:
        server = await serve(**kwargs)
        print(f"listening {server.port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
