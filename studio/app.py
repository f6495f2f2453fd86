"""The motion studio's web server: one static page (``studio/static``) and a small JSON API.

Every request that names something on disk names it by an id the server made (an upload's content
hash, a run's time stamp, a clip id from the ingest manifest, a file name from a fixed list), and
the id is checked before a path is built from it. Uploads are read up to the size limit and no
further, JSON bodies up to ``--max-body-kb`` (``studio.body``); every page state and spec is held
to the studio's bounds (``studio.bounds``) before any mask is drawn. Videos queue (``studio.jobqueue``).
Refusals are ``{"errors": [{"field", "message"}]}``: the page shows each message next to its field.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from studio.body import BodyLimit
from studio.core import Studio, build_studio
from studio.routes import inputs, jobs, page, runs, specs
from studio.routes.page import STATIC
from studio.routes.refusals import add_refusal_handlers
from studio.settings import Settings


def create_app(settings: Settings, studio: Studio | None = None) -> FastAPI:
    """The studio's app: its static files, the refusal handlers and one router per job (``studio.routes``)."""
    studio = studio or build_studio(settings)
    app = FastAPI(title="maskmotion studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio
    # every JSON route: the upload route reads its own body, up to --max-upload-mb
    app.add_middleware(BodyLimit, limit=studio.settings.bounds.max_body_bytes, applies=_json_route)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_refusal_handlers(app)
    for routes in (page, inputs, specs, jobs, runs):
        app.include_router(routes.router(studio))
    return app


def _json_route(path: str) -> bool:
    return path.startswith("/api/") and not path.startswith("/api/upload/")
