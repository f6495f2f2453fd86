"""Held-out sequences with several objects, each with its own prompt (per-object prompts).

The scenes are ``tasks.common.toy_multi``'s: two or three objects on crossing paths. Each object has
its own prompt, as a single-object toy video would ("a red circle runs across a grassy meadow"). The
sequence's prompt, the scene, is the first object's prompt (the toy text encoder never saw two objects
in one prompt, and a prompt naming them all, ``joint_prompt``: "a red circle a yellow square runs
across a grassy meadow", gave the wrong ground and worse per-object scores as the scene:
docs/results.md; the toy tokenizer knows no "and"). The masks are what is visible, so the objects'
masks never overlap and their union is the foreground.

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
from tasks.common.toy import joint_prompt
from tasks.common.toy_multi import multi_object_sequences
from tasks.common.visualize import contact_sheet


def render_multi_object_heldout(
    out_dir: str | Path,
    n_objects: tuple[int, ...] = (2, 2, 3, 2),
    seed: int = 0,
    size: int = 64,
    n_frames: int = 16,
) -> Path:
    """One sequence per entry of ``n_objects`` (that many objects), grounds cycling; written atomically."""
    rows = []
    with atomic_dir(out_dir) as out:
        (out / "truth").mkdir()
        for i, (objects, ground, frames, masks) in enumerate(multi_object_sequences(n_objects, seed, size, n_frames)):
            sid = f"multi-{i:03d}"
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
