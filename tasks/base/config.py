"""The ``base`` section of params.yaml: which world, and every size and step count of the toy models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tasks.base.data import Poses, longest_caption
from tasks.common.params import StageConfig


class TrainSchedule(StageConfig):
    """AdamW with warm-up and cosine decay to ``min_lr``; EMA of the weights is what gets saved.

    ``max_minutes`` is a wall-clock cap, checked once when warm-up ends: a run that the speed so far
    says would overrun it is shortened to fit (its cosine decay follows the shorter count, so it
    still ends decayed), and the metrics record the steps actually taken. A run that fits never
    reads the clock, so it gives the same weights on a fast or a busy machine.
    """

    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    min_lr: float = Field(ge=0)
    warmup: int = Field(100, ge=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    max_minutes: float | None = Field(None, gt=0)


class DataConfig(StageConfig):
    n_scenes: int = Field(4000, ge=1, description="rendered scenes in the training pool")
    frames_per_scene: int = Field(4, ge=1, le=16)
    n_heldout_combos: int = Field(12, ge=1, description="(colour, shape, ground) combos never trained on")
    n_eval_scenes: int = Field(96, ge=1, description="held-out scenes for the quality figures")
    multi_object_share: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of the VAE's, UNet's and ControlNet's training frames that show 2-3 objects, "
        "captioned with a prompt naming them all (0 = one object per frame)",
    )
    motions: list[Literal["run", "jump", "circle", "spin", "squash"]] = Field(
        ["run", "jump", "circle", "spin", "squash"],
        min_length=1,
        description="the motions of the training scenes; their words make the toy tokenizer's vocabulary",
    )
    motion_weights: list[float] | None = Field(
        [1, 1, 1, 0.25, 0.25],
        description="each motion's relative share of the training scenes, as listed in motions; null = equal",
    )
    turned_share: float = Field(0.1, ge=0, le=1, description="share of scenes whose shape is turned, any angle")
    stretched_share: float = Field(
        0.05, ge=0, le=1, description="share of scenes whose shape is stretched or squashed (aspect 0.6-1.6)"
    )
    pose_words: bool = Field(
        True, description="captions name a turned or stretched shape's pose ('a tilted red square'); false: never"
    )

    @model_validator(mode="after")
    def _shares_fit(self):
        if self.turned_share + self.stretched_share > 1:
            raise ValueError("turned_share + stretched_share must be at most 1")
        w = self.motion_weights
        if w is not None and (len(w) != len(self.motions) or min(w) < 0 or sum(w) <= 0):
            raise ValueError(f"motion_weights {w} must give each of motions {self.motions} a weight >= 0, not all 0")
        return self

    @property
    def poses(self) -> Poses:
        return Poses(self.turned_share, self.stretched_share)


class VaeConfig(StageConfig):
    channels: list[int] = [32, 64, 64]
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_groups: int = 16
    crop: int = Field(32, ge=8, description="training crop (the VAE is convolutional; crops are 4x cheaper)")
    kl_weight: float = 1e-6
    edge_weight: float = 0.5
    foreground_weight: float = Field(
        10.0,
        ge=0,
        description="extra reconstruction weight on the object and a 2-px ring around it (0 = every pixel alike)",
    )
    train: TrainSchedule
    decoder_train: TrainSchedule | None = Field(
        None,
        description="after the other models, the decoder alone trains on with the encoder frozen, "
        "so the latent space the UNet and ControlNet learnt stays put (null = skip)",
    )
    decoder_crop: int | None = Field(
        None, ge=8, description="the decoder step's training crop (null = crop; 64: whole frames, all objects in view)"
    )
    decoder_multi_object: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of the decoder step's frames that show 2-3 objects (the rest: the training pool's "
        "single objects), so each object's colour is decoded from its own latents (0 = single objects only)",
    )
    decoder_boundary_weight: float = Field(
        0.0,
        ge=0,
        description="extra weight of the decoder step's loss on pixels beside a sharp colour change: object "
        "outlines and the seams where objects meet (0 = none)",
    )


class TextConfig(StageConfig):
    max_length: int = Field(20, ge=12)
    width: int = 64
    layers: int = 2
    heads: int = 4
    trained: bool = Field(True, description="trained jointly with the UNet (else frozen at random init)")


class UNetConfig(StageConfig):
    channels: list[int] = [32, 64, 64]
    layers_per_block: int = 1
    attention_heads: int = 4
    norm_groups: int = 16
    prompt_dropout: float = Field(0.1, ge=0, le=1, description="empty prompt rate, for classifier-free guidance")
    foreground_weight: float = Field(0.0, ge=0, description="extra loss weight on object cells (0 = SD's plain MSE)")
    noise_offset: float = Field(
        0.1,
        ge=0,
        description="offset noise: a per-channel constant added to the "
        "training noise, so the prompt sets the frame's overall colour (0 = SD's noise)",
    )
    snr_gamma: float | None = Field(
        None, gt=0, description="Min-SNR-gamma loss weighting over noise levels (null = SD's uniform weighting)"
    )
    train: TrainSchedule


class ControlNetConfig(StageConfig):
    conditioning_channels: int = 3
    embedding_channels: list[int] = [16, 32, 64]
    prompt_dropout: float = Field(0.3, ge=0, le=1)
    foreground_weight: float = Field(0.0, ge=0, description="extra loss weight on object cells (0 = SD's plain MSE)")
    train: TrainSchedule


class ClipConfig(StageConfig):
    embed_dim: int = 64
    vision_width: int = 96
    vision_layers: int = 3
    patch_size: int = 8
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    train: TrainSchedule


class QualityConfig(StageConfig):
    n_samples: int = Field(96, ge=1, description="held-out prompts sampled for text-to-image and ControlNet")
    inference_steps: int = 30
    guidance_scale: float = 4.0
    min_object_pixels: int = Field(4, ge=1, description="as evaluate.min_object_pixels, for the VAE's mask IoU")


class Sd14Config(StageConfig):
    sd14_dir: str | None = None
    controlnet_dir: str | None = None
    clip_model: str | None = Field(None, description="open_clip architecture name, e.g. ViT-L-14-quickgelu")
    clip_weights: str | None = Field(None, description="local open_clip weights for clip_model")


class BaseConfig(StageConfig):
    world: Literal["toy", "sd14"] = "toy"
    seed: int = 0
    out_dir: str = "base/toy"
    metrics: str = "metrics/base.json"
    logs_dir: str = "logs/base"
    threads: int = Field(2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="auto: CUDA when present (the same "
        "recipe: an estimated 12 min on an H100, 58 measured on 2 CPU cores), else CPU",
    )
    data: DataConfig = DataConfig()
    vae: VaeConfig
    text: TextConfig = TextConfig()
    unet: UNetConfig
    controlnet: ControlNetConfig
    clip: ClipConfig
    quality: QualityConfig = QualityConfig()
    sd14: Sd14Config = Sd14Config()

    @model_validator(mode="after")
    def _captions_fit(self):
        # the tokenizer cuts a longer caption short, silently dropping its last words (the ground)
        need = len(longest_caption(self.data.multi_object_share > 0, self.data.pose_words).split()) + 2
        if self.text.max_length < need:
            raise ValueError(
                f"text.max_length {self.text.max_length} is shorter than the longest training caption "
                f"({need} tokens with [BOS] and [EOS], from data.multi_object_share and data.pose_words)"
            )
        return self
