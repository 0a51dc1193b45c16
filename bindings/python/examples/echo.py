"""Echo, Bun style, on Volley: `python examples/echo.py [port]` (Ctrl-C stops it)."""

import sys

import volley


def message(ws: volley.ServerWebSocket[None], data: str | bytes) -> None:
    ws.send(data)


if __name__ == "__main__":
    volley.serve_forever(port=int(sys.argv[1]) if len(sys.argv) > 1 else 9001, message=message)
