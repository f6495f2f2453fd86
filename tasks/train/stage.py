"""Few-shot mask-guided training (paper eq. 2) on the ingested clips and their masks.

Frame 1's latent stays clean, frames 2..n are noised, the loss covers frames 2..n; only the new
layers and the attention projections train (``model.trainable``). Everything random (which clip,
which start frame, flips, noise, timesteps) is drawn from one seeded ``torch.Generator`` whose
state is checkpointed, so a killed run resumed from ``latest`` ends bit-identical to an
uninterrupted one (on CPU).
"""

from __future__ import annotations

import logging
import math
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model.pipeline import MaskVideoPipeline
from model.trainable import set_trainable, trainable_state_dict
from model.training import first_frame_loss
from model.video_unet import inflate_unet
from tasks.common.device import resolve_device
from tasks.common.io import write_json
from tasks.common.pretrained import load_base
from tasks.contract import save_checkpoint
from tasks.train.coarse import CoarseMasks
from tasks.train.config import TrainConfig, run_fingerprint
from tasks.train.data import ClipLatents
from tasks.train.resume import resume, write_loss_log
from tasks.train.shift import RandomShift
from tasks.train.validation import ValidationVideo, prepare_validation, validation_gif

log = logging.getLogger(__name__)


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


def checkpoint_config(cfg: TrainConfig, frame_size: tuple[int, int], fingerprint: str) -> dict:
    """What a checkpoint's config.json records (besides its step): what rebuilds the model and finds its base."""
    return {
        "video_unet": cfg.video_unet_config().to_dict(),
        "trainable": cfg.trainable,
        "base_dir": cfg.base_dir,
        "base_variant": cfg.base_variant,
        "window": cfg.window,
        "frame_size": list(frame_size),
        "fingerprint": fingerprint,
        **cfg.record(),  # the ControlNet and condition of frame 1, when not the defaults
    }


def accumulated_loss(
    video_unet, noise_scheduler, data: ClipLatents, cfg: TrainConfig, generator, device, autocast_dtype
):
    """One optimizer step's loss (eq. 2) over ``cfg.grad_accum`` batches, backpropagated; returns its value."""
    total = 0.0
    for _ in range(cfg.grad_accum):
        batch = data.sample(cfg.batch_size, cfg.window, cfg.random_start, generator, cfg.prompt_dropout).to(device)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            loss = first_frame_loss(
                video_unet,
                noise_scheduler,
                batch.latents,
                batch.text,
                batch.masks if cfg.mask_cross_attention else None,
                generator=generator,
                foreground_weight=cfg.foreground_weight,
                object_text=batch.object_text,
                object_masks=batch.object_masks,
            )
        (loss / cfg.grad_accum).backward()
        total += loss.item() / cfg.grad_accum
    return total


def train(cfg: TrainConfig, progress: Callable[[int, int, float], None] | None = None) -> dict:
    """Train (resuming from ``latest`` when the fingerprint matches); returns the metrics."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    device, autocast_dtype = pick_device(cfg)
    out_dir = Path(cfg.out_dir)
    base = load_base(cfg.base_dir, "train.base_dir", with_controlnet=False, variant=cfg.base_variant)
    # the validation video's frame 1, before the UNet is inflated in place (a missing validation set or
    # ControlNet fails now, not after the last step)
    validation = prepare_validation(base, cfg, device) if cfg.validation else None
    video_unet = inflate_unet(base.unet, cfg.video_unet_config(), copy_unet=False)
    counts = set_trainable(video_unet, cfg.trainable)
    log.info("trainable: %s", counts)
    if cfg.gradient_checkpointing:
        video_unet.enable_gradient_checkpointing()
    pipe = MaskVideoPipeline(base.vae, base.text_encoder, base.tokenizer, video_unet, base.sample_scheduler)
    pipe.to(device)
    data = ClipLatents(pipe, cfg.clips_dir, cfg.masks_dir, cfg.hflip, tuple(cfg.hue_shifts))
    if cfg.coarse_masks > 0:
        data.coarse = CoarseMasks(cfg.coarse_masks, cfg.coarse_kinds, cfg.seed)
    if cfg.shift_cells > 0:
        data.shift = RandomShift(cfg.shift_cells, cfg.seed)

    params = [p for p in video_unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    generator = torch.Generator().manual_seed(cfg.seed)
    fingerprint = run_fingerprint(cfg)
    step, losses = resume(out_dir, fingerprint, video_unet, cfg, optimizer, scheduler, generator)

    config_record = checkpoint_config(cfg, data.frame_size, fingerprint)

    def validate(at_step: int) -> float:  # seconds, kept out of steps_per_second
        return timed_validation(pipe, validation, cfg, at_step)

    video_unet.train()
    t0, first_step, validation_seconds = time.perf_counter(), step, 0.0
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step")
    while step < cfg.steps:
        total = accumulated_loss(video_unet, base.train_scheduler, data, cfg, generator, device, autocast_dtype)
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # now: no gradients held while saving or validating
        scheduler.step()
        step += 1
        losses.append((step, total, scheduler.get_last_lr()[0]))
        bar.update(1)
        bar.set_postfix(loss=f"{total:.4f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_step(cfg, step, video_unet, optimizer, scheduler, generator, losses, config_record)
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
    metrics = run_metrics(cfg, losses, (step - first_step) / elapsed if step > first_step else None, device, counts)
    metrics["resumed_from_step"] = first_step
    write_loss_log(cfg.loss_log, losses)
    write_json(cfg.metrics, metrics)
    return metrics


def save_step(cfg: TrainConfig, step: int, video_unet, optimizer, scheduler, generator, losses, config_record):
    """Step ``step``'s checkpoint: the trainable weights, the config that rebuilds the model, and the
    state (optimizer, schedule, both random generators, losses) that resumes the run bit for bit."""
    state = dict(
        step=step,
        optimizer=optimizer.state_dict(),
        lr_scheduler=scheduler.state_dict(),
        generator=generator.get_state(),
        torch_rng=torch.get_rng_state(),
        fingerprint=config_record["fingerprint"],
        losses=losses,
    )
    save_checkpoint(
        Path(cfg.out_dir),
        step,
        trainable_state_dict(video_unet, cfg.trainable),
        {**config_record, "step": step},
        state,
        cfg.keep_last,
    )


def run_metrics(cfg: TrainConfig, losses: list, steps_per_second: float | None, device, counts) -> dict:
    """The run's metrics (metrics/train.json) but where it resumed from."""
    recent = [loss for _, loss, _ in losses[-20:]]
    return {
        "steps": cfg.steps,
        "final_loss": float(np.mean(recent)) if recent else None,
        "steps_per_second": steps_per_second,
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "device": str(device),
        "trainable_parameters": counts.trainable,
        "total_parameters": counts.total,
    }


def timed_validation(pipe: MaskVideoPipeline, video: ValidationVideo, cfg: TrainConfig, at_step: int) -> float:
    """Write the validation GIF of ``at_step`` (``validation_gif``); returns its seconds."""
    started = time.perf_counter()
    validation_gif(pipe, video, validation_path(cfg, at_step), cfg.validation_steps, cfg.window)
    return time.perf_counter() - started


def validation_path(cfg: TrainConfig, step: int) -> Path:
    return Path(cfg.out_dir) / "validation" / f"step-{step:06d}.gif"
