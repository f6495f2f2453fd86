"""A tiny world on disk for stage tests: a base folder of tiny seeded models, toy clips and masks."""

from pathlib import Path

import numpy as np
import pandas as pd
from diffusers import DDPMScheduler

from tasks.common.io import load_clip
from tasks.ingest.stage import IngestConfig, ingest
from tasks.toyworld.stage import ToyWorldConfig, render_toyworld
from tasks.train.config import TrainConfig
from tests.model.conftest import tiny_controlnet, tiny_text_encoder, tiny_tokenizer, tiny_unet2d, tiny_vae


def write_tiny_base(folder: Path) -> Path:
    """The Stable Diffusion folder layout, filled with tiny random models."""
    tiny_vae().save_pretrained(folder / "vae")
    tiny_text_encoder().save_pretrained(folder / "text_encoder")
    tiny_tokenizer().save_pretrained(folder / "tokenizer")
    unet = tiny_unet2d()
    unet.save_pretrained(folder / "unet")
    tiny_controlnet(unet).save_pretrained(folder / "controlnet")
    DDPMScheduler(
        num_train_timesteps=100, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
    ).save_pretrained(folder / "scheduler")
    return folder


def write_truth_masks(clips_dir: Path, masks_dir: Path) -> None:
    """The masks stage's output format, filled with the toy world's ground truth."""
    masks_dir.mkdir(parents=True)
    table = pd.read_csv(clips_dir / "manifest.csv")
    for vid, clip in zip(table["id"], table["clip"]):
        np.savez_compressed(masks_dir / f"{vid}.npz", masks=load_clip(clips_dir / clip)["truth_masks"])
    table[["id"]].assign(method="truth").to_csv(masks_dir / "manifest.csv", index=False)


def ingest_tiny_world(root: Path, **overrides) -> None:
    """The ingest stage on ``root/data/raw/toy`` (6 frames, 32x32) into ``root/data/clips``."""
    ingest(
        IngestConfig(
            manifest=str(root / "data/raw/toy/manifest.yaml"),
            input_dir=str(root / "data/raw/toy"),
            data_root=str(root / "data"),
            out_dir=str(root / "data/clips"),
            n_frames=6,
            height=32,
            width=32,
            **overrides,
        )
    )


def build_tiny_world(root: Path) -> Path:
    """32x32 toy clips (6 frames), their truth masks as the masks stage's output, a tiny base."""
    render_toyworld(
        ToyWorldConfig(
            size=32, n_frames=6, n_train=3, n_heldout=1, heldout_frames=6, out_dir=str(root / "data/raw/toy")
        )
    )
    ingest_tiny_world(root)
    write_truth_masks(root / "data/clips", root / "data/masks")
    write_tiny_base(root / "base")
    return root


def tiny_train_config(root: Path, run: Path, **overrides) -> TrainConfig:
    base = dict(
        clips_dir=str(root / "data/clips"),
        masks_dir=str(root / "data/masks"),
        base_dir=str(root / "base"),
        out_dir=str(run / "checkpoints"),
        metrics=str(run / "train.json"),
        loss_log=str(run / "loss.csv"),
        steps=6,
        batch_size=2,
        window=4,
        lr=1e-3,
        validation_steps=2,
        validation_sequences=str(root / "data/raw/toy/heldout/manifest.yaml"),
        checkpoint_every=2,
        keep_last=2,
        mask_hidden_channels=8,
    )
    return TrainConfig(**{**base, **overrides})


def tiny_generate_config(root: Path, run: Path, **overrides):
    from tasks.generate.config import GenerateConfig

    base = dict(
        checkpoint_dir=str(run / "checkpoints"),
        sequences=str(root / "data/raw/toy/heldout/manifest.yaml"),
        out_dir=str(run / "outputs"),
        num_inference_steps=2,
        guidance_scale=2.0,
        window=4,
        seeds=[0],
        video_guidance_scale=None,
        shared_noise="paper",
        adain=False,
        mask_guidance_scale=0.0,
    )
    return GenerateConfig(**{**base, **overrides})
