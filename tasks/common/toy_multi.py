"""Scenes of several toy objects on crossing paths: the per-object prompts' held-out sets.

Two or three objects of different colours and shapes move over one ground, each along its own path,
and the paths cross: the first runs left to right, the second right to left, a third jumps in place
in the middle while the others pass it. Where objects overlap the one drawn later is in front, so
the objects' visible masks never overlap. ``tasks.toyworld.multi`` writes such sets for the
benchmarks; the base stage renders the same ones to measure what its VAE keeps of each object.
"""

from __future__ import annotations

import numpy as np

from tasks.common.toy import COLOURS, GROUNDS, SHAPES, ToyObject, render_objects


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


def multi_object_sequences(n_objects: tuple[int, ...], seed: int, size: int = 64, n_frames: int = 16):
    """One (objects, ground, frames uint8 (F, H, W, 3), visible masks bool (K, F, H, W)) per entry of
    ``n_objects`` (that many objects, 2 or 3), grounds cycling; the same seed gives the same set."""
    rng = np.random.default_rng(seed)
    grounds = list(rng.permutation(list(GROUNDS)))
    for i, n in enumerate(n_objects):
        if not 2 <= n <= 3:
            raise ValueError(f"n_objects[{i}]: {n} objects; a multi-object sequence has 2 or 3")
        ground = str(grounds[i % len(grounds)])
        objects = sample_objects(n, size, rng)
        frames, masks = render_objects(objects, ground, size, n_frames, rng)
        yield objects, ground, frames, masks
