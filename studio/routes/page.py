"""The page itself and what it starts with: the model, the bounds, the clips and a default state."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from studio.core import Studio, clip_ids, default_state

STATIC = Path(__file__).resolve().parent.parent / "static"


def router(studio: Studio) -> APIRouter:
    routes = APIRouter()

    @routes.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @routes.get("/api/config")
    def config():
        s = studio
        return {
            "checkpoint": s.model.name,
            "checkpoint_problem": s.model.problem,
            "window": s.model.window,
            "size_multiple": s.model.multiple,
            "mode": s.generator.runner.mode,
            "deployment": s.settings.deployment if s.settings.via_deployment else None,
            "cutout": s.cutter.describe(),
            "steps": s.stages.generate.num_inference_steps,
            "fps": s.stages.generate.fps,
            "max_upload_mb": s.settings.max_upload_mb,
            "bounds": s.settings.bounds.model_dump(),
            "clips": clip_ids(s),
            "default_state": default_state(s),
        }

    @routes.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    return routes
