"""What one stage writes and the next reads: the only place stages meet.

- ingest -> masks, train: ``<clips_dir>/manifest.csv`` (id, prompt, box, ..., and ``object_prompts``
  when the video's objects carry their own prompts: ``read_object_prompts``) and one clip per video
  (``read_clip_manifest``; clips themselves through ``tasks.common.io.load_clip``);
- masks -> train: ``<masks_dir>/<id>.npz``: ``masks`` bool (F, H, W), the foreground, and, for a
  video with object prompts, ``objects`` bool (K, F, H, W), object k's own masks (``write_masks``,
  ``read_masks``, ``read_object_masks``); and ``manifest.csv`` (``read_masks_manifest``);
- train -> generate: checkpoint folders with a ``latest`` pointer (below);
- generate -> evaluate: ``<out_dir>/manifest.csv``, one row per video (``write_outputs_manifest``,
  ``read_outputs_manifest``).

Training checkpoints: one folder per step, written atomically, with a ``latest`` pointer::

    <out_dir>/ckpt-000200/
        trainable.safetensors   the trained weights (float32, exact)
        config.json             what rebuilds the model: VideoUNetConfig, trainable scheme, base, step
        state.pt                optimizer, LR scheduler, RNG and step; loads with weights_only=True
    <out_dir>/latest            "ckpt-000200", written after the folder is complete

A kill at any moment leaves either the old ``latest`` (pointing at a complete checkpoint) or the
new one; a half-written folder only ever exists under a temp name, and is swept on the next start.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from tasks.common.io import atomic_write_text

LATEST = "latest"
PREFIX = "ckpt-"
OBJECT_PROMPTS = "object_prompts"  # the clip manifest's column: a JSON list, object k's prompt at k


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:06d}"


def save_checkpoint(
    out_dir: Path, step: int, weights: dict[str, torch.Tensor], config: dict, state: dict, keep_last: int
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=out_dir))
    try:
        save_file(
            {k: v.detach().float().contiguous().cpu() for k, v in weights.items()}, str(tmp / "trainable.safetensors")
        )
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        torch.save(state, tmp / "state.pt")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(out_dir / LATEST, final.name + "\n")
    prune(out_dir, keep_last)
    return final


def prune(out_dir: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` checkpoints (and always the one ``latest`` names)."""
    latest = latest_checkpoint(out_dir)
    folders = sorted(p for p in out_dir.glob(f"{PREFIX}*") if p.is_dir())
    for old in folders[:-keep_last] if keep_last > 0 else []:
        if latest is None or old != latest:
            shutil.rmtree(old, ignore_errors=True)


def sweep_partial(out_dir: Path) -> None:
    """Remove temp folders a killed run left behind."""
    for tmp in out_dir.glob(f".{PREFIX}*.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def latest_checkpoint(out_dir: Path) -> Path | None:
    pointer = out_dir / LATEST
    if not pointer.is_file():
        return None
    folder = out_dir / pointer.read_text().strip()
    if not (folder / "trainable.safetensors").is_file():
        raise FileNotFoundError(f"{pointer} names {folder.name}, which is missing or incomplete")
    return folder


def read_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """(weights, config, state) of a checkpoint folder; state is loaded with weights_only=True."""
    if not (folder / "state.pt").is_file():
        raise FileNotFoundError(f"{folder}: checkpoint is missing state.pt")
    weights, config = read_trained(folder)
    state = torch.load(folder / "state.pt", weights_only=True, map_location="cpu")
    return weights, config, state


def read_trained(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(weights, config) of a checkpoint folder or of a pipeline saved with ``save_pretrained`` (no
    training state): what generation needs. ``load_file`` maps the file: a tensor costs memory once read."""
    for name in ("trainable.safetensors", "config.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: checkpoint is missing {name}")
    return load_file(str(folder / "trainable.safetensors")), json.loads((folder / "config.json").read_text())


# ---------------------------------------------------------------------------------------------
# clips, masks, outputs


def read_clip_manifest(clips_dir: str | Path) -> pd.DataFrame:
    """The ingest stage's manifest, as later stages read it."""
    path = Path(clips_dir) / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no clip manifest; run the ingest stage first")
    return pd.read_csv(path, dtype={"id": str, "prompt": str, "box": str, OBJECT_PROMPTS: str}, keep_default_na=False)


def object_prompts_cell(prompts: list[str]) -> str:
    """How a video's object prompts are written in the clip manifest ("" for none)."""
    return json.dumps(list(prompts)) if prompts else ""


def read_object_prompts(row: pd.Series) -> list[str]:
    """The object prompts of one clip-manifest row; [] for a video whose objects share its prompt."""
    cell = str(row.get(OBJECT_PROMPTS, "") or "").strip()
    if not cell:
        return []
    prompts = json.loads(cell)
    if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(
            f"video '{row['id']}': {OBJECT_PROMPTS} must be a JSON list of non-empty prompts, got {cell!r}"
        )
    return prompts


def write_masks(out_dir: str | Path, video_id: str, masks: np.ndarray, objects: np.ndarray | None = None) -> None:
    """One video's masks: the foreground (F, H, W) and, when its objects have prompts, theirs (K, F, H, W)."""
    arrays = {"masks": masks.astype(bool)}
    if objects is not None:
        if objects.ndim != 4 or objects.shape[1:] != masks.shape:
            raise ValueError(f"video '{video_id}': object masks {objects.shape} do not fit masks {masks.shape}")
        arrays["objects"] = objects.astype(bool)
    np.savez_compressed(Path(out_dir) / f"{video_id}.npz", **arrays)


def _masks_file(masks_dir: str | Path, video_id: str):
    path = Path(masks_dir) / f"{video_id}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no masks for video '{video_id}'; run the masks stage first")
    return np.load(path, allow_pickle=False)


def read_masks(masks_dir: str | Path, video_id: str) -> np.ndarray:
    """The masks of one video, bool (F, H, W), aligned with its clip's frames."""
    with _masks_file(masks_dir, video_id) as data:
        return data["masks"].astype(bool)


def read_object_masks(masks_dir: str | Path, video_id: str) -> np.ndarray | None:
    """Each object's masks of one video, bool (K, F, H, W), or None when the masks stage wrote none."""
    with _masks_file(masks_dir, video_id) as data:
        return data["objects"].astype(bool) if "objects" in data.files else None


def read_masks_manifest(masks_dir: str | Path) -> pd.DataFrame:
    """The masks stage's manifest (id, method, n_frames, lost_frames, unrecovered_frames, iou, ...)."""
    path = Path(masks_dir) / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no masks manifest; run the masks stage first")
    return pd.read_csv(
        path, dtype={"id": str, "method": str, "lost_frames": str, "unrecovered_frames": str}, keep_default_na=False
    )


def write_outputs_manifest(out_dir: str | Path, rows: list[dict]) -> pd.DataFrame:
    """The generate stage's manifest (one row per video); folders of videos no longer asked for are removed."""
    out = Path(out_dir)
    wanted = {r["video_id"] for r in rows}
    for folder in out.iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in wanted:
            shutil.rmtree(folder)
    table = pd.DataFrame(rows)
    tmp = out / ".manifest.csv.tmp"
    table.to_csv(tmp, index=False)
    tmp.replace(out / "manifest.csv")
    return table


def read_outputs_manifest(outputs_dir: str | Path) -> pd.DataFrame:
    """The generate stage's manifest, as evaluate reads it."""
    path = Path(outputs_dir) / "manifest.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no outputs manifest; run the generate stage first")
    return pd.read_csv(path, keep_default_na=False)
