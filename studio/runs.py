"""One studio result on disk, laid out as a batch run with its spec beside it::

    <data>/<UTC time>-<id>/
        spec.yaml              the mask-sequence spec (python -m tasks.masks.sequences spec.yaml --out ...)
        objects/<id>.png       the PNG base masks it names (drawn, uploaded or cut out)
        studio.yaml            what the page adds: prompt, seed, steps, first frame, object labels
        sequences/             a sequences manifest (generate.sequences): manifest.yaml, motion/0000.png ...,
                               first_frame.png when one was given
        outputs/               exactly what the generate/batch deployment writes: manifest.csv and
                               motion-s<seed>/ (video.mp4, video.gif, sheet.png, frames.npy, masks/, meta.json)
        meta.json              the studio's record: IoU of the result against the drawn masks, times, how it ran

``outputs/`` is a generate ``out_dir`` (the generate loop owns it: it removes folders it did not
write), so it is a folder of its own, and ``evaluate.outputs_dir`` can point at it as it is.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from studio.spec import PageState, from_spec, page_extras, to_spec
from studio.uploads import Uploads, decode_image, mask_from_image
from tasks.common.io import atomic_dir, read_mask_pngs, write_json
from tasks.masks.sequences import load_spec, write_sequence

RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
SEQUENCE_ID = "motion"
# what the page may fetch from a run, by name (nothing else in the folder is served)
SERVED = {
    "spec.yaml": "spec.yaml",
    "studio.yaml": "studio.yaml",
    "meta.json": "meta.json",
    "video.mp4": "{video}/video.mp4",
    "video.gif": "{video}/video.gif",
    "sheet.png": "{video}/sheet.png",
}


def new_run_id(now: datetime | None = None) -> str:
    return f"{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def run_dir(root: Path, run_id: str) -> Path:
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise FileNotFoundError(f"'{str(run_id)[:40]}' is not a studio run")
    folder = Path(root) / run_id
    if not folder.is_dir():
        raise FileNotFoundError(f"run {run_id} not found")
    return folder


def mask_file(upload_id: str) -> str:
    """How a spec names a PNG base mask: beside it, in objects/ (uploads keep the same layout)."""
    return f"objects/{upload_id}.png"


def write_inputs(root: Path, state: PageState, uploads: Uploads, run_id: str | None = None) -> Path:
    """A new run folder with everything generation reads (atomically: all of it, or nothing)."""
    run_id = run_id or new_run_id()
    spec = to_spec(state, mask_file)
    final = Path(root) / run_id
    with atomic_dir(final) as tmp:
        for obj in state.objects:
            if obj.mask.source == "png":
                (tmp / "objects").mkdir(exist_ok=True)
                shutil.copy(uploads.existing("objects", obj.mask.upload, "objects"), tmp / mask_file(obj.mask.upload))
        (tmp / "spec.yaml").write_text(spec_yaml(spec))
        (tmp / "studio.yaml").write_text(yaml.safe_dump(page_extras(state), sort_keys=False))
        row = {"id": SEQUENCE_ID, "prompt": state.prompt.strip()}
        row.update(write_sequence(spec, tmp / "sequences" / SEQUENCE_ID, tmp, name=SEQUENCE_ID))
        if state.first_frame.source == "image":
            image = uploads.existing("images", state.first_frame.upload, "first_frame")
            shutil.copy(image, tmp / "sequences/first_frame.png")
            row["first_frame"] = "first_frame.png"
        (tmp / "sequences/manifest.yaml").write_text(yaml.safe_dump({"sequences": [row]}, sort_keys=False))
    return final


def spec_yaml(spec) -> str:
    """The spec as a person would write it: defaults left out, tuples as lists."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    data = {"size": list(spec.size), "n_frames": spec.n_frames, **data}
    return "# made in the motion studio; python -m tasks.masks.sequences spec.yaml --out <folder>\n" + yaml.safe_dump(
        data, sort_keys=False, default_flow_style=None
    )


def video_folder(folder: Path) -> Path | None:
    """The run's video folder (outputs/motion-s<seed>/), once generated."""
    found = sorted((folder / "outputs").glob(f"{SEQUENCE_ID}-s*/meta.json"))
    return found[0].parent if found else None


def served_file(root: Path, run_id: str, name: str) -> Path:
    folder = run_dir(root, run_id)
    if name not in SERVED:
        raise FileNotFoundError(f"{name}: not a file the studio serves")
    video = video_folder(folder)
    relative = SERVED[name].format(video=video.relative_to(folder) if video else "-")
    path = folder / relative
    if not path.is_file():
        raise FileNotFoundError(f"run {run_id} has no {name}")
    return path


def score(folder: Path, segment) -> dict:
    """IoU of the generated video against the drawn masks (the evaluate stage's definitions)."""
    from tasks.evaluate.stage import mask_scores

    video = video_folder(folder)
    frames, masks = np.load(video / "frames.npy"), read_mask_pngs(video / "masks")
    meta = json.loads((video / "meta.json").read_text())
    return {**mask_scores(segment(frames, meta["prompt"]), masks), "n_frames": len(frames)}


def write_meta(folder: Path, record: dict) -> None:
    write_json(folder / "meta.json", record)


def list_runs(root: Path, limit: int = 50) -> list[dict]:
    """The newest results first: id, prompt, IoU."""
    rows = []
    for folder in sorted(Path(root).glob("*"), reverse=True):
        if not RUN_ID.match(folder.name) or not (folder / "meta.json").is_file():
            continue
        meta = json.loads((folder / "meta.json").read_text())
        rows.append({"run": folder.name, "prompt": meta.get("prompt", ""), "iou": meta.get("iou")})
        if len(rows) >= limit:
            break
    return rows


def load_state(root: Path, run_id: str, uploads: Uploads, check=None) -> dict:
    """A run's spec and studio.yaml back into a page state (its PNG masks become uploads again);
    ``check(spec)`` (the studio's bounds) sees the spec before any mask is read."""
    folder = run_dir(root, run_id)
    spec = load_spec(folder / "spec.yaml")
    if check is not None:
        spec = check(spec)
    extras = yaml.safe_load((folder / "studio.yaml").read_text()) if (folder / "studio.yaml").is_file() else {}

    def upload_for(name: str, i: int) -> str:
        path = (folder / name).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            raise FileNotFoundError(f"objects.{i}.mask: '{name}' is not a file of run {run_id}")
        field = f"objects.{i}.mask"
        mask, _ = mask_from_image(decode_image(path.read_bytes(), field), None, field)  # as the spec reads it
        return uploads.store_mask(mask, field)

    return from_spec(spec, upload_for, extras)
