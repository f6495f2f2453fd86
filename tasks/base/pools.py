"""Which toy frames each base model learns from and is measured on.

The VAE, UNet and ControlNet learn from ``base.data``'s pool (with its share of frames of 2-3 objects);
CLIP from single upright objects on the rigid motions whatever that pool holds; the quality figures are
read on held-out combos, upright and posed, the same frames for every base.
"""

from __future__ import annotations

import math

from tasks.base.config import BaseConfig
from tasks.base.data import FramePool, Poses, render_pool, split_combos, vocabulary
from tasks.base.text import build_tokenizer
from tasks.common.toy import RIGID_MOTIONS


def multi_object_frames(cfg: BaseConfig, n_single: int, share: float, seed: int) -> FramePool:
    """Frames of 2-3 objects (training combos only), so many that they make up ``share`` of a pool
    with ``n_single`` single-object frames."""
    n_scenes = math.ceil(n_single * share / (1 - share) / cfg.data.frames_per_scene)
    print(f"rendering {n_scenes} scenes of 2-3 objects")
    return training_frames(cfg, n_scenes, seed, multi_object=True)


def training_frames(cfg: BaseConfig, n_scenes: int, seed: int, multi_object: bool = False) -> FramePool:
    """Frames of ``n_scenes`` scenes of the training combos, as ``base.data`` configures them."""
    d = cfg.data
    train_combos, _ = split_combos(d.n_heldout_combos, cfg.seed)
    return render_pool(
        n_scenes,
        d.frames_per_scene,
        train_combos,
        seed,
        64,
        tuple(d.motions),
        d.poses,
        multi_object=multi_object,
        pose_words=d.pose_words,
        motion_weights=d.motion_weights,
    )


def pools(cfg: BaseConfig) -> tuple[FramePool, FramePool, FramePool, list]:
    """The training pool (with ``data.multi_object_share`` of frames of 2-3 objects), CLIP's pool (single
    upright objects on the rigid motions), the held-out pool (quality figures) and the held-out combos."""
    d = cfg.data
    train_combos, held_combos = split_combos(d.n_heldout_combos, cfg.seed)
    print(f"rendering {d.n_scenes} training scenes ({len(train_combos)} combos; held out: {held_combos})")
    single = training_frames(cfg, d.n_scenes, cfg.seed)
    pool = single
    if d.multi_object_share > 0:
        pool = single + multi_object_frames(cfg, len(single), d.multi_object_share, cfg.seed + 11)
    # The evaluation's CLIP learns from single upright objects whatever the generator saw, so text
    # alignment compares across bases. It also reads shapes better so: 8,000 steps on the posed pool
    # named 70% of upright and 58% of posed held-out shapes, 3,000 on upright frames 90% and 69%
    # (bench/clip_shape): a square turned 45 degrees captioned "square" looks like a diamond.
    clip_pool = single
    if set(d.motions) != set(RIGID_MOTIONS) or d.poses != Poses() or d.motion_weights is not None:
        clip_pool = render_pool(d.n_scenes, d.frames_per_scene, train_combos, cfg.seed, 64)
    return pool, clip_pool, upright_eval_pool(cfg), held_combos


def upright_eval_pool(cfg: BaseConfig) -> FramePool:
    """The held-out combos, upright, on the rigid motions: what the quality figures were always measured on."""
    _, held_combos = split_combos(cfg.data.n_heldout_combos, cfg.seed)
    return render_pool(cfg.data.n_eval_scenes, 1, held_combos, cfg.seed + 100)


def posed_eval_pool(cfg: BaseConfig) -> FramePool:
    """The held-out combos, half turned and half stretched, on the rigid motions: the same frames for
    every base whatever it trained on, so the ``posed`` quality figures compare across bases."""
    _, held_combos = split_combos(cfg.data.n_heldout_combos, cfg.seed)
    return render_pool(
        cfg.data.n_eval_scenes, 1, held_combos, cfg.seed + 200, poses=Poses(0.5, 0.5), pose_words=cfg.data.pose_words
    )


def toy_tokenizer(cfg: BaseConfig):
    """The toy text encoders' word-level tokenizer: every word the training captions can hold."""
    return build_tokenizer(vocabulary(cfg.data.motions, cfg.data.pose_words), cfg.text.max_length)
