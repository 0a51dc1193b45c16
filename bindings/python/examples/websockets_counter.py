"""A shared counter for the `websockets` library: every client sees the
value and how many are connected, "+" and "-" change the value for all
(`broadcast`), `/healthz` answers plain HTTP through `process_request`,
and the server ends cleanly on SIGTERM. It runs on Volley by changing one
import — the lines below pick the library from VOLLEY_IMPL so the tests
can run it both ways.

    python examples/websockets_counter.py [port]
    VOLLEY_IMPL=websockets python examples/websockets_counter.py [port]
"""

import asyncio
import json
import os
import signal
import sys
from typing import Any

if os.environ.get("VOLLEY_IMPL") == "websockets":
    from websockets.asyncio.server import broadcast, serve
else:
    from volley.asyncio import broadcast, serve  # type: ignore[assignment]

USERS: set[Any] = set()
VALUE = 0


def state() -> str:
    return json.dumps({"value": VALUE, "users": len(USERS)})


def health_check(connection: Any, request: Any) -> Any:
    if request.path == "/healthz":
        return connection.respond(200, "OK\n")
    return None


async def counter(ws: Any) -> None:
    global VALUE
    USERS.add(ws)
    broadcast(USERS, state())
    try:
        async for message in ws:
            action = json.loads(message).get("action")
            if action == "+":
                VALUE += 1
            elif action == "-":
                VALUE -= 1
            else:
                await ws.send(json.dumps({"error": f"unknown action {action!r}"}))
                continue
            broadcast(USERS, state())
    finally:
        USERS.discard(ws)
        broadcast(USERS, state())


async def main(port: int) -> None:
    async with serve(counter, "127.0.0.1", port, process_request=health_check) as server:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, server.close)
        print(f"listening {port}", flush=True)
        await server.wait_closed()
    print("closed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
