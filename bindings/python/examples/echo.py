"""Echo, Bun style, on Volley: `python examples/echo.py [port]` (Ctrl-C stops it)."""

import sys

import volley


def message(ws: volley.ServerWebSocket[None], data: str | bytes) -> None:
    # Bun's answer: the bytes sent, -1 when queued behind a backlog (a drain
    # follows), 0 when dropped. A client that sends faster than it reads is
    # slowed down, not silently dropped from: stop reading it until its
    # echoes have drained.
    if ws.send(data) == -1:
        ws.pause_reading()


def drain(ws: volley.ServerWebSocket[None]) -> None:
    ws.resume_reading()


if __name__ == "__main__":
    volley.serve_forever(port=int(sys.argv[1]) if len(sys.argv) > 1 else 9001, message=message, drain=drain)
