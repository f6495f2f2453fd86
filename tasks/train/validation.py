"""Validation during training: a short sample on one held-out mask sequence, saved as a GIF.

Sampling while training is what made LAMP's training slow, so it is sparse by default (once, at
the end) and short (few DDIM steps). Frame 1 comes from the ControlNet ``train.controlnet_dir``
names (else the base folder's own), shown the mask as ``train.controlnet_condition`` says, as at
generation time; plain text-to-image when there is none. The 2-D UNet is loaded again for it because
training inflates the base UNet in place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from model.pipeline import MaskVideoPipeline
from model.sampler_settings import PAPER_SAMPLER
from tasks.common.io import read_mask_pngs
from tasks.common.pretrained import ControlNetSettings, load_controlnet, load_unet
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


@torch.no_grad()
def validation_gif(
    train_pipe: MaskVideoPipeline,
    base_dir: str,
    manifest: str,
    path: Path,
    steps: int,
    window: int,
    seed: int,
    controlnet: ControlNetSettings,
    variant: str = "auto",
    fps: float = 8.0,
) -> Path:
    """Sample the sequence with the model being trained; write a GIF with the mask outlined."""
    prompt, masks = first_sequence(manifest)
    base = Path(base_dir)
    unet = load_unet(base, "train.base_dir", variant).to(train_pipe.device)
    cn_dir, cn_setting = controlnet.controlnet_dir, "train.controlnet_dir"
    if cn_dir is None and (base / "controlnet").is_dir():
        cn_dir, cn_setting = base / "controlnet", "train.base_dir"
    frame1_controlnet = None if cn_dir is None else load_controlnet(cn_dir, cn_setting, variant).to(train_pipe.device)
    pipe = MaskVideoPipeline(
        train_pipe.vae,
        train_pipe.text_encoder,
        train_pipe.tokenizer,
        train_pipe.video_unet,
        train_pipe.scheduler,
        base_unet=unet,
        controlnet=frame1_controlnet,
        controlnet_condition=controlnet.controlnet_input(),
        sampler=PAPER_SAMPLER,  # the validation GIF samples as Alg. 1 does, not with the tuned settings
    )
    was_training = pipe.video_unet.training
    pipe.video_unet.eval()
    frames = pipe(
        prompt,
        masks,
        num_inference_steps=steps,
        window=window,
        first_frame_source="controlnet" if frame1_controlnet is not None else "text",
        generator=torch.Generator().manual_seed(seed),
    ).frames
    pipe.video_unet.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gif(path, np.stack([outline_mask(f, m) for f, m in zip(frames, masks)]), fps)
    return path
