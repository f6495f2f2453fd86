"""Uploads: checked, fitted to the video's size, stored by content under the studio's data folder.

Two kinds: ``images`` (a first frame) and ``objects`` (a base mask: drawn on the canvas, uploaded,
or cut out). A file is read only from the bytes the browser sent, decoded by Pillow after its size
is checked (no decompression bombs), and stored as ``<data>/uploads/<kind>/<sha256[:16]>.png``.
The browser names an upload by that id only; ids are checked against a pattern before any path is
made from them. Anything refused writes nothing.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from tasks.common.io import atomic_write_text, mask_png_problem

KINDS = ("images", "objects")
ID = re.compile(r"^[0-9a-f]{16}$")
MAX_SIDE = 4096  # as ingest's max_long_side: larger pictures are refused before they are decoded


class UploadError(ValueError):
    """A refused upload: ``field`` is where the page shows ``message``; ``status`` the HTTP status."""

    def __init__(self, field: str, message: str, status: int = 400):
        self.field, self.message, self.status = field, message, status
        super().__init__(f"{field}: {message}")


def decode_image(data: bytes, field: str) -> Image.Image:
    """Pillow's reading of ``data``, or UploadError saying why it is not a usable image."""
    if not data:
        raise UploadError(field, "the file is empty")
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if max(width, height) > MAX_SIDE:
            raise UploadError(field, f"the image is {width}x{height}; the studio takes at most {MAX_SIDE} px a side")
        image.load()
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise UploadError(field, "not an image file (PNG, JPEG, WebP, ... could not be read)") from None
    return image


def fit_to_frame(array: np.ndarray, size: tuple[int, int], interpolation: int) -> tuple[np.ndarray, str]:
    """Centre-crop to the frame's aspect, then resize to ``size`` (H, W); returns the array and what was done."""
    h, w = array.shape[:2]
    if (h, w) == tuple(size):
        return array, ""
    target = size[1] / size[0]
    if w / h > target:  # too wide: crop the sides
        keep = round(h * target)
        array = array[:, (w - keep) // 2 : (w - keep) // 2 + keep]
    elif w / h < target:
        keep = round(w / target)
        array = array[(h - keep) // 2 : (h - keep) // 2 + keep]
    fitted = cv2.resize(np.ascontiguousarray(array), (size[1], size[0]), interpolation=interpolation)
    return fitted, f"fitted from {w}x{h} to {size[1]}x{size[0]} (centre crop, then resize)"


def mask_from_image(image: Image.Image, size: tuple[int, int] | None, field: str) -> tuple[np.ndarray, str]:
    """A binary mask bool (H, W) from a mask picture, fitted to the frame's ``size`` (None: as it is,
    as a spec's PNG is read), or UploadError."""
    luma = np.asarray(image.convert("L"))
    bad = mask_png_problem(luma)
    if bad:
        raise UploadError(field, bad)
    mask = luma >= (1 if luma.max() <= 1 else 128)  # read_mask_pngs' threshold
    note = ""
    if size is not None:
        fitted, note = fit_to_frame(mask.astype(np.float32), size, cv2.INTER_AREA)
        mask = fitted >= 0.5
    check_mask(mask, field)
    return mask, note


def check_mask(mask: np.ndarray, field: str) -> None:
    """The base mask must have an object in it, and background around it."""
    if not mask.any():
        raise UploadError(field, "the base mask is empty (no foreground pixel): draw or choose an object")
    if mask.all():
        raise UploadError(field, "the base mask is all foreground (a full mask has no shape or position)")


def png_bytes(array: np.ndarray) -> bytes:
    """PNG of a bool mask (0/255) or a uint8 RGB image, by Pillow (same bytes for the same pixels)."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class Uploads:
    """The upload store: ``root/images/<id>.png`` and ``root/objects/<id>.png``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, kind: str, upload_id: str) -> Path:
        """The file of an upload; ValueError for an unknown kind or an id that is not one (no path tricks)."""
        if kind not in KINDS or not isinstance(upload_id, str) or not ID.match(upload_id):
            raise UploadError(kind, f"'{str(upload_id)[:40]}' is not an upload id", 404)
        return self.root / kind / f"{upload_id}.png"

    def existing(self, kind: str, upload_id: str, field: str) -> Path:
        path = self.path(kind, upload_id)
        if not path.is_file():
            raise UploadError(field, f"upload {upload_id} not found (upload the file again)", 404)
        return path

    def _store(self, kind: str, data: bytes) -> str:
        upload_id = hashlib.sha256(data).hexdigest()[:16]
        path = self.path(kind, upload_id)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return upload_id

    def save_image(self, data: bytes, size: tuple[int, int], field: str = "first_frame") -> tuple[str, str]:
        """A first frame from the browser's file; returns (id, note)."""
        rgb = np.asarray(decode_image(data, field).convert("RGB"))
        fitted, note = fit_to_frame(rgb, size, cv2.INTER_AREA)
        return self.store_image(fitted), note

    def store_image(self, rgb: np.ndarray) -> str:
        return self._store("images", png_bytes(np.ascontiguousarray(rgb, np.uint8)))

    def save_mask(self, data: bytes, size: tuple[int, int] | None, field: str) -> tuple[str, str]:
        """A base mask from the browser's PNG (drawn or uploaded; ``size`` None: a spec's PNG, kept as it
        is); returns (id, note)."""
        mask, note = mask_from_image(decode_image(data, field), size, field)
        return self.store_mask(mask, field), note

    def store_mask(self, mask: np.ndarray, field: str) -> str:
        check_mask(mask, field)
        return self._store("objects", png_bytes(mask.astype(bool)))

    def read_image(self, upload_id: str, field: str = "first_frame") -> np.ndarray:
        return np.asarray(Image.open(self.existing("images", upload_id, field)).convert("RGB"))


def ensure_data_dir(root: Path) -> Path:
    """The studio's data folder, ignored by git from the start (it holds uploads and results, not sources)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".gitignore").exists():
        atomic_write_text(root / ".gitignore", "# written by the motion studio: uploads and results\n*\n")
    return root
