"""A trained checkpoint as a ready ``MaskVideoPipeline``, in one call (diffusers' ``from_pretrained`` habit).

    import torch
    from tasks.generate.pipeline import from_pretrained

    pipe = from_pretrained("data/checkpoints")           # the latest checkpoint, on the base it was trained on
    masks = read_mask_pngs("data/raw/toy/heldout/run-0")  # tasks.common.io: bool (F, H, W)
    video = pipe("a red circle runs across a green meadow", masks, generator=torch.Generator().manual_seed(0))
    video.frames                                          # np.uint8 (F, H, W, 3)

The generate stage loads its model through the same call.
"""

from __future__ import annotations

from pathlib import Path

import torch

from model.conditioning import ControlNetCondition
from model.pipeline import MaskVideoPipeline
from model.trainable import load_trainable_state_dict
from model.video_unet import VideoUNetConfig, inflate_unet
from tasks.common.pretrained import Variant, load_base
from tasks.contract import LATEST, latest_checkpoint, read_checkpoint


def checkpoint_folder(checkpoint: str | Path, setting: str = "checkpoint") -> Path:
    """A checkpoint folder, or the latest one when ``checkpoint`` is a train stage's output folder."""
    path = Path(checkpoint)
    if (path / LATEST).is_file():
        path = latest_checkpoint(path)
    if path is None or not (path / "trainable.safetensors").is_file():
        raise FileNotFoundError(f"{setting}: no checkpoint in '{checkpoint}' (run the train stage)")
    return path


def from_pretrained(
    checkpoint: str | Path,
    base_dir: str | Path | None = None,
    controlnet_dir: str | Path | None = None,
    controlnet_condition: ControlNetCondition | None = None,
    variant: Variant | None = None,
    device: str | torch.device | None = None,
    torch_dtype: torch.dtype | None = None,
    setting: str = "checkpoint",
    controlnet_setting: str = "controlnet_dir",
) -> MaskVideoPipeline:
    """Base folder + the checkpoint's trainable weights + its config -> the video pipeline.

    Args:
        checkpoint: a checkpoint folder (``.../ckpt-000200``) or the train stage's ``out_dir`` (its latest).
        base_dir: the Stable-Diffusion-layout folder; default: the one the checkpoint was trained on.
        controlnet_dir: the ControlNet of frame 1; default ``<base_dir>/controlnet`` when present.
        controlnet_condition: how that ControlNet is shown the first mask (default: white on black).
        variant: weights files to read (``auto`` | ``fp32`` | ``fp16``); default: as at training.
        device, torch_dtype: where and in what precision the pipeline runs (``pipe.to``).
        setting, controlnet_setting: the names errors give the checkpoint and the ControlNet folder
            (a stage passes its config keys).

    The pipeline's ``checkpoint`` attribute is the folder loaded and ``checkpoint_config`` its config
    (the trained motion window is ``checkpoint_config["window"]``).
    """
    folder = checkpoint_folder(checkpoint, setting)
    weights, config, _ = read_checkpoint(folder)
    base_setting = "base_dir" if base_dir else f"{folder}/config.json: base_dir"
    base = load_base(
        base_dir or config["base_dir"],
        base_setting,
        controlnet_dir=controlnet_dir,
        variant=variant or config.get("base_variant", "auto"),
        controlnet_setting=controlnet_setting,
    )
    video_unet = inflate_unet(base.unet, VideoUNetConfig(**config["video_unet"]), copy_unet=True)
    try:
        load_trainable_state_dict(video_unet, weights, config["trainable"])
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"checkpoint {folder} does not fit the base {base_dir or config['base_dir']}: {err}"
        ) from None
    pipe = MaskVideoPipeline(
        base.vae,
        base.text_encoder,
        base.tokenizer,
        video_unet.eval(),
        base.sample_scheduler,
        base_unet=base.unet,
        controlnet=base.controlnet,
        controlnet_condition=controlnet_condition,
    )
    pipe.checkpoint, pipe.checkpoint_config = folder, config
    if device is not None or torch_dtype is not None:
        pipe.to(device, torch_dtype)
    return pipe
