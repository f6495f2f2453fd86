"""Reading a user's dataset manifest (YAML or CSV): one row per video, with its prompt.

Columns (YAML: a list under ``videos:``; CSV: a header row):

    id           unique, letters/digits/``._-`` (it becomes a file name)
    video        path to the video, relative to the manifest's folder
    prompt       the text describing the video (non-empty)
    masks        optional: folder of user-drawn mask PNGs, one per source frame
    truth_masks  optional: folder of ground-truth mask PNGs (used only to measure the masks stage)
    box          optional: first-frame box "x0 y0 x1 y1" in source pixels, to prompt SAM
    points       optional: first-frame positive clicks "x y x y ..." in source pixels
    objects      optional, YAML only: the video's objects, each with its own prompt and masks,
                 ``[{prompt: "a red circle ...", masks: <folder of its mask PNGs>}, ...]`` (per-object
                 prompts: the masks stage takes their union as the foreground, ``prompt`` is the scene)

Other columns are carried through to the clip manifest untouched.
Every path must stay inside the data root: a manifest cannot make a stage read elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from tasks.common.io import BadInput

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PATH_COLUMNS = ("video", "masks", "truth_masks")


@dataclass
class ManifestRow:
    id: str
    video: Path
    prompt: str
    masks: Path | None = None
    truth_masks: Path | None = None
    box: tuple[float, float, float, float] | None = None
    extra: dict = field(default_factory=dict)
    objects: list[tuple[str, Path]] = field(default_factory=list)  # (prompt, masks folder) per object


def read_manifest_table(path: Path) -> list[dict]:
    if not path.is_file():
        raise BadInput(path, "manifest not found")
    if path.suffix.lower() in (".yaml", ".yml"):
        with path.open() as f:
            data = yaml.safe_load(f) or {}
        rows = data.get("videos") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise BadInput(path, "expected a YAML mapping with a list under 'videos:'")
        return [dict(r) if isinstance(r, dict) else {"_bad": r} for r in rows]
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return frame.to_dict(orient="records")
    raise BadInput(path, "manifest must be .yaml, .yml or .csv")


def resolve_inside(manifest: Path, value: str, root: Path, column: str, video_id: str) -> Path:
    """Resolve a manifest path against the manifest's folder; refuse one that leaves ``root``."""
    resolved = (manifest.parent / value).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise BadInput(manifest, f"{column} path '{value}' escapes the data folder {root}", video_id)
    return resolved


def parse_manifest(path: str | Path, root: str | Path) -> tuple[list[ManifestRow], list[BadInput]]:
    """Rows that are well-formed, and a BadInput for each row that is not (duplicates included).

    A row-level problem is returned rather than raised so the caller can choose fail or skip.
    """
    path, root = Path(path), Path(root)
    good: list[ManifestRow] = []
    bad: list[BadInput] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(read_manifest_table(path), start=1):
        try:
            row = _parse_row(path, root, raw, n)
            if row.id in seen:
                raise BadInput(path, f"duplicate id (rows {seen[row.id]} and {n})", row.id)
            seen[row.id] = n
            good.append(row)
        except BadInput as err:
            bad.append(err)
    return good, bad


def _parse_row(path: Path, root: Path, raw: dict, n: int) -> ManifestRow:
    if "_bad" in raw:
        raise BadInput(path, f"row {n} is not a mapping")
    raw = {k: ("" if v is None else v) for k, v in raw.items()}
    vid = str(raw.get("id", "")).strip()
    if not vid:
        raise BadInput(path, f"row {n} has no id")
    if not ID_PATTERN.match(vid):
        raise BadInput(path, f"row {n}: id '{vid}' may only use letters, digits and . _ -", vid)
    prompt = str(raw.get("prompt", "")).strip()
    if not prompt:
        raise BadInput(path, "missing or empty prompt", vid)
    if not str(raw.get("video", "")).strip():
        raise BadInput(path, "missing video path", vid)
    paths = {
        col: resolve_inside(path, str(raw[col]).strip(), root, col, vid)
        for col in PATH_COLUMNS
        if str(raw.get(col, "")).strip()
    }
    box = _parse_box(path, raw.get("box", ""), vid)
    objects = _parse_objects(path, root, raw.get("objects", ""), vid)
    if objects and "masks" in paths:  # the objects' union is the foreground: a second one would be ignored
        raise BadInput(path, "give masks or objects (each with its masks), not both", vid)
    known = {"id", "prompt", "box", "objects", *PATH_COLUMNS}
    extra = {k: v for k, v in raw.items() if k not in known}
    return ManifestRow(
        id=vid,
        video=paths["video"],
        prompt=prompt,
        masks=paths.get("masks"),
        truth_masks=paths.get("truth_masks"),
        box=box,
        extra=extra,
        objects=objects,
    )


def _parse_objects(path: Path, root: Path, value, vid: str) -> list[tuple[str, Path]]:
    if value in ("", None):
        return []
    if not isinstance(value, list) or not all(isinstance(o, dict) for o in value):
        raise BadInput(path, "objects must be a YAML list of {prompt, masks} mappings", vid)
    objects = []
    for k, o in enumerate(value):
        prompt, masks = str(o.get("prompt") or "").strip(), str(o.get("masks") or "").strip()
        if not prompt or not masks:
            raise BadInput(path, f"objects[{k}] needs a prompt and a masks folder", vid)
        unknown = sorted(set(o) - {"prompt", "masks"})
        if unknown:
            raise BadInput(path, f"objects[{k}]: unknown key(s) {', '.join(unknown)} (prompt, masks)", vid)
        objects.append((prompt, resolve_inside(path, masks, root, f"objects[{k}].masks", vid)))
    return objects


def _parse_box(path: Path, value, vid: str):
    if value in ("", None):
        return None
    parts = value if isinstance(value, list) else str(value).replace(",", " ").split()
    try:
        box = tuple(float(v) for v in parts)
    except ValueError:
        box = ()
    if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
        raise BadInput(path, f"box '{value}' must be four numbers x0 y0 x1 y1 with x1 > x0, y1 > y0", vid)
    return box
