"""The motion studio's web server: one static page (``studio/static``) and a small JSON API.

Every request that names something on disk names it by an id the server made (an upload's content
hash, a run's time stamp, a clip id from the ingest manifest, a file name from a fixed list), and
the id is checked before a path is built from it. Uploads are read up to the size limit and no
further. Refusals are ``{"errors": [{"field", "message"}]}``: the page shows each message next to
its field.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from studio.cutout import Cutter
from studio.jobs import Busy, Deployment, Generator, InProcess
from studio.model_info import ModelInfo, model_info, size_problems
from studio.preview import preview
from studio.runs import list_runs, load_state, mask_file, served_file, write_inputs
from studio.settings import Settings, StageSettings, stage_settings
from studio.spec import (
    PNG_IN_SPEC,
    PageState,
    Problems,
    from_spec,
    parse_state,
    problem,
    render,
    sequence_problems,
    to_spec,
)
from studio.uploads import UploadError, Uploads, ensure_data_dir, fit_to_frame
from tasks.common.io import load_clip
from tasks.common.params import ConfigError, validate_config
from tasks.common.toy import SHAPES
from tasks.contract import read_clip_manifest
from tasks.masks.sequences import SequenceSpec

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def refuse(status: int, *problems: dict) -> JSONResponse:
    return JSONResponse({"errors": list(problems)}, status_code=status)


@dataclass
class Studio:
    settings: Settings
    stages: StageSettings
    model: ModelInfo
    uploads: Uploads
    cutter: Cutter
    generator: Generator

    @property
    def runs_dir(self) -> Path:
        return self.settings.data_dir  # runs are <UTC time>-<id>/ beside uploads/

    def size_of(self, given) -> tuple[int, int]:
        """The frame size an upload is fitted to ([height, width] from the page, else the model's), checked."""
        try:
            size = (int(given[0]), int(given[1])) if given else self.model.default_size
        except (TypeError, ValueError, IndexError):
            raise UploadError("size", "height and width must be whole numbers") from None
        if not all(8 <= s <= 4096 for s in size):
            raise UploadError("size", "height and width must be 8 to 4096 pixels")
        return size

    def check(self, raw: dict, for_generate: bool = False) -> Checked:
        """A page state checked as generate would check it. A spec that does not validate or render
        raises Problems; what only generate refuses (a size, an empty frame) is in ``errors``."""
        state = parse_state(raw)
        spec = to_spec(state, mask_file)
        per_object = render(spec, self.uploads.root)
        errors = sequence_problems(per_object)
        size_errors, warnings = size_problems(spec.size, self.model)
        errors += size_errors
        first = None
        if state.first_frame.source == "image":
            if state.first_frame.upload is None:
                errors.append(problem("first_frame", "choose an image or a clip frame, or let the ControlNet make it"))
            else:
                first = self.uploads.read_image(state.first_frame.upload)
                if first.shape[:2] != tuple(spec.size):
                    errors.append(
                        problem(
                            "first_frame",
                            f"the first frame is {first.shape[1]}x{first.shape[0]}, the video is "
                            f"{spec.size[1]}x{spec.size[0]}: choose it again",
                        )
                    )
                    first = None
        if for_generate:
            if not state.prompt.strip():
                errors.append(problem("prompt", "empty prompt: say what the video shows"))
            if self.model.checkpoint is None:
                errors.append(problem("generate", self.model.problem))
        return Checked(state, spec, per_object, errors, warnings, first)


@dataclass
class Checked:
    state: PageState
    spec: SequenceSpec
    per_object: list[np.ndarray]
    errors: list[dict]
    warnings: list[dict]
    first_frame: np.ndarray | None


def build_studio(settings: Settings) -> Studio:
    stages = stage_settings(settings)
    ensure_data_dir(settings.data_dir)
    info = model_info(stages.generate)
    runner = Deployment(settings.deployment) if settings.via_deployment else InProcess()
    return Studio(
        settings,
        stages,
        info,
        Uploads(settings.data_dir / "uploads"),
        Cutter(stages.masks),
        Generator(runner, stages.generate, stages.evaluate),
    )


def default_state(studio: Studio) -> dict:
    """What the page opens with: one toy circle crossing the frame, the held-out set's first prompt."""
    h, w = studio.model.default_size
    n = 16
    prompt = first_prompt(studio.stages.generate.sequences) or ""
    shape = next((s for s in SHAPES if s in prompt.split()), "circle")  # the toy prompt's shape, if it names one
    return {
        "size": [h, w],
        "n_frames": n,
        "prompt": prompt,
        "seed": 0,
        "steps": None,
        "first_frame": {"source": "controlnet"},
        "objects": [
            {
                "label": "object 1",
                "mask": {"source": "toy", "shape": shape, "radius": round(min(h, w) / 9)},
                "path": {"type": "keyframes", "points": [[0, w * 0.2, h * 0.7], [n - 1, w * 0.8, h * 0.7]]},
                "hop": None,
                "scale": 1.0,
            }
        ],
    }


def first_prompt(sequences: str) -> str | None:
    path = Path(sequences)
    path = path / "manifest.yaml" if path.is_dir() else path
    try:
        rows = yaml.safe_load(path.read_text()).get("sequences") or []
        return str(rows[0]["prompt"])
    except (OSError, AttributeError, IndexError, KeyError, TypeError, yaml.YAMLError):
        return None


def clip_ids(studio: Studio) -> list[str]:
    try:
        return read_clip_manifest(studio.settings.clips_dir)["id"].tolist()
    except FileNotFoundError:
        return []


async def read_body(request: Request, limit: int, field: str) -> bytes:
    """The request body, refused past ``limit`` bytes (announced or actually sent)."""
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > limit:
        raise UploadError(field, _too_big(int(announced), limit), 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadError(field, _too_big(len(body), limit), 413)
    return bytes(body)


def _too_big(n: int, limit: int) -> str:
    return f"the file is {n / (1 << 20):.3g} MB, the limit is {limit / (1 << 20):.3g} MB (--max-upload-mb)"


def create_app(settings: Settings, studio: Studio | None = None) -> FastAPI:
    studio = studio or build_studio(settings)
    app = FastAPI(title="maskmotion studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio
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
        except (KeyError, TypeError, ValueError) as err:
            raise UploadError(field, str(err) or "x and y must be numbers") from None
        return {"upload": studio.uploads.store_mask(mask, field), "method": studio.cutter.describe()}

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

        def upload_for(name: str, i: int) -> str:
            base = Path(name).name
            if not PNG_IN_SPEC.match(base) or base not in files:
                raise Problems([problem("spec", f"objects.{i}.mask '{name}': choose {base} together with the spec")])
            studio.uploads.existing("objects", files[base], "spec")
            return files[base]

        return from_spec(spec, upload_for, {"prompt": body.get("prompt", "")})

    @app.post("/api/generate")
    def generate(body: dict):
        checked = studio.check(body, for_generate=True)
        if checked.errors:
            raise Problems(checked.errors)
        state = checked.state
        if studio.generator.busy():
            raise Problems([problem("generate", "a video is being generated; wait for it to finish")])
        folder = write_inputs(studio.runs_dir, state, studio.uploads)
        try:
            job = studio.generator.submit(folder, state)
        except Busy as err:
            raise Problems([problem("generate", str(err))]) from None
        return {"job": job.id, "run": job.run}

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str):
        job = studio.generator.jobs.get(job_id)
        if job is None:
            raise FileNotFoundError(f"no job {job_id[:20]}")
        return job.snapshot()

    @app.get("/api/runs")
    def runs():
        return list_runs(studio.runs_dir)

    @app.get("/api/runs/{run_id}/state")
    def run_state(run_id: str):
        return load_state(studio.runs_dir, run_id, studio.uploads)

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
