"""Few-shot mask-guided training (paper eq. 2) on the ingested clips and their masks.

Frame 1's latent stays clean, frames 2..n are noised, the loss covers frames 2..n; only the new
layers and the attention projections train (``model.trainable``). Everything random (which clip,
which start frame, flips, noise, timesteps) is drawn from one seeded ``torch.Generator`` whose
state is checkpointed, so a killed run resumed from ``latest`` ends bit-identical to an
uninterrupted one (on CPU).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
from pydantic import Field, model_validator

from model.pipeline import MaskVideoPipeline
from model.trainable import load_trainable_state_dict, set_trainable, trainable_state_dict
from model.training import first_frame_loss
from model.video_unet import VideoUNetConfig, inflate_unet
from tasks.common.device import resolve_device
from tasks.common.io import atomic_write_text, content_digest, load_clip, write_json
from tasks.common.pretrained import ControlNetSettings, Variant, check_controlnet_folder, load_base
from tasks.contract import (
    latest_checkpoint,
    read_checkpoint,
    read_clip_manifest,
    read_masks,
    read_object_masks,
    read_object_prompts,
    save_checkpoint,
    sweep_partial,
)
from tasks.train.validation import first_sequence, validation_gif

log = logging.getLogger(__name__)


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
    trainable: Literal["paper", "lamp", "cross_attention", "new_layers"] = "paper"
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
    noise_offset: float = Field(
        0.0, ge=0, description="offset noise on frames 2..n (model.training.first_frame_loss); 0 = SD's noise"
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


def run_fingerprint(cfg: TrainConfig) -> str:
    """Identity of a training run: its learning settings and its inputs (clips, masks, base config)."""
    h = hashlib.sha256(json.dumps(cfg.model_dump(exclude=BOOKKEEPING), sort_keys=True).encode())
    for path in (Path(cfg.clips_dir) / "manifest.csv", Path(cfg.masks_dir) / "manifest.csv"):
        h.update(path.read_bytes() if path.is_file() else b"-")
    # the base weights by content: a rebuilt base of the same architecture has the same file sizes
    h.update(content_digest(*(Path(cfg.base_dir) / part for part in ("unet", "vae", "text_encoder"))).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# data: every clip encoded once per view (hue rotation x flip)


class ClipLatents:
    """Every clip encoded once per view: hue rotation x horizontal flip.

    ``views[h][f]`` holds the latents ``(N, C, F, h, w)`` of hue rotation ``hue_shifts[h]`` and
    flip ``f`` (0 = as recorded, 1 = flipped; present only with ``hflip``); masks ``(N, F, H, W)``
    and prompts ``(N, L, D)`` are shared by all views (a flip flips the masks when sampled).

    When some clips' objects carry their own prompts (the clip manifest's ``object_prompts``, the
    masks stage's object masks), ``object_text`` ``(N, K, L, D)`` and ``object_masks``
    ``(N, K, F, H, W)`` hold them, K the most objects of any clip; the missing objects of a clip
    have zero masks, and a clip without object prompts has none at all: it is not routed
    (``model.attention``). Without object prompts in any clip, both are None.
    """

    def __init__(
        self,
        pipe: MaskVideoPipeline,
        clips_dir: str,
        masks_dir: str,
        hflip: bool,
        hue_shifts: tuple[float, ...] = (0.0,),
    ):
        table = read_clip_manifest(clips_dir)
        frames = np.stack([load_clip(Path(clips_dir) / c)["frames"] for c in table["clip"]])
        masks = np.stack([read_masks(masks_dir, vid) for vid in table["id"]])
        if masks.shape[:2] != frames.shape[:2]:
            raise ValueError(f"{masks_dir}: masks {masks.shape} do not match clips {frames.shape}")
        self.ids = list(table["id"])
        self.frame_size = tuple(int(x) for x in frames.shape[2:4])  # (H, W) of the clips
        self.masks = torch.from_numpy(masks).float()
        self.text = pipe.encode_prompt(list(table["prompt"]), None).float()
        self.empty_text = pipe.encode_prompt([""], None).float()[0]
        self.object_text, self.object_masks = self._objects(pipe, table, masks_dir, masks.shape[1:])
        self.hue_shifts = tuple(hue_shifts)
        self.views = []
        for degrees in self.hue_shifts:
            tinted = rotate_hue(frames, degrees)
            flips = [tinted, tinted[:, :, :, ::-1]] if hflip else [tinted]
            self.views.append([self._encode(pipe, f) for f in flips])

    def _objects(self, pipe, table, masks_dir: str, frame_shape) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        prompts = [read_object_prompts(row) for _, row in table.iterrows()]
        k = max(map(len, prompts))
        if k == 0:
            return None, None
        text = self.empty_text.expand(len(prompts), k, *self.empty_text.shape).clone()
        object_masks = torch.zeros(len(prompts), k, *frame_shape)
        for i, (vid, named) in enumerate(zip(table["id"], prompts)):
            if not named:
                continue
            found = read_object_masks(masks_dir, vid)
            if found is None or len(found) != len(named):
                raise ValueError(
                    f"{masks_dir}/{vid}.npz: {0 if found is None else len(found)} object masks for the "
                    f"{len(named)} object prompts of the clip manifest"
                )
            text[i, : len(named)] = pipe.encode_prompt(named, None).float()
            object_masks[i, : len(named)] = torch.from_numpy(found).float()
        return text, object_masks

    @property
    def latents(self) -> torch.Tensor:
        """The clips as recorded (no hue rotation, no flip)."""
        return self.views[0][0]

    @staticmethod
    def _encode(pipe: MaskVideoPipeline, frames: np.ndarray) -> torch.Tensor:
        n, f = frames.shape[:2]
        images = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0)
        images = images.reshape(n * f, *frames.shape[2:]).permute(0, 3, 1, 2)
        lat = torch.cat([pipe.encode_images(chunk) for chunk in images.split(16)]).float()
        return lat.reshape(n, f, *lat.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()

    def sample(
        self, batch: int, window: int, random_start: bool, generator: torch.Generator, prompt_dropout: float = 0.0
    ):
        """A batch of windows (``Batch``): latents (B, C, W, h, w), text (B, L, D), masks (B, W, H, W),
        and, when the clips have object prompts, object text (B, K, L, D) and masks (B, K, W, H, W).

        Draw order: clip, start, flip, then (only when used) hue view and prompt dropout, so the
        default settings draw exactly what they always drew. A dropped prompt drops the objects'
        prompts too (their masks are zeroed: the sample is unconditional).
        """
        n, frames = self.latents.shape[0], self.latents.shape[2]
        if window > frames:
            raise ValueError(f"train.window={window} is longer than the clips ({frames} frames)")
        idx = torch.randint(n, (batch,), generator=generator)
        starts = (
            torch.randint(frames - window + 1, (batch,), generator=generator)
            if random_start
            else torch.zeros(batch, dtype=torch.long)
        )
        flips = (
            torch.rand(batch, generator=generator) < 0.5
            if len(self.views[0]) == 2
            else torch.zeros(batch, dtype=torch.bool)
        )
        hues = (
            torch.randint(len(self.views), (batch,), generator=generator)
            if len(self.views) > 1
            else torch.zeros(batch, dtype=torch.long)
        )
        dropped = (
            torch.rand(batch, generator=generator) < prompt_dropout
            if prompt_dropout > 0
            else torch.zeros(batch, dtype=torch.bool)
        )
        lat, msk, text, obj_text, obj_msk = [], [], [], [], []
        for i, s, flip, hue, drop in zip(
            idx.tolist(), starts.tolist(), flips.tolist(), hues.tolist(), dropped.tolist()
        ):
            lat.append(self.views[hue][int(flip)][i, :, s : s + window])
            m = self.masks[i, s : s + window]
            msk.append(m.flip(-1) if flip else m)  # frames and masks flip together
            text.append(self.empty_text if drop else self.text[i])
            if self.object_text is not None:
                om = self.object_masks[i, :, s : s + window]
                obj_msk.append(torch.zeros_like(om) if drop else om.flip(-1) if flip else om)
                obj_text.append(self.object_text[i])
        objects = (torch.stack(obj_text), torch.stack(obj_msk)) if obj_text else (None, None)
        return Batch(torch.stack(lat), torch.stack(text), torch.stack(msk), *objects)


class Batch(NamedTuple):
    """One training batch (``ClipLatents.sample``)."""

    latents: torch.Tensor
    text: torch.Tensor
    masks: torch.Tensor
    object_text: torch.Tensor | None = None
    object_masks: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        return Batch(*(None if t is None else t.to(device) for t in self))


def rotate_hue(frames: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue of uint8 RGB frames ``(..., 3)`` by ``degrees`` in YIQ space.

    The rotation turns the chroma plane (I, Q) and keeps luma (Y): greys stay grey, brightness
    stays, colours move round the colour wheel; results outside RGB's cube are clipped.
    """
    if degrees % 360 == 0:
        return frames
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    turn = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    rgb = np.linalg.inv(to_yiq) @ turn @ to_yiq
    out = frames.astype(np.float64) @ rgb.T
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------


def pick_device(cfg: TrainConfig) -> tuple[torch.device, torch.dtype | None]:
    device = resolve_device(cfg.device, "train.device")
    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "no"
    return device, {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        if cfg.lr_schedule == "constant":
            return warm
        if cfg.lr_schedule == "wsd":  # the decay's last step still moves (1 / decay_steps of the rate)
            return warm * min(1.0, max(0, cfg.steps - step) / cfg.decay_steps)
        return warm * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))

    return factor


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train(cfg: TrainConfig, progress: Callable[[int, int, float], None] | None = None) -> dict:
    """Train (resuming from ``latest`` when the fingerprint matches); returns the metrics."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    device, autocast_dtype = pick_device(cfg)
    out_dir = Path(cfg.out_dir)
    if cfg.validation:  # a missing validation set or ControlNet fails now, not after the last step
        first_sequence(cfg.validation_sequences)
        if cfg.controlnet_dir:
            check_controlnet_folder(cfg.controlnet_dir, "train.controlnet_dir", cfg.base_variant)
    base = load_base(cfg.base_dir, "train.base_dir", with_controlnet=False, variant=cfg.base_variant)
    video_unet = inflate_unet(base.unet, cfg.video_unet_config(), copy_unet=False)
    counts = set_trainable(video_unet, cfg.trainable)
    log.info("trainable: %s", counts)
    if cfg.gradient_checkpointing:
        video_unet.enable_gradient_checkpointing()
    pipe = MaskVideoPipeline(base.vae, base.text_encoder, base.tokenizer, video_unet, base.sample_scheduler)
    pipe.to(device)
    data = ClipLatents(pipe, cfg.clips_dir, cfg.masks_dir, cfg.hflip, tuple(cfg.hue_shifts))

    params = [p for p in video_unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    generator = torch.Generator().manual_seed(cfg.seed)
    fingerprint = run_fingerprint(cfg)
    step, losses = resume(out_dir, fingerprint, video_unet, cfg, optimizer, scheduler, generator)

    config_record = {
        "video_unet": cfg.video_unet_config().to_dict(),
        "trainable": cfg.trainable,
        "base_dir": cfg.base_dir,
        "base_variant": cfg.base_variant,
        "window": cfg.window,
        "frame_size": list(data.frame_size),
        "fingerprint": fingerprint,
        **cfg.record(),  # the ControlNet and condition of frame 1, when not the defaults
    }

    def validate(at_step: int) -> float:
        """Write the validation GIF of ``at_step``; returns its seconds (kept out of steps_per_second)."""
        started = time.perf_counter()
        validation_gif(
            pipe,
            cfg.base_dir,
            cfg.validation_sequences,
            validation_path(cfg, at_step),
            cfg.validation_steps,
            cfg.window,
            cfg.seed,
            cfg,
            cfg.base_variant,
        )
        return time.perf_counter() - started

    video_unet.train()
    t0, first_step, validation_seconds = time.perf_counter(), step, 0.0
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step")
    while step < cfg.steps:
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(cfg.grad_accum):
            batch = data.sample(cfg.batch_size, cfg.window, cfg.random_start, generator, cfg.prompt_dropout).to(device)
            with torch.autocast(
                device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
            ):
                loss = first_frame_loss(
                    video_unet,
                    base.train_scheduler,
                    batch.latents,
                    batch.text,
                    batch.masks if cfg.mask_cross_attention else None,
                    generator=generator,
                    noise_offset=cfg.noise_offset,
                    foreground_weight=cfg.foreground_weight,
                    object_text=batch.object_text,
                    object_masks=batch.object_masks,
                )
            (loss / cfg.grad_accum).backward()
            total += loss.item() / cfg.grad_accum
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        step += 1
        losses.append((step, total, scheduler.get_last_lr()[0]))
        bar.update(1)
        bar.set_postfix(loss=f"{total:.4f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            state = {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "lr_scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "fingerprint": fingerprint,
                "losses": losses,
            }
            save_checkpoint(
                out_dir,
                step,
                trainable_state_dict(video_unet, cfg.trainable),
                {**config_record, "step": step},
                state,
                cfg.keep_last,
            )
            write_loss_log(cfg.loss_log, losses)
        if progress:  # after the checkpoint: a reported step survives a kill if it was a checkpoint step
            progress(step, cfg.steps, total)
        if cfg.validation and cfg.validate_every and step % cfg.validate_every == 0 and step < cfg.steps:
            validation_seconds += validate(step)
    bar.close()
    elapsed = time.perf_counter() - t0 - validation_seconds
    # the last step's GIF, also when a run that had finished training died in it and was resumed
    if cfg.validation and not validation_path(cfg, cfg.steps).is_file():
        validate(cfg.steps)
    recent = [loss for _, loss, _ in losses[-20:]]
    metrics = {
        "steps": cfg.steps,
        "final_loss": float(np.mean(recent)) if recent else None,
        "steps_per_second": (step - first_step) / elapsed if step > first_step else None,
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "device": str(device),
        "trainable_parameters": counts.trainable,
        "total_parameters": counts.total,
        "resumed_from_step": first_step,
    }
    write_loss_log(cfg.loss_log, losses)
    write_json(cfg.metrics, metrics)
    return metrics


def validation_path(cfg: TrainConfig, step: int) -> Path:
    return Path(cfg.out_dir) / "validation" / f"step-{step:06d}.gif"


def finished_run(cfg: TrainConfig) -> bool:
    """Whether ``cfg.out_dir`` already holds this run (same fingerprint) trained to ``cfg.steps``."""
    out_dir = Path(cfg.out_dir)
    folder = latest_checkpoint(out_dir) if out_dir.is_dir() else None
    if folder is None:
        return False
    config = json.loads((folder / "config.json").read_text())
    return config.get("fingerprint") == run_fingerprint(cfg) and config.get("step") == cfg.steps


def resume(
    out_dir: Path, fingerprint: str, video_unet, cfg: TrainConfig, optimizer, scheduler, generator
) -> tuple[int, list[tuple[int, float, float]]]:
    """Restore from ``latest`` if it belongs to this run; otherwise start at step 0 (old run cleared).

    Returns the step reached and the loss history up to it. The history travels in the
    checkpoint's state, not only in ``loss_log``: ``dvc repro`` deletes the stage's outputs that
    are not persisted, the loss log among them, before it runs the stage again.
    """
    if not out_dir.exists():
        return 0, []
    sweep_partial(out_dir)
    folder = latest_checkpoint(out_dir)
    if folder is None:
        return 0, []
    weights, config, state = read_checkpoint(folder)
    if state.get("fingerprint") != fingerprint:
        log.warning("%s was trained with other settings or inputs; starting a new run", folder)
        shutil.rmtree(out_dir)
        return 0, []
    load_trainable_state_dict(video_unet, weights, cfg.trainable)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["lr_scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    step = int(state["step"])
    log.info("resumed from %s (step %d)", folder, step)
    # checkpoints written before the history was kept in them: fall back to the log file
    losses = [tuple(r) for r in state["losses"]] if "losses" in state else read_loss_log(cfg.loss_log, step)
    return step, losses


def read_loss_log(path: str, up_to_step: int) -> list[tuple[int, float, float]]:
    if up_to_step == 0 or not Path(path).is_file():
        return []
    with open(path) as f:
        rows = [(int(r["step"]), float(r["loss"]), float(r["lr"])) for r in csv.DictReader(f)]
    return [r for r in rows if r[0] <= up_to_step]


def write_loss_log(path: str, rows: list[tuple[int, float, float]]) -> None:
    lines = ["step,loss,lr"] + [f"{s},{loss:.6f},{lr:.3e}" for s, loss, lr in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
