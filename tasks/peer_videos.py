"""The training-free peers of Table I over the generate stage's jobs: Text2Video-Zero (text only, its
motion field set from the masks' centroid path), Text2Video-Zero + ControlNet and ControlVideo (every
frame under the ControlNet's mask condition), each on the base models a run trained on (``model.peers``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from model.text import encode_prompts
from tasks.generate.config import GenerateConfig
from tasks.generate.jobs import Job, read_sequence

if TYPE_CHECKING:
    from tasks.systems import Settings

PEERS = ("Text2Video-Zero", "Text2Video-Zero + ControlNet", "ControlVideo")


@dataclass
class LoadedPeer:
    """A peer's models, loaded for one generate config (its cross-frame attention set on the base)."""

    system: str
    base: object  # tasks.common.pretrained.BaseComponents
    text2video_zero: object | None = None  # diffusers' pipeline, for "Text2Video-Zero" only
    t2v_zero_steps: tuple[int, ...] = ()  # its t0, t1 at this step count
    smoother_steps: tuple[int, ...] = ()  # ControlVideo's smoothed steps at this step count


def load_peer(system: str, gen: GenerateConfig, base_dir: str) -> LoadedPeer:
    """The base models of ``base_dir`` (with ``generate.controlnet_dir``), set up as ``system`` samples."""
    from model.peers import (
        CONTROLVIDEO_SMOOTHER_STEPS,
        T2V_ZERO_PAPER_STEPS,
        scaled_steps,
        set_cross_frame_attention,
        text2video_zero,
    )
    from tasks.common.pretrained import load_base

    if system not in PEERS:
        raise ValueError(f"no training-free peer '{system}'; choose from {list(PEERS)}")
    base = load_base(
        base_dir, "train.base_dir", controlnet_dir=gen.controlnet_dir, controlnet_setting="generate.controlnet_dir"
    )
    steps, guidance = gen.num_inference_steps, gen.guidance_scale
    if system == "Text2Video-Zero":
        pipe = text2video_zero(base.vae, base.text_encoder, base.tokenizer, base.unet, base.sample_scheduler)
        return LoadedPeer(system, base, pipe, scaled_steps(T2V_ZERO_PAPER_STEPS, steps))
    kind = "first_frame" if system == "Text2Video-Zero + ControlNet" else "all_frames"
    for module in (base.unet, base.controlnet):
        set_cross_frame_attention(module, kind, num_videos=2 if guidance > 1 else 1)
    smoother = scaled_steps(CONTROLVIDEO_SMOOTHER_STEPS, steps) if system == "ControlVideo" else ()
    return LoadedPeer(system, base, smoother_steps=smoother)


# the last peer loaded, by (system, base, generate settings): its jobs reuse it, other settings load afresh
_LOADED: dict[tuple, LoadedPeer] = {}


def load_peer_for(system: str, settings: Settings) -> LoadedPeer:
    """``load_peer`` once per (system, settings): a sequence set's jobs share one load, as a fresh load
    per set keeps each set's cross-frame attention set on a base of its own."""
    key = (system, settings.base_dir, settings.generate.model_dump_json())
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_peer(system, settings.generate, settings.base_dir)
    return _LOADED[key]


def peer_video(system: str, job: Job, settings: Settings) -> dict:
    """The registry's call for a peer (``tasks.systems``): one job's video at its masks' size, written as the
    generate stage writes one; returns its manifest row."""
    peer, masks = load_peer_for(system, settings), read_sequence(job)
    frames = peer_frames(peer, job, masks, settings.generate)
    return write_peer_video(peer, job, frames, masks, settings.generate)


@torch.no_grad()
def peer_frames(peer: LoadedPeer, job: Job, masks: np.ndarray, gen: GenerateConfig) -> np.ndarray:
    """One job's video ``(F, H, W, 3)`` uint8 at the masks' size ``masks (F, H, W)``, seeded by the job."""
    generator = torch.Generator().manual_seed(job.seed)
    if peer.text2video_zero is not None:
        return _text2video_zero_frames(peer, job, masks, gen, generator)
    return _controlnet_frames(peer, job, masks, gen, generator)


def _text2video_zero_frames(peer: LoadedPeer, job: Job, masks: np.ndarray, gen: GenerateConfig, generator):
    h, w = masks.shape[1:]
    out = peer.text2video_zero(
        job.prompt,
        video_length=len(masks),
        height=h,
        width=w,
        num_inference_steps=gen.num_inference_steps,
        guidance_scale=gen.guidance_scale,
        generator=generator,
        output_type="np",
        **_text2video_zero_motion(peer, masks),
    )
    return (np.clip(out.images, 0, 1) * 255).round().astype(np.uint8)


def _text2video_zero_motion(peer: LoadedPeer, masks: np.ndarray) -> dict:
    """Text2Video-Zero's own keywords: its motion field, set from the masks' centroid path, and its steps
    t0 < t1 between which that motion is applied (its paper's, at this step count)."""
    from model.peers import motion_field_from_masks

    sx, sy = motion_field_from_masks(masks)
    t0, t1 = peer.t2v_zero_steps
    return {"motion_field_strength_x": sx, "motion_field_strength_y": sy, "t0": t0, "t1": t1}


def _controlnet_frames(peer: LoadedPeer, job: Job, masks: np.ndarray, gen: GenerateConfig, generator):
    from model.arrays import to_uint8
    from model.conditioning import controlnet_image
    from model.peers import sample_with_controlnet

    base, guidance = peer.base, gen.guidance_scale
    text = encode_prompts(base.tokenizer, base.text_encoder, [job.prompt], [""] if guidance > 1 else None)
    factor = 2 ** (len(base.vae.config.block_out_channels) - 1)
    latent_size = (masks.shape[1] // factor, masks.shape[2] // factor)
    cond = controlnet_image(base.controlnet, gen.controlnet_input(), torch.from_numpy(masks), latent_size)
    latents = sample_with_controlnet(
        base.unet,
        base.controlnet,
        base.sample_scheduler,
        text,
        cond,
        (base.unet.config.in_channels, *latent_size),
        gen.num_inference_steps,
        guidance,
        generator,
        gen.controlnet_scale,
        peer.smoother_steps,
    )
    return to_uint8(base.vae.decode(latents / base.vae.config.scaling_factor).sample)


def write_peer_video(peer: LoadedPeer, job: Job, frames: np.ndarray, masks: np.ndarray, gen: GenerateConfig) -> dict:
    """The video's folder as the generate stage writes one; returns its manifest row."""
    from tasks.generate.stage import write_video

    meta = {"video_id": job.video_id, "sequence": job.sequence, "prompt": job.prompt, "seed": job.seed,
            "system": peer.system, "n_frames": len(frames), "video": f"{job.video_id}/video.mp4",
            "sheet": f"{job.video_id}/sheet.png"}  # fmt: skip
    write_video(Path(gen.out_dir) / job.video_id, frames, masks, meta, gen.fps)
    return meta
