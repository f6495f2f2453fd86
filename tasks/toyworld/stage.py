"""The ``toyworld`` stage: the toy world (tasks.common.toy) rendered as a dataset a user would bring.

Each video comes with a prompt ("a red star runs across a sandy plain") and a ground-truth binary
mask per frame. The renderer writes what a user would bring: mp4 files, mask PNGs and a manifest,
so every later stage treats the toy world exactly like real footage.

Layout written under ``out_dir``::

    manifest.yaml            few-shot training set: id, video, prompt, truth_masks (+ what was drawn)
    videos/<id>.mp4          H.264
    truth/<id>/0000.png      ground-truth masks, 0/255
    truth/<id>/objects/<k>/  a multi-object video's object k (``n_multi_train``), given to the
                             manifest's ``objects`` as a user's per-object masks would be
    heldout/manifest.yaml    prompts + mask sequences for generation (+ first_frame)
    heldout/<id>/0000.png
    heldout/first_frames/<id>.png   the sequence's true first frame (for first_frame_source=manifest)
    preview.png              contact sheet of the training set, mask outlined
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import Field

from tasks.common.io import atomic_dir, write_mask_pngs, write_rgb_png
from tasks.common.params import StageConfig
from tasks.common.toy import (
    COLOURS,
    GROUNDS,
    SHAPES,
    Scene,
    pattern_params,
    random_motion_params,
    render_objects,
    render_video,
)
from tasks.common.toy_multi import sample_objects
from tasks.common.video import write_mp4
from tasks.common.visualize import contact_sheet


class ToyWorldConfig(StageConfig):
    seed: int = 0
    size: int = Field(64, ge=16, le=512, multiple_of=2, description="frame height = width, pixels")
    n_frames: int = Field(16, ge=2)
    fps: float = Field(8.0, gt=0)
    motion: Literal["run", "jump", "circle", "spin", "squash"] = Field(
        "run",
        description="the few-shot set's motion pattern; spin and squash live inside the object (its turn, its "
        "squash), which a rigid mask moved along a path cannot show",
    )
    n_train: int = Field(6, ge=1, description="few-shot training videos, all sharing `motion`")
    n_multi_train: int = Field(
        0,
        ge=0,
        description=(
            "extra training videos of 2-3 objects crossing, each object with its own prompt and masks "
            "(tasks.toyworld.multi; for per-object prompts)"
        ),
    )
    n_heldout: int = Field(4, ge=0, description="held-out prompts + mask sequences for generation")
    heldout_frames: int = Field(16, ge=2)
    out_dir: str = "data/raw/toy"


def sample_scenes(cfg: ToyWorldConfig, n: int, rng: np.random.Generator) -> list[Scene]:
    """``n`` scenes sharing ``cfg.motion`` (and its pattern: ``pattern_params``); colours, shapes and
    grounds cycle so a small set covers many. A turn shows on every shape but the circle: spin leaves it out."""
    shape_names = [s for s in SHAPES if s != "circle"] if cfg.motion == "spin" else list(SHAPES)
    colours, shapes, grounds = (rng.permutation(list(x)) for x in (COLOURS, shape_names, GROUNDS))
    return [
        Scene(
            colour=str(colours[i % len(colours)]),
            shape=str(shapes[i % len(shapes)]),
            ground=str(grounds[i % len(grounds)]),
            motion=cfg.motion,
            radius=float(rng.uniform(0.1, 0.17) * cfg.size),
            params=pattern_params(cfg.motion, random_motion_params(cfg.motion, rng)),
        )
        for i in range(n)
    ]


def render_toyworld(cfg: ToyWorldConfig) -> Path:
    """Render the training set and the held-out set into ``cfg.out_dir`` (atomically). Returns it."""
    # independent streams: growing the held-out set never changes the training videos
    train_rng, heldout_rng, multi_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(3))
    with atomic_dir(cfg.out_dir) as out:
        rows, previews = [], []
        for i, scene in enumerate(sample_scenes(cfg, cfg.n_train, train_rng)):
            vid = f"toy-{i:03d}"
            frames, masks = render_video(scene, cfg.size, cfg.n_frames, train_rng)
            (out / "videos").mkdir(exist_ok=True)
            write_mp4(out / "videos" / f"{vid}.mp4", frames, cfg.fps)
            write_mask_pngs(masks, out / "truth" / vid)
            rows.append(
                {
                    "id": vid,
                    "video": f"videos/{vid}.mp4",
                    "prompt": scene.prompt,
                    "truth_masks": f"truth/{vid}",
                    **_scene_fields(scene),
                }
            )
            previews.append((frames, masks))
        for i in range(cfg.n_multi_train):
            rows.append(_multi_object_video(out, f"toy-multi-{i:03d}", 2 + i % 2, cfg, multi_rng, previews))
        _write_yaml(out / "manifest.yaml", {"videos": rows})

        held = []
        for i, scene in enumerate(sample_scenes(cfg, cfg.n_heldout, heldout_rng)):
            sid = f"heldout-{i:03d}"
            frames, masks = render_video(scene, cfg.size, cfg.heldout_frames, heldout_rng)
            write_mask_pngs(masks, out / "heldout" / sid)
            # the true first frame: generating from it (generate.first_frame_source=manifest)
            # measures the few-shot model alone, without the base's frame 1
            (out / "heldout" / "first_frames").mkdir(exist_ok=True)
            write_rgb_png(out / "heldout" / "first_frames" / f"{sid}.png", frames[0])
            held.append(
                {
                    "id": sid,
                    "prompt": scene.prompt,
                    "masks": sid,
                    "first_frame": f"first_frames/{sid}.png",
                    **_scene_fields(scene),
                }
            )
        _write_yaml(out / "heldout" / "manifest.yaml", {"sequences": held})

        sheet = contact_sheet([f for f, _ in previews], masks=[m for _, m in previews], max_frames=8)
        write_rgb_png(out / "preview.png", sheet)
    return Path(cfg.out_dir)


def _multi_object_video(
    out: Path, vid: str, n_objects: int, cfg: ToyWorldConfig, rng: np.random.Generator, previews: list
) -> dict:
    """A training video of ``n_objects`` objects on crossing paths, written under ``out``; its manifest row."""
    ground = str(rng.choice(list(GROUNDS)))
    objects = sample_objects(n_objects, cfg.size, rng)
    frames, masks = render_objects(objects, ground, cfg.size, cfg.n_frames, rng)
    write_mp4(out / "videos" / f"{vid}.mp4", frames, cfg.fps)
    write_mask_pngs(masks.any(0), out / "truth" / vid)
    for k, m in enumerate(masks):
        write_mask_pngs(m, out / "truth" / vid / "objects" / str(k))
    previews.append((frames, masks.any(0)))
    return {
        "id": vid,
        "video": f"videos/{vid}.mp4",
        "prompt": objects[0].prompt(ground),  # the scene, as in the multi-object held-out sequences
        "truth_masks": f"truth/{vid}",
        "objects": [{"prompt": o.prompt(ground), "masks": f"truth/{vid}/objects/{k}"} for k, o in enumerate(objects)],
        "ground": ground,
    }


def _scene_fields(scene: Scene) -> dict:
    return {"colour": scene.colour, "shape": scene.shape, "ground": scene.ground, "motion": scene.motion}


def _write_yaml(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
