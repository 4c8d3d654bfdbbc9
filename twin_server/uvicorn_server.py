"""uvicorn's server with an orderly stop for open event streams.

uvicorn's shutdown waits (up to its graceful timeout) for every response to finish before the application's
own shutdown runs; a dashboard's event stream never finishes by itself, so each stop would end in a
cancelled task and a logged traceback. This server ends those streams first.
"""

from __future__ import annotations

import socket

import uvicorn


class TwinUvicornServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        bus = getattr(getattr(self.config.app, "state", None), "events", None)
        if bus is not None:
            bus.end_streams()
        await super().shutdown(sockets)
