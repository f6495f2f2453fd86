"""Pieces of the sampler that are pure tensor arithmetic: shared noise (eq. 8), low-frequency sharing,
AdaIN, motion windows."""

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


def block_mean(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Each of ``grid x grid`` equal blocks of the last two dims replaced by its mean.

    A projection onto the lowest spatial frequencies (``block_mean(block_mean(x)) == block_mean(x)``);
    ``grid = 1`` is the per-channel mean of the whole frame.
    """
    h, w = x.shape[-2:]
    if grid < 1 or h % grid or w % grid:
        raise ValueError(f"lowfreq grid {grid} must divide the latent size {h}x{w}")
    lead = x.shape[:-2]
    blocks = x.reshape(*lead, grid, h // grid, grid, w // grid)
    return blocks.mean(dim=(-3, -1), keepdim=True).expand_as(blocks).reshape(x.shape)


def lowfreq_from_first(
    noise: torch.Tensor,
    first_latent: torch.Tensor,
    reference_noise: torch.Tensor,
    alpha_bar: float | torch.Tensor,
    grid: int = 1,
) -> torch.Tensor:
    """Give frames 2..n the low frequencies of frame 1 as it would look at the first sampling step.

    SD-style schedules leave some signal at the last timestep (``sqrt(alpha_bar_T) > 0``), so a
    model learns to read a frame's overall colour from the low frequencies of ``x_T``; pure noise
    there makes each frame pick its own ground colour. Here every frame's block means become those
    of ``x_T(v_1) = sqrt(alpha_bar) E(v_1) + sqrt(1 - alpha_bar) eps_ref`` (one shared ``eps_ref``),
    what a video whose background stays frame 1's has at ``T`` in training; the rest of the noise
    (everything but the block means) is kept. The same idea as FreeInit's low-frequency noise
    re-initialisation, with frame 1 as the reference.

    Args:
        noise: initial noise of frames 2..n ``(B, C, F-1, H, W)`` (after eq. 8, if used).
        first_latent: ``E(v_1)`` ``(B, C, H, W)``.
        reference_noise: ``eps_ref`` ``(B, C, H, W)``.
        alpha_bar: the scheduler's cumulative alpha at the first sampling timestep.
        grid: ``grid x grid`` blocks; 1 = per-channel means only.
    """
    alpha_bar = torch.as_tensor(alpha_bar, dtype=noise.dtype, device=noise.device)
    reference = alpha_bar.sqrt() * first_latent + (1 - alpha_bar).sqrt() * reference_noise
    return noise - block_mean(noise, grid) + block_mean(reference, grid).unsqueeze(2)


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


def regional_adain(
    latents: torch.Tensor,
    reference: torch.Tensor,
    regions: torch.Tensor,
    reference_regions: torch.Tensor,
    eps: float = 1e-5,
) -> torch.Tensor:
    """AdaIN region by region: inside each region, each frame's per-channel mean and std are matched
    to the same region's in the reference frame, and the matched frames are blended by the regions.

    With per-object prompts a global AdaIN mixes every object's colour into one mean, so an object
    whose words pull it off frame 1's colour (toy pink towards purple) is barely held back; here each
    object is matched to what frame 1 shows inside its own mask. Statistics are weighted by the
    soft region weights, the variance with ``sum(w) - 1`` in the denominator, so one region covering
    every position is ``adain`` exactly. A region with less than two positions' weight in a frame or
    in the reference (a hidden object) leaves that frame's region as it is.

    Args:
        latents: ``(B, C, F, H, W)``.
        reference: ``(B, C, H, W)``, e.g. frame 1's latent.
        regions: ``(B, R, F, H, W)`` weights in [0, 1] summing to 1 over R at every position, e.g. each
            object's share and the background's.
        reference_regions: ``(B, R, H, W)``, the reference frame's regions.
    """
    dims = (-2, -1)
    w = regions.unsqueeze(1).to(latents.dtype)  # (B, 1, R, F, H, W)
    w_ref = reference_regions[:, None, :, None].to(latents.dtype)  # (B, 1, R, 1, H, W)
    x = latents.unsqueeze(2)  # (B, C, 1, F, H, W)
    ref = reference[:, :, None, None]

    def stats(values, weights):
        total = weights.sum(dims, keepdim=True)
        mean = (weights * values).sum(dims, keepdim=True) / total.clamp(min=eps)
        var = (weights * (values - mean) ** 2).sum(dims, keepdim=True) / (total - 1).clamp(min=eps)
        return mean, var.sqrt(), total

    mean, std, total = stats(x, w)
    ref_mean, ref_std, ref_total = stats(ref, w_ref)
    matched = (x - mean) / (std + eps) * ref_std + ref_mean  # (B, C, R, F, H, W)
    matched = torch.where((total >= 2) & (ref_total >= 2), matched, x)
    return (w * matched).sum(2)


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
