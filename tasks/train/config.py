"""The train stage's settings (``params.yaml``'s ``train`` section) and a run's identity (its fingerprint)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from model.video_unet import VideoUNetConfig
from tasks.common.io import content_digest
from tasks.common.params import Share
from tasks.common.pretrained import ControlNetSettings, Variant


class TrainConfig(ControlNetSettings):
    """The few-shot training; the ``controlnet_*`` fields (ControlNetSettings) make the validation sample's frame 1."""

    clips_dir: str = "data/clips"
    masks_dir: str = "data/masks"
    base_dir: str = Field("base/toy", description="Stable Diffusion layout folder (toy world or SD1.4)")
    base_variant: Variant = Field(
        "auto", description="weights files of base_dir: auto (fp32, else fp16) | fp32 | fp16"
    )
    out_dir: str = "data/checkpoints"
    metrics: str = "metrics/train.json"
    loss_log: str = "metrics/train_loss.csv"
    # the model: each switch is an ablation or a baseline (Table II)
    self_attention: Literal["first_frame", "sparse_causal", "per_frame", "full"] = "first_frame"
    mask_cross_attention: bool = True
    temporal_attention: bool = True
    temporal_conv: bool = True
    mask_hidden_channels: int = Field(32, ge=1)
    trainable: Literal["paper", "lamp", "cross_attention", "new_layers", "all"] = "paper"
    # optimisation
    steps: int = Field(1250, ge=1)
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-3, gt=0, description="paper: 3e-5 for SD1.4")
    lr_schedule: Literal["constant", "cosine", "wsd"] = Field(
        "constant",
        description=(
            "constant; cosine to zero at the last step; wsd: constant, then linear to zero over the last "
            "decay_steps (warm-up, stable, decay)"
        ),
    )
    warmup_steps: int = Field(0, ge=0)
    decay_steps: int = Field(0, ge=0, description="length of wsd's final linear decay")
    weight_decay: float = Field(1e-2, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    window: int = Field(8, ge=2, description="frames per training sample (the motion window)")
    random_start: bool = True
    hflip: bool = True
    hue_shifts: list[float] = Field(
        [0.0],
        min_length=1,
        description=(
            "hue rotations (degrees) each clip is trained under, drawn uniformly; [0] = as recorded. "
            "Several make frame 1 the only reliable source of the object's and ground's colours"
        ),
    )
    coarse_masks: Share = Field(
        0.0,
        description="share of training windows whose masks are made coarse, as a person draws them "
        "(tasks/train/coarse.py); 0 = the exact masks always",
    )
    coarse_kinds: list[Literal["dilate", "hull", "ellipse", "box", "rigid"]] = Field(
        ["dilate", "hull", "ellipse", "box", "rigid"], min_length=1, description="the coarse masks drawn from"
    )
    shift_cells: int = Field(
        0,
        ge=0,
        description="each training window moved by up to this many latent cells each way (x4 pixels on the toy "
        "world, x8 on SD1.4), masks with it, its object kept in frame (tasks/train/shift.py); 0 = as recorded",
    )
    foreground_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "extra loss weight on the latent cells the object's mask covers in frames 2..n "
            "(model.training.foreground_mse); 0 = the paper's plain MSE"
        ),
    )
    prompt_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description=(
            "probability a sample's prompt is replaced by the empty prompt, so the unconditional "
            "branch that classifier-free guidance uses is trained too"
        ),
    )
    seed: int = 0
    # bookkeeping (changing these never restarts training)
    validate_every: int = Field(0, ge=0, description="steps between validation GIFs; 0 = only after the last step")
    validation: bool = Field(True, description="sample one held-out sequence as a GIF (sparse: slow on CPU)")
    validation_sequences: str = "data/raw/toy/heldout/manifest.yaml"
    validation_steps: int = Field(10, ge=1, description="DDIM steps of the validation sample")
    checkpoint_every: int = Field(200, ge=1)
    keep_last: int = Field(2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _decay_fits(self) -> TrainConfig:
        if self.lr_schedule == "wsd" and not 0 < self.decay_steps <= self.steps:
            raise ValueError(
                f"decay_steps: lr_schedule wsd needs 1 <= decay_steps <= steps ({self.steps}), got {self.decay_steps}"
            )
        return self

    def video_unet_config(self) -> VideoUNetConfig:
        return VideoUNetConfig(
            self.self_attention,
            self.mask_cross_attention,
            self.temporal_attention,
            self.temporal_conv,
            self.mask_hidden_channels,
        )


# settings that do not change what is learnt; a checkpoint made under other values still resumes
BOOKKEEPING = {
    "checkpoint_every",
    "keep_last",
    "steps",
    "metrics",
    "loss_log",
    "out_dir",
    "device",
    "gradient_checkpointing",
    "validate_every",
    "validation",
    "validation_sequences",
    "validation_steps",
    "controlnet_dir",
    "controlnet_condition",
    "seg_object_class",
    "seg_background_class",
}


# learning settings since removed, at the value every run had then and has now: hashed as before, so a run
# made before their removal keeps its fingerprint (it resumes, and make ablations / compare reuse it)
REMOVED = {"noise_offset": 0.0}  # measured, not adopted (docs/experiments.md, 2026-12-07)
# learning settings added since, at the value that does what every run did before: left out of the hash
# there, for the same reason
ADDED = {"shift_cells": 0}


def run_fingerprint(cfg: TrainConfig) -> str:
    """Identity of a training run: its learning settings and its inputs (clips, masks, base config)."""
    settings = {k: v for k, v in cfg.model_dump(exclude=BOOKKEEPING).items() if ADDED.get(k, object()) != v}
    settings |= REMOVED
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in (Path(cfg.clips_dir) / "manifest.csv", Path(cfg.masks_dir) / "manifest.csv"):
        h.update(path.read_bytes() if path.is_file() else b"-")
    # the base weights by content: a rebuilt base of the same architecture has the same file sizes
    h.update(content_digest(*(Path(cfg.base_dir) / part for part in ("unet", "vae", "text_encoder"))).encode())
    return h.hexdigest()[:16]
