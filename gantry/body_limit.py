"""Request bodies are refused past their limit before they are read, at the ASGI layer.

Django's ASGI handler reads a whole body (into memory, then a temporary file) before any
middleware or view sees the request, and a chunked body without ``Content-Length`` is then
treated as empty by DRF. This wrapper runs in front of it: a declared length over the limit
is answered 413 without reading a byte of the body; a body sent without one is read no
further than the limit (413 past it) and handed on with its ``Content-Length``, so Django
reads it like any other. Under ``/api/`` the limit is ``GANTRY_API_MAX_BODY`` and the 413 is
the API's JSON error; elsewhere ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and an HTML page.

Under WSGI (the test client, or a WSGI server) Django's own ``RequestDataTooBig`` and the
API's parser enforce the same limits; ``api.errors.handler400`` answers those with 413 too.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from gantry.parsing import IntegerInvalid, parse_int

PAGE_413 = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Request too large · Gantry</title></head>
<body><main><h1>Request too large</h1>
<p>What was sent is larger than the {limit} bytes Gantry accepts. A design's form is a few
kilobytes: go back and send it again without the pasted extras.</p></main></body></html>
"""


def body_limit(path: str) -> int:
    """The largest body accepted for ``path``."""
    if path.startswith("/api/"):
        return settings.GANTRY_API_MAX_BODY
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large_answer(path: str, limit: int) -> tuple[str, bytes]:
    """The 413's content type and body: the API's JSON error, or a page."""
    if path.startswith("/api/"):
        message = f"The request body is larger than {limit} bytes."
        return "application/json", json.dumps({"message": message}).encode()
    return "text/html; charset=utf-8", PAGE_413.format(limit=limit).encode()


async def _answer(send, status: int, content_type: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = body_limit(path)
        headers = [(k.lower(), v) for k, v in scope.get("headers", [])]
        declared = next((v for k, v in headers if k == b"content-length"), None)
        if declared is not None:
            try:
                length = parse_int(declared.decode("latin-1").strip(), field="Content-Length")
            except IntegerInvalid:
                body = json.dumps({"message": "Content-Length is not a number of bytes."})
                await _answer(send, 400, "application/json", body.encode())
                return
            if length > limit:
                await _answer(send, 413, *too_large_answer(path, limit))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, *too_large_answer(path, limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if declared is None and body:
            headers = [(k, v) for k, v in headers if k != b"transfer-encoding"]
            headers.append((b"content-length", str(len(body)).encode()))
            scope = {**scope, "headers": headers}
        replayed = False

        async def replay() -> dict:
            # The body once, then the server's own messages (a disconnect ends a stream).
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
