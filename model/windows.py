"""Frames 2..n, one motion window at a time (Alg. 1's loop, and the long videos of Fig. 4).

A mask sequence longer than the motion window is generated chunk by chunk: chunk k+1's first frame
is chunk k's last frame, decoded and encoded again (``E(D(z))``) as frame 1 was. Only one chunk's
latents live at a time, so memory is flat. ``denoise_window`` is the sampling loop of one window:
frame 1 stays clean at every step, frames 2..n are denoised by the video UNet with DDIM and
classifier-free guidance (and, optionally, mask guidance and AdaIN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from model.arrays import to_uint8
from model.regions import adain_regions
from model.sampler_settings import SamplerSettings
from model.sampling import adain as adain_match
from model.sampling import lowfreq_from_first, motion_windows, randn, regional_adain
from model.sampling import shared_noise as mix_shared_noise


@dataclass
class VideoText:
    """The text of frames 2..n: ``text`` ``(2B, L, D)`` [negative; positive] when guided, else ``(B, L, D)``;
    per-object ``object_text`` ``(2B | B, K, L, D)`` and ``object_masks`` ``(B, K, F, H, W)``, or None."""

    text: torch.Tensor
    object_text: torch.Tensor | None = None
    object_masks: torch.Tensor | None = None


@dataclass
class StepRows:
    """One kind of step's UNet call: its keyword arguments, and which guidance its rows serve."""

    kwargs: dict
    guided: bool
    mask_guided: bool

    @property
    def copies(self) -> int:
        """The window's latents, how many times over: B rows each."""
        return (2 if self.guided else 1) + (1 if self.mask_guided else 0)


def unet_rows(
    video_text: VideoText,
    masks: torch.Tensor | None,
    *,
    has_negatives: bool,
    guided: bool,
    mask_guided: bool,
    device,
    dtype,
) -> StepRows:
    """The video UNet's keyword arguments for all the passes of a step as one batch.

    Rows, B each: the negative prompt with the masks and the positive prompt with them (classifier-free
    guidance, ``guided``; the positive rows alone otherwise), then, for mask guidance (``mask_guided``),
    the positive prompt without the masks. ``has_negatives``: ``video_text`` holds [negative; positive]
    rows. The masks cover the leading rows only (``VideoUNet.forward``), so each row is computed as in a
    call of its own. Per-object prompts: routed on the positive rows, not on the negative ones (their
    object masks zero).
    """
    text = video_text.text
    positive = text.chunk(2)[1] if has_negatives else text
    text = text if guided else positive
    kwargs = dict(encoder_hidden_states=torch.cat([text, positive]) if mask_guided else text)
    if masks is not None:
        masks = masks.to(device, dtype)
        kwargs["masks"] = torch.cat([masks, masks]) if guided else masks
    if video_text.object_text is not None:
        object_text, object_masks = video_text.object_text, video_text.object_masks.to(device, dtype)
        positive_text = object_text.chunk(2)[1] if has_negatives else object_text
        object_text = object_text if guided else positive_text
        rows = ([torch.zeros_like(object_masks)] if guided else []) + [object_masks] * (2 if mask_guided else 1)
        kwargs["object_text"] = torch.cat([object_text, positive_text]) if mask_guided else object_text
        kwargs["object_masks"] = torch.cat(rows)
    return StepRows(kwargs, guided, mask_guided)


@torch.no_grad()
def denoise_window(
    pipe,
    first_latent: torch.Tensor,
    noise: torch.Tensor,
    *,
    video_text: VideoText,
    masks: torch.Tensor | None,
    guidance_scale: float,
    settings: SamplerSettings,
    on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Denoise one motion window whose frame 1 is known.

    Args:
        pipe: the ``MaskVideoPipeline`` (its video UNet, scheduler, device and dtype).
        first_latent: clean ``E(v_1)`` ``(B, C, h, w)``; kept as frame 1 at every step.
        noise: initial noise of frames 2..n ``(B, C, F-1, h, w)`` (shared noise already mixed in).
        video_text: the window's text (its object masks cut to the window's frames).
        masks: ``(B, F, Hm, Wm)`` in [0, 1], or None.
        guidance_scale: classifier-free guidance of frames 2..n (> 1 when ``video_text.text`` holds
            the negative rows).
        settings: ``num_inference_steps``; ``adain`` matches frames 2..n's per-channel latent
            statistics to frame 1's (LAMP) on the steps from ``adain_start * num_inference_steps`` on,
            object by object with ``adain_per_object`` (``regional_adain``); ``mask_guidance_scale``
            ``w`` > 0 adds ``w * (eps(text, masks) - eps(text, no masks))``, guidance along the
            masks' own effect (B more rows in the step's one UNet call); ``video_guidance_interval``
            and ``mask_guidance_interval``: the steps each guidance applies on (``guided_at``).
        on_step: called after every step with ``(step, timestep, latents)``, the window's latents
            ``(B, C, F, h, w)``.

    Returns:
        The denoised window latents ``(B, C, F, h, w)``; frame 1 is ``first_latent``.
    """
    guided = guidance_scale > 1.0
    mask_guided = settings.mask_guidance_scale > 0 and masks is not None
    rows = {}  # each kind of step's UNet call, (guided, mask-guided) -> StepRows

    def step_rows(step: int) -> StepRows:
        kind = (
            guided and settings.guided_at(step, settings.video_guidance_interval),
            mask_guided and settings.guided_at(step, settings.mask_guidance_interval),
        )
        if kind not in rows:
            rows[kind] = unet_rows(
                video_text,
                masks,
                has_negatives=guided,
                guided=kind[0],
                mask_guided=kind[1],
                device=pipe.device,
                dtype=pipe.dtype,
            )
        return rows[kind]

    regions = None
    if settings.adain and settings.adain_per_object and video_text.object_masks is not None:
        regions = adain_regions(video_text.object_masks.to(pipe.device, pipe.dtype), first_latent.shape[-2:])
    first = first_latent[:, :, None]
    steps = settings.num_inference_steps
    pipe.scheduler.set_timesteps(steps, device=pipe.device)
    rest = noise * pipe.scheduler.init_noise_sigma
    for i, t in enumerate(pipe.scheduler.timesteps):
        # frame 1 re-enters clean at every step; only frames 2..n are scaled and stepped
        latents = torch.cat([first, pipe.scheduler.scale_model_input(rest, t)], dim=2)
        # every pass of the step in one call: [negative; positive] with the masks, then positive without
        call = step_rows(i)
        preds = pipe.video_unet(torch.cat([latents] * call.copies), t, **call.kwargs).chunk(call.copies)
        cond = preds[1] if call.guided else preds[0]
        pred = preds[0] + guidance_scale * (cond - preds[0]) if call.guided else cond
        if call.mask_guided:
            pred = pred + settings.mask_guidance_scale * (cond - preds[-1])
        rest = pipe.scheduler.step(pred[:, :, 1:], t, rest).prev_sample
        if settings.adain and i >= settings.adain_start * steps:
            if regions is None:
                rest = adain_match(rest, first_latent)
            else:
                rest = regional_adain(rest, first_latent, regions[:, :, 1:], regions[:, :, 0])
        if on_step is not None:
            on_step(i, t, torch.cat([first, rest], dim=2))
    return torch.cat([first, rest], dim=2)


@torch.no_grad()
def sample_windows(
    pipe,
    first_latent: torch.Tensor,
    first_noise: torch.Tensor | None,
    masks: torch.Tensor,
    *,
    video_text: VideoText,
    guidance_scale: float,
    settings: SamplerSettings,
    image_size: tuple[int, int],
    generator: torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
    output_type: str = "uint8",
) -> np.ndarray | torch.Tensor:
    """Frames 2..n of a video whose frame 1 is ``first_latent`` ``(B, C, h, w)``, window by window.

    ``first_noise`` is frame 1's initial noise (the ``lamp`` variant of shared noise); ``masks``
    ``(B, F, H, W)``; ``image_size`` ``(H, W)`` of the output. Returns uint8 frames ``(B, F, H, W, 3)``
    (frame 1 included, decoded from its latent) or, with ``output_type="latent"``, the latents
    ``(B, C, F, h, w)``.
    """
    batch, num_frames = masks.shape[:2]
    latent_size = first_latent.shape[-2:]
    windows = motion_windows(num_frames, settings.window or num_frames)
    video_first_latent = first_latent
    alpha_bar = pipe.first_alpha_bar(settings.num_inference_steps) if settings.lowfreq_grid else None
    object_masks = video_text.object_masks
    frames, latents_out = [], []
    for k, frame_ids in enumerate(windows):
        noise_shape = (batch, first_latent.shape[1], len(frame_ids) - 1, *latent_size)
        fresh = randn(noise_shape, generator, pipe.device, pipe.dtype)
        noise = mix_shared_noise(fresh, first_latent, settings.shared_noise, settings.alpha, first_noise)
        if settings.lowfreq_grid:
            noise = lowfreq_from_first(noise, video_first_latent, fresh[:, :, 0], alpha_bar, settings.lowfreq_grid)
        window_objects = None if object_masks is None else object_masks[:, :, frame_ids.start : frame_ids.stop]
        on_step = None
        if callback is not None:

            def on_step(step, t, latents, chunk=k):
                callback(
                    dict(
                        chunk=chunk,
                        num_chunks=len(windows),
                        step=step,
                        num_steps=settings.num_inference_steps,
                        timestep=t,
                        latents=latents,
                    )
                )

        latents = denoise_window(
            pipe,
            first_latent,
            noise,
            video_text=VideoText(video_text.text, video_text.object_text, window_objects),
            masks=masks[:, frame_ids.start : frame_ids.stop] if settings.use_masks else None,
            guidance_scale=guidance_scale,
            settings=settings,
            on_step=on_step,
        )
        new = latents if k == 0 else latents[:, :, 1:]  # chunk k+1's frame 1 is chunk k's last frame
        # each frame's object masks (B * F_new, K, H, W) when decoding object by object
        decode_masks = None
        if window_objects is not None and settings.decode_per_object:
            decode_masks = window_objects[:, :, -new.shape[2] :].transpose(1, 2).flatten(0, 1)
        if output_type == "latent":
            latents_out.append(new)
        else:
            flat = new.permute(0, 2, 1, 3, 4).reshape(-1, new.shape[1], *latent_size)
            images = pipe.decode_objects(flat, decode_masks)
            frames.append(to_uint8(images).reshape(batch, new.shape[2], *image_size, 3))
        # The next chunk starts from this chunk's last frame as an image, E(D(z)), like frame 1
        # and every training clip's first frame: a denoised latent lies off the encoder's
        # outputs, and later chunks drifted in colour from it (measured in the README).
        last_masks = None if decode_masks is None else decode_masks.view(batch, -1, *decode_masks.shape[1:])[:, -1]
        first_latent = pipe.encode_images(pipe.decode_objects(latents[:, :, -1], last_masks))
        del latents, noise, fresh
    return torch.cat(latents_out, dim=2) if output_type == "latent" else np.concatenate(frames, axis=1)
