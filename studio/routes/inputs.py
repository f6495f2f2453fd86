"""What the page hands the studio: uploaded images and masks, a frame of an ingested clip, a cut-out."""

from __future__ import annotations

from pathlib import Path

import cv2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from studio.body import read_body
from studio.core import Studio
from studio.cutout import tiny_cutout
from studio.spec import problem
from studio.uploads import UploadError, fit_to_frame
from tasks.common.io import load_clip
from tasks.contract import read_clip_manifest


def router(studio: Studio) -> APIRouter:
    routes = APIRouter()

    @routes.post("/api/upload/{kind}")
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

    @routes.get("/api/uploads/{kind}/{name}")
    def uploaded(kind: str, name: str):
        path = studio.uploads.existing(kind, name.removesuffix(".png"), "upload")
        return FileResponse(path, media_type="image/png")

    @routes.post("/api/clip-frame")
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

    @routes.post("/api/cutout")
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

    return routes
