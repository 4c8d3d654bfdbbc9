"""uvicorn's httptools HTTP protocol, answering the fast lane's calls itself.

Behind uvicorn every request costs a scope, a request-response cycle, an asyncio task, two ASGI
messages and two socket writes (head, body): more than the work of a cached element GET. This
protocol asks the fast lane when a request's headers are complete: a GET it can answer at once
(:meth:`FastLane.answer_now`) is answered when the request ends, in one write, with no task; a value
PATCH it accepts (:meth:`FastLane.accept_write`) runs as one small task that writes the response.
Everything else goes to uvicorn unchanged: other methods, HEAD, query strings, percent-encoded
paths, HTTP/1.0, chunked bodies, upgrades, a request behind another one still being answered on the
same connection (so pipelined requests are answered in order), a client that does not read its
answers, and anything the lane cannot decide without an await. The responses carry what uvicorn
would have sent for the lane's answers: uvicorn's default headers (date, server), content-type and
content-length when there is a body, `connection: close` when the connection is not kept alive; the
access log line is written when it is on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from twin_server.fastlane import FastLane, Route

log = logging.getLogger(__name__)
_JSON = b"content-type: application/json\r\ncontent-length: "


class _Pending:
    """Stands in for uvicorn's request-response cycle while a fast PATCH is answered: later requests on the
    connection queue behind it, and uvicorn's connection_lost and shutdown find what they look at."""

    __slots__ = ("disconnected", "keep_alive", "response_complete")

    def __init__(self, keep_alive: bool) -> None:
        self.response_complete = False
        self.disconnected = False
        self.keep_alive = keep_alive

    @property
    def message_event(self) -> _Pending:
        return self

    def set(self) -> None:
        """uvicorn wakes a cycle's reader on disconnect; a fast PATCH has read its body already."""


class FastHttpToolsProtocol(HttpToolsProtocol):
    """Use :func:`protocol_for` to get the class for one application's lane."""

    lane: FastLane

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        #: The lane's answer to the GET being parsed, when it is served here.
        self._answer: bytes | None = None
        #: The route of the PATCH being parsed, when it is served here, and its body so far.
        self._write: Route | None = None
        self._body: list[bytes] = []
        #: A GET was answered here during the current data_received.
        self._answered = False
        #: When the connection went idle after GETs answered here (None: a request is under way or uvicorn
        #: keeps the time), and the timer that closes it once it has been idle for the keep-alive timeout.
        self._idle_since: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        self._answered = False
        self._idle_since = None
        super().data_received(data)
        if (self._answered and self.timeout_keep_alive_task is None and not self.transport.is_closing()
                and (self.cycle is None or self.cycle.response_complete)):
            # What uvicorn's on_response_complete does after the last answer (close the connection once idle
            # for the keep-alive timeout), with one timer for many requests instead of one per request (making
            # and cancelling a timer costs more than a third of the protocol's Python work for a GET).
            self._idle_since = self.loop.time()
            if self._idle_timer is None:
                self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self._idle_since is None:
            return  # busy: the end of the request arms a timer again (this protocol's or uvicorn's)
        remaining = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if remaining > 0:
            self._idle_timer = self.loop.call_later(remaining, self._idle_check)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._answer = None
        self._write = None
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        url = self.url
        if (url[:1] == b"/" and b"?" not in url and b"%" not in url and self.limit_concurrency is None
                and (self.cycle is None or self.cycle.response_complete) and not self.pipeline
                and not self.flow.write_paused and self.parser.get_http_version() == "1.1"
                and not self.parser.should_upgrade()):
            method = self.parser.get_method()
            try:
                path = self.root_path + url.decode("ascii")
            except UnicodeDecodeError:
                path = ""
            try:
                if path and method == b"GET":
                    self._answer = self.lane.answer_now(path, self.headers)
                elif path and method == b"PATCH":
                    self._write = self.lane.accept_write(path, self.headers)
                    self._body = []
            except Exception:  # the application answers it, and reports what went wrong
                log.exception("fast lane: %s %s left to the application", method.decode("ascii"), path)
                self._answer = self._write = None
            if self._answer is not None or self._write is not None:
                self.scope["path"] = path
                return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._write is not None:
            self._body.append(body)  # no more than the declared length, which is within the lane's limit
        elif self._answer is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        if self._write is not None:
            route, self._write = self._write, None
            pending = _Pending(keep_alive)
            self.cycle = pending  # type: ignore[assignment]
            task = self.loop.create_task(self._patch(route, b"".join(self._body), self.scope["path"], pending))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            self._body = []
            return
        answer = self._answer
        if answer is None:
            super().on_message_complete()
            return
        self._answer = None
        self._respond("GET", self.scope["path"], 200, answer, [], keep_alive)
        self.server_state.total_requests += 1
        self._answered = True
        if not keep_alive:
            self.transport.close()

    async def _patch(self, route: Route, body: bytes, path: str, pending: _Pending) -> None:
        status, answer, extra = await self.lane.write(route, body, path)
        pending.response_complete = True
        if pending.disconnected or self.transport.is_closing():
            return
        self._respond("PATCH", path, status, answer, extra, pending.keep_alive)
        if not pending.keep_alive:
            self.transport.close()
        self.on_response_complete()  # uvicorn: count it, go on reading, start a queued request or the idle timer

    def _respond(self, method: str, path: str, status: int, answer: bytes, extra: list[tuple[bytes, bytes]],
                 keep_alive: bool) -> None:
        content = [STATUS_LINE[status]]
        if status != 204:
            content += [_JSON, str(len(answer)).encode(), b"\r\n"]
        for name, value in [*self.server_state.default_headers, *extra]:
            content += [name, b": ", value, b"\r\n"]
        content += [b"\r\n" if keep_alive else b"connection: close\r\n\r\n", answer]
        if self.access_log:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', client, method, path, "1.1", status)
        self.transport.write(b"".join(content))


def protocol_for(lane: FastLane) -> type[FastHttpToolsProtocol]:
    """The protocol class to give uvicorn (`uvicorn.Config(http=...)`) for the application owning `lane`."""
    return type("TwinHttpProtocol", (FastHttpToolsProtocol,), {"lane": lane})
