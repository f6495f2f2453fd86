"""Evaluate generated videos: CLIP text alignment, CLIP frame consistency, foreground IoU.

Definitions (each video, then the mean over videos):

- ``text_alignment``: mean over frames of 100 x cos(CLIP(frame), CLIP(prompt)).
- ``consistency_adjacent``: mean over adjacent pairs of 100 x cos(CLIP(frame_t), CLIP(frame_t+1))
  (the paper's "frame consistency").
- ``consistency_all_pairs``: mean over all pairs i < j (the Tune-A-Video / LOVEU definition).
- ``iou``: foreground IoU per frame between the generated video's foreground and the input mask,
  averaged over frames (the paper's Table II IoU); ``iou_volume``: one IoU over the whole video
  (intersections and unions summed over frames).
- ``centroid_error_px``: mean distance between the foreground's and the mask's centroids, over
  frames where the foreground was found; ``missing_frames``: frames where it was not.

The segmenter that finds the generated foreground never sees the input mask: in the toy world it
is the object's palette colour against the grounds (``toy``), for real videos SAM (``sam``).

Videos made from drawn sequences of a motion that lives inside the object (a sequences manifest,
``evaluate.sequences``, whose rows give ``motion`` spin or squash, ``shape``, ``colour`` and
``truth_masks``, as ``bench/learned_motion.py`` writes them) also get the learned-motion columns
(``tasks.evaluate.motion``): motion fidelity against the few-shot clips (``evaluate.clips_dir``,
``evaluate.masks_dir``), containment in the drawn mask, IoU against the true silhouettes.

Videos whose objects carry their own prompts also get a row per object (``tasks.evaluate.objects``:
IoU of the object's prompted colour with its own masks, colour accuracy), toy segmenter only, in
``per_object.csv`` beside ``per_video.csv`` and under ``objects`` in the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field

from tasks.common.clip_weights import load_open_clip
from tasks.common.geometry import frame_ious
from tasks.common.io import read_mask_pngs, write_json
from tasks.common.params import StageConfig
from tasks.contract import read_outputs_manifest

log = logging.getLogger(__name__)


class EvaluateConfig(StageConfig):
    outputs_dir: str = "data/outputs"
    clip_weights: str = Field(
        "base/toy/clip", description="the toy CLIP folder (clip_model null), or local open_clip weights for clip_model"
    )
    clip_model: str | None = Field(
        None, description="the open_clip architecture of clip_weights, e.g. ViT-L-14-quickgelu; null = toy CLIP"
    )
    clip_activation: Literal["quickgelu", "gelu"] | None = Field(
        None, description="what a single clip_weights file was trained with, when clip_model cannot say it"
    )
    segmenter: Literal["toy", "sam"] = "toy"
    sam_checkpoint: str | None = None
    sam_model_type: Literal["vit_b", "vit_l", "vit_h", "tiny"] = "vit_b"
    min_object_pixels: int = Field(4, ge=1, description="smaller palette regions are noise")
    report_dir: str = "data/eval"
    metrics: str = "metrics/eval.json"
    frame_log: str = Field("metrics/eval_frames.csv", description="IoU per frame, for `dvc plots`")
    sequences: str | None = Field(
        None,
        description="the sequences manifest (or its folder) the videos were made from; rows with motion spin or "
        "squash get the learned-motion columns; null = none",
    )
    clips_dir: str = Field("data/clips", description="the few-shot clips, for the learned-motion reference")
    masks_dir: str = Field("data/masks", description="their masks, for the learned-motion reference")


# ---------------------------------------------------------------------------------------------
# metrics on embeddings and masks (pure functions)


def clip_scores(image_emb: torch.Tensor, text_emb: torch.Tensor) -> dict[str, float]:
    """From CLIP embeddings of F frames ``(F, D)`` and their prompt ``(D,)`` (any norm)."""
    img = F.normalize(image_emb.float(), dim=-1)
    txt = F.normalize(text_emb.float(), dim=-1)
    sim = img @ img.T
    upper = torch.triu_indices(len(img), len(img), offset=1)
    return {
        "text_alignment": 100 * (img @ txt).mean().item(),
        "consistency_adjacent": 100 * (img[:-1] * img[1:]).sum(-1).mean().item(),
        "consistency_all_pairs": 100 * sim[upper[0], upper[1]].mean().item(),
    }


def mask_scores(found: np.ndarray, wanted: np.ndarray) -> dict:
    """Foreground ``found`` vs input masks ``wanted``, both bool (F, H, W)."""
    per_frame, inter, union = frame_ious(found, wanted)
    errors, missing = [], 0
    for f, w in zip(found, wanted):
        if not f.any():
            missing += 1
            continue
        if w.any():
            errors.append(np.linalg.norm(_centroid(f) - _centroid(w)))
    return {
        "iou": float(per_frame.mean()),
        "iou_volume": float(inter.sum() / max(union.sum(), 1)),
        "iou_per_frame": [round(float(v), 4) for v in per_frame],
        "centroid_error_px": float(np.mean(errors)) if errors else None,
        "missing_frames": missing,
    }


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


# ---------------------------------------------------------------------------------------------
# segmenters and CLIP


def toy_segmenter(min_pixels: int) -> Callable[[np.ndarray, str], np.ndarray]:
    """Foreground of toy frames: pixels nearer some object palette colour than to any ground.

    Knows the toy world (its object palette and its grounds), never the input mask. Any object
    colour counts, not only the prompt's: IoU measures where the object is, and whether it has
    the prompted colour is what text alignment measures. All regions of at least ``min_pixels``
    count (a sequence may hold several objects).
    """
    from tasks.common.toy_palette import object_pixels

    def segment(frames: np.ndarray, prompt: str) -> np.ndarray:
        return np.stack([object_pixels(frame, min_pixels) for frame in frames])

    return segment


def sam_segmenter(checkpoint: str | None, model_type: str) -> Callable[[np.ndarray, str], np.ndarray]:
    """Foreground by SAM, prompted by nothing but what moves (the masks stage's automatic rule)."""
    if not checkpoint:
        raise ValueError("evaluate.sam_checkpoint: the sam segmenter needs a local SAM checkpoint")
    from tasks.segment.fallback import motion_masks
    from tasks.segment.propagate import FirstFramePrompt
    from tasks.segment.sam import FramePredictor, SamSettings, load_sam, segment_with_sam

    predictor = FramePredictor(load_sam(checkpoint, model_type))

    def segment(frames: np.ndarray, prompt: str) -> np.ndarray:
        return segment_with_sam(
            predictor, frames, FirstFramePrompt(), motion_masks(frames), SamSettings(), prompt
        ).masks

    return segment


@dataclass
class ClipScorer:
    """An open_clip model with its preprocessing and tokenizer."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable

    @torch.no_grad()
    def images(self, frames: np.ndarray) -> torch.Tensor:
        batch = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames])
        return self.model.encode_image(batch)

    @torch.no_grad()
    def text(self, prompt: str) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer([prompt]))[0]


def load_clip_scorer(cfg: EvaluateConfig) -> ClipScorer:
    if cfg.clip_model is not None:
        return ClipScorer(
            *load_open_clip(
                cfg.clip_model,
                cfg.clip_weights,
                "evaluate.clip_model",
                "evaluate.clip_weights",
                cfg.clip_activation,
                "evaluate.clip_activation",
            )
        )
    from tasks.common.toy_clip import load_toy_clip

    if not Path(cfg.clip_weights).is_dir():
        raise FileNotFoundError(
            f"evaluate.clip_weights: toy CLIP folder '{cfg.clip_weights}' not found (run the base stage)"
        )
    return ClipScorer(*load_toy_clip(cfg.clip_weights))


# ---------------------------------------------------------------------------------------------


def evaluate_video(frames: np.ndarray, masks: np.ndarray, prompt: str, scorer: ClipScorer, segment) -> dict:
    """All metrics of one generated video: frames uint8 (F, H, W, 3), input masks bool (F, H, W)."""
    scores = clip_scores(scorer.images(frames), scorer.text(prompt))
    scores.update(mask_scores(segment(frames, prompt), masks))
    return scores


SUMMARY = ["text_alignment", "consistency_adjacent", "consistency_all_pairs", "iou", "iou_volume", "centroid_error_px"]


def evaluate(cfg: EvaluateConfig) -> dict:
    """Score every video in the outputs manifest; write metrics, per-video and per-frame tables, a report."""
    from tqdm import tqdm

    from tasks.evaluate.report import write_report

    outputs = Path(cfg.outputs_dir)
    table = read_outputs_manifest(outputs)
    scorer = load_clip_scorer(cfg)
    segment = (
        toy_segmenter(cfg.min_object_pixels)
        if cfg.segmenter == "toy"
        else sam_segmenter(cfg.sam_checkpoint, cfg.sam_model_type)
    )
    from tasks.evaluate.motion import LearnedMotion

    learned = LearnedMotion.from_config(cfg)
    rows, frame_rows, object_rows = [], [], []
    for row in tqdm(table.itertuples(), total=len(table), desc="evaluate", unit="video"):
        folder = outputs / row.video_id
        frames = np.load(folder / "frames.npy")
        scores = evaluate_video(frames, read_mask_pngs(folder / "masks"), row.prompt, scorer, segment)
        scores.update(learned.scores(row.sequence, frames, cfg.min_object_pixels))
        if cfg.segmenter == "toy":
            object_rows += [
                {"video_id": row.video_id, "sequence": row.sequence, "seed": row.seed, **r}
                for r in per_object(folder, frames, cfg.min_object_pixels)
            ]
        frame_rows += [
            {"video_id": row.video_id, "frame": i, "iou": v} for i, v in enumerate(scores.pop("iou_per_frame"))
        ]
        rows.append(
            {"video_id": row.video_id, "sequence": row.sequence, "prompt": row.prompt, "seed": row.seed, **scores}
        )
    per_video = pd.DataFrame(rows)
    summary = {k: _mean(per_video[k]) for k in SUMMARY}
    metrics = {
        **summary,
        "n_videos": len(per_video),
        "definitions": {
            "consistency_adjacent": "mean cos x100 of adjacent frames (paper)",
            "consistency_all_pairs": "mean cos x100 of all frame pairs (Tune-A-Video/LOVEU)",
            "text_alignment": "mean over frames of cos(frame, prompt) x100",
            "iou": "per-frame foreground IoU vs input mask, mean over frames and videos",
        },
        "videos": {r["video_id"]: {k: r[k] for k in SUMMARY} for r in rows},
    }
    report = Path(cfg.report_dir)
    report.mkdir(parents=True, exist_ok=True)
    per_video.to_csv(report / "per_video.csv", index=False)
    Path(cfg.frame_log).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(frame_rows).to_csv(cfg.frame_log, index=False)
    if learned.rows:
        metrics["learned_motion"] = {k: _mean(per_video[k]) for k in LEARNED_SUMMARY if k in per_video}
    per_objects = pd.DataFrame(object_rows)
    if object_rows:  # only runs with per-object prompts: the others write what they always wrote
        per_objects.to_csv(report / "per_object.csv", index=False)
        metrics["objects"] = {k: _mean(per_objects[k]) for k in OBJECT_SUMMARY} | {"n_objects": len(per_objects)}
    write_report(report / "report.md", per_video, summary, outputs, per_objects)
    write_json(cfg.metrics, metrics)
    return metrics


OBJECT_SUMMARY = ["iou", "colour_accuracy", "centroid_error_px"]
LEARNED_SUMMARY = ["motion_fidelity", "containment", "iou_truth"]


def per_object(folder: Path, frames: np.ndarray, min_pixels: int) -> list[dict]:
    """The per-object rows of one video folder, [] for a video without per-object prompts."""
    import json

    from tasks.evaluate.objects import object_scores, prompt_colour

    prompts = json.loads((folder / "meta.json").read_text()).get("object_prompts") or []
    if not prompts:
        return []
    masks = np.stack([read_mask_pngs(folder / "objects" / str(k)) for k in range(len(prompts))])
    rows = object_scores(frames, masks, [prompt_colour(p) for p in prompts], min_pixels)
    return [{**r, "prompt": p} for r, p in zip(rows, prompts)]


def _mean(column: pd.Series) -> float | None:
    values = pd.to_numeric(column, errors="coerce").dropna()
    return round(float(values.mean()), 4) if len(values) else None
