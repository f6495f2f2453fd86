"""Held-out sequences with several objects, each with its own prompt (per-object prompts).

Two or three toy objects of different colours and shapes move over one ground, each along its own
path, and the paths cross: the first runs left to right, the second right to left, a third jumps
in place in the middle while the others pass it. Each object has its own prompt, as a single-object
toy video would ("a red circle runs across a grassy meadow"). The sequence's prompt, the scene, is the
first object's prompt (the toy text encoder never saw two objects in one prompt, and a prompt naming
them all, ``joint_prompt``: "a red circle a yellow square runs across a grassy meadow", gave the wrong
ground and worse per-object scores as the scene: docs/results.md; the toy tokenizer knows no "and").

The masks are what is visible: where objects overlap, the one drawn later (the later in the list)
is in front, so the objects' masks never overlap and their union is the foreground.

Layout written under ``out_dir`` (a sequences manifest ``generate.sequences`` reads)::

    manifest.yaml               sequences: [{id, prompt, masks, objects: [{prompt, masks, colour, shape}],
                                             ground, joint_prompt}]
    <id>/0000.png ...           the union of the objects' masks
    <id>/objects/<k>/0000.png   object k's masks
    truth/<id>.png              a contact sheet of the rendered truth (what such a video looks like)
    truth/<id>.npy              the rendered truth, uint8 (F, H, W, 3) (a benchmark's reference row)

Not part of the ``toyworld`` stage: that stage's outputs are unchanged; benchmarks call this.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tasks.common.io import atomic_dir, write_mask_pngs, write_rgb_png
from tasks.common.toy import COLOURS, GROUNDS, SHAPES, ToyObject, joint_prompt, render_objects
from tasks.common.visualize import contact_sheet


def sample_objects(n: int, size: int, rng: np.random.Generator) -> list[ToyObject]:
    """``n`` (2 or 3) objects of different colours and shapes on crossing paths (module docstring)."""
    colours = rng.choice([c for c in COLOURS if c != "black"], n, replace=False)
    shapes = rng.choice(SHAPES, n, replace=False)
    objects = []
    for k in range(n):
        radius = float(rng.uniform(0.1, 0.14) * size)
        if k < 2:
            start, end = (rng.uniform(0.0, 0.1), rng.uniform(0.9, 1.0))[:: 1 if k == 0 else -1]
            motion, params = "run", (start, end, float(rng.integers(1, 4)), rng.uniform(0.1, 0.45))
        else:
            motion, params = "jump", (rng.uniform(0.4, 0.6), float(rng.integers(1, 3)), rng.uniform(0.3, 0.45))
        objects.append(ToyObject(str(colours[k]), str(shapes[k]), radius, motion, params))
    return objects


def render_multi_object_heldout(
    out_dir: str | Path,
    n_objects: tuple[int, ...] = (2, 2, 3, 2),
    seed: int = 0,
    size: int = 64,
    n_frames: int = 16,
) -> Path:
    """One sequence per entry of ``n_objects`` (that many objects), grounds cycling; written atomically."""
    rng = np.random.default_rng(seed)
    grounds = list(rng.permutation(list(GROUNDS)))
    rows = []
    with atomic_dir(out_dir) as out:
        (out / "truth").mkdir()
        for i, n in enumerate(n_objects):
            if not 2 <= n <= 3:
                raise ValueError(f"n_objects[{i}]: {n} objects; a multi-object sequence has 2 or 3")
            sid, ground = f"multi-{i:03d}", str(grounds[i % len(grounds)])
            objects = sample_objects(n, size, rng)
            frames, masks = render_objects(objects, ground, size, n_frames, rng)
            write_mask_pngs(masks.any(0), out / sid)
            for k, m in enumerate(masks):
                write_mask_pngs(m, out / sid / "objects" / str(k))
            write_rgb_png(out / "truth" / f"{sid}.png", contact_sheet([frames], masks=[masks.any(0)], max_frames=8))
            np.save(out / "truth" / f"{sid}.npy", frames)
            rows.append(
                {
                    "id": sid,
                    "prompt": objects[0].prompt(ground),
                    "masks": sid,
                    "objects": [
                        {
                            "prompt": o.prompt(ground),
                            "masks": f"{sid}/objects/{k}",
                            "colour": o.colour,
                            "shape": o.shape,
                        }
                        for k, o in enumerate(objects)
                    ],
                    "ground": ground,
                    "joint_prompt": joint_prompt(objects, ground),
                }
            )
        (out / "manifest.yaml").write_text(yaml.safe_dump({"sequences": rows}, sort_keys=False))
    return Path(out_dir)
