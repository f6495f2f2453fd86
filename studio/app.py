"""The motion studio's web server: one static page (``studio/static``) and a small JSON API.

Every request that names something on disk names it by an id the server made (an upload's content
hash, a run's time stamp, a clip id from the ingest manifest, a file name from a fixed list), and
the id is checked before a path is built from it. Uploads are read up to the size limit and no
further, JSON bodies up to ``--max-body-kb`` (``studio.body``); every page state and spec is held
to the studio's bounds (``studio.bounds``) before any mask is drawn. Videos queue (``studio.jobqueue``).
Refusals are ``{"errors": [{"field", "message"}]}``: the page shows each message next to its field.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from studio.body import BodyLimit, read_body
from studio.core import Studio, build_studio, clip_ids, default_state
from studio.cutout import tiny_cutout
from studio.jobs import Busy
from studio.preview import preview
from studio.runs import list_runs, load_state, served_file, write_inputs
from studio.settings import Settings
from studio.spec import PNG_IN_SPEC, Problems, from_spec, problem
from studio.uploads import UploadError, fit_to_frame
from tasks.common.io import load_clip
from tasks.common.params import ConfigError, validate_config
from tasks.contract import read_clip_manifest
from tasks.masks.sequences import SequenceSpec

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def refuse(status: int, *problems: dict) -> JSONResponse:
    return JSONResponse({"errors": list(problems)}, status_code=status)


def create_app(settings: Settings, studio: Studio | None = None) -> FastAPI:
    studio = studio or build_studio(settings)
    app = FastAPI(title="maskmotion studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio
    # every JSON route: the upload route reads its own body, up to --max-upload-mb
    app.add_middleware(BodyLimit, limit=studio.settings.bounds.max_body_bytes, applies=_json_route)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(UploadError)
    async def _upload_error(request, err: UploadError):
        return refuse(err.status, problem(err.field, err.message))

    @app.exception_handler(Problems)
    async def _problems(request, err: Problems):
        return refuse(422, *err.problems)

    @app.exception_handler(FileNotFoundError)
    async def _not_found(request, err: FileNotFoundError):
        return refuse(404, problem("file", str(err)))

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/config")
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

    @app.post("/api/upload/{kind}")
    async def upload(kind: str, request: Request):
        field = request.query_params.get("field", "upload")[:60]
        if kind not in ("image", "mask"):
            raise UploadError(field, f"unknown upload kind '{kind[:20]}'", 404)
        q = request.query_params
        given = [q["height"], q["width"]] if "height" in q and "width" in q else None
        size = None if q.get("as_is") == "1" else studio.size_of(given)
        data = await read_body(request, studio.settings.max_upload_bytes, field)
        if kind == "image":
            upload_id, note = studio.uploads.save_image(data, size or studio.model.default_size, field)
        else:
            upload_id, note = studio.uploads.save_mask(data, size, field)
        return {"upload": upload_id, "note": note}

    @app.get("/api/uploads/{kind}/{name}")
    def uploaded(kind: str, name: str):
        path = studio.uploads.existing(kind, name.removesuffix(".png"), "upload")
        return FileResponse(path, media_type="image/png")

    @app.post("/api/clip-frame")
    def clip_frame(body: dict):
        clip, frame = body.get("clip"), body.get("frame")
        table = read_clip_manifest(studio.settings.clips_dir)
        rows = table[table["id"] == clip]
        if rows.empty:
            raise UploadError("first_frame", f"no ingested clip '{str(clip)[:40]}'")
        folder = Path(studio.settings.clips_dir).resolve()
        path = (folder / rows.iloc[0]["clip"]).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise UploadError("first_frame", f"clip '{clip}' is not a file under {studio.settings.clips_dir}")
        frames = load_clip(path)["frames"]
        if not isinstance(frame, int) or not 0 <= frame < len(frames):
            raise UploadError("first_frame", f"clip '{clip}' has frames 0 to {len(frames) - 1}")
        size = studio.size_of(body.get("size"))
        fitted, note = fit_to_frame(frames[frame], size, cv2.INTER_AREA)  # as an uploaded image is fitted
        return {"upload": studio.uploads.store_image(fitted), "note": note}

    @app.post("/api/cutout")
    def cutout(body: dict):
        field = str(body.get("field", "objects"))[:60]
        image_id = body.get("image")
        if not image_id:
            raise UploadError(field, "a cut-out needs a first frame: upload an image or pick a clip frame")
        image = studio.uploads.read_image(image_id)
        try:
            mask = studio.cutter.cut(image, float(body["x"]), float(body["y"]))
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise UploadError(field, str(err) or "x and y must be numbers") from None
        tiny = tiny_cutout(mask)
        return {
            "upload": studio.uploads.store_mask(mask, field),
            "method": studio.cutter.describe(),
            "warnings": [problem(field, tiny)] if tiny else [],
        }

    @app.post("/api/preview")
    def preview_route(body: dict):
        c = studio.check(body)
        shown = preview(c.spec, c.per_object, c.first_frame, studio.stages.generate.fps)
        return {**shown, "errors": c.errors, "warnings": c.warnings}

    @app.post("/api/spec/load")
    def load_spec_text(body: dict):
        """A spec YAML the page was given, with the PNGs chosen with it (as upload ids by file name)."""
        files = body.get("files") or {}
        try:
            raw = yaml.safe_load(str(body.get("yaml", ""))) or {}
        except yaml.YAMLError as err:
            raise Problems([problem("spec", f"not YAML: {str(err).splitlines()[0]}")]) from None
        try:
            spec = validate_config(SequenceSpec, raw if isinstance(raw, dict) else {}, "spec")
        except ConfigError as err:
            raise Problems([problem("spec", line.strip()) for line in str(err).splitlines()[1:]]) from None
        try:  # the spec's problems are said at the spec's field: the page's own fields are not what was loaded
            studio.bounded_spec(spec)
        except Problems as err:
            raise Problems([_at_spec(p) for p in err.problems]) from None

        def upload_for(name: str, i: int) -> str:
            base = Path(name).name
            if not PNG_IN_SPEC.match(base) or base not in files:
                raise Problems([problem("spec", f"objects.{i}.mask '{name}': choose {base} together with the spec")])
            studio.uploads.existing("objects", files[base], "spec")
            return files[base]

        try:
            return from_spec(spec, upload_for, {"prompt": str(body.get("prompt", ""))})
        except Problems as err:
            raise Problems([_at_spec(p) for p in err.problems]) from None

    @app.post("/api/generate")
    def generate(body: dict):
        checked = studio.check(body, for_generate=True)
        if checked.errors:
            raise Problems(checked.errors)
        state = checked.state
        try:  # the run folder is written only once the queue has room: a refusal leaves nothing
            job = studio.generator.submit(lambda: write_inputs(studio.runs_dir, state, studio.uploads), state)
        except Busy as err:
            raise Problems([problem("generate", str(err))]) from None
        return {"job": job.id, "run": job.run, "queue": studio.generator.queue()}

    @app.get("/api/jobs")
    def job_queue():
        return studio.generator.queue()

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str):
        job = studio.generator.jobs.get(job_id)
        if job is None:
            raise FileNotFoundError(f"no job {job_id[:20]}")
        return job.snapshot()

    @app.post("/api/jobs/{job_id}/cancel")
    def job_cancel(job_id: str):
        job = studio.generator.cancel(job_id)
        if job is None:
            raise FileNotFoundError(f"no job {job_id[:20]}")
        if job.state in ("done", "failed"):
            ended = "finished" if job.state == "done" else "failed"
            return refuse(409, problem("generate", f"job {job.id} has already {ended}: nothing to cancel"))
        return job.snapshot()

    @app.get("/api/runs")
    def runs():
        return list_runs(studio.runs_dir)

    @app.get("/api/runs/{run_id}/state")
    def run_state(run_id: str):
        return load_state(studio.runs_dir, run_id, studio.uploads, studio.bounded_spec)

    @app.get("/api/runs/{run_id}/files/{name}")
    def run_file(run_id: str, name: str):
        path = served_file(studio.runs_dir, run_id, name)
        if path.suffix in (".yaml", ".json"):
            return PlainTextResponse(path.read_text())
        return FileResponse(path)

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    return app


def _json_route(path: str) -> bool:
    return path.startswith("/api/") and not path.startswith("/api/upload/")


def _at_spec(p: dict) -> dict:
    """A loaded spec's problem, said at the spec's field with its own key."""
    return problem("spec", p["message"] if p["message"].startswith(p["field"]) else f"{p['field']}: {p['message']}")
