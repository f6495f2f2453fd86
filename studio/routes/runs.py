"""The finished runs: their list, a run's page state (to load it again) and its files."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse

from studio.core import Studio
from studio.runs import list_runs, load_state, served_file


def router(studio: Studio) -> APIRouter:
    routes = APIRouter()

    @routes.get("/api/runs")
    def runs():
        return list_runs(studio.runs_dir)

    @routes.get("/api/runs/{run_id}/state")
    def run_state(run_id: str):
        return load_state(studio.runs_dir, run_id, studio.uploads, studio.bounded_spec)

    @routes.get("/api/runs/{run_id}/files/{name}")
    def run_file(run_id: str, name: str):
        path = served_file(studio.runs_dir, run_id, name)
        if path.suffix in (".yaml", ".json"):
            return PlainTextResponse(path.read_text())
        return FileResponse(path)

    return routes
