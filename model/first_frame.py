"""Frame 1 (eq. 3): ControlNet(x_1, c_p, m_1) over the base 2-D UNet, or plain text-to-image (the
"w/o ControlNet" ablation); with per-object prompts, the scene and each object drawn from the same
noise and composed in pixels (``model.regions.compose_regions``)."""

from __future__ import annotations

import torch

from model.attention import ObjectPrompts
from model.regions import compose_regions
from model.sampling import randn

FIRST_FRAME_SOURCES = ("controlnet", "text")


@torch.no_grad()
def make_first_frame(
    pipe,
    text_emb: torch.Tensor,
    first_masks: torch.Tensor | None,
    latent_size: tuple[int, int],
    *,
    num_inference_steps: int,
    guidance_scale: float,
    generator: torch.Generator | None = None,
    source: str = "controlnet",
    controlnet_conditioning_scale: float = 1.0,
    objects: ObjectPrompts | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame 1 from noise with the base 2-D UNet (eq. 3).

    Args:
        pipe: the ``MaskVideoPipeline`` (its base UNet, ControlNet, scheduler and VAE).
        text_emb: from ``encode_prompt``, ``(2B, L, D)`` with guidance else ``(B, L, D)``.
        first_masks: the first mask of each video ``(B, Hm, Wm)`` in [0, 1] (``controlnet`` only).
        latent_size: ``(h, w)`` of the latents.
        source: ``controlnet`` (ControlNet(x_1, c_p, m_1)) or ``text`` (plain text-to-image,
            the "w/o ControlNet" ablation).
        controlnet_conditioning_scale: multiplies the ControlNet's residuals before they enter
            the UNet (diffusers' knob of the same name); > 1 strengthens a weak ControlNet.
        objects: per-object prompts, one row per video: text ``(B, K, L, D)``, first masks
            ``(B, K, Hm, Wm)``. The scene's prompt (on ``first_masks``, every object's) and each
            object's prompt (on its own first mask) are drawn over the whole frame from the same
            noise (one batch, K + 1 frames per video), and frame 1 takes object k's pixels inside
            its mask, the scene's elsewhere (``compose_regions``). Measured against composing noise
            predictions, routing the cross-attention and every branch on all the masks:
            docs/results.md#per-object-prompts.

    Returns:
        ``(image, noise)``: frame 1 as float ``(B, 3, H, W)`` in [-1, 1], and the initial noise
        ``x_1`` ``(B, C, h, w)`` it was denoised from (the shared noise of the ``lamp`` variant).
    """
    if source not in FIRST_FRAME_SOURCES:
        raise ValueError(f"first-frame source must be one of {FIRST_FRAME_SOURCES}, got {source!r}")
    if pipe.base_unet is None:
        raise ValueError("making frame 1 needs base_unet (or pass first_frame)")
    if source == "controlnet" and pipe.controlnet is None:
        raise ValueError(
            "no controlnet: pass first_frame, or first_frame_source='text' for the w/o-ControlNet ablation"
        )
    if source == "controlnet" and first_masks is None:
        raise ValueError("the ControlNet first frame is conditioned on the first mask: pass first_masks")
    guided = guidance_scale > 1.0
    batch = text_emb.shape[0] // (2 if guided else 1)
    shape = (batch, pipe.base_unet.config.in_channels, *latent_size)
    noise = randn(shape, generator, pipe.device, pipe.dtype)
    cond = pipe.controlnet_image(first_masks, latent_size) if source == "controlnet" else None
    sample = dict(
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        source=source,
        conditioning_scale=controlnet_conditioning_scale,
    )
    if objects is None:
        return pipe.decode_images(denoise_first(pipe, noise, text_emb, cond, **sample)), noise
    # The scene and each object drawn as K + 1 frames from the same noise and first masks (one
    # batch), then composed in pixels. Composing the latents (noise predictions or denoised
    # latents) failed: the toy VAE decodes an object's colour from the whole latent, and a pink
    # star's latents beside a red square's decoded red (docs/results.md#per-object-prompts).
    k = objects.text.shape[1]
    prompts = torch.cat([text_emb[-batch:], objects.text.transpose(0, 1).reshape(-1, *objects.text.shape[2:])])
    text_all = torch.cat([text_emb[:batch].repeat(k + 1, 1, 1), prompts]) if guided else prompts
    if cond is not None:
        # each object's branch sees its own mask alone, as the ControlNet learnt (one object per
        # frame); on every object's mask it drew object k smaller (second set: IoU 0.694 -> 0.734)
        own = objects.masks.transpose(0, 1).reshape(-1, *objects.masks.shape[2:])
        cond = torch.cat([cond, pipe.controlnet_image(own, latent_size)])
    latents = denoise_first(pipe, noise.repeat(k + 1, 1, 1, 1), text_all, cond, **sample)
    images = pipe.decode_images(latents)
    images = images.view(k + 1, batch, *images.shape[1:])
    return compose_regions(images, objects.masks.to(images.device, images.dtype)), noise


def denoise_first(
    pipe,
    noise: torch.Tensor,
    text_emb: torch.Tensor,
    cond: torch.Tensor | None,
    *,
    num_inference_steps: int,
    guidance_scale: float,
    source: str,
    conditioning_scale: float,
) -> torch.Tensor:
    """The sampling loop of ``make_first_frame``: frame 1's latents ``(B, C, h, w)`` from ``noise``."""
    guided = guidance_scale > 1.0
    branches = text_emb.shape[0] // noise.shape[0]  # the rows of text_emb, B at a time
    residuals = {}
    cond = None if cond is None else torch.cat([cond] * branches)
    pipe.scheduler.set_timesteps(num_inference_steps, device=pipe.device)
    latents = noise * pipe.scheduler.init_noise_sigma
    for t in pipe.scheduler.timesteps:
        model_input = torch.cat([latents] * branches)
        model_input = pipe.scheduler.scale_model_input(model_input, t)
        if source == "controlnet":
            down, mid = pipe.controlnet(
                model_input,
                t,
                text_emb,
                controlnet_cond=cond,
                conditioning_scale=conditioning_scale,
                return_dict=False,
            )
            residuals = dict(down_block_additional_residuals=down, mid_block_additional_residual=mid)
        pred = pipe.base_unet(model_input, t, text_emb, return_dict=False, **residuals)[0]
        if guided:
            uncond, cond_pred = pred.chunk(2)
            pred = uncond + guidance_scale * (cond_pred - uncond)
        latents = pipe.scheduler.step(pred, t, latents).prev_sample
    return latents
