"""Load a Stable-Diffusion-layout folder of local weights: the toy world's base or SD1.4 itself.

    <folder>/vae/ text_encoder/ tokenizer/ unet/ scheduler/ [controlnet/]
    (an SD1.4 download also holds model_index.json, safety_checker/ and feature_extractor/: unused)

Only local folders are read (``HF_HUB_OFFLINE=1``); a missing part or weights file is an error
naming the setting that pointed at the folder, raised before anything large is loaded.

Weights come as fp32 files or as ``*.fp16.safetensors`` variants (SD1.4's download has both; many
copies only the latter). ``variant="auto"`` takes the fp32 files when present, else the fp16 ones;
either way every module is cast to fp32 here (the caller casts for mixed precision).

Schedulers: SD1.4 ships a ``PNDMScheduler`` config. Training uses DDPM and sampling DDIM over the
same betas (``scaled_linear``, 0.00085 to 0.012, 1000 steps) read from that config; PNDM-only keys
(``skip_prk_steps``) are ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from pydantic import Field, field_validator
from transformers import AutoTokenizer, CLIPTextModel

from model.conditioning import ADE20K_COLOURS, ControlNetCondition
from tasks.common.params import StageConfig

PARTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
Variant = Literal["auto", "fp32", "fp16"]

# fp32 weight file names as diffusers (models) and transformers (the text encoder) save them
FP32_FILES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
)


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


def weights_variant(part: Path, setting: str, variant: Variant = "auto") -> str | None:
    """The ``variant`` argument of ``from_pretrained`` for the weights in ``part``: None (fp32 files) or
    ``"fp16"``. Raises FileNotFoundError naming ``setting`` when the asked-for files are not there."""
    names = {p.name for p in part.iterdir()} if part.is_dir() else set()
    has_fp32 = any(n in names for n in FP32_FILES)
    has_fp16 = any(n.endswith((".fp16.safetensors", ".fp16.bin")) for n in names)
    if variant in ("fp32", "auto") and has_fp32:
        return None
    if variant in ("fp16", "auto") and has_fp16:
        return "fp16"
    wanted = {"fp32": "fp32 weights", "fp16": "*.fp16.safetensors weights", "auto": "weights (fp32 or fp16)"}[variant]
    found = ", ".join(sorted(names)) or "nothing"
    raise FileNotFoundError(f"{setting}: '{part}' holds no {wanted} (found: {found})")


def check_controlnet_folder(folder: str | Path, setting: str, variant: Variant = "auto") -> Path:
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{setting}: '{folder}' is not a ControlNet folder (no config.json)")
    weights_variant(folder, setting, variant)
    return folder


def _frozen(module):
    return module.float().eval().requires_grad_(False)


def load_unet(folder: Path, setting: str, variant: Variant = "auto") -> UNet2DConditionModel:
    part = folder / "unet"
    return _frozen(UNet2DConditionModel.from_pretrained(part, variant=weights_variant(part, setting, variant)))


def load_controlnet(folder: str | Path, setting: str, variant: Variant = "auto") -> ControlNetModel:
    folder = check_controlnet_folder(folder, setting, variant)
    return _frozen(ControlNetModel.from_pretrained(folder, variant=weights_variant(folder, setting, variant)))


def load_base(
    folder: str | Path,
    setting: str = "base_dir",
    controlnet_dir: str | Path | None = None,
    with_controlnet: bool = True,
    variant: Variant = "auto",
    controlnet_setting: str = "controlnet_dir",
) -> BaseComponents:
    """Load every part, frozen and in eval mode, in fp32.

    ``controlnet_dir`` overrides ``<folder>/controlnet`` (SD1.4 keeps its ControlNet elsewhere); when
    given it must be a ControlNet folder (an error naming ``controlnet_setting`` otherwise). Every
    weights file is checked before the first one is read, so a typo fails in seconds.
    """
    folder = check_base_folder(folder, setting)
    variants = {part: weights_variant(folder / part, setting, variant) for part in ("vae", "text_encoder", "unet")}
    cn_folder, cn_setting = None, controlnet_setting
    if with_controlnet and controlnet_dir:
        cn_folder = check_controlnet_folder(controlnet_dir, cn_setting, variant)
    elif with_controlnet and (folder / "controlnet").is_dir():
        cn_folder, cn_setting = check_controlnet_folder(folder / "controlnet", setting, variant), setting

    vae = _frozen(AutoencoderKL.from_pretrained(folder / "vae", variant=variants["vae"]))
    text_encoder = _frozen(CLIPTextModel.from_pretrained(folder / "text_encoder", variant=variants["text_encoder"]))
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    unet = _frozen(UNet2DConditionModel.from_pretrained(folder / "unet", variant=variants["unet"]))
    train_scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    # DDIM warns unless steps_offset=1 (SD's value); derive it from the same schedule
    sample_scheduler = DDIMScheduler.from_config(train_scheduler.config, steps_offset=1)
    controlnet = None
    if cn_folder is not None:
        controlnet = load_controlnet(cn_folder, cn_setting, variant)
    return BaseComponents(vae, text_encoder, tokenizer, unet, train_scheduler, sample_scheduler, controlnet)


class ControlNetSettings(StageConfig):
    """Which ControlNet makes frame 1 and how it is shown the first mask (a stage config's fields:
    train's validation sample and generate both make frame 1)."""

    controlnet_dir: str | None = Field(None, description="a diffusers ControlNet folder; null = <base_dir>/controlnet")
    controlnet_condition: Literal["mask", "seg", "scribble"] = Field(
        "mask",
        description=(
            "mask: white on black (the toy ControlNet) | seg: ADE20K colours (sd-controlnet-seg, "
            "control_v11p_sd15_seg) | scribble: the outline (sd-controlnet-scribble, control_v11p_sd15_scribble)"
        ),
    )
    seg_object_class: str = Field("person", description="seg: the moving object's ADE20K class")
    seg_background_class: str | None = Field(None, description="seg: the rest's ADE20K class; null = unlabelled")

    @field_validator("seg_object_class", "seg_background_class")
    @classmethod
    def _known_class(cls, name: str | None) -> str | None:
        if name is not None and name not in ADE20K_COLOURS:
            raise ValueError(f"unknown ADE20K class {name!r}; one of: {', '.join(sorted(ADE20K_COLOURS))}")
        return name

    def controlnet_input(self) -> ControlNetCondition:
        return ControlNetCondition(self.controlnet_condition, self.seg_object_class, self.seg_background_class)

    def record(self) -> dict:
        """What a checkpoint's config.json records of these, so the model loads with the ControlNet and
        condition it was validated with (``tasks.generate.pipeline``); nothing for the defaults
        (``<base_dir>/controlnet``, white on black), so such checkpoints stay as they were."""
        record = {"controlnet_dir": self.controlnet_dir} if self.controlnet_dir else {}
        if self.controlnet_input() != ControlNetCondition():
            record["controlnet_condition"] = asdict(self.controlnet_input())
        return record
