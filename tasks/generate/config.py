"""The generate stage's settings (``params.yaml``'s ``generate`` section) and which of them key a video."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Literal

from pydantic import Field, field_validator

from model.sampler_settings import SamplerSettings, step_interval
from tasks.common.pretrained import ControlNetSettings

SAMPLER = SamplerSettings()  # the defaults


class GenerateConfig(ControlNetSettings):
    checkpoint_dir: str = "data/checkpoints"
    sequences: str = Field(
        "data/raw/toy/heldout",
        description=(
            "a sequences folder holding manifest.yaml (sequences: [{id, prompt, masks}]), or the manifest file itself"
        ),
    )
    prompts: list[str] | None = Field(None, description="if set, every sequence is generated with each of these")
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    out_dir: str = "data/outputs"
    # the sampler's settings: their defaults are SamplerSettings' (model/sampler_settings.py), the one place
    num_inference_steps: int = Field(SAMPLER.num_inference_steps, ge=1)
    guidance_scale: float = Field(
        SAMPLER.guidance_scale, ge=1.0, description="classifier-free guidance of frame 1 (and of 2..n by default)"
    )
    video_guidance_scale: float | None = Field(
        SAMPLER.video_guidance_scale, ge=1.0, description="guidance of frames 2..n; null = guidance_scale"
    )
    shared_noise: Literal["paper", "lamp", "off"] = SAMPLER.shared_noise
    alpha: float = Field(SAMPLER.alpha, ge=0.0, le=1.0)
    lowfreq_grid: int = Field(
        SAMPLER.lowfreq_grid, ge=0, description="> 0: frames 2..n take frame 1's g x g block means at x_T; 0 = off"
    )
    adain: bool = SAMPLER.adain
    adain_per_object: bool = Field(
        SAMPLER.adain_per_object,
        description="with per-object prompts, AdaIN matches each object's region to frame 1's, not the frame",
    )
    decode_per_object: bool = Field(
        SAMPLER.decode_per_object,
        description="with per-object prompts, each object's pixels decoded without the other objects' latents",
    )
    first_frame_source: Literal["controlnet", "text", "manifest"] = Field(
        SAMPLER.first_frame_source,
        description="controlnet (eq. 3) | text (w/o ControlNet) | manifest (each row's first_frame image)",
    )
    controlnet_scale: float = Field(
        SAMPLER.controlnet_conditioning_scale, ge=0.0, description="weight of the ControlNet's residuals for frame 1"
    )
    use_masks: bool = SAMPLER.use_masks
    mask_guidance_scale: float = Field(
        SAMPLER.mask_guidance_scale,
        ge=0.0,
        description=(
            "frames 2..n: adds w x (prediction with the masks - without them); 0 = off (one UNet pass fewer)"
        ),
    )
    video_guidance_interval: tuple[float, float] = Field(
        SAMPLER.video_guidance_interval,
        description="frames 2..n: the steps, as shares [start, end) of them from the noisiest, that take guidance",
    )
    mask_guidance_interval: tuple[float, float] = Field(
        SAMPLER.mask_guidance_interval,
        description="frames 2..n: the steps, as shares [start, end), that take mask guidance (its UNet rows)",
    )
    window: int | None = Field(None, ge=2, description="frames per chunk; default: the trained window")
    height: int | None = Field(None, ge=8, description="output height (pixels); null = the masks' height")
    width: int | None = Field(None, ge=8, description="output width (pixels); null = the masks' width")
    fps: float = Field(8.0, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    _intervals = field_validator("video_guidance_interval", "mask_guidance_interval")(step_interval)

    def sampler(self, trained_window: int) -> SamplerSettings:
        """These settings as the pipeline's keywords (the window: ``window``, else the trained one)."""
        return replace(
            SAMPLER,
            **self.model_dump(include=SHARED_WITH_SAMPLER),
            controlnet_conditioning_scale=self.controlnet_scale,
            window=self.window or trained_window,
        )


# The settings that change the pixels of a video (besides prompt, seed, masks and weights).
SAMPLER_FIELDS = {
    "num_inference_steps",
    "guidance_scale",
    "video_guidance_scale",
    "shared_noise",
    "alpha",
    "lowfreq_grid",
    "adain",
    "first_frame_source",
    "controlnet_scale",
    "use_masks",
    "mask_guidance_scale",
    "video_guidance_interval",
    "mask_guidance_interval",
    "window",
    "controlnet_dir",
    "controlnet_condition",
    "seg_object_class",
    "seg_background_class",
    "height",
    "width",
}
# ... and those that change only the videos with per-object prompts (keyed only for them)
OBJECT_SAMPLER_FIELDS = {"adain_per_object", "decode_per_object"}
# GenerateConfig's fields that are SamplerSettings' under the same name
SHARED_WITH_SAMPLER = {f.name for f in fields(SamplerSettings)} & set(GenerateConfig.model_fields) - {"window"}
