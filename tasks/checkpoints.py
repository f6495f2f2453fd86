"""Training checkpoints: one folder per step, written atomically, with a ``latest`` pointer.

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

import torch
from safetensors.torch import load_file, save_file

from tasks.io import atomic_write_text

LATEST = "latest"
PREFIX = "ckpt-"


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:06d}"


def save_checkpoint(out_dir: Path, step: int, weights: dict[str, torch.Tensor], config: dict, state: dict,
                    keep_last: int) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=out_dir))
    try:
        save_file({k: v.detach().float().contiguous().cpu() for k, v in weights.items()},
                  str(tmp / "trainable.safetensors"))
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
    for name in ("trainable.safetensors", "config.json", "state.pt"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: checkpoint is missing {name}")
    weights = load_file(str(folder / "trainable.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    state = torch.load(folder / "state.pt", weights_only=True, map_location="cpu")
    return weights, config, state
