"""The toy world's mask ControlNet: ``ControlNetModel.from_unet`` over the frozen text-to-image UNet.

Conditioning image: the binary foreground mask as a 3-channel image in {0, 1} at frame size (the
mask repeated on R, G and B), which is what ``StableDiffusionControlNetPipeline`` makes of a PIL
mask and what real segmentation ControlNets take. The paper uses it for the first frame (eq. 3).
"""

from __future__ import annotations

import torch
from diffusers import ControlNetModel, UNet2DConditionModel

from model.training import foreground_mse
from tasks.base.text import tokenize
from tasks.base.unet import noised


def build_controlnet(
    unet: UNet2DConditionModel, conditioning_channels: int, embedding_channels: tuple[int, ...], seed: int
) -> ControlNetModel:
    """Encoder copied from ``unet``; zero convolutions, so at step 0 it changes nothing.
    ``embedding_channels`` has one entry per 2x downsampling plus one (64 -> 16 needs 3)."""
    torch.manual_seed(seed)
    return ControlNetModel.from_unet(
        unet,
        conditioning_channels=conditioning_channels,
        conditioning_embedding_out_channels=tuple(embedding_channels),
    )


def mask_image(masks: torch.Tensor, channels: int) -> torch.Tensor:
    """Conditioning image (B, channels, H, W) in {0, 1} from masks float (B, 1, H, W)."""
    return masks.expand(-1, channels, -1, -1).contiguous()


def controlnet_loss(
    controlnet,
    unet,
    text_encoder,
    tokenizer,
    scheduler,
    latents: torch.Tensor,
    masks: torch.Tensor,
    prompts: list[str],
    generator: torch.Generator,
    foreground_weight: float = 0.0,
    noise_offset: float = 0.0,
) -> torch.Tensor:
    """Epsilon MSE of the frozen UNet steered by the ControlNet's residuals (weighted towards the
    object as in ``model.training.foreground_mse``; ``noise_offset`` as in ``tasks.base.unet.noised``,
    the UNet's own, so the ControlNet learns on the noise the UNet was trained on)."""
    noisy, noise, t = noised(scheduler, latents, generator, noise_offset)
    noisy = noisy.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        states = text_encoder(tokenize(tokenizer, prompts).to(latents.device)).last_hidden_state
    down, mid = controlnet(
        noisy, t, states, controlnet_cond=mask_image(masks, controlnet.config.conditioning_channels), return_dict=False
    )
    pred = unet(noisy, t, states, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
    return foreground_mse(pred, noise, masks, foreground_weight)
