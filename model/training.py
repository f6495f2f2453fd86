"""The training objective of eq. 2: frame 1 stays clean, frames 2..n are noised, loss on 2..n."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def noise_video(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """Forward-diffuse frames 2..n to ``timesteps`` and keep frame 1 clean.

    Args:
        scheduler: a diffusers scheduler with ``add_noise`` (DDPM/DDIM).
        latents: clean latents ``(B, C, F, H, W)``, already multiplied by the VAE scaling factor.
        noise: ``(B, C, F, H, W)`` standard normal.
        timesteps: ``(B,)`` integer timesteps, one per video.
    """
    noisy = scheduler.add_noise(latents, noise, timesteps)  # broadcasts (B,) over (C, F, H, W)
    noisy[:, :, 0] = latents[:, :, 0]
    return noisy


def add_offset_noise(noise: torch.Tensor, offset: float, generator: torch.Generator | None) -> torch.Tensor:
    """Offset noise (Guttenberg, 2023): ``noise`` plus ``offset`` x one normal draw per everything
    but the two spatial dims (per image and channel; per video, channel and frame), shared by every
    latent cell, so the noise hides a frame's mean colour. Drawn on ``generator``'s device; 0 draws
    nothing (a seed's other draws stay as they were)."""
    if offset <= 0:
        return noise
    gen_device = generator.device if generator is not None else noise.device
    draw = torch.randn(*noise.shape[:-2], 1, 1, generator=generator, device=gen_device, dtype=noise.dtype)
    return noise + offset * draw.to(noise.device)


def foreground_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    masks: torch.Tensor | None,
    foreground_weight: float,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE with each latent cell weighted 1 + ``foreground_weight`` x (the fraction of it the object
    covers), normalised by the mean weight so the loss keeps its scale. Why: a toy object covers 2-9%
    of the frame, so with a plain MSE its colour, shape and place are a few percent of the signal.

    ``pred`` and ``target`` are ``(B, C, h, w)`` with ``masks`` ``(B, 1, H, W)``, or videos
    ``(B, C, F, h, w)`` with ``masks`` ``(B, F, H, W)``; masks are area-pooled to ``(h, w)``.
    0 (or no masks) is SD's plain MSE. ``sample_weight`` (B,) scales each sample's term (``min_snr_weight``).
    """
    if sample_weight is None and (masks is None or foreground_weight == 0):
        return F.mse_loss(pred, target)
    squared = (pred - target) ** 2
    if sample_weight is not None:
        squared = squared * sample_weight.view(-1, *[1] * (pred.ndim - 1))
    if masks is None or foreground_weight == 0:
        return squared.mean()
    cover = F.adaptive_avg_pool2d(masks, pred.shape[-2:])  # in [0, 1]; (B, 1, h, w) or (B, F, h, w)
    if pred.ndim == 5:
        cover = cover.unsqueeze(1)  # (B, 1, F, h, w): one weight for every channel of a cell
    weight = 1 + foreground_weight * cover
    return (squared * weight).mean() / weight.mean()


def min_snr_weight(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023) for epsilon prediction: min(SNR(t), gamma) / SNR(t),
    with SNR = alpha_bar / (1 - alpha_bar). 1 on the noisy steps (SNR <= gamma), less on the nearly clean
    ones, whose easy denoising otherwise takes most of the gradient: the noisy steps are where a
    sample's layout and the object's outline are decided."""
    alpha_bar = alphas_cumprod.to(t.device)[t]
    snr = alpha_bar / (1 - alpha_bar)
    return snr.clamp(max=gamma) / snr


def first_frame_loss(
    video_unet,
    scheduler,
    latents: torch.Tensor,
    text_emb: torch.Tensor,
    masks: torch.Tensor | None,
    generator: torch.Generator | None = None,
    timesteps: torch.Tensor | None = None,
    foreground_weight: float = 0.0,
    object_text: torch.Tensor | None = None,
    object_masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 2: MSE between the true and predicted noise of frames 2..n.

    Args:
        video_unet: a ``VideoUNet``.
        scheduler: the training noise scheduler (``DDPMScheduler`` as in SD); its
            ``prediction_type`` picks the target (``epsilon`` or ``v_prediction``).
        latents: clean video latents ``(B, C, F, H, W)`` (VAE latents times ``scaling_factor``), F >= 2.
        text_emb: text embeddings ``(B, L, D)``.
        masks: ``(B, F, Hm, Wm)`` float in {0, 1}, or None (the "w/o mask" ablation).
        generator: seeds the noise and the timesteps.
        timesteps: ``(B,)`` to fix the timesteps instead of sampling them uniformly.
        foreground_weight: ``foreground_mse``'s extra weight on the object's latent cells of
            frames 2..n (by ``masks``; plain MSE without masks); 0 = the paper's plain MSE.
        object_text, object_masks: per-object prompts ``(B, K, L, D)`` and their masks
            ``(B, K, F, Hm, Wm)``, passed to the video UNet (regional text), or None.

    Returns:
        A scalar loss (float32), differentiable w.r.t. the trainable parameters.
    """
    b, _, f = latents.shape[:3]
    if f < 2:
        raise ValueError("first-frame training needs at least 2 frames")
    device = latents.device
    # draw on the generator's device (CPU by default) so a seed gives the same numbers on any device
    gen_device = generator.device if generator is not None else device
    noise = torch.randn(latents.shape, generator=generator, device=gen_device, dtype=latents.dtype).to(device)
    if timesteps is None:
        timesteps = torch.randint(
            0, scheduler.config.num_train_timesteps, (b,), generator=generator, device=gen_device
        )
    timesteps = timesteps.to(device).long()

    noisy = noise_video(scheduler, latents, noise, timesteps)
    prediction = video_unet(noisy, timesteps, text_emb, masks, object_text, object_masks)

    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"unsupported prediction_type {prediction_type!r}")
    return foreground_mse(
        prediction[:, :, 1:].float(),
        target[:, :, 1:].float(),
        None if masks is None else masks[:, 1:].float(),
        foreground_weight,
    )
