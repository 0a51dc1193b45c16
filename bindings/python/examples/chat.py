"""Chat rooms as topics, Bun style: `python examples/chat.py [port]`.

    ws://HOST:PORT/room/NAME?user=USER    join room NAME as USER
    POST /room/NAME                       announce the body to the room
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from urllib.parse import parse_qs

import volley


@dataclass
class Member:
    user: str
    room: str


def room_of(path: str) -> str | None:
    parts = path.strip("/").split("/")
    return parts[1] if len(parts) == 2 and parts[0] == "room" and parts[1] else None


async def main(port: int) -> None:
    server: volley.Server

    def upgrade(req: volley.Request) -> Member | volley.Response:
        room = room_of(req.path)
        user = parse_qs(req.query).get("user", [""])[0]
        if not room or not user:
            return volley.Response("join /room/NAME?user=USER\n", 400)
        return Member(user, room)

    def open_(ws: volley.ServerWebSocket[Member]) -> None:
        ws.subscribe(ws.data.room)
        server.publish(ws.data.room, f"{ws.data.user} joined")

    def message(ws: volley.ServerWebSocket[Member], data: str | bytes) -> None:
        text = data if isinstance(data, str) else data.decode(errors="replace")
        server.publish(ws.data.room, f"{ws.data.user}: {text}")

    def close(ws: volley.ServerWebSocket[Member], code: int, reason: str) -> None:
        server.publish(ws.data.room, f"{ws.data.user} left")

    def fetch(req: volley.Request) -> volley.Response:
        room = room_of(req.path)
        if req.method == "POST" and room:
            server.publish(room, f"announcement: {req.text()}")
            return volley.Response("sent\n")
        return volley.Response("not found\n", 404)

    server = await volley.serve(port=port, upgrade=upgrade, open=open_, message=message, close=close, fetch=fetch)
    print(f"listening {server.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))
    except KeyboardInterrupt:
        pass
