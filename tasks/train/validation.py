"""Validation during training: a short sample on one held-out mask sequence, saved as a GIF.

Sampling while training is what made LAMP's training slow, so it is sparse by default (once, at
the end) and short (few DDIM steps). Frame 1 comes from the ControlNet ``train.controlnet_dir``
names (else the base folder's own), shown the mask as ``train.controlnet_condition`` says, as at
generation time; plain text-to-image when there is none. Frame 1 does not depend on what trains, so
it is made once, before training (``prepare_validation``), and the 2-D UNet's weights and the
ControlNet are not held while training: training inflates the base UNet in place, and the
ControlNet is freed once frame 1 is made. Every GIF of a run then starts from the same frame 1
and draws the same noise for frames 2..n.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from model.pipeline import MaskVideoPipeline
from model.sampler_settings import PAPER_SAMPLER
from tasks.common.io import read_mask_pngs
from tasks.common.pretrained import BaseComponents, load_controlnet
from tasks.common.video import write_gif
from tasks.common.visualize import outline_mask


def first_sequence(manifest: str | Path) -> tuple[str, np.ndarray]:
    """(prompt, masks bool (F, H, W)) of the first sequence in a sequences manifest."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"train.validation_sequences: '{manifest}' not found")
    rows = (yaml.safe_load(manifest.read_text()) or {}).get("sequences") or []
    if not rows:
        raise ValueError(f"train.validation_sequences: '{manifest}' lists no sequences")
    return rows[0]["prompt"], read_mask_pngs(manifest.parent / rows[0].get("masks", rows[0]["id"]))


@dataclass
class ValidationVideo:
    """What every validation GIF of a run samples: the sequence's prompt and masks ``(F, H, W)``, its
    frame 1 (uint8 ``(H, W, 3)``) and the generator's state after frame 1 was drawn."""

    prompt: str
    masks: np.ndarray
    first_frame: np.ndarray
    generator_state: torch.Tensor


@torch.no_grad()
def prepare_validation(base: BaseComponents, cfg, device) -> ValidationVideo:
    """Frame 1 of the validation video, by ``base``'s 2-D UNet (before it is inflated) and the
    ControlNet ``cfg`` names, which is loaded for this and freed. ``cfg``: the train stage's config
    (``validation_sequences``, ``validation_steps``, ``seed``, the ControlNet settings)."""
    prompt, masks = first_sequence(cfg.validation_sequences)
    base_dir = Path(cfg.base_dir)
    cn_dir, cn_setting = cfg.controlnet_dir, "train.controlnet_dir"
    if cn_dir is None and (base_dir / "controlnet").is_dir():
        cn_dir, cn_setting = base_dir / "controlnet", "train.base_dir"
    controlnet = None if cn_dir is None else load_controlnet(cn_dir, cn_setting, cfg.base_variant).to(device)
    frame1 = MaskVideoPipeline(
        base.vae,
        base.text_encoder,
        base.tokenizer,
        None,  # frame 1 only
        base.sample_scheduler,
        base_unet=base.unet.to(device),
        controlnet=controlnet,
        controlnet_condition=cfg.controlnet_input(),
        sampler=PAPER_SAMPLER,  # the validation GIF samples as Alg. 1 does, not with the tuned settings
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    image = frame1.first_frame(
        prompt,
        masks,
        num_inference_steps=cfg.validation_steps,
        first_frame_source="controlnet" if controlnet is not None else "text",
        generator=generator,
    )[0]
    return ValidationVideo(prompt, masks, image, generator.get_state())


@torch.no_grad()
def validation_gif(
    train_pipe: MaskVideoPipeline, video: ValidationVideo, path: Path, steps: int, window: int, fps: float = 8.0
) -> Path:
    """Sample ``video`` with the model being trained; write a GIF with the mask outlined."""
    pipe = MaskVideoPipeline(
        train_pipe.vae,
        train_pipe.text_encoder,
        train_pipe.tokenizer,
        train_pipe.video_unet,
        train_pipe.scheduler,
        sampler=PAPER_SAMPLER,
    )
    generator = torch.Generator()
    generator.set_state(video.generator_state)
    was_training = pipe.video_unet.training
    pipe.video_unet.eval()
    frames = pipe(
        video.prompt,
        video.masks,
        first_frame=video.first_frame,
        num_inference_steps=steps,
        window=window,
        generator=generator,
    ).frames
    pipe.video_unet.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gif(path, np.stack([outline_mask(f, m) for f, m in zip(frames, video.masks)]), fps)
    return path
