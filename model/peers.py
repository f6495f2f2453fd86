"""The paper's training-free peers (Table I) on the same base models: Text2Video-Zero and ControlVideo.

Neither trains anything: both run the pretrained 2-D UNet over all frames at once (the frames are the
batch) and make the frames agree by letting self-attention look across frames.

- **Text2Video-Zero, text only** (Khachatryan et al. 2023): diffusers' own ``TextToVideoZeroPipeline``
  (``text2video_zero``): the first latent is denoised to step ``t1``, copied to every frame, each copy
  translated by a global motion field (frame k moved k times ``motion_field_strength``, in pixels of a
  512-pixel frame), noised back to ``t0``, then all frames are denoised with cross-frame attention to
  frame 1. It never sees a mask; ``motion_field_from_masks`` gives it the masks' mean motion as its one
  motion setting, so it is asked for the right direction and speed.
- **Text2Video-Zero with a ControlNet** (its ControlNet recipe): one initial latent shared by every
  frame, cross-frame attention to frame 1 in the UNet and the ControlNet (diffusers'
  ``CrossFrameAttnProcessor2_0``), the ControlNet fed each frame's mask (``sample_with_controlnet``).
- **ControlVideo** (Zhang et al. 2023): the ControlNet fed each frame's mask, *fully* cross-frame
  attention (every frame's queries see the keys and values of all frames: ``FullFrameAttnProcessor``),
  and the interleaved-frame smoother at two timesteps: at the first, every odd frame's predicted clean
  latent is replaced by the mean of its neighbours', at the second every even one's. ControlVideo
  interpolates decoded frames with a learned interpolator (RIFE) whose weights are not available here;
  the stand-in interpolates the predicted clean *latents* linearly (``smooth_interleaved``). Sequences
  are generated in one pass over all their frames (no hierarchical sampler: the compared ones are 16
  frames, which one pass holds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# diffusers' own Text2Video-Zero: its pipeline and its cross-frame attention (frame 1's keys and values)
from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import (
    CrossFrameAttnProcessor2_0,
    TextToVideoZeroPipeline,
)

from model.attention_ops import check_plain_attention, merge_heads, project_out, split_heads
from model.parts_pipeline import pipeline_from_parts
from model.sampling import randn

T2V_ZERO_PAPER_STEPS = (44, 47, 50)  # t0, t1 of the paper's 50 DDIM steps
CONTROLVIDEO_SMOOTHER_STEPS = (19, 20, 50)  # smoothed steps of ControlVideo's 50


class FullFrameAttnProcessor:
    """Self-attention across every frame of a video (ControlVideo's fully cross-frame attention).

    ``hidden_states`` is ``(V*F, N, C)`` with each video's F frames contiguous; the queries of every
    frame attend to the ``F*N`` tokens of all frames of their video. Cross-attention (text) is left as
    it is. ``num_videos``: V, the videos in the batch (2 with classifier-free guidance).
    """

    def __init__(self, num_videos: int):
        self.num_videos = num_videos

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        check_plain_attention(attn, hidden_states)
        cross = encoder_hidden_states is not None
        context = encoder_hidden_states if cross else hidden_states
        if cross and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        if not cross:
            bf, n, inner = key.shape
            if bf % self.num_videos:
                raise ValueError(f"batch {bf} is not a multiple of {self.num_videos} videos")
            f = bf // self.num_videos
            # every frame's keys = all F frames of its video, (V*F, F*N, inner)
            key = key.reshape(self.num_videos, 1, f * n, inner).expand(-1, f, -1, -1).reshape(bf, f * n, inner)
            value = value.reshape(self.num_videos, 1, f * n, inner).expand(-1, f, -1, -1).reshape(bf, f * n, inner)
        query, key, value = (split_heads(x, attn.heads) for x in (query, key, value))
        mask = None
        if attention_mask is not None and cross:
            mask = attn.prepare_attention_mask(attention_mask, key.shape[2], query.shape[0])
            mask = mask.view(query.shape[0], attn.heads, -1, mask.shape[-1])
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0)
        return project_out(attn, merge_heads(out).to(query.dtype), hidden_states)


def set_cross_frame_attention(module, kind: str, num_videos: int) -> None:
    """``first_frame`` (Text2Video-Zero) or ``all_frames`` (ControlVideo) on every attention of a UNet or
    ControlNet."""
    if kind == "first_frame":
        module.set_attn_processor(CrossFrameAttnProcessor2_0(batch_size=num_videos))
    elif kind == "all_frames":
        module.set_attn_processor(FullFrameAttnProcessor(num_videos))
    else:
        raise ValueError(f"cross-frame attention must be first_frame or all_frames, got {kind!r}")


def smooth_interleaved(x0: torch.Tensor, parity: int) -> torch.Tensor:
    """ControlVideo's interleaved-frame smoother on clean latents ``(F, C, h, w)``: every frame ``i`` with
    ``i % 2 == parity`` and a neighbour on each side becomes the mean of frames ``i - 1`` and ``i + 1``;
    the others are kept. (The stand-in for its learned interpolator: module docstring.)"""
    out = x0.clone()
    inner = torch.arange(1, x0.shape[0] - 1)
    chosen = inner[inner % 2 == parity]
    out[chosen] = 0.5 * (x0[chosen - 1] + x0[chosen + 1])
    return out


def scaled_steps(paper: tuple[int, ...], num_inference_steps: int) -> tuple[int, ...]:
    """Step indices a method names for its paper's step count, at ``num_inference_steps`` steps."""
    *steps, total = paper
    return tuple(min(num_inference_steps - 1, s * num_inference_steps // total) for s in steps)


@torch.no_grad()
def sample_with_controlnet(
    unet,
    controlnet,
    scheduler,
    text_emb: torch.Tensor,
    conditions: torch.Tensor,
    latent_shape: tuple[int, int, int],
    num_inference_steps: int,
    guidance_scale: float,
    generator: torch.Generator | None = None,
    controlnet_conditioning_scale: float = 1.0,
    smoother_steps: Sequence[int] = (),
    callback: Callable[[dict], None] | None = None,
) -> torch.Tensor:
    """All frames of one video denoised together, each under its own ControlNet condition.

    Args:
        unet, controlnet: with their cross-frame attention set (``set_cross_frame_attention``).
        scheduler: a DDIM scheduler (its step returns the predicted clean latents the smoother needs).
        text_emb: ``(2, L, D)`` [negative; prompt] with guidance (``guidance_scale > 1``), else ``(1, L, D)``.
        conditions: the ControlNet's input per frame ``(F, C, H, W)``.
        latent_shape: ``(C, h, w)``; one initial latent of this shape is shared by every frame.
        smoother_steps: step indices at which ``smooth_interleaved`` runs (odd frames first, then even).

    Returns:
        The clean latents ``(F, C, h, w)``.
    """
    device, dtype = unet.device, unet.dtype
    num_frames = conditions.shape[0]
    guided = guidance_scale > 1.0
    emb = text_emb.to(device, dtype).repeat_interleave(num_frames, dim=0)  # [negative x F; prompt x F]
    cond = conditions.to(device, dtype)
    cond = torch.cat([cond, cond]) if guided else cond
    scheduler.set_timesteps(num_inference_steps, device=device)
    latents = randn((1, *latent_shape), generator, device, dtype).expand(num_frames, -1, -1, -1)
    latents = latents * scheduler.init_noise_sigma
    stride = scheduler.config.num_train_timesteps // num_inference_steps
    for i, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(torch.cat([latents, latents]) if guided else latents, t)
        down, mid = controlnet(
            model_input,
            t,
            emb,
            controlnet_cond=cond,
            conditioning_scale=controlnet_conditioning_scale,
            return_dict=False,
        )
        eps = unet(model_input, t, emb, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
        if guided:
            uncond, text = eps.chunk(2)
            eps = uncond + guidance_scale * (text - uncond)
        out = scheduler.step(eps, t, latents)
        latents = out.prev_sample
        if i in smoother_steps:
            # DDIM (eta 0): x_{t-1} = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps; swap x0 for the smoothed one
            x0 = out.pred_original_sample
            smoothed = smooth_interleaved(x0, parity=1 if i == smoother_steps[0] else 0)
            prev_t = int(t) - stride
            a_prev = scheduler.alphas_cumprod[prev_t] if prev_t >= 0 else scheduler.final_alpha_cumprod
            latents = latents + a_prev.to(device, dtype).sqrt() * (smoothed - x0)
        if callback is not None:
            callback(dict(step=i, num_steps=num_inference_steps, timestep=t, latents=latents))
    return latents


def motion_field_from_masks(masks: np.ndarray) -> tuple[float, float]:
    """Text2Video-Zero's ``(motion_field_strength_x, motion_field_strength_y)`` that translates the scene
    by the masks' mean centroid motion per frame. Its field is in pixels of a 512-pixel frame and moves
    content by minus the field (it samples at ``x + flow``), hence the sign and the scale."""
    ys, xs = [], []
    for m in masks:
        yy, xx = np.nonzero(m)
        ys.append(yy.mean())
        xs.append(xx.mean())
    steps = len(masks) - 1
    h, w = masks.shape[1:]
    vx, vy = (xs[-1] - xs[0]) / steps, (ys[-1] - ys[0]) / steps
    return -vx * 512.0 / w, -vy * 512.0 / h


def text2video_zero(vae, text_encoder, tokenizer, unet, scheduler) -> TextToVideoZeroPipeline:
    """diffusers' Text2Video-Zero pipeline over a base's parts (no safety checker). It sets its own
    cross-frame attention on ``unet``: give it a UNet of its own."""
    return pipeline_from_parts(TextToVideoZeroPipeline, vae, text_encoder, tokenizer, unet, scheduler)
