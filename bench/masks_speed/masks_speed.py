"""Seconds per frame of each masks method on this machine; writes bench/masks_speed/masks_results.md.

    python -m bench.masks_speed.masks_speed [--clips data/clips] [--vit-b-frames 3] [--no-vit-b]

* the fallbacks on every toy-world clip (run ``dvc repro ingest`` first), with their IoU;
* the tiny SAM (random weights) on one clip: automatic first frame, then propagation;
* the real ``vit_b`` architecture with random weights on the first frames of one 64x64 clip:
  SAM resizes every frame to 1024 px, so this is what a real checkpoint costs per frame
  (its masks are meaningless; only the time is measured). About 20 s and 4 GB a frame on a CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from tasks.common.io import load_clip
from tasks.contract import read_clip_manifest
from tasks.masks.stage import mask_iou
from tasks.segment.fallback import FALLBACKS, FallbackSettings, motion_masks
from tasks.segment.propagate import FirstFramePrompt, propagate
from tasks.segment.sam import SAM_BUILDERS, FramePredictor, SamSettings, segment_with_sam

RESULTS = Path(__file__).with_name("masks_results.md")


def bench_fallbacks(clips: list[dict]) -> list[tuple[str, float, float]]:
    rows = []
    for name, method in FALLBACKS.items():
        seconds, ious = 0.0, []
        for clip in clips:
            start = time.perf_counter()
            masks = method(clip["frames"], FallbackSettings())
            seconds += time.perf_counter() - start
            ious.append(np.mean(mask_iou(masks, clip["truth_masks"])))
        rows.append((f"fallback:{name}", seconds / sum(len(c["frames"]) for c in clips), float(np.mean(ious))))
    return rows


def bench_sam(model_type: str, frames: np.ndarray, truth: np.ndarray, automatic: bool) -> tuple[float, int]:
    """Seconds per frame of SAM on ``frames`` (model built with random weights) and embeddings made."""
    torch.manual_seed(0)
    predictor = FramePredictor(SAM_BUILDERS[model_type]().eval())
    start = time.perf_counter()
    with torch.no_grad():
        if automatic:
            settings = SamSettings(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0)
            segment_with_sam(predictor, frames, FirstFramePrompt(), motion_masks(frames), settings, "bench")
        else:
            # a box prompt on frame 0, then propagation: the cheapest honest SAM path
            predictor.set_image(frames[0])
            propagate(predictor, frames, truth[0], padding=0.1)
    return (time.perf_counter() - start) / len(frames), predictor.n_embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="data/clips")
    parser.add_argument("--vit-b-frames", type=int, default=3)
    parser.add_argument("--no-vit-b", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)

    manifest = read_clip_manifest(args.clips)
    clips = [load_clip(Path(args.clips) / name) for name in manifest["clip"]]
    size = "x".join(map(str, clips[0]["frames"].shape[1:3]))
    lines = [
        "# masks: seconds per frame by method",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, CPU only "
        f"({platform.processor() or 'cpu'}); load average {os.getloadavg()[0]:.1f} at the start "
        "(the machine is shared with other jobs: treat the numbers as rough).",
        f"Clips: {len(clips)} toy-world clips, {size}, {len(clips[0]['frames'])} frames "
        "(`python -m bench.masks_speed.masks_speed`).",
        "",
        "| method | frames | seconds / frame | embeddings | mean IoU vs truth |",
        "|---|---|---|---|---|",
    ]
    for name, spf, miou in bench_fallbacks(clips):
        lines.append(f"| {name} | {sum(len(c['frames']) for c in clips)} | {spf:.4f} | - | {miou:.3f} |")
        print(lines[-1], flush=True)
    clip = clips[0]
    for automatic in (False, True):
        spf, n = bench_sam("tiny", clip["frames"], clip["truth_masks"], automatic)
        label = "sam tiny (random weights), " + ("automatic first frame" if automatic else "box + propagation")
        lines.append(f"| {label} | {len(clip['frames'])} | {spf:.3f} | {n} | meaningless (random weights) |")
        print(lines[-1], flush=True)
    if not args.no_vit_b:
        k = args.vit_b_frames
        spf, n = bench_sam("vit_b", clip["frames"][:k], clip["truth_masks"][:k], automatic=False)
        lines.append(
            f"| sam vit_b architecture (random weights), box + propagation | {k} | {spf:.2f} | {n} | "
            "meaningless (random weights) |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "Per-frame time for SAM includes the image embedding (once per frame) and the prompts; "
        "the automatic first frame adds SamAutomaticMaskGenerator (8x8 points here, 16x16 in params).",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
