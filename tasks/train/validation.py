"""Validation during training: a short sample on one held-out mask sequence, saved as a GIF.

Sampling while training is what made LAMP's training slow, so it is sparse by default (once, at
the end) and short (few DDIM steps). Frame 1 comes from the base ControlNet as at generation time
(plain text-to-image when the base has none); the 2-D UNet is loaded again for it because training
inflates the base UNet in place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from model.pipeline import MaskVideoPipeline
from tasks.common.io import read_mask_pngs
from tasks.common.pretrained import load_base
from tasks.common.video import write_gif
from tasks.common.visualize import outline_mask


def first_sequence(manifest: str | Path) -> tuple[str, np.ndarray]:
    """(prompt, masks bool (F, H, W)) of the first sequence in a sequences manifest."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"train.validation_sequences: '{manifest}' not found")
    row = yaml.safe_load(manifest.read_text())["sequences"][0]
    return row["prompt"], read_mask_pngs(manifest.parent / row.get("masks", row["id"]))


@torch.no_grad()
def validation_gif(
    train_pipe: MaskVideoPipeline,
    base_dir: str,
    manifest: str,
    path: Path,
    steps: int,
    window: int,
    seed: int,
    fps: float = 8.0,
) -> Path:
    """Sample the sequence with the model being trained; write a GIF with the mask outlined."""
    prompt, masks = first_sequence(manifest)
    frame1 = load_base(base_dir, "train.base_dir")
    pipe = MaskVideoPipeline(
        train_pipe.vae,
        train_pipe.text_encoder,
        train_pipe.tokenizer,
        train_pipe.video_unet,
        train_pipe.scheduler,
        base_unet=frame1.unet.to(train_pipe.device),
        controlnet=None if frame1.controlnet is None else frame1.controlnet.to(train_pipe.device),
    )
    was_training = pipe.video_unet.training
    pipe.video_unet.eval()
    frames = pipe(
        prompt,
        masks,
        num_inference_steps=steps,
        window=window,
        first_frame_source="controlnet" if frame1.controlnet is not None else "text",
        generator=torch.Generator().manual_seed(seed),
    ).frames
    pipe.video_unet.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gif(path, np.stack([outline_mask(f, m) for f, m in zip(frames, masks)]), fps)
    return path
