"""A server written for the `websockets` library: an echo with a greeting,
a rejected path, and a close code. It runs on Volley by changing one
import — the lines below pick the library from VOLLEY_IMPL so the tests can
run it both ways; a program of your own would just write the import.

    python examples/websockets_echo.py [port]                       # on Volley
    VOLLEY_IMPL=websockets python examples/websockets_echo.py [port]  # on websockets
"""

import asyncio
import os
import sys
from typing import Any

if os.environ.get("VOLLEY_IMPL") == "websockets":
    from websockets.asyncio.server import serve
else:
    from volley.asyncio import serve  # type: ignore[assignment]


def process_request(connection: Any, request: Any) -> Any:
    if request.path == "/private":
        return connection.respond(403, "private\n")
    return None


async def handler(ws: Any) -> None:
    await ws.send(f"hello {ws.request.path}")
    async for message in ws:
        if message == "bye":
            await ws.close(4000, "bye")
            break
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, process_request=process_request) as server:
        print(f"listening {port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
