"""Request bodies read up to a limit and no further, announced (Content-Length) or streamed (chunked).

Every JSON route takes ``--max-body-kb`` (``Bounds.max_body_kb``): a page state is a few kB, and
FastAPI would otherwise read any body whole before a route sees it (a 500 MB body: 1.5 GB of memory).
Uploads take ``--max-upload-mb``, checked by their route as the bytes arrive (``read_body``).
"""

from __future__ import annotations

import json

from studio.uploads import UploadError

MB = 1 << 20


def too_big(n: int, limit: int, setting: str, what: str = "the file", unit: str = "MB") -> str:
    scale = MB if unit == "MB" else 1024
    return f"{what} is {n / scale:.3g} {unit}, the limit is {limit / scale:.3g} {unit} ({setting})"


async def read_body(request, limit: int, field: str) -> bytes:
    """An upload's body, refused past ``limit`` bytes (announced or actually sent)."""
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > limit:
        raise UploadError(field, too_big(int(announced), limit, "--max-upload-mb"), 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadError(field, too_big(len(body), limit, "--max-upload-mb"), 413)
    return bytes(body)


class BodyLimit:
    """ASGI middleware: a body past ``limit`` bytes on a path ``applies(path)`` is answered 413 as soon as
    it is announced or has arrived, and never handed to the route; other paths pass through untouched."""

    def __init__(self, app, limit: int, applies):
        self.app, self.limit, self.applies = app, limit, applies

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.applies(scope["path"]):
            return await self.app(scope, receive, send)
        announced = dict(scope["headers"]).get(b"content-length", b"")
        if announced.isdigit() and int(announced) > self.limit:
            return await self._refuse(send, int(announced))
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await self._refuse(send, None)
            more = message.get("more_body", False)
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, send, n: int | None) -> None:
        """413; ``n`` None: a streamed body, refused once past the limit (its full size is never known)."""
        if n is None:
            message = f"the request body is over {self.limit / 1024:.3g} kB, the limit (--max-body-kb)"
        else:
            message = too_big(n, self.limit, "--max-body-kb", "the request body", "kB")
        data = json.dumps({"errors": [{"field": "general", "message": message}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        headers.append((b"connection", b"close"))  # the rest of the body is not read: the connection ends here
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: a disconnect, when the client goes

    return replay
