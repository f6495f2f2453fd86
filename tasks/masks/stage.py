"""The masks stage: clips in, one binary foreground mask per frame out.

Per video, in this order:

* ``user``: the clip came with user-drawn masks (ingest validated their count and size against
  the video and resampled them); they are checked again against the clip and used as they are.
  A clip with each object's masks (the manifest's ``objects``, for per-object prompts) is ``user``
  too: the foreground is their union, and each object's masks are written beside it.
* ``sam``: SAM, prompted on frame 0 by the manifest's ``box`` ("x0 y0 x1 y1") and/or ``points``
  ("x y x y ...", positive clicks), both in *clip* pixels, or automatically; then propagated.
* ``fallback:<name>``: a classical method (tasks.segment.fallback) when no SAM checkpoint is
  configured. Never silent: the method is in the output manifest and logged as a warning.

Output, written atomically under ``out_dir``::

    <id>.npz      masks bool (F, H, W), aligned with the clip's frames (+ objects (K, F, H, W))
    manifest.csv  id, method, n_frames, lost_frames, unrecovered_frames, iou
    preview.png   contact sheet, masks outlined

and ``metrics`` (JSON): per-video and mean IoU against ground truth, method counts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator
from tqdm import tqdm

from tasks.common.geometry import frame_ious
from tasks.common.io import BadInput, atomic_dir, load_clip, parse_numbers, write_json, write_rgb_png
from tasks.common.params import ConfigError, StageConfig
from tasks.common.visualize import contact_sheet
from tasks.contract import read_clip_manifest, write_masks
from tasks.segment.fallback import FALLBACKS, FallbackSettings, motion_masks
from tasks.segment.propagate import FirstFramePrompt, LostRule, flag_lost

log = logging.getLogger(__name__)


class MasksConfig(StageConfig):
    clips_dir: str = "data/clips"
    out_dir: str = "data/masks"
    metrics: str = "metrics/masks.json"
    method: Literal["auto", "sam", "fallback"] = Field(
        "auto", description="auto: SAM when sam_checkpoint is set, else the fallback (logged)"
    )
    sam_checkpoint: str | None = Field(None, validate_default=True, description="local SAM state-dict file")
    sam_model_type: Literal["vit_b", "vit_l", "vit_h", "tiny"] = "vit_b"
    sam_device: str = "cpu"
    sam_points_per_side: int = Field(16, ge=2, description="automatic candidates: grid of n x n point prompts")
    sam_pred_iou_thresh: float = Field(0.88, ge=0, le=1)
    sam_stability_thresh: float = Field(0.92, ge=0, le=1)
    max_subject_area: float = Field(0.5, gt=0, le=1, description="a larger automatic candidate is background")
    box_padding: float = Field(0.1, ge=0, description="frame t+1's box: mask t's box grown by this x its size")
    lost_max_area_ratio: float = Field(2.5, gt=1, description="area change (either way) that means 'lost'")
    lost_max_shift: float = Field(0.25, gt=0, description="centre jump, fraction of the frame diagonal")
    fallback: Literal["median_background", "grabcut"] = "median_background"
    fallback_min_contrast: float = Field(25.0, ge=0, description="RGB distance never called foreground")
    fallback_luma_weight: float = Field(16.0, gt=0, description="luma vs chroma weight in the matting test")
    fallback_background_passes: int = Field(2, ge=0)
    fallback_min_region_fraction: float = Field(0.2, ge=0, le=1)
    grabcut_iterations: int = Field(5, ge=1)
    grabcut_box_padding: float = Field(0.5, ge=0)

    @field_validator("sam_checkpoint")
    @classmethod
    def _checkpoint_for_sam(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("method") == "sam" and not value:
            raise ValueError(
                "method 'sam' needs a SAM checkpoint: set masks.sam_checkpoint to a local "
                "file, or use method 'auto'/'fallback'"
            )
        return value or None

    def chosen_method(self) -> str:
        """'sam' or 'fallback:<name>' for videos without user masks."""
        if self.method == "sam" or (self.method == "auto" and self.sam_checkpoint):
            return "sam"
        return f"fallback:{self.fallback}"

    def fallback_settings(self) -> FallbackSettings:
        return FallbackSettings(
            min_contrast=self.fallback_min_contrast,
            luma_weight=self.fallback_luma_weight,
            background_passes=self.fallback_background_passes,
            min_region_fraction=self.fallback_min_region_fraction,
            grabcut_iterations=self.grabcut_iterations,
            box_padding=self.grabcut_box_padding,
        )

    def lost_rule(self) -> LostRule:
        return LostRule(max_area_ratio=self.lost_max_area_ratio, max_shift=self.lost_max_shift)


@dataclass
class VideoMasks:
    """One video's result; ``masks`` bool (F, H, W), and ``objects`` (K, F, H, W) when the user drew each object's."""

    id: str
    method: str
    masks: np.ndarray
    seconds_per_frame: float
    lost: dict[int, str] = field(default_factory=dict)
    unrecovered: list[int] = field(default_factory=list)
    iou: float | None = None
    frame_iou: list[float] = field(default_factory=list)
    objects: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------
# inputs


def check_sam_checkpoint(cfg: MasksConfig) -> None:
    """Fail before any work when a configured checkpoint is not a file (names the param)."""
    if cfg.chosen_method() == "sam" and not Path(cfg.sam_checkpoint).is_file():
        raise ConfigError(
            f"masks.sam_checkpoint: '{cfg.sam_checkpoint}' is not a file; give the path of "
            "a local SAM checkpoint, or null to use the fallback"
        )


def validate_user_masks(masks: np.ndarray, frames: np.ndarray, where: str, video_id: str) -> np.ndarray:
    """User masks bool (F, H, W) that fit ``frames`` (F, H, W, 3); BadInput naming the video and frame.

    Every frame needs some foreground and some background: an empty or a full frame is a mask
    that was not drawn (or was inverted), and training on it would teach the model nothing.
    """
    if masks.ndim != 3:
        raise BadInput(where, f"user masks must be (frames, height, width), got shape {masks.shape}", video_id)
    if len(masks) != len(frames):
        raise BadInput(where, f"{len(masks)} user masks for {len(frames)} clip frames (need one per frame)", video_id)
    if masks.shape[1:] != frames.shape[1:3]:
        raise BadInput(
            where,
            f"user masks are {masks.shape[2]}x{masks.shape[1]}, the clip frames are "
            f"{frames.shape[2]}x{frames.shape[1]}",
            video_id,
        )
    if masks.dtype != bool and not np.isin(masks, (0, 1)).all():
        raise BadInput(where, "user masks are not binary (values other than 0/1)", video_id)
    masks = masks.astype(bool)
    area = masks.sum((1, 2))
    empty, full = np.flatnonzero(area == 0), np.flatnonzero(area == masks[0].size)
    for bad, what in ((empty, "empty (no foreground)"), (full, "full (no background)")):
        if len(bad):
            which = (
                "all frames"
                if len(bad) == len(masks)
                else f"frame{'s' * (len(bad) > 1)} " + ", ".join(map(str, bad[:10].tolist()))
            )
            raise BadInput(where, f"user mask is {what} in {which}", video_id)
    return masks


def validate_object_masks(objects: np.ndarray, frames: np.ndarray, where: str, video_id: str) -> np.ndarray:
    """Each object's masks bool (K, F, H, W) that fit ``frames``; BadInput naming the video and object.

    An object may be hidden in some frames (behind another, or out of view), but not in all of them.
    """
    if objects.ndim != 4 or objects.shape[1:] != frames.shape[:3]:
        raise BadInput(
            where,
            f"object masks must be (objects, {', '.join(map(str, frames.shape[:3]))}), got {objects.shape}",
            video_id,
        )
    for k, m in enumerate(objects):
        if m.dtype != bool and not np.isin(m, (0, 1)).all():
            raise BadInput(where, f"object {k}'s masks are not binary (values other than 0/1)", video_id)
        if not m.any():
            raise BadInput(where, f"object {k}'s masks are empty in every frame", video_id)
    return objects.astype(bool)


def parse_prompt(row: pd.Series, shape: tuple[int, int], where: str):
    """The manifest's first-frame box/points for one video, in clip pixels (checked to lie inside)."""
    h, w = shape
    vid = row["id"]
    box = points = None
    if str(row.get("box", "")).strip():
        box = parse_numbers(row["box"], "box", where, vid).astype(np.float32)
        if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
            raise BadInput(where, f"box '{row['box']}' must be x0 y0 x1 y1 with x1 > x0, y1 > y0", vid)
        if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:
            raise BadInput(where, f"box '{row['box']}' lies outside the {w}x{h} clip (boxes are in clip pixels)", vid)
    if str(row.get("points", "")).strip():
        flat = parse_numbers(row["points"], "points", where, vid).astype(np.float32)
        if len(flat) % 2:
            raise BadInput(where, f"points '{row['points']}' must be x y pairs", vid)
        points = flat.reshape(-1, 2)
        if (points < 0).any() or (points[:, 0] >= w).any() or (points[:, 1] >= h).any():
            raise BadInput(where, f"points '{row['points']}' lie outside the {w}x{h} clip", vid)
    return FirstFramePrompt(box=box, points=points)


# ---------------------------------------------------------------------------------------------
# the stage


def mask_iou(masks: np.ndarray, truth: np.ndarray) -> list[float]:
    """Per-frame IoU of two bool (F, H, W) sequences (a frame where both are empty scores 1)."""
    return [float(v) for v in frame_ious(masks, truth)[0]]


def make_masks(cfg: MasksConfig) -> list[VideoMasks]:
    """Masks for every clip in ``cfg.clips_dir``, in memory. Raises before anything is written."""
    check_sam_checkpoint(cfg)
    clips = read_clip_manifest(cfg.clips_dir)
    method = cfg.chosen_method()
    needs_model = method == "sam" and (clips["mask_source"] != "user").any()
    if method != "sam":
        log.warning(
            "masks: no SAM checkpoint configured (masks.sam_checkpoint is null), so videos "
            "without user masks use the classical fallback '%s'",
            cfg.fallback,
        )
    predictor = _sam_predictor(cfg) if needs_model else None
    results = []
    for _, row in tqdm(clips.iterrows(), total=len(clips), desc="masks", unit="video"):
        results.append(masks_for_video(row, cfg, method, predictor))
        r = results[-1]
        log.info(
            "masks: %s: method %s, IoU %s, %d lost frames",
            r.id,
            r.method,
            "n/a" if r.iou is None else f"{r.iou:.3f}",
            len(r.lost),
        )
    return results


def _sam_predictor(cfg: MasksConfig):
    from tasks.segment.sam import FramePredictor, load_sam

    return FramePredictor(load_sam(cfg.sam_checkpoint, cfg.sam_model_type, cfg.sam_device))


def masks_for_video(row: pd.Series, cfg: MasksConfig, method: str, predictor=None) -> VideoMasks:
    """One video's masks, by the user's masks, SAM (``predictor``), or the fallback."""
    path = Path(cfg.clips_dir) / row["clip"]
    clip = load_clip(path)
    frames = clip["frames"]
    bar = tqdm(total=len(frames), desc=row["id"], unit="frame", leave=False)
    start = time.perf_counter()
    lost, unrecovered, objects = {}, [], None
    if "object_masks" in clip:  # each object drawn on its own (per-object prompts): the foreground is their union
        method = "user"
        objects = validate_object_masks(clip["object_masks"], frames, str(path), row["id"])
        masks = validate_user_masks(objects.any(0), frames, str(path), row["id"])
        bar.update(len(frames))
    elif row["mask_source"] == "user" or "user_masks" in clip:
        if "user_masks" not in clip:
            raise BadInput(path, "manifest says mask_source 'user' but the clip has no user_masks", row["id"])
        method = "user"
        masks = validate_user_masks(clip["user_masks"], frames, str(path), row["id"])
        bar.update(len(frames))
    elif method == "sam":
        from tasks.segment.sam import SamSettings, segment_with_sam

        settings = SamSettings(
            points_per_side=cfg.sam_points_per_side,
            pred_iou_thresh=cfg.sam_pred_iou_thresh,
            stability_score_thresh=cfg.sam_stability_thresh,
            max_subject_area=cfg.max_subject_area,
            box_padding=cfg.box_padding,
            lost=cfg.lost_rule(),
        )
        prompt = parse_prompt(row, frames.shape[1:3], str(Path(cfg.clips_dir) / "manifest.csv"))
        motion = motion_masks(frames, cfg.fallback_settings())
        track = segment_with_sam(
            predictor, frames, prompt, motion, settings, row["id"], on_frame=lambda: bar.update(1)
        )
        masks, lost, unrecovered = track.masks, track.lost, track.unrecovered
    else:
        box = parse_prompt(row, frames.shape[1:3], str(Path(cfg.clips_dir) / "manifest.csv")).box
        masks = FALLBACKS[cfg.fallback](frames, cfg.fallback_settings(), box=box, on_frame=lambda: bar.update(1))
        lost = flag_lost(masks, cfg.lost_rule())  # flagged only: a classical method has nothing to re-prompt
    seconds = (time.perf_counter() - start) / len(frames)
    bar.close()
    result = VideoMasks(row["id"], method, masks, seconds, lost, unrecovered, objects=objects)
    if "truth_masks" in clip:
        result.frame_iou = mask_iou(masks, clip["truth_masks"])
        result.iou = float(np.mean(result.frame_iou))
    return result


def masks_record(r: VideoMasks) -> dict:
    return {
        "id": r.id,
        "method": r.method,
        "n_frames": len(r.masks),
        "lost_frames": " ".join(map(str, sorted(r.lost))),
        "unrecovered_frames": " ".join(map(str, r.unrecovered)),
        "iou": "" if r.iou is None else round(r.iou, 4),
        # no timings here: this file is a cached output and the train run's fingerprint reads it, so
        # it must be the same on every machine; speed goes to the metrics file (git, not the cache)
    }


def masks_metrics(results: list[VideoMasks]) -> dict:
    """The DVC metric: per-video and mean IoU (videos with truth only), methods, speed."""
    measured = [r for r in results if r.iou is not None]
    methods: dict[str, int] = {}
    for r in results:
        methods[r.method] = methods.get(r.method, 0) + 1
    return {
        "mean_iou": round(float(np.mean([r.iou for r in measured])), 4) if measured else None,
        "n_videos": len(results),
        "n_with_truth": len(measured),
        "methods": methods,
        "per_video": {
            r.id: {
                "iou": None if r.iou is None else round(r.iou, 4),
                "method": r.method,
                "lost_frames": len(r.lost),
                "seconds_per_frame": round(r.seconds_per_frame, 4),
            }
            for r in results
        },
    }


def run_masks(cfg: MasksConfig) -> dict:
    """Run the stage: compute everything, then write ``out_dir`` atomically and the metrics file."""
    results = make_masks(cfg)
    clips = read_clip_manifest(cfg.clips_dir)
    frames = {row["id"]: load_clip(Path(cfg.clips_dir) / row["clip"])["frames"] for _, row in clips.iterrows()}
    with atomic_dir(cfg.out_dir) as out:
        for r in results:
            write_masks(out, r.id, r.masks, r.objects)
        pd.DataFrame([masks_record(r) for r in results]).to_csv(out / "manifest.csv", index=False)
        sheet = contact_sheet([frames[r.id] for r in results], masks=[r.masks for r in results], max_frames=8)
        write_rgb_png(out / "preview.png", sheet)
    metrics = masks_metrics(results)
    write_json(cfg.metrics, metrics)
    return metrics
