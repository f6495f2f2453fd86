"""How small an object the toy VAE can draw: one object alone, through ``D(E(x))``, scored by shape and size.

Every generated frame is decoded by the base's VAE, so what that VAE makes of a right frame's encoding is the
reference for the per-object scores. This renders one toy object at a time (no other object, nothing hidden), at
each shape and half-size ("radius") of the toy world's range (0.1-0.17 x 64 = 6.4-10.9 pixels), running
over each ground in the colours cycled, passes the frames through the checkpoint's VAE and scores them as
the per-object evaluation does (``tasks.evaluate.objects``: the object's colour found in the frame, IoU
with its mask; colour accuracy), and scores the same frames as rendered (the scorer's own ceiling). Alone, the
sizes the per-object benchmark misses are drawn well: what loses them there is the objects beside them.

    python bench/vae_object_size/vae_object_size.py [--checkpoint data/checkpoints]
        [--results bench/vae_object_size/vae_object_size_results.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tasks.common.device import resolve_device  # noqa: E402
from tasks.common.io import atomic_write_text  # noqa: E402
from tasks.common.params import load_stage_config  # noqa: E402
from tasks.common.toy import COLOURS, GROUNDS, SHAPES, ToyObject, random_motion_params, render_objects  # noqa: E402
from tasks.evaluate.objects import object_scores  # noqa: E402
from tasks.evaluate.stage import EvaluateConfig  # noqa: E402
from tasks.generate.config import GenerateConfig  # noqa: E402
from tasks.generate.pipeline import from_pretrained  # noqa: E402
from tasks.toyworld.stage import ToyWorldConfig  # noqa: E402

RADII = (6.0, 7.0, 8.0, 9.0, 10.0, 11.0)
IOU_TARGET, COLOUR_TARGET = 0.75, 0.9  # issue 26's per-object targets


def round_trip_scores(
    pipe, shape: str, radius: float, videos: int, n_frames: int, size: int, min_pixels: int, seed: int
) -> list[dict]:
    """Rows for each video of a single ``shape`` of half-size ``radius`` running: its frames as rendered
    and, unless ``pipe`` is None, after ``D(E(x))`` (``pipe``'s ``encode_images`` and ``decode_latents``)."""
    rng = np.random.default_rng(seed)
    colours = [c for c in COLOURS if c != "black"]
    rows = []
    for v in range(videos):
        colour, ground = colours[v % len(colours)], list(GROUNDS)[v % len(GROUNDS)]
        obj = ToyObject(colour, shape, radius, "run", random_motion_params("run", rng))
        frames, masks = render_objects([obj], ground, size, n_frames, rng)
        versions = {"rendered": frames}
        if pipe is not None:
            images = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            with torch.no_grad():
                versions["VAE"] = pipe.decode_latents(pipe.encode_images(images.to(pipe.device)))
        for name, scored in versions.items():
            (score,) = object_scores(scored, masks, [colour], min_pixels)
            rows.append(
                {
                    "frames": name,
                    "shape": shape,
                    "radius": radius,
                    "colour": colour,
                    "ground": ground,
                    "pixels": float(masks.sum((1, 2, 3)).mean() / n_frames),
                    "iou": score["iou"],
                    "colour_accuracy": score["colour_accuracy"],
                }
            )
    return rows


def shape_by_radius(values: pd.DataFrame, last_row: str = "") -> list[str]:
    """A markdown table: a row per shape, a column per half-size."""
    radii = list(values.columns)
    lines = ["| shape | " + " | ".join(f"r = {r:g}" for r in radii) + " |", "|---" * (len(radii) + 1) + "|"]
    lines += [f"| {s} | " + " | ".join(f"{values.loc[s, r]:.2f}" for r in radii) + " |" for s in values.index]
    return lines + ([last_row] if last_row else []) + [""]


def results_markdown(table: pd.DataFrame, header: str) -> str:
    vae, rendered = table[table["frames"] == "VAE"], table[table["frames"] == "rendered"]
    pixels = vae.groupby("radius")["pixels"].mean()
    pixel_row = "| (object pixels) | " + " | ".join(f"{pixels[r]:.0f}" for r in pixels.index) + " |"
    lines = [header, "", "Mean IoU of the object's colour with its mask, through the VAE (by half-size, pixels):", ""]
    lines += shape_by_radius(vae["iou"].groupby([vae["shape"], vae["radius"]]).mean().unstack(), pixel_row)
    lines += ["The same frames as rendered, no VAE (the scorer's own ceiling: anti-aliased edges, shading):", ""]
    lines += shape_by_radius(rendered["iou"].groupby([rendered["shape"], rendered["radius"]]).mean().unstack())
    lines += [f"Share of videos at both targets through the VAE (IoU >= {IOU_TARGET}, colour >= 90% of frames):", ""]
    at_both = (vae["iou"] >= IOU_TARGET) & (vae["colour_accuracy"] >= COLOUR_TARGET)
    lines += shape_by_radius(at_both.groupby([vae["shape"], vae["radius"]]).mean().unstack())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--checkpoint", default=None, help="generate.checkpoint_dir override (whose VAE is used)")
    parser.add_argument("--videos", type=int, default=8, help="videos per shape and size (colours and grounds cycled)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("bench/vae_object_size/vae_object_size_results.md"))
    args = parser.parse_args(argv)

    cfg = load_stage_config(GenerateConfig, "generate", args.params)
    checkpoint = Path(args.checkpoint or cfg.checkpoint_dir)
    min_pixels = load_stage_config(EvaluateConfig, "evaluate", args.params).min_object_pixels
    size = load_stage_config(ToyWorldConfig, "toyworld", args.params).size
    pipe = from_pretrained(checkpoint, device=resolve_device(cfg.device, "generate.device"))
    t0 = time.perf_counter()
    rows = []
    for shape in SHAPES:
        for radius in RADII:
            rows += round_trip_scores(pipe, shape, radius, args.videos, args.frames, size, min_pixels, args.seed)
        print(f"{shape}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.results.with_suffix(".csv"), index=False)
    header = (
        "# What the toy VAE can draw\n\n`python bench/vae_object_size/vae_object_size.py` "
        f"({time.strftime('%Y-%m-%d')}): the VAE of "
        f"`{checkpoint}`; one object per video ({args.videos} videos per shape and half-size, colours and grounds "
        f"cycled, {args.frames} frames running across the ground, seed {args.seed}), each frame through `D(E(x))`, "
        f"scored as `tasks/evaluate/objects.py` scores generated objects (min region {min_pixels} pixels). "
        f"{time.perf_counter() - t0:.0f} s. Per video: `{args.results.with_suffix('.csv')}`."
    )
    atomic_write_text(args.results, results_markdown(table, header))
    print(args.results.read_text())


if __name__ == "__main__":
    main()
