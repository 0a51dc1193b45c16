"""Checked by ``mypy --strict`` (scripts/test.sh), never run: each marked
line is a mistake the handler types must catch. ``--strict`` includes
``warn_unused_ignores``, so if a type loosened to ``Any`` an ignore below
would go unused and mypy would fail: these checks can fail."""

import volley
import volley.asyncio
from volley import ServerWebSocket
from volley.asyncio import ServerConnection


def message_without_payload(ws: ServerWebSocket[None]) -> None: ...


def message_text_only(ws: ServerWebSocket[None], msg: int) -> None: ...


def close_without_reason(ws: ServerWebSocket[None], code: str, reason: str) -> None: ...


def upgrade_taking_a_socket(ws: ServerWebSocket[None]) -> None: ...


async def handler_with_two_arguments(ws: ServerConnection, path: str) -> None: ...


def handler_not_async(ws: ServerConnection) -> None: ...


async def good(ws: ServerConnection) -> None:
    async for m in ws:
        await ws.send(m)


async def main() -> None:
    await volley.serve(message=message_without_payload)  # type: ignore[arg-type]
    await volley.serve(message=message_text_only)  # type: ignore[arg-type]
    await volley.serve(close=close_without_reason)  # type: ignore[arg-type]
    await volley.serve(upgrade=upgrade_taking_a_socket)  # type: ignore[arg-type]
    server: int = await volley.serve()  # type: ignore[assignment]
    volley.asyncio.serve(handler_with_two_arguments)  # type: ignore[arg-type]
    volley.asyncio.serve(handler_not_async)  # type: ignore[arg-type]
    async with volley.asyncio.serve(good, "127.0.0.1", 0) as s:
        await s.serve_forever(1)  # type: ignore[call-arg]
    # What is right passes.
    ok = await volley.serve(
        open=lambda ws: None,
        message=lambda ws, m: ws.send(m),
        close=lambda ws, code, reason: None,
        upgrade=lambda req: req.path,
    )
    await ok.stop()
    del server
