"""Training data for the toy world's base models: a seeded in-memory pool of rendered toy frames.

Every frame comes from ``tasks.common.toy.render_video`` (all colours, shapes, grounds and the
configured motions; shapes turned or stretched in a configured share, ``Poses``), with its caption
(the scene's prompt) and its ground-truth mask. A few (colour, shape, ground) combinations never
appear in training: they are the held-out set on which the quality figures (VAE PSNR,
text-to-image, ControlNet, CLIP zero-shot) are measured, so each figure says how the model does on a
scene it has never seen, not how well it remembers one. Frames of 2-3 objects
(``render_pool(..., multi_object=True)``, made from the training combos) can join the pool of every model but
CLIP (``base.data.multi_object_share``) or the VAE decoder's last step (``base.vae.decoder_multi_object``).
With ``pose_words`` a caption also names each shape's pose at rest ("a tilted red square ..."), so a prompt
without such a word asks for an upright shape.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import torch

from tasks.common.toy import (
    COLOURS,
    GROUNDS,
    MOTIONS,
    RIGID_MOTIONS,
    SHAPES,
    Scene,
    ToyObject,
    joint_prompt,
    random_motion_params,
    render_objects,
    render_video,
)
from tasks.common.toy_palette import SYMMETRY

Combo = tuple[str, str, str]  # (colour, shape, ground)


def all_combos() -> list[Combo]:
    return list(itertools.product(COLOURS, SHAPES, GROUNDS))


def heldout_combos(n: int, seed: int) -> list[Combo]:
    """``n`` (colour, shape, ground) combinations kept out of training, chosen at random. With 120
    combinations and a handful held out, every colour, shape and ground word is still seen in
    training with other partners: the held-out set tests composition, not unseen words."""
    combos = all_combos()
    order = np.random.default_rng(seed).permutation(len(combos))
    return sorted(combos[i] for i in order[:n])


@dataclass
class FramePool:
    """Rendered toy frames held in memory.

    ``frames`` uint8 (N, H, W, 3) in [0, 255]; ``masks`` bool (N, H, W); ``prompts`` N strings;
    ``combos`` N (colour, shape, ground) tuples.
    """

    frames: np.ndarray
    masks: np.ndarray
    prompts: list[str]
    combos: list[Combo]

    def __len__(self) -> int:
        return len(self.frames)

    def __add__(self, other: FramePool) -> FramePool:
        return FramePool(
            np.concatenate([self.frames, other.frames]),
            np.concatenate([self.masks, other.masks]),
            self.prompts + other.prompts,
            self.combos + other.combos,
        )

    def batch(self, idx: np.ndarray) -> dict:
        """Tensors for a batch: ``pixels`` float (B, 3, H, W) in [-1, 1], ``masks`` float (B, 1, H, W)
        in {0, 1}, and ``prompts`` (list of B strings)."""
        pixels = torch.from_numpy(self.frames[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        masks = torch.from_numpy(self.masks[idx]).float()[:, None]
        return {"pixels": pixels, "masks": masks, "prompts": [self.prompts[i] for i in idx]}


@dataclass(frozen=True)
class Poses:
    """How base training scenes pose their shapes beyond what their motion does: ``turned`` of them at
    a random angle, ``stretched`` (others) at a random aspect in [0.6, 1.6] (log-uniform), the rest
    upright. Drawn from a generator of their own, so (0, 0) renders the frames it rendered before."""

    turned: float = 0.0
    stretched: float = 0.0

    def draw(self, rng: np.random.Generator) -> tuple[float, float]:
        """(angle, aspect) of one scene."""
        u, angle, log_aspect = rng.random(3)
        if u < self.turned:
            return float(2 * np.pi * angle), 1.0
        if u < self.turned + self.stretched:
            return 0.0, float(np.exp(np.log(0.6) + (np.log(1.6) - np.log(0.6)) * log_aspect))
        return 0.0, 1.0


# A caption names a pose at rest only where it shows: turned at least 10 degrees off the shape's
# symmetry, or stretched by at least 15%; below that a person would call the shape upright.
POSE_WORDS = ("tilted", "tall", "wide")
MIN_TURN, MIN_STRETCH = np.deg2rad(10.0), 1.15


def pose_word(obj: ToyObject) -> str | None:
    """The word a caption gives ``obj``'s pose at rest ("tilted", "tall", "wide"), or None when upright.
    What its motion does to it (spin, squash) is the motion's words' to say."""
    if obj.aspect >= MIN_STRETCH:
        return "tall"
    if obj.aspect <= 1 / MIN_STRETCH:
        return "wide"
    if obj.shape == "circle":  # the same at every turn
        return None
    turn = obj.angle % SYMMETRY[obj.shape]
    return "tilted" if min(turn, SYMMETRY[obj.shape] - turn) >= MIN_TURN else None


def caption(objects: list[ToyObject], ground: str, pose_words: bool = False) -> str:
    """A frame's prompt: ``joint_prompt`` (for one object, the scene's own prompt), with ``pose_words``
    each posed object named "a tilted red square", so a prompt without such a word asks for an upright
    shape. It did not by itself make the UNet draw shapes sooner on a posed pool (docs/experiments.md)."""
    if pose_words:  # the word goes before the colour, as an adjective does: "a tall red star"
        objects = [replace(o, colour=f"{w} {o.colour}") if (w := pose_word(o)) else o for o in objects]
    return joint_prompt(objects, ground)


def longest_caption(multi_object: bool, pose_words: bool) -> str:
    """The longest caption a training pool can hold: three objects where frames may show several, each
    named with its pose where captions name poses."""
    n, aspect = (3 if multi_object else 1), (MIN_STRETCH if pose_words else 1.0)
    captions = [
        caption([ToyObject(c, "star", 1.0, m, (), 0.0, aspect) for c in list(COLOURS)[:n]], g, pose_words)
        for m in MOTIONS
        for g in GROUNDS
    ]
    return max(captions, key=lambda s: len(s.split()))


def render_pool(
    n_scenes: int,
    frames_per_scene: int,
    combos: list[Combo],
    seed: int,
    size: int = 64,
    motions: tuple[str, ...] = RIGID_MOTIONS,
    poses: Poses = Poses(),
    multi_object: bool = False,
    pose_words: bool = False,
    motion_weights: tuple[float, ...] | None = None,
) -> FramePool:
    """Render ``n_scenes`` random scenes and keep ``frames_per_scene`` random frames of each.

    One object a scene (combos cycled in a shuffled order, random motion, radius and motion parameters,
    posed as ``poses`` says), or with ``multi_object`` 2 or 3 objects of different colours on one ground
    (each object's (colour, shape) one of ``combos`` on the scene's ground, each on its own random motion):
    masks are then the union of the objects' masks, prompts name every object (``joint_prompt``, as a
    caption of such a picture would) and ``combos`` hold the first object's. Captions name each pose at rest
    with ``pose_words`` (``caption``). Each scene's motion is drawn uniformly from ``motions``, or in
    proportion to ``motion_weights``."""
    rng = np.random.default_rng(seed)
    pose_rng = np.random.default_rng([seed, 1])
    draw = _multi_object_scenes if multi_object else _one_object_scenes
    frames, masks, prompts, kept = [], [], [], []
    # each scene is drawn lazily, so its frames are picked from rng before the next scene draws
    if motion_weights is None:
        pick_motion = lambda rng: motions[rng.integers(len(motions))]  # noqa: E731  (the frames rendered before)
    else:
        share = np.asarray(motion_weights, float) / sum(motion_weights)
        pick_motion = lambda rng: motions[rng.choice(len(motions), p=share)]  # noqa: E731
    scenes = draw(n_scenes, combos, rng, pose_rng, size, pick_motion, poses, pose_words)
    for video, video_masks, prompt, combo in scenes:
        # 16 rendered positions along the path; keep a random few so object positions cover the frame
        for t in rng.choice(16, size=frames_per_scene, replace=False):
            frames.append(video[t])
            masks.append(video_masks[t])
            prompts.append(prompt)
            kept.append(combo)
    return FramePool(np.stack(frames), np.stack(masks), prompts, kept)


def _one_object_scenes(
    n_scenes: int, combos: list[Combo], rng, pose_rng, size: int, pick_motion, poses: Poses, pose_words: bool
):
    """(video, masks, prompt, combo) of one-object scenes, combos cycled in a shuffled order."""
    for i in range(n_scenes):
        if i % len(combos) == 0:
            order = rng.permutation(len(combos))
        colour, shape, ground = combos[order[i % len(combos)]]
        motion = pick_motion(rng)
        angle, aspect = poses.draw(pose_rng)
        scene = Scene(
            colour=colour,
            shape=shape,
            ground=ground,
            motion=motion,
            radius=float(rng.uniform(0.1, 0.17) * size),
            params=random_motion_params(motion, rng),
            angle=angle,
            aspect=aspect,
        )
        video, video_masks = render_video(scene, size, 16, rng)
        yield video, video_masks, caption([scene.object], ground, pose_words), (colour, shape, ground)


def _multi_object_scenes(
    n_scenes: int, combos: list[Combo], rng, pose_rng, size: int, pick_motion, poses: Poses, pose_words: bool
):
    """(video, union of the masks, joint prompt, first object's combo) of scenes of 2-3 objects on one ground."""
    for _ in range(n_scenes):
        ground = list(GROUNDS)[rng.integers(len(GROUNDS))]
        on_ground = [c for c in combos if c[2] == ground]
        colours = sorted({c[0] for c in on_ground})
        objects = []
        for colour in rng.choice(colours, int(rng.integers(2, 4)), replace=False):
            shapes = [c[1] for c in on_ground if c[0] == colour]
            shape = shapes[rng.integers(len(shapes))]
            motion = pick_motion(rng)
            radius = float(rng.uniform(0.1, 0.17) * size)
            params = random_motion_params(motion, rng)
            objects.append(ToyObject(str(colour), shape, radius, motion, params, *poses.draw(pose_rng)))
        video, video_masks = render_objects(objects, ground, size, 16, rng)
        prompt = caption(objects, ground, pose_words)
        yield video, video_masks.any(0), prompt, (objects[0].colour, objects[0].shape, ground)


def split_combos(n_heldout: int, seed: int) -> tuple[list[Combo], list[Combo]]:
    """(training combos, held-out combos)."""
    held = heldout_combos(n_heldout, seed)
    return [c for c in all_combos() if c not in set(held)], held


class BatchSampler:
    """Endless seeded random batches from a pool (with replacement across epochs)."""

    def __init__(self, pool: FramePool, batch_size: int, seed: int):
        self.pool, self.batch_size = pool, batch_size
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        return self.pool.batch(self.rng.integers(0, len(self.pool), self.batch_size))


def vocabulary(motions: tuple[str, ...] = RIGID_MOTIONS, pose_words: bool = False) -> list[str]:
    """Every word a toy prompt about ``motions`` can contain (and the pose words), in a fixed order."""
    words: list[str] = ["a"]
    poses = POSE_WORDS if pose_words else ()
    for phrase in [*COLOURS, *SHAPES, *(MOTIONS[m] for m in motions), *GROUNDS.values(), *poses]:
        for w in phrase.split():
            if w not in words:
                words.append(w)
    return words
