"""Volley for Python: a WebSocket server whose protocol, compression and
pub/sub run in Rust on every core, with two asyncio faces.

- Bun-shaped callbacks (the fast path)::

      server = await volley.serve(port=9001, message=lambda ws, m: ws.send(m))

- A ``websockets``-style connection API: ``volley.asyncio.serve(handler,
  host, port)``, where ``handler(ws)`` does ``async for message in ws``.
"""

from ._server import (
    Accept,
    Headers,
    Request,
    Response,
    Server,
    ServerWebSocket,
    event_stream,
    serve,
    serve_forever,
)

__all__ = [
    "Accept",
    "Headers",
    "Request",
    "Response",
    "Server",
    "ServerWebSocket",
    "event_stream",
    "serve",
    "serve_forever",
    "version",
]


def version() -> str:
    """The version of the loaded libvolley."""
    from . import _native

    return str(_native.version().decode())
