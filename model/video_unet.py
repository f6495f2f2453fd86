"""Inflation: a diffusers ``UNet2DConditionModel`` becomes a mask-guided video UNet.

The 2-D UNet is kept whole (its blocks, weights and state-dict names); inflation only
  1. swaps the attention processors: spatial self-attention -> ``SpatialSelfAttnProcessor``
     (first-frame by default, eq. 5), text cross-attention -> ``MaskCrossAttnProcessor`` (eq. 6-7);
  2. wraps every ``Transformer2DModel`` in a ``SpatioTemporalTransformer`` that adds temporal layers.
The ``VideoUNet`` wrapper folds frames into the batch, ``(B, C, F, H, W) -> (B*F, C, H, W)``, and
passes a ``VideoContext`` (frame count, masks) down via ``cross_attention_kwargs``.

Usage::

    unet2d = UNet2DConditionModel.from_pretrained(folder)           # toy world or SD1.4
    video_unet = inflate_unet(unet2d, VideoUNetConfig(self_attention="first_frame"))
    noise_pred = video_unet(latents, t, text_emb, masks)             # (B, C, F, H, W)
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from model.attention import (
    SELF_ATTENTION_MODES,
    MaskCrossAttnProcessor,
    ObjectPrompts,
    SpatialSelfAttnProcessor,
    VideoContext,
)
from model.temporal import SpatioTemporalTransformer
from model.trainable import frozen_parameters


@dataclass
class VideoUNetConfig:
    """Every switch of the inflated model, validated in one place.

    Attributes:
        self_attention: ``first_frame`` (paper, eq. 5) | ``sparse_causal`` (Tune-A-Video) |
            ``per_frame`` (plain image attention) | ``full`` (all frames; a cost baseline).
        mask_cross_attention: add the mask term to cross-attention (eq. 7); False is "w/o mask".
        temporal_attention: add temporal attention after each spatial transformer.
        temporal_conv: add a 3-tap temporal conv after each spatial transformer (LAMP-style).
        mask_hidden_channels: hidden width of each mask branch.
    """

    self_attention: str = "first_frame"
    mask_cross_attention: bool = True
    temporal_attention: bool = True
    temporal_conv: bool = True
    mask_hidden_channels: int = 32

    def __post_init__(self):
        if self.self_attention not in SELF_ATTENTION_MODES:
            raise ValueError(f"self_attention must be one of {SELF_ATTENTION_MODES}, got {self.self_attention!r}")
        if self.mask_hidden_channels < 1:
            raise ValueError("mask_hidden_channels must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


def _transformer_slots(unet: UNet2DConditionModel):
    """Yield ``(attentions_list, index)`` for every spatial transformer in the UNet's blocks."""
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    for block in blocks:
        for i, module in enumerate(getattr(block, "attentions", None) or []):
            if isinstance(module, Transformer2DModel):
                yield block.attentions, i


def _video_processors(unet: UNet2DConditionModel, config: VideoUNetConfig) -> dict:
    """The processor for every attention module: video ones inside the spatial transformers,
    the current one elsewhere (the temporal attention keeps its plain SDPA processor)."""
    processors = {}
    for name, current in unet.attn_processors.items():
        attn = unet.get_submodule(name[: -len(".processor")])
        inside_spatial = ".spatial." in name
        if inside_spatial and name.endswith("attn1.processor"):
            processors[name] = SpatialSelfAttnProcessor(config.self_attention)
        elif inside_spatial and name.endswith("attn2.processor"):
            channels = attn.to_q.in_features if config.mask_cross_attention else None
            processors[name] = MaskCrossAttnProcessor(channels, config.mask_hidden_channels)
        else:
            processors[name] = current
    return processors


class VideoUNet(nn.Module):
    """A 2-D conditional UNet run over videos, built by ``inflate_unet``.

    Attributes:
        unet: the inflated ``UNet2DConditionModel`` (pretrained weights + new layers).
        config: the ``VideoUNetConfig`` it was built with.
    """

    def __init__(self, unet: UNet2DConditionModel, config: VideoUNetConfig):
        super().__init__()
        self.unet = unet
        self.config = config

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def in_channels(self) -> int:
        return self.unet.config.in_channels

    def enable_gradient_checkpointing(self) -> None:
        """Checkpoint the UNet's resnets and transformer blocks, and the new temporal layers."""
        self.unet.enable_gradient_checkpointing()

    def disable_gradient_checkpointing(self) -> None:
        self.unet.disable_gradient_checkpointing()

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int | float,
        encoder_hidden_states: torch.Tensor,
        masks: torch.Tensor | None = None,
        object_text: torch.Tensor | None = None,
        object_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise of every frame.

        Args:
            sample: noisy latents ``(B, C, F, H, W)``. For first-frame conditioning, frame 1 is the
                clean latent (the caller puts it there; see ``model.training.first_frame_loss``).
            timestep: a scalar, ``(B,)`` (one per video, shared by its frames: what the paper and the
                sampler use) or ``(B, F)`` (one per frame).
            encoder_hidden_states: text embeddings ``(B, L, D)``, shared by the frames of a video.
            masks: foreground masks ``(B, F, Hm, Wm)`` float in {0, 1}, at pixel or latent
                resolution (resized inside per layer), or None for no mask guidance. Masks for only
                the first ``Bm < B`` videos run the rest without them, row for row as a call of their
                own would (the sampler's mask-guidance pass, batched behind the guided ones).
            object_text: per-object prompts ``(B, K, L, D)``: object k's tokens act inside its own
                mask, ``encoder_hidden_states`` (the scene) elsewhere (``MaskCrossAttnProcessor``).
            object_masks: ``(B, K, F, Hm, Wm)`` in [0, 1], object k's mask per frame; with
                ``object_text``. A video whose object masks are all zero is not routed.

        Returns:
            The UNet's prediction ``(B, C_out, F, H, W)`` (noise for an epsilon-prediction model).
        """
        if sample.ndim != 5:
            raise ValueError(f"sample must be (B, C, F, H, W), got {tuple(sample.shape)}")
        b, c, f, h, w = sample.shape
        frames = sample.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        timesteps = _per_frame_timesteps(timestep, b, f, sample.device)
        text = encoder_hidden_states.repeat_interleave(f, dim=0)
        frame_masks = None
        if masks is not None:
            if masks.ndim != 4 or masks.shape[1] != f or not 0 < masks.shape[0] <= b:
                raise ValueError(f"masks must be (B, F, H, W) = ({b}, {f}, ...), got {tuple(masks.shape)}")
            frame_masks = masks.reshape(-1, 1, *masks.shape[2:]).to(device=sample.device, dtype=sample.dtype)
        objects = None
        if (object_text is None) != (object_masks is None):
            raise ValueError("object_text and object_masks go together")
        if object_text is not None:
            k = object_text.shape[1]
            if object_masks.shape[:3] != (b, k, f) or object_text.shape[0] != b:
                raise ValueError(
                    f"object_masks must be (B, K, F, H, W) = ({b}, {k}, {f}, ...), got {tuple(object_masks.shape)}"
                )
            objects = ObjectPrompts(
                text=object_text.repeat_interleave(f, dim=0),
                masks=object_masks.transpose(1, 2).reshape(b * f, k, *object_masks.shape[3:]).to(sample),
            )
        context = VideoContext(num_frames=f, latent_size=(h, w), masks=frame_masks, objects=objects)
        out = self.unet(frames, timesteps, text, cross_attention_kwargs={"video": context}, return_dict=False)[0]
        return out.reshape(b, f, out.shape[1], h, w).permute(0, 2, 1, 3, 4)


def _per_frame_timesteps(timestep, batch: int, num_frames: int, device) -> torch.Tensor:
    """Scalar / ``(B,)`` / ``(B, F)`` timesteps -> ``(B*F,)``, frame-major within a video."""
    t = torch.as_tensor(timestep, device=device)
    if t.ndim == 0:
        return t.expand(batch * num_frames)
    if t.shape == (batch,):
        return t.repeat_interleave(num_frames)
    if t.shape == (batch, num_frames):
        return t.reshape(-1)
    raise ValueError(f"timestep must be a scalar, ({batch},) or ({batch}, {num_frames}); got {tuple(t.shape)}")


def inflate_unet(
    unet2d: UNet2DConditionModel,
    config: VideoUNetConfig | None = None,
    copy_unet: bool = True,
    share_frozen: str | None = None,
) -> VideoUNet:
    """Build a ``VideoUNet`` from a 2-D ``UNet2DConditionModel``.

    Args:
        unet2d: any diffusers 2-D conditional UNet with ``Transformer2DModel`` attention blocks
            (SD1.x, the toy world's). Its weights are reused; new layers are zero-initialised so
            that, with ``per_frame`` attention, the result equals ``unet2d`` frame by frame.
        config: switches; defaults to the paper's model.
        copy_unet: inflate a deep copy (default), leaving ``unet2d`` usable as the text-to-image
            UNet for frame 1. False inflates in place and saves the memory of a copy.
        share_frozen: a trainable scheme (``model.trainable``): the copy shares every parameter that
            scheme does not train with ``unet2d`` (the same tensors), so only the trained ones cost
            memory twice (SD1.4, ``paper``: 0.4 of 3.4 GB). For sampling, where nothing trains: both
            UNets stay the pretrained one except for what a checkpoint loads into the video UNet.

    Returns:
        The ``VideoUNet``, on ``unet2d``'s device and dtype, all parameters trainable (see
        ``model.trainable.set_trainable``).
    """
    if not isinstance(unet2d, UNet2DConditionModel):
        raise TypeError(f"expected a diffusers UNet2DConditionModel, got {type(unet2d).__name__}")
    config = config or VideoUNetConfig()
    if share_frozen is not None and not copy_unet:
        raise ValueError("share_frozen shares a copy's parameters: it needs copy_unet=True")
    shared = {} if share_frozen is None else {id(p): p for p in frozen_parameters(unet2d, share_frozen)}
    unet = copy.deepcopy(unet2d, memo=shared) if copy_unet else unet2d  # deepcopy keeps what memo holds
    slots = list(_transformer_slots(unet))
    if not slots:
        raise ValueError("the UNet has no Transformer2DModel blocks to inflate")
    for attentions, i in slots:
        spatial = attentions[i]
        heads = spatial.transformer_blocks[0].attn1.heads
        attentions[i] = SpatioTemporalTransformer(spatial, config.temporal_conv, config.temporal_attention, heads)
    unet.set_attn_processor(_video_processors(unet, config))
    param = next(unet2d.parameters())
    return VideoUNet(unet, config).to(device=param.device, dtype=param.dtype)


def sd14_unet_config() -> dict:
    """Stable Diffusion 1.4's published UNet config (``unet/config.json``), written out so that the
    architecture can be built with random weights and nothing downloaded."""
    return dict(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        center_input_sample=False,
        flip_sin_to_cos=True,
        freq_shift=0,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        downsample_padding=1,
        mid_block_scale_factor=1,
        act_fn="silu",
        norm_num_groups=32,
        norm_eps=1e-5,
        cross_attention_dim=768,
        attention_head_dim=8,
    )


def build_sd14_unet() -> UNet2DConditionModel:
    """The SD1.4 UNet architecture with random weights (~860M parameters, ~3.4 GB in fp32)."""
    return UNet2DConditionModel(**sd14_unet_config())
