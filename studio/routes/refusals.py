"""How a refusal reaches the page: ``{"errors": [{"field", "message"}]}`` with an HTTP status, so the page
shows each message next to its field."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from studio.spec import Problems, problem
from studio.uploads import UploadError


def refuse(status: int, *problems: dict) -> JSONResponse:
    return JSONResponse({"errors": list(problems)}, status_code=status)


def add_refusal_handlers(app: FastAPI) -> None:
    """The errors the routes raise, as refusals: a bad upload, problems with a state or spec, a missing file."""

    @app.exception_handler(UploadError)
    async def _upload_error(request, err: UploadError):
        return refuse(err.status, problem(err.field, err.message))

    @app.exception_handler(Problems)
    async def _problems(request, err: Problems):
        return refuse(422, *err.problems)

    @app.exception_handler(FileNotFoundError)
    async def _not_found(request, err: FileNotFoundError):
        return refuse(404, problem("file", str(err)))
