"""Pieces of the sampler that are pure tensor arithmetic: shared noise (eq. 8), AdaIN, motion windows."""

from __future__ import annotations

import torch

SHARED_NOISE_MODES = ("paper", "lamp", "off")


def randn(shape, generator: torch.Generator | None, device, dtype) -> torch.Tensor:
    """Standard normal drawn on the generator's device, then moved: same seed, same numbers anywhere."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def shared_noise(
    noise: torch.Tensor,
    first_latent: torch.Tensor,
    mode: str = "paper",
    alpha: float = 0.2,
    first_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mix a shared component into the initial noise of frames 2..n (eq. 8, Alg. 1 lines 2-5).

    ``eps_i = alpha * eps_s + (1 - alpha) * eps_i`` with
        ``paper``: ``eps_s = E(v_1)``, the first frame's clean latent;
        ``lamp``: ``eps_s`` = frame 1's noise (LAMP's base-noise sharing);
        ``off``: no mixing (same as ``alpha = 0``).

    Args:
        noise: independent noise of frames 2..n, ``(B, C, F-1, H, W)``.
        first_latent: ``E(v_1)``, ``(B, C, H, W)``.
        mode: one of ``SHARED_NOISE_MODES``.
        alpha: mixing weight in [0, 1]; the paper uses 0.2.
        first_noise: frame 1's noise ``(B, C, H, W)``; required for ``lamp``.

    Returns:
        The mixed noise, same shape as ``noise``.
    """
    if mode not in SHARED_NOISE_MODES:
        raise ValueError(f"shared_noise mode must be one of {SHARED_NOISE_MODES}, got {mode!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if mode == "off" or alpha == 0.0:
        return noise
    if mode == "paper":
        shared = first_latent
    else:
        if first_noise is None:
            raise ValueError("shared_noise mode 'lamp' needs first_noise")
        shared = first_noise
    return alpha * shared.unsqueeze(2) + (1.0 - alpha) * noise


def adain(latents: torch.Tensor, reference: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Match each frame's per-channel mean and std (over H, W) to the reference frame's (AdaIN).

    Args:
        latents: ``(B, C, F, H, W)``.
        reference: ``(B, C, H, W)``, e.g. frame 1's latent.
    """
    dims = (-2, -1)
    mean, std = latents.mean(dims, keepdim=True), latents.std(dims, keepdim=True)
    ref = reference.unsqueeze(2)
    ref_mean, ref_std = ref.mean(dims, keepdim=True), ref.std(dims, keepdim=True)
    return (latents - mean) / (std + eps) * ref_std + ref_mean


def motion_windows(num_frames: int, window: int) -> list[range]:
    """Frame indices of each chunk of an autoregressive video.

    Consecutive chunks share one frame: chunk k+1 starts with the last frame of chunk k (its
    conditioning first frame), so ``num_frames`` masks give ``num_frames`` frames. The last chunk
    may be shorter than ``window``.

    >>> [list(r) for r in motion_windows(7, 3)]
    [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    """
    if window < 2:
        raise ValueError("a motion window needs at least 2 frames (the first frame and one more)")
    if num_frames < 2:
        raise ValueError("a video needs at least 2 frames")
    windows, start = [], 0
    while start < num_frames - 1:
        end = min(start + window, num_frames)
        windows.append(range(start, end))
        start = end - 1
    return windows
