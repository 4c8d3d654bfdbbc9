"""Request body size limit (413) as plain ASGI middleware, so no handler ever buffers more; the fast lane,
which runs in front of it, reads bodies with :func:`read_body` under the same limit."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twin_server.errors import result_body


class BodyTooLarge(Exception):
    pass


def declared_too_large(headers: Iterable[tuple[bytes, bytes]], max_bytes: int) -> bool:
    """True when the request's Content-Length already says more than `max_bytes`."""
    for key, value in headers:
        if key == b"content-length":
            return value.isdigit() and int(value) > max_bytes
    return False


async def read_body(receive: Receive, max_bytes: int) -> bytes:
    """The whole request body; :class:`BodyTooLarge` as soon as more than `max_bytes` arrived."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def reject(send: Send, max_bytes: int) -> None:
    """Answer 413 in the result format."""
    body = result_body(413, f"request body larger than {max_bytes} bytes")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(scope.get("headers", []), self.max_bytes):
            await reject(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await reject(send, self.max_bytes)
