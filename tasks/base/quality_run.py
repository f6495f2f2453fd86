"""Measure the saved toy base models on held-out frames, loading them as downstream stages do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    StableDiffusionControlNetPipeline,
    StableDiffusionPipeline,
)
from PIL import Image

from tasks.base.clip import zero_shot
from tasks.base.data import FramePool, all_combos
from tasks.base.quality_poses import vae_pose_grid
from tasks.common.geometry import frame_ious, iou
from tasks.common.io import atomic_write_text, write_rgb_png
from tasks.common.toy import GROUNDS, MOTIONS
from tasks.common.toy_clip import load_toy_clip
from tasks.common.toy_multi import multi_object_sequences
from tasks.common.toy_palette import colour_inside, colour_regions, object_pixels, palette_labels, psnr, score_samples
from tasks.common.visualize import contact_sheet


@torch.no_grad()
def vae_reconstruct(folder: Path, frames: np.ndarray) -> np.ndarray:
    """uint8 frames (N, H, W, 3) through the VAE in ``folder`` (posterior mode), as every generated frame
    is decoded: what a detector scores on them is the ceiling of its score on samples."""
    vae = AutoencoderKL.from_pretrained(folder / "vae", dtype=torch.float32).eval()
    px = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    recon = vae.decode(vae.encode(px).latent_dist.mode()).sample.clamp(-1, 1)
    return ((recon + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)


def vae_roundtrip(folder: Path, pool: FramePool, min_object_pixels: int) -> dict:
    """VAE reconstructions (posterior mode) of the pool's frames, scored two ways: mean PSNR (dB), and
    the mean foreground IoU the evaluate stage's toy segmenter finds on them against the true masks.
    The IoU is the ceiling of the evaluate stage's IoU: every generated frame passes the VAE decoder."""
    recon = vae_reconstruct(folder, pool.frames)
    return {
        "vae_psnr_db": round(float(np.mean([psnr(a, b) for a, b in zip(pool.frames, recon)])), 3),
        "vae_mask_iou": round(
            float(np.mean([iou(object_pixels(r, min_object_pixels), m) for r, m in zip(recon, pool.masks)])), 4
        ),
    }


def per_object_targets(
    sequences, decode, min_pixels: int, colour_target: float = 0.9, iou_target: float = 0.75
) -> dict:
    """Per-object figures of ``sequences`` ((objects, ground, frames, visible masks) as
    ``tasks.common.toy_multi`` renders them) after ``decode`` (uint8 frames -> uint8 frames): each
    object found by its colour, as the evaluate stage's per-object scores find it; its colour accuracy
    (frames whose object place shows its colour, over the frames it is visible in) and mean IoU with
    its visible mask, and how many objects reach both targets (per-object prompts' issue: 90%, 0.75)."""
    colours, ious = [], []
    for objects, _, frames, masks in sequences:
        labels = [palette_labels(f) for f in decode(frames)]
        for obj, object_masks in zip(objects, masks):
            colours.append(
                np.mean([colour_inside(lab, m) == obj.colour for lab, m in zip(labels, object_masks) if m.any()])
            )
            found = np.stack([colour_regions(lab, obj.colour, min_pixels) for lab in labels])
            ious.append(float(frame_ious(found, object_masks)[0].mean()))
    colours, ious = np.array(colours), np.array(ious)
    return {
        "colour_accuracy": round(float(colours.mean()), 4),
        "iou": round(float(ious.mean()), 4),
        "objects_at_both": int(((colours >= colour_target) & (ious >= iou_target)).sum()),
        "objects": len(ious),
    }


def vae_per_object_set(folder: Path, min_pixels: int, seed: int = 0, n_objects=(2, 2, 3, 2)) -> dict:
    """The per-object prompts' held-out set (``bench/per_object_prompts``' default: world seed 0, 2-3 objects
    on crossing paths) through the VAE, each frame decoded whole, and as rendered (the scorer's ceiling)."""
    sequences = list(multi_object_sequences(n_objects, seed))
    return {
        "through_vae": per_object_targets(sequences, lambda f: vae_reconstruct(folder, f), min_pixels),
        "as_rendered": per_object_targets(sequences, lambda f: f, min_pixels),
    }


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


@torch.no_grad()
def sample_t2i(folder: Path, prompts: list[str], steps: int, guidance: float, seed: int) -> np.ndarray:
    """Text-to-image samples uint8 (N, H, W, 3) from the saved StableDiffusionPipeline folder."""
    pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    return _ddim_samples(pipe, prompts, steps, guidance, seed)


@torch.no_grad()
def sample_controlnet(
    folder: Path, prompts: list[str], masks: np.ndarray, steps: int, guidance: float, seed: int
) -> np.ndarray:
    """ControlNet samples uint8 (N, H, W, 3) for bool ``masks`` (N, H, W), given as PIL mask images."""
    base = StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    controlnet = ControlNetModel.from_pretrained(folder / "controlnet", dtype=torch.float32)
    pipe = StableDiffusionControlNetPipeline(**base.components, controlnet=controlnet)
    images = [Image.fromarray(m.astype(np.uint8) * 255).convert("RGB") for m in masks]
    return _ddim_samples(pipe, prompts, steps, guidance, seed, image=images)


def _ddim_samples(pipe, prompts: list[str], steps: int, guidance: float, seed: int, **condition) -> np.ndarray:
    """``pipe``'s samples uint8 (N, H, W, 3) under DDIM, seeded, as every quality figure samples."""
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        prompts,
        **condition,
        num_inference_steps=steps,
        guidance_scale=guidance,
        output_type="np",
        generator=torch.Generator().manual_seed(seed),
    )
    return _to_uint8(out.images)


@torch.no_grad()
def clip_zero_shot(folder: Path, pool: FramePool, motions: list[str]) -> dict:
    """Zero-shot accuracy of the toy CLIP on ``pool``: each frame is matched against all 120
    (colour, shape, ground) captions, each averaged over the phrasings of the base's ``motions``."""
    model, preprocess, tokenizer = load_toy_clip(folder)
    classes = all_combos()
    prompts_of = {c: [f"a {c[0]} {c[1]} {MOTIONS[m]} {GROUNDS[c[2]]}" for m in motions] for c in classes}
    images = torch.stack([preprocess(Image.fromarray(f)) for f in pool.frames])
    pred = [classes[i] for i in zero_shot(model, tokenizer, images, classes, prompts_of)]
    truth = pool.combos
    acc = lambda k: round(float(np.mean([p[k] == t[k] for p, t in zip(pred, truth)])), 4)  # noqa: E731
    return {
        "colour_accuracy": acc(0),
        "shape_accuracy": acc(1),
        "ground_accuracy": acc(2),
        "all_three_accuracy": round(float(np.mean([p == t for p, t in zip(pred, truth)])), 4),
        "n": len(truth),
        "chance": {"colour": round(1 / 6, 4), "shape": 0.2, "ground": 0.25},
    }


def measure_quality(folder: Path, pool: FramePool, cfg, posed: FramePool | None = None) -> dict:
    """All quality figures on the held-out ``pool`` (upright shapes), and with ``posed`` (the same
    held-out combos turned or stretched) the ``posed`` figures; also writes ``folder/samples.png``
    and, with ``posed``, ``folder/vae_poses.csv`` (the VAE's IoU per shape and pose)."""
    q = cfg.quality
    n = min(q.n_samples, len(pool))
    prompts = pool.prompts[:n]
    combos = pool.combos[:n]
    report = vae_roundtrip(folder, pool, q.min_object_pixels)
    report["per_object_set"] = vae_per_object_set(folder, q.min_object_pixels)
    t2i = sample_t2i(folder, prompts, q.inference_steps, q.guidance_scale, cfg.seed)
    report["text_to_image"] = score_samples(t2i, combos)
    ctrl = sample_controlnet(folder, prompts, pool.masks[:n], q.inference_steps, q.guidance_scale, cfg.seed)
    report["controlnet"] = score_samples(ctrl, combos, pool.masks[:n])
    # the detector's ceiling for both samplers: the same frames as rendered, and through the VAE
    report["true_frames"] = score_samples(pool.frames[:n], combos, pool.masks[:n])
    report["true_frames_through_vae"] = score_samples(vae_reconstruct(folder, pool.frames[:n]), combos, pool.masks[:n])
    report["clip_zero_shot"] = clip_zero_shot(folder / "clip", pool, cfg.data.motions)
    report["sampler"] = {"scheduler": "DDIM", "steps": q.inference_steps, "guidance_scale": q.guidance_scale}
    _write_samples(folder / "samples.png", t2i, ctrl, pool.masks[:n])
    if posed is not None:
        report["posed"] = measure_posed(folder, posed, cfg, t2i, combos)
    return report


def measure_posed(folder: Path, posed: FramePool, cfg, t2i: np.ndarray, t2i_combos: list) -> dict:
    """The figures that decide whether the base can carry spin and squash: the VAE per shape x pose,
    the samplers' shapes recognised in any pose (text-to-image: the upright pool's samples ``t2i`` of
    ``t2i_combos``: a prompt names no pose), CLIP zero-shot on posed frames, and the detector on the true frames
    (its ceiling)."""
    q = cfg.quality
    n = min(q.n_samples, len(posed))
    combos, masks = posed.combos[:n], posed.masks[:n]
    vae = AutoencoderKL.from_pretrained(folder / "vae", dtype=torch.float32).eval()
    grid, rows = vae_pose_grid(vae, seed=cfg.seed)
    lines = ["shape,pose,vae_iou,rendered_iou"] + [
        f"{r['shape']},{r['pose']},{r['vae_iou']:.4f},{r['rendered_iou']:.4f}" for r in rows
    ]
    atomic_write_text(folder / "vae_poses.csv", "\n".join(lines) + "\n")
    ctrl = sample_controlnet(folder, posed.prompts[:n], masks, q.inference_steps, q.guidance_scale, cfg.seed)
    return {
        "vae_grid": grid,
        "text_to_image": score_samples(t2i, t2i_combos, any_pose=True),
        "controlnet": score_samples(ctrl, combos, masks, any_pose=True),
        "true_frames": score_samples(posed.frames[:n], combos, masks, any_pose=True),
        "clip_zero_shot": clip_zero_shot(folder / "clip", posed, cfg.data.motions),
    }


def _write_samples(path: Path, t2i: np.ndarray, ctrl: np.ndarray, masks: np.ndarray, per_row: int = 8) -> None:
    rows = [t2i[i : i + per_row] for i in range(0, len(t2i), per_row)]
    ctrl_rows = [ctrl[i : i + per_row] for i in range(0, len(ctrl), per_row)]
    mask_rows = [np.zeros(r.shape[:3], bool) for r in rows]
    mask_rows += [masks[i : i + per_row] for i in range(0, len(ctrl), per_row)]
    sheet = contact_sheet(rows + ctrl_rows, masks=mask_rows, max_frames=per_row)
    write_rgb_png(path, sheet)
