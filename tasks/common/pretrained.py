"""Load a Stable-Diffusion-layout folder of local weights: the toy world's base or SD1.4 itself.

    <folder>/vae/ text_encoder/ tokenizer/ unet/ scheduler/ [controlnet/]

Only local folders are read (``HF_HUB_OFFLINE=1``); a missing part is an error naming the setting
that pointed at the folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import AutoTokenizer, CLIPTextModel

PARTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")


@dataclass
class BaseComponents:
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: object
    unet: UNet2DConditionModel
    train_scheduler: DDPMScheduler
    sample_scheduler: DDIMScheduler
    controlnet: ControlNetModel | None


def check_base_folder(folder: str | Path, setting: str) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{setting}: base weights folder '{folder}' not found")
    missing = [p for p in PARTS if not (folder / p).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{setting}: '{folder}' lacks {', '.join(missing)} (expected the Stable "
            "Diffusion folder layout: vae/ text_encoder/ tokenizer/ unet/ scheduler/)"
        )
    return folder


def load_base(
    folder: str | Path,
    setting: str = "base_dir",
    controlnet_dir: str | Path | None = None,
    with_controlnet: bool = True,
) -> BaseComponents:
    """Load every part, frozen and in eval mode (fp32: the caller casts for mixed precision).

    ``controlnet_dir`` overrides ``<folder>/controlnet`` (SD1.4 keeps its ControlNet elsewhere).
    """
    folder = check_base_folder(folder, setting)
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    train_scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    # DDIM warns unless steps_offset=1 (SD's value); derive it from the same schedule
    sample_scheduler = DDIMScheduler.from_config(train_scheduler.config, steps_offset=1)
    controlnet = None
    cn_folder = Path(controlnet_dir) if controlnet_dir else folder / "controlnet"
    if with_controlnet and cn_folder.is_dir():
        controlnet = ControlNetModel.from_pretrained(cn_folder).float().eval().requires_grad_(False)
    for module in (vae, text_encoder, unet):
        module.float().eval().requires_grad_(False)
    return BaseComponents(vae, text_encoder, tokenizer, unet, train_scheduler, sample_scheduler, controlnet)
