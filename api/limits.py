"""Request-body limits enforced while the body streams in, not after it has been spooled to disk.

:class:`BodyLimit` is a pure ASGI middleware: a request whose ``Content-Length`` is above its limit
is answered 413 at once, without reading the body; otherwise the bytes of the ``http.request``
messages are counted as they arrive, and as soon as the count passes the limit the middleware stops
reading, the app sees a disconnect, and the client gets 413 (or, if the app had already started its
response, the connection is aborted). The 413 carries ``Connection: close``: the rest of the body is
never read.

:func:`copy_limited` bounds one file of a multipart batch (``SOHOA_MAX_UPLOAD_MB``) while copying it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, BinaryIO

from ingest import InputError

log = logging.getLogger("sohoa.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MiB = 1024 * 1024
CHUNK = MiB


def describe_size(n: int) -> str:
    """``536870912`` → ``512 MB``; ``1536`` → ``1.5 KB`` (binary units, as the settings use)."""
    for unit, size in (("GB", 1024**3), ("MB", MiB), ("KB", 1024)):
        if n >= size:
            v = n / size
            return f"{v:,.0f} {unit}" if v == int(v) else f"{v:,.1f} {unit}"
    return f"{n} byte"


def too_large_message(limit: int) -> str:
    size = describe_size(limit)
    return f"tệp tải lên quá lớn: vượt giới hạn {size} (upload too large: over the {size} limit)"


class _BodyTooLarge(Exception):
    """Raised from ``receive`` into the app when the body passes the limit (the app should not catch it)."""


class BodyLimit:
    """Refuse request bodies above ``limit_for(scope)`` bytes (``None``: no limit) with 413 JSON."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Any], int | None]) -> None:
        """*limit_for* gets the ASGI scope (a dict) and returns the byte limit, or ``None`` for none."""
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            log.warning("%s %s refused: Content-Length %d above %d", scope["method"], scope["path"], declared, limit)
            await _send_413(send, limit)
            return

        received = 0
        refused = False  # the body passed the limit: nothing more is read from the client
        started = False  # a response has begun (the app's, or our 413)
        answered = False  # our 413 was sent in full

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, answered
            if refused:
                # The app answers after we cut its body off (FastAPI turns a failed form parse into 400):
                # the client gets our 413 instead, and nothing of the app's response.
                if not started and message["type"] == "http.response.start":
                    started = answered = True
                    await _send_413(send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not refused:
                raise
            log.debug("app failed after its request body was cut off", exc_info=True)
        if not refused:
            return
        log.warning("%s %s refused: body passed %d bytes while streaming", scope["method"], scope["path"], limit)
        if not started:
            await _send_413(send, limit)
        elif not answered:
            # Too late for a 413: returning with the response unfinished makes the server drop the connection.
            log.warning("%s %s: response already started, connection aborted", scope["method"], scope["path"])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": {"message": too_large_message(limit)}}, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def copy_limited(src: BinaryIO, dst: BinaryIO, limit: int, name: str) -> int:
    """Copy ``src`` to ``dst`` in 1 MiB chunks; :class:`InputError` 413 as soon as more than ``limit``
    bytes arrive (at most ``limit + 1`` bytes are read, at most ``limit`` written). Returns the size."""
    copied = 0
    while True:
        chunk = src.read(min(CHUNK, limit - copied + 1))
        if not chunk:
            return copied
        if copied + len(chunk) > limit:
            size = describe_size(limit)
            raise InputError(
                f"tệp quá lớn: vượt giới hạn {size} mỗi tệp (file too large: over the {size} per-file limit, "
                "SOHOA_MAX_UPLOAD_MB)",
                413,
                filename=name,
            )
        dst.write(chunk)
        copied += len(chunk)
