"""Every system the comparisons run, in one registry, each called the same way: ``system(job, settings)``
makes one job's video under ``settings.generate.out_dir`` and returns its manifest row, as k-diffusion
calls every sampler with one signature. Table II's variants (``tasks.ablations``, ``make ablations``) and
Table I's systems (``tasks.compare``, ``make compare``) both run through ``make_videos``.

A trained system is overrides of the ``train`` / ``generate`` sections over ``params.yaml`` (systems with
the same ``weights`` name share one training); a training-free peer samples the base models
(``tasks.peer_videos``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from tasks.common.params import load_stage_config
from tasks.costs import Costs
from tasks.generate.config import GenerateConfig
from tasks.generate.jobs import Job, plan_jobs
from tasks.peer_videos import PEERS, load_peer_for, peer_video
from tasks.train.config import TrainConfig
from tasks.train.resume import finished_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What a system makes a job's video with."""

    generate: GenerateConfig  # the generate section, with the system's overrides and the run's sequences and out_dir
    checkpoint: Path | None  # a trained system's checkpoint (the latest in generate.checkpoint_dir); None for a peer
    base_dir: str  # the base models the training started from and the peers sample (train.base_dir)


@dataclass(frozen=True)
class System:
    name: str
    video: Callable[[Job, Settings], dict]  # one job's video, written; returns its manifest row
    load: Callable[[Settings], object]  # its models, loaded before the first video is timed
    weights: str | None = None  # trained: the name its weights are kept under; None: training-free
    train: dict = field(default_factory=dict)  # overrides of params.yaml's train section
    generate: dict = field(default_factory=dict)  # overrides of its generate section

    def __call__(self, job: Job, settings: Settings) -> dict:
        return self.video(job, settings)


def _trained_load(settings: Settings):
    from tasks.generate.stage import load_pipeline

    return load_pipeline(settings.checkpoint, settings.generate)


def _trained_video(job: Job, settings: Settings) -> dict:
    """The generate stage's video (kept when one with the same key is there)."""
    from tasks.generate.stage import generate_one

    return generate_one(job, settings.generate, settings.checkpoint)


def trained(name: str, weights: str, train: dict | None = None, generate: dict | None = None) -> System:
    return System(name, _trained_video, _trained_load, weights, train or {}, generate or {})


def peer(name: str) -> System:
    return System(name, partial(peer_video, name), partial(load_peer_for, name))


NO_MASK = {"mask_cross_attention": False}
SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        # Paper Table II first, then baselines. "full" is the main job (params.yaml as it is). Its noise sharing
        # is off: on the toy world's offset-noise base, sharing held the object of frames 2..n back near where
        # it stood in the chunk's first frame (README), so the paper's sharing is the row that adds it.
        trained("full", "full"),
        trained("with sharing", "full", generate={"shared_noise": "paper", "lowfreq_grid": 1}),
        trained("w/o ControlNet", "full", generate={"first_frame_source": "text"}),
        trained("w/o mask", "no-mask", NO_MASK, {"use_masks": False}),
        trained(
            "LAMP-like",
            "lamp",
            {**NO_MASK, "self_attention": "first_frame", "trainable": "lamp"},
            {"use_masks": False},
        ),
        trained("Tune-A-Video-like", "tav", {**NO_MASK, "self_attention": "sparse_causal"}, {"use_masks": False}),
        # not an ablation: the full model from each sequence's true first frame, i.e. the few-shot stage
        # alone, without the base model's frame 1
        trained("given frame 1", "full", generate={"first_frame_source": "manifest"}),
        trained("ours", "full"),  # Table I's name for the full model
        *(peer(name) for name in PEERS),
    )
}
ABLATIONS = ("full", "with sharing", "w/o ControlNet", "w/o mask", "LAMP-like", "Tune-A-Video-like", "given frame 1")
TABLE_I = ("ours", "LAMP-like", "Tune-A-Video-like", *PEERS)


def slug(name: str) -> str:
    """A system's folder name: "w/o mask" -> "wo-mask",
    "Text2Video-Zero + ControlNet" -> "text2video-zero-controlnet"."""
    return name.lower().replace(" + ", "-").replace("/", "").replace(" ", "-")


def system_weights(system: System, params: str, weights_root: Path) -> str | None:
    """The checkpoint folder a trained system samples with (None for a peer). The train stage's own run is
    read (never written) when it is this system's run, finished: same settings and inputs, so the same
    weights; otherwise the system trains (or resumes) under ``weights_root/<weights name>``."""
    from tasks.train.stage import train

    if system.weights is None:
        return None
    stage_run = load_stage_config(TrainConfig, "train", params, system.train)
    if finished_run(stage_run):
        log.info("%s: using the train stage's checkpoint in %s", system.name, stage_run.out_dir)
        return stage_run.out_dir
    wdir = weights_root / system.weights
    own = stage_run.model_copy(
        update={
            "out_dir": str(wdir / "checkpoints"),
            "metrics": str(wdir / "train.json"),
            "loss_log": str(wdir / "loss.csv"),
        }
    )
    train(own)
    return own.out_dir


def system_settings(system: System, params: str, checkpoint_dir: str | None, **generate) -> Settings:
    """The settings ``system`` runs with: params.yaml's generate section, the system's overrides, then
    ``generate`` (sequences, seeds, out_dir) and its weights."""
    from tasks.generate.stage import resolve_checkpoint

    over = {**system.generate, **generate, **({"checkpoint_dir": checkpoint_dir} if checkpoint_dir else {})}
    gen = load_stage_config(GenerateConfig, "generate", params, over)
    checkpoint = resolve_checkpoint(gen) if system.weights is not None else None
    return Settings(gen, checkpoint, load_stage_config(TrainConfig, "train", params).base_dir)


def make_videos(system: System, settings: Settings, costs: Costs | None = None) -> pd.DataFrame:
    """Every job of ``settings.generate`` through ``system`` (each timed into ``costs`` when given, its
    models loaded first), then the outputs manifest, as the generate stage writes them."""
    from tqdm import tqdm

    from tasks.contract import write_outputs_manifest

    system.load(settings)
    Path(settings.generate.out_dir).mkdir(parents=True, exist_ok=True)
    rows = []
    for job in tqdm(plan_jobs(settings.generate), desc=system.name, unit="video"):
        with costs.video() if costs is not None else nullcontext():
            rows.append(system(job, settings))
    return write_outputs_manifest(settings.generate.out_dir, rows)
