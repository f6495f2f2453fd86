"""Small file helpers every stage shares: atomic outputs, mask PNGs, hashes, clip files."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``final``; on success it replaces ``final`` whole.

    On any error the temp folder is removed and ``final`` is left as it was, so a stage never
    leaves half-written outputs. The temp folder sits in the same parent so the rename is atomic.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        # os.replace cannot overwrite a non-empty folder: move the old one aside first.
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class BadInput(ValueError):
    """One input that cannot be used; the message names the file and the problem."""

    def __init__(self, where: str | Path, problem: str, video_id: str | None = None):
        self.where, self.problem, self.video_id = str(where), problem, video_id
        label = f" (id '{video_id}')" if video_id else ""
        super().__init__(f"{where}{label}: {problem}")


def parse_numbers(value, column: str, where: str | Path, video_id: str | None = None) -> np.ndarray:
    """Numbers separated by spaces or commas ("10, 20 30") as float64; BadInput naming the column if not."""
    try:
        return np.array([float(v) for v in str(value).replace(",", " ").split()], np.float64)
    except ValueError:
        raise BadInput(where, f"{column} '{value}' must be numbers", video_id) from None


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=256)
def _cached_sha256(path: str, _size: int, _mtime_ns: int) -> str:
    return file_sha256(path)


def content_digest(*paths: str | Path) -> str:
    """sha256 over the contents of files and of every file under folders (names included, sorted).

    Used where a run must notice that its inputs changed (a rebuilt base, a retrained checkpoint):
    sizes alone are not enough, since retrained weights of the same architecture have the same size.
    A file's hash is remembered by (path, size, mtime), so SD1.4's gigabytes are read once per process.
    """
    h = hashlib.sha256()
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            stat = f.stat()
            h.update(f"{f.relative_to(path) if path.is_dir() else f.name}:".encode())
            h.update(_cached_sha256(str(f.resolve()), stat.st_size, stat.st_mtime_ns).encode())
    return h.hexdigest()


def write_mask_pngs(masks: np.ndarray, folder: str | Path) -> None:
    """Write a mask sequence, bool/0-1 array (F, H, W), as ``0000.png, 0001.png, ...`` (0 or 255)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(masks):
        Image.fromarray((np.asarray(m) > 0).astype(np.uint8) * 255).save(folder / f"{i:04d}.png")


def mask_png_paths(folder: str | Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png")


def mask_png_problem(luma: np.ndarray, max_grey: float = 0.05) -> str | None:
    """Why a mask image (uint8 luminance, H x W) cannot be thresholded into a mask, or None.

    A mask is black (background) and white (foreground); anti-aliased edges may be grey, but
    thresholding a photo, a soft matte or a dim colour mask would give a silently wrong mask.
    0/1-valued images are masks too (the caller must not threshold them at 128).
    """
    if luma.max() <= 1:
        return None
    grey = ((luma > 32) & (luma < 224)).mean()
    if grey > max_grey:
        return (
            f"not a binary mask: {grey:.0%} of its pixels are grey (33-223); a mask must be "
            "black background and white foreground"
        )
    if grey > 0 and not (luma >= 224).any():
        return "not a binary mask: grey but no white pixels (a colour or dim mask?); draw the object in white"
    return None


def read_mask_pngs(folder: str | Path, threshold: int = 128) -> np.ndarray:
    """Read a folder of mask PNGs (sorted by name) as bool (F, H, W).

    Colour or alpha PNGs are reduced to luminance; a pixel is foreground when >= ``threshold``
    (or, for a 0/1-valued PNG, when 1). Raises ValueError naming the folder or file when the
    sequence is empty, sizes differ, or a PNG is not a binary mask (``mask_png_problem``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: mask folder not found")
    paths = mask_png_paths(folder)
    if not paths:
        raise ValueError(f"{folder}: no PNG masks in folder")
    masks = []
    for p in paths:
        try:
            m = np.asarray(Image.open(p).convert("L"))
        except OSError as err:
            raise ValueError(f"{p}: not a readable PNG ({err})") from None
        if masks and m.shape != masks[0].shape:
            raise ValueError(
                f"{p}: mask size {m.shape[1]}x{m.shape[0]} differs from "
                f"{paths[0].name}'s {masks[0].shape[1]}x{masks[0].shape[0]}"
            )
        problem = mask_png_problem(m)
        if problem:
            raise ValueError(f"{p}: {problem}")
        masks.append(m >= (1 if m.max() <= 1 else threshold))
    return np.stack(masks)


def save_clip(path: str | Path, frames: np.ndarray, **masks: np.ndarray | None) -> None:
    """A clip file: ``frames`` uint8 (F, H, W, 3) plus optional bool (F, H, W) mask arrays."""
    arrays = {"frames": frames}
    arrays.update({k: v.astype(bool) for k, v in masks.items() if v is not None})
    np.savez_compressed(path, **arrays)


def load_clip(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_rgb_png(path: str | Path, image: np.ndarray) -> None:
    """Write ``image`` uint8 (H, W, 3) RGB as a PNG (OpenCV's encoder, so files stay byte-identical)."""
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write the PNG")
