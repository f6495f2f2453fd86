"""Quality figures of the toy base on turned and stretched shapes (what spin and squash need).

Two kinds: what the VAE keeps of a posed shape (``vae_pose_grid``: one object per frame, every shape
at each turn and each stretch, through ``D(E(x))``, scored by finding the object's colour as the
evaluation does), and what the samplers draw and CLIP reads on held-out combos in any pose
(``measure_quality``'s ``posed`` figures). Each comes with the same detector's score on the frames as
rendered: the detector's own ceiling, which every figure is read against.
"""

from __future__ import annotations

import numpy as np
import torch

from tasks.common.geometry import iou
from tasks.common.toy import COLOURS, GROUNDS, SHAPES, ToyObject, random_motion_params, render_objects
from tasks.common.toy_palette import detect_object

ANGLES_DEG = (0, 20, 40, 60, 80)  # turns, aspect 1 (80 degrees covers every shape's symmetry but the circle's)
ASPECTS = (0.6, 0.8, 1.25, 1.6)  # stretches, upright


def pose_cells() -> list[tuple[str, float, float]]:
    """(name, angle in radians, aspect) of each pose the grid measures."""
    turned = [(f"{a} deg", float(np.deg2rad(a)), 1.0) for a in ANGLES_DEG]
    return turned + [(f"aspect {a:g}", 0.0, a) for a in ASPECTS]


def posed_frames(shape: str, angle: float, aspect: float, n: int, size: int, seed: int):
    """``n`` frames uint8 (n, H, W, 3) of one ``shape`` in the pose, random colour (black left out:
    the VAE's darkest shade), ground, half-size (the toy world's 0.1-0.17 x size) and place; true
    masks bool (n, H, W) and colours."""
    rng = np.random.default_rng(seed)
    colours = [c for c in COLOURS if c != "black"]
    frames, masks, names = [], [], []
    for _ in range(n):
        colour, ground = colours[rng.integers(len(colours))], list(GROUNDS)[rng.integers(len(GROUNDS))]
        radius = float(rng.uniform(0.1, 0.17) * size)
        obj = ToyObject(colour, shape, radius, "run", random_motion_params("run", rng), angle, aspect)
        video, video_masks = render_objects([obj], ground, size, 16, rng)
        t = int(rng.integers(16))
        frames.append(video[t]), masks.append(video_masks[0, t]), names.append(colour)
    return np.stack(frames), np.stack(masks), names


def object_iou(frame: np.ndarray, mask: np.ndarray, colour: str) -> float:
    """IoU of the frame's object (its largest region of the right colour) with the true mask; 0 when
    the frame's main colour is another."""
    found, region = detect_object(frame)
    return iou(region, mask) if found == colour else 0.0


@torch.no_grad()
def vae_pose_grid(vae, n: int = 8, size: int = 64, seed: int = 0) -> tuple[dict, list[dict]]:
    """Mean object IoU through ``vae`` (posterior mode) per shape x pose, and as rendered.

    Returns (summary, rows): the summary has each shape's worst pose and the worst cell overall,
    through the VAE and as rendered; rows are one per cell (for a CSV)."""
    rows = []
    for k, shape in enumerate(SHAPES):
        for j, (name, angle, aspect) in enumerate(pose_cells()):
            frames, masks, colours = posed_frames(shape, angle, aspect, n, size, seed + 100 * k + j)
            px = torch.from_numpy(frames).permute(0, 3, 1, 2).float().to(vae.device) / 127.5 - 1
            recon = vae.decode(vae.encode(px).latent_dist.mode()).sample.clamp(-1, 1)
            recon = ((recon + 1) * 127.5).round().permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8)
            through = [object_iou(r, m, c) for r, m, c in zip(recon, masks, colours)]
            rendered = [object_iou(f, m, c) for f, m, c in zip(frames, masks, colours)]
            rows.append(
                {
                    "shape": shape,
                    "pose": name,
                    "vae_iou": float(np.mean(through)),
                    "rendered_iou": float(np.mean(rendered)),
                }
            )
    worst = min(rows, key=lambda r: r["vae_iou"])
    summary = {
        "min_iou": round(worst["vae_iou"], 4),
        "worst_cell": f"{worst['shape']} {worst['pose']}",
        "mean_iou": round(float(np.mean([r["vae_iou"] for r in rows])), 4),
        "rendered_min_iou": round(min(r["rendered_iou"] for r in rows), 4),
        "by_shape_min": {s: round(min(r["vae_iou"] for r in rows if r["shape"] == s), 4) for s in SHAPES},
        "frames_per_cell": n,
    }
    return summary, rows
