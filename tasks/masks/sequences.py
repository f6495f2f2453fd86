"""Draw motion: build a mask sequence from a base mask, a path, a speed and a scale schedule.

This is the paper's interactive editing (supplement, section I) as code: take one binary mask (a
PNG a user drew, a SAM cut-out, or a toy shape), move it along a path (straight line, keyframes
with easing, arc), optionally hopping, scale it over time, add more objects with their own paths,
and clip at the frame border. The result is a bool array (F, H, W), written as a PNG sequence that
the generate stage reads. Objects may carry their own prompts (each object's words act inside its own
mask, the sequence's ``prompt``, the scene, elsewhere); then each object's masks are written too,
under ``objects/<k>/``, with a sequences manifest (``manifest.yaml``) that ``generate.sequences`` reads.

Command line (it also lists the sequence in ``data/sequences/manifest.yaml``)::

    maskmotion masks spec.yaml --out data/sequences/my-run [--prompt "..."] [--gif preview.gif]

A spec (YAML; every key validated, coordinates in pixels, x to the right, y down)::

    size: [64, 64]            # height, width
    n_frames: 16
    prompt: a red circle and a yellow star run across a grassy meadow   # optional: the scene
    objects:
      - mask: toy:circle      # toy:<shape>, toy:ellipse, toy:box, or a PNG path (relative to the spec file)
        prompt: a red circle runs across a grassy meadow   # optional: this object's own words (else the scene's)
        radius: 9             # toy shapes only: half-size in pixels
        path: {type: line, start: [10, 48], speed: 2.5, direction_deg: 0}   # or end: [54, 48]
        hop: {height: 8, count: 2}
        scale: [1.0, 1.4]     # first -> last frame (linear), or one value per frame
      - mask: toy:ellipse     # a coarse mask as a person draws one: the object is somewhere in here
        radius: 10
        aspect: 1.3           # toy masks: height / width (area kept)
        grow: 2               # dilate by 2 pixels (any mask)
        path: {type: line, start: [54, 20], end: [10, 40]}
      - mask: drawn/bird.png
        path: {type: keyframes, points: [[0, 5, 10], [15, 60, 20]], easing: ease_in_out}
      - mask: toy:star
        path: {type: arc, center: [32, 32], radius: 18, start_deg: 180, end_deg: 360}
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Annotated, Literal

import cv2
import numpy as np
import yaml
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.common.io import atomic_dir, atomic_write_text, read_mask_pngs, write_mask_pngs
from tasks.common.params import validate_config
from tasks.common.toy import SHAPES, render_object_mask
from tasks.common.video import write_gif
from tasks.common.visualize import outline_mask

EASINGS = {
    "linear": lambda u: u,
    "ease_in": lambda u: u * u,
    "ease_out": lambda u: 1 - (1 - u) ** 2,
    "ease_in_out": lambda u: 0.5 - 0.5 * np.cos(np.pi * u),
}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinePath(_Spec):
    """A straight line: from ``start`` to ``end``, or from ``start`` at ``speed`` px/frame along ``direction_deg``."""

    type: Literal["line"]
    start: tuple[float, float]
    end: tuple[float, float] | None = None
    speed: float | None = Field(None, description="pixels per frame")
    direction_deg: float = Field(0.0, description="0 = right, 90 = down")
    easing: Literal["linear", "ease_in", "ease_out", "ease_in_out"] = "linear"

    @model_validator(mode="after")
    def _end_or_speed(self):
        if (self.end is None) == (self.speed is None):
            raise ValueError("give exactly one of 'end' or 'speed'")
        return self


class KeyframePath(_Spec):
    """Positions at given frames ``[frame, x, y]``; in between, eased interpolation per segment."""

    type: Literal["keyframes"]
    points: list[tuple[float, float, float]] = Field(min_length=2)
    easing: Literal["linear", "ease_in", "ease_out", "ease_in_out"] = "linear"

    @model_validator(mode="after")
    def _increasing(self):
        frames = [p[0] for p in self.points]
        if any(b <= a for a, b in zip(frames, frames[1:])):
            raise ValueError("keyframe frames must increase")
        return self


class ArcPath(_Spec):
    type: Literal["arc"]
    center: tuple[float, float]
    radius: float = Field(gt=0)
    start_deg: float = 0.0
    end_deg: float = 360.0
    easing: Literal["linear", "ease_in", "ease_out", "ease_in_out"] = "linear"


class Hop(_Spec):
    """Bounce on top of any path: ``count`` hops of ``height`` pixels, upward (like the toy world's run)."""

    height: float = Field(gt=0)
    count: float = Field(1, gt=0)


class ObjectSpec(_Spec):
    mask: str = Field(description="toy:<shape>, toy:ellipse, toy:box or a PNG path")
    prompt: str | None = Field(None, min_length=1, description="this object's own words (acts inside its mask)")
    radius: float = Field(8.0, gt=0, description="half-size of a toy shape, pixels")
    aspect: float = Field(1.0, ge=0.2, le=5.0, description="toy masks: height / width, area kept")
    grow: int = Field(0, ge=0, le=32, description="dilate the mask by this many pixels (a coarse, drawn mask)")
    path: Annotated[LinePath | KeyframePath | ArcPath, Field(discriminator="type")]
    hop: Hop | None = None
    scale: float | list[float] = Field(1.0, description="one value, [first, last] (linear), or one per frame")


class SequenceSpec(_Spec):
    size: tuple[int, int] = Field((64, 64), description="height, width")
    n_frames: int = Field(16, ge=2)
    prompt: str | None = Field(None, min_length=1, description="the video's prompt: the scene, outside the objects")
    objects: list[ObjectSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _object_prompts_need_the_scene(self):
        if any(o.prompt is not None for o in self.objects) and self.prompt is None:
            raise ValueError("objects with their own prompts need the sequence's prompt (the scene around them)")
        return self

    @property
    def object_prompts(self) -> list[str] | None:
        """Each object's prompt (an object without one takes the scene's), or None when no object has its own."""
        if all(o.prompt is None for o in self.objects):
            return None
        return [o.prompt if o.prompt is not None else self.prompt for o in self.objects]


# ---------------------------------------------------------------------------------------------


COARSE_SHAPES = {"ellipse": "circle", "box": "square"}  # drawn masks: what the toy shape they stretch is


def base_mask(spec: ObjectSpec, relative_to: Path = Path(".")) -> np.ndarray:
    """The object's mask (grown by ``spec.grow``) cropped to its bounding box, bool (h, w)."""
    if spec.mask.startswith("toy:"):
        shape = spec.mask.removeprefix("toy:")
        if shape not in SHAPES and shape not in COARSE_SHAPES:
            raise ValueError(f"mask '{spec.mask}': unknown toy shape, expected one of {SHAPES + tuple(COARSE_SHAPES)}")
        shape = COARSE_SHAPES.get(shape, shape)
        side = int(np.ceil(2 * spec.radius * max(spec.aspect, 1 / spec.aspect) ** 0.5)) + 4 + 2 * spec.grow
        mask = render_object_mask(shape, side / 2, side / 2, spec.radius, side, 0.0, spec.aspect) >= 0.5
    else:
        path = (relative_to / spec.mask) if not Path(spec.mask).is_absolute() else Path(spec.mask)
        if not path.is_file():
            raise ValueError(f"mask '{spec.mask}': file not found ({path})")
        mask = np.asarray(Image.open(path).convert("L")) >= 128
        mask = np.pad(mask, spec.grow)
    if spec.grow:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * spec.grow + 1, 2 * spec.grow + 1))
        mask = cv2.dilate(mask.astype(np.uint8), disc) > 0
    return crop_to_content(mask, spec.mask)


def crop_to_content(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ValueError(f"{name}: the base mask is empty (no foreground pixel)")
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def path_centres(path: LinePath | KeyframePath | ArcPath, n_frames: int) -> np.ndarray:
    """Object centre (x, y) per frame, float (F, 2)."""
    ease = EASINGS[path.easing]
    u = ease(np.linspace(0.0, 1.0, n_frames))
    if isinstance(path, LinePath):
        start = np.array(path.start)
        if path.end is not None:
            end = np.array(path.end)
        else:
            rad = np.deg2rad(path.direction_deg)
            end = start + path.speed * (n_frames - 1) * np.array([np.cos(rad), np.sin(rad)])
        return start + u[:, None] * (end - start)
    if isinstance(path, ArcPath):
        angle = np.deg2rad(path.start_deg + u * (path.end_deg - path.start_deg))
        return np.array(path.center) + path.radius * np.stack([np.cos(angle), np.sin(angle)], 1)
    # keyframes: eased interpolation inside each segment; held before the first and after the last
    keys = np.array(path.points, dtype=float)
    t = np.arange(n_frames, dtype=float)
    seg = np.clip(np.searchsorted(keys[:, 0], t, side="right") - 1, 0, len(keys) - 2)
    f0, f1 = keys[seg, 0], keys[seg + 1, 0]
    local = ease(np.clip((t - f0) / (f1 - f0), 0.0, 1.0))
    return keys[seg, 1:] + local[:, None] * (keys[seg + 1, 1:] - keys[seg, 1:])


def scale_schedule(scale, n_frames: int) -> np.ndarray:
    if isinstance(scale, (int, float)):
        return np.full(n_frames, float(scale))
    values = np.asarray(scale, dtype=float)
    if len(values) == 2:
        return np.linspace(values[0], values[1], n_frames)
    if len(values) != n_frames:
        raise ValueError(f"scale: {len(values)} values for {n_frames} frames (give 1, 2 or one per frame)")
    return values


def paste(canvas: np.ndarray, sprite: np.ndarray, cx: float, cy: float) -> None:
    """OR a bool sprite into a bool canvas (H, W) centred at (cx, cy), clipped at the border."""
    h, w = sprite.shape
    y0, x0 = int(round(cy - h / 2)), int(round(cx - w / 2))
    ys, xs = slice(max(y0, 0), min(y0 + h, canvas.shape[0])), slice(max(x0, 0), min(x0 + w, canvas.shape[1]))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return  # entirely outside the frame
    canvas[ys, xs] |= sprite[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]


def render_object(spec: ObjectSpec, size: tuple[int, int], n_frames: int, relative_to: Path) -> np.ndarray:
    sprite = base_mask(spec, relative_to)
    centres = path_centres(spec.path, n_frames)
    if spec.hop is not None:
        u = np.linspace(0.0, 1.0, n_frames)
        centres[:, 1] -= spec.hop.height * np.abs(np.sin(np.pi * spec.hop.count * u))
    scales = scale_schedule(spec.scale, n_frames)
    if (scales <= 0).any():
        raise ValueError("scale: every value must be > 0")
    out = np.zeros((n_frames, *size), bool)
    for f, ((cx, cy), s) in enumerate(zip(centres, scales)):
        h, w = max(1, round(sprite.shape[0] * s)), max(1, round(sprite.shape[1] * s))
        scaled = cv2.resize(sprite.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
        paste(out[f], scaled, cx, cy)
    return out


def build_sequence(spec: SequenceSpec, relative_to: str | Path = ".") -> np.ndarray:
    """The union of every object's masks, bool (F, H, W)."""
    return np.logical_or.reduce(build_objects(spec, relative_to))


def build_objects(spec: SequenceSpec, relative_to: str | Path = ".") -> np.ndarray:
    """Each object's own masks, bool (K, F, H, W) (objects may overlap)."""
    out = []
    for i, obj in enumerate(spec.objects):
        try:
            out.append(render_object(obj, spec.size, spec.n_frames, Path(relative_to)))
        except ValueError as err:
            raise ValueError(f"objects.{i}: {err}") from None
    return np.stack(out)


OBJECTS_DIR = "objects"  # each object's masks beside the union's: <masks>/objects/<k>/0000.png


def write_sequence(spec: SequenceSpec, folder: Path, relative_to: str | Path = ".", name: str = ".") -> dict:
    """Write the union's mask PNGs into ``folder`` and, when the objects carry prompts, each object's
    under ``folder/objects/<k>/``. Returns the sequences-manifest fields for a manifest that names
    ``folder`` as ``name``: ``masks``, and ``prompt`` and ``objects: [{prompt, masks}]`` when the spec
    has them."""
    objects = build_objects(spec, relative_to)
    write_mask_pngs(np.logical_or.reduce(objects), folder)
    row: dict = {"masks": name}
    if spec.prompt is not None:
        row["prompt"] = spec.prompt
    if spec.object_prompts is not None:
        row["objects"] = []
        for k, (prompt, masks) in enumerate(zip(spec.object_prompts, objects)):
            write_mask_pngs(masks, folder / OBJECTS_DIR / str(k))
            row["objects"].append({"prompt": prompt, "masks": (Path(name) / OBJECTS_DIR / str(k)).as_posix()})
    return row


def load_spec(path: str | Path) -> SequenceSpec:
    path = Path(path)
    with path.open() as f:
        raw = yaml.safe_load(f) or {}
    return validate_config(SequenceSpec, raw, str(path))


def preview_frames(masks: np.ndarray, scale: int = 4) -> np.ndarray:
    """White-on-black frames with the mask outlined, enlarged ``scale`` times, uint8 (F, H*s, W*s, 3)."""
    big = np.repeat(np.repeat(masks, scale, axis=1), scale, axis=2)
    grey = big[..., None].repeat(3, -1).astype(np.uint8) * 200
    return np.stack([outline_mask(f, m) for f, m in zip(grey, big)])


def add_to_manifest(manifest: Path, sequence_id: str, row: dict) -> int:
    """List a sequence in a sequences manifest (``sequences: [{id, prompt, masks, objects}]``), replacing a
    row of the same id; ``row``'s paths are relative to the manifest's folder. Returns the number of rows."""
    data = (yaml.safe_load(manifest.read_text()) if manifest.is_file() else None) or {}
    rows = [r for r in data.get("sequences") or [] if r.get("id") != sequence_id]
    rows.append({"id": sequence_id, **row})
    atomic_write_text(manifest, yaml.safe_dump({**data, "sequences": rows}, sort_keys=False))
    return len(rows)


def relocated(row: dict, folder: str) -> dict:
    """A manifest row written for a manifest inside the sequence's folder, for one in ``folder``'s parent."""
    out = {**row, "masks": (Path(folder) / row["masks"]).as_posix()}
    if "objects" in row:
        out["objects"] = [{**o, "masks": (Path(folder) / o["masks"]).as_posix()} for o in row["objects"]]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="maskmotion masks",
        description="Draw a mask sequence from a YAML spec (the format: tasks/masks/sequences.py) into --out, and "
        "list it in a sequences manifest (default: --out's parent folder's manifest.yaml), which "
        "generate.sequences and the generate/batch deployment read.",
        epilog="example:\n  maskmotion masks examples/two_objects.yaml --out data/sequences/two --gif two.gif\n"
        "  # data/sequences/two/0000.png ...; data/sequences/manifest.yaml lists 'two'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for 0000.png, 0001.png, ...")
    parser.add_argument("--prompt", help="the sequence's prompt in the manifest (default: the spec's prompt)")
    parser.add_argument(
        "--manifest",
        type=Path,
        help="the sequences manifest to list it in (default: %(default)s = <out>/../manifest.yaml)",
    )
    parser.add_argument("--gif", type=Path, help="also write a preview GIF here")
    parser.add_argument("--fps", type=float, default=8.0)
    args = parser.parse_args(argv)
    spec = load_spec(args.spec)
    with atomic_dir(args.out) as tmp:
        row = write_sequence(spec, tmp, args.spec.parent)
        if args.prompt:
            row["prompt"] = args.prompt
        if "prompt" in row:  # a sequences manifest of this one sequence: generate.sequences=<out>
            manifest = {"sequences": [{"id": args.out.name, **row}]}
            (tmp / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        masks = read_mask_pngs(tmp)
    manifest = args.manifest or args.out.parent / "manifest.yaml"
    folder = os.path.relpath(args.out, manifest.parent)
    count = add_to_manifest(manifest, args.out.name, relocated(row, folder))
    if args.gif:
        write_gif(args.gif, preview_frames(masks), args.fps)
    print(f"{args.out}: {len(masks)} masks of {spec.size[1]}x{spec.size[0]}, foreground {masks.mean():.1%} of pixels")
    print(
        f"{manifest}: lists '{args.out.name}' ({count} sequences)"
        + ("" if "prompt" in row else "; no prompt: give one with --prompt, or prompts to generate")
    )


if __name__ == "__main__":
    main()
