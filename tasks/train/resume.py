"""Resuming a run: is it finished, restore from ``latest`` (a run of the same fingerprint), the loss log."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import torch

from model.trainable import load_trainable_state_dict
from tasks.common.io import atomic_write_text
from tasks.contract import latest_checkpoint, read_checkpoint, sweep_partial
from tasks.train.config import TrainConfig, run_fingerprint

log = logging.getLogger(__name__)


def finished_run(cfg: TrainConfig) -> bool:
    """Whether ``cfg.out_dir`` already holds this run (same fingerprint) trained to ``cfg.steps``."""
    out_dir = Path(cfg.out_dir)
    folder = latest_checkpoint(out_dir) if out_dir.is_dir() else None
    if folder is None:
        return False
    config = json.loads((folder / "config.json").read_text())
    return config.get("fingerprint") == run_fingerprint(cfg) and config.get("step") == cfg.steps


def resume(
    out_dir: Path, fingerprint: str, video_unet, cfg: TrainConfig, optimizer, scheduler, generator
) -> tuple[int, list[tuple[int, float, float]]]:
    """Restore from ``latest`` if it belongs to this run; otherwise start at step 0 (old run cleared).

    Returns the step reached and the loss history up to it. The history travels in the
    checkpoint's state, not only in ``loss_log``: ``dvc repro`` deletes the stage's outputs that
    are not persisted, the loss log among them, before it runs the stage again.
    """
    if not out_dir.exists():
        return 0, []
    sweep_partial(out_dir)
    folder = latest_checkpoint(out_dir)
    if folder is None:
        return 0, []
    weights, config, state = read_checkpoint(folder)
    if state.get("fingerprint") != fingerprint:
        log.warning("%s was trained with other settings or inputs; starting a new run", folder)
        shutil.rmtree(out_dir)
        return 0, []
    load_trainable_state_dict(video_unet, weights, cfg.trainable)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["lr_scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    step = int(state["step"])
    log.info("resumed from %s (step %d)", folder, step)
    # checkpoints written before the history was kept in them: fall back to the log file
    losses = [tuple(r) for r in state["losses"]] if "losses" in state else read_loss_log(cfg.loss_log, step)
    return step, losses


def read_loss_log(path: str, up_to_step: int) -> list[tuple[int, float, float]]:
    if up_to_step == 0 or not Path(path).is_file():
        return []
    with open(path) as f:
        rows = [(int(r["step"]), float(r["loss"]), float(r["lr"])) for r in csv.DictReader(f)]
    return [r for r in rows if r[0] <= up_to_step]


def write_loss_log(path: str, rows: list[tuple[int, float, float]]) -> None:
    lines = ["step,loss,lr"] + [f"{s},{loss:.6f},{lr:.3e}" for s, loss, lr in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
