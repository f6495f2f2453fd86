"""The toy world's Stable Diffusion VAE: a tiny AutoencoderKL, 64x64x3 frames <-> 4x16x16 latents.

Three encoder blocks downsample by 4 (SD's four blocks downsample by 8); like SD the latents are
multiplied by ``config.scaling_factor`` (1 / std of training latents) before diffusion, and the
factor is stored in the saved config, so downstream code reads it exactly where SD keeps it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL


def build_vae(
    channels: tuple[int, ...], layers_per_block: int, latent_channels: int, norm_groups: int, size: int, seed: int
) -> AutoencoderKL:
    torch.manual_seed(seed)
    n = len(channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        sample_size=size,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(channels),
        layers_per_block=layers_per_block,
        norm_num_groups=norm_groups,
    )


def edge_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences: keeps shape outlines sharp."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return (dx(x) - dx(y)).abs().mean() + (dy(x) - dy(y)).abs().mean()


def object_weight(masks: torch.Tensor, foreground_weight: float, ring: int = 2) -> torch.Tensor:
    """Per-pixel loss weight (B, 1, H, W): 1 + ``foreground_weight`` on the object and a ``ring``-pixel
    border around it. Why: a toy object covers 2-9% of a frame, so a plain reconstruction loss spends
    the VAE's capacity on ground texture and blurs the object's outline, which is exactly what the
    foreground-IoU metric reads (the border counts because colour bleeding into the ground there
    makes the object look bigger)."""
    grown = F.max_pool2d(masks, 2 * ring + 1, stride=1, padding=ring)
    return 1 + foreground_weight * grown


def colour_boundaries(pixels: torch.Tensor, jump: float = 0.6) -> torch.Tensor:
    """Float (B, 1, H, W), 1 on both pixels of every horizontal or vertical neighbour pair whose colours
    differ by more than ``jump`` (L1 over RGB in [-1, 1]): object outlines and, in a crowded frame, the
    seams where two objects meet. The ground's texture changes by less (its neighbours differ by
    ~0.1-0.3), so it is left out."""
    dx = (pixels[..., :, 1:] - pixels[..., :, :-1]).abs().sum(1, keepdim=True) > jump
    dy = (pixels[..., 1:, :] - pixels[..., :-1, :]).abs().sum(1, keepdim=True) > jump
    edge = torch.zeros_like(pixels[:, :1], dtype=torch.bool)
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.to(pixels.dtype)


def vae_loss(
    vae: AutoencoderKL,
    pixels: torch.Tensor,
    kl_weight: float,
    edge_weight: float,
    masks: torch.Tensor | None = None,
    foreground_weight: float = 0.0,
    generator: torch.Generator | None = None,
    boundary_weight: float = 0.0,
) -> torch.Tensor:
    """``pixels`` float (B, 3, H, W) in [-1, 1]. L1 + MSE + edge term, plus a small KL pulling the
    posterior towards N(0, I) (weighted per pixel, as SD's autoencoder weights it: 1e-6 there).
    With ``masks`` (B, 1, H, W) and ``foreground_weight`` > 0 the L1 + MSE term is weighted towards
    the object (``object_weight``), and with ``boundary_weight`` > 0 towards sharp colour changes
    (``colour_boundaries``: where a red circle meets a yellow triangle a smooth decoder paints an
    orange seam, which a colour-reading scorer takes for a third object); normalised by the mean
    weight so the loss keeps its scale. ``generator`` draws the posterior sample (None: torch's global
    generator)."""
    posterior = vae.encode(pixels).latent_dist
    recon = vae.decode(posterior.sample(generator)).sample
    err = (recon - pixels).abs() + (recon - pixels) ** 2
    weight = torch.ones_like(pixels[:, :1])
    if masks is not None and foreground_weight > 0:
        weight = object_weight(masks, foreground_weight)
    if boundary_weight > 0:
        weight = weight + boundary_weight * colour_boundaries(pixels)
    rec = (err * weight).mean() / weight.mean()
    kl = posterior.kl().mean() / pixels[0].numel()
    return rec + edge_weight * edge_l1(recon, pixels) + kl_weight * kl


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, pixels: torch.Tensor, chunk: int = 64) -> float:
    """1 / std of sampled latents over ``pixels`` (B, 3, H, W) in [-1, 1]: SD's 0.18215 computed here."""
    latents = torch.cat([vae.encode(pixels[i : i + chunk]).latent_dist.sample() for i in range(0, len(pixels), chunk)])
    return float(1.0 / latents.std())


@torch.no_grad()
def encode(vae: AutoencoderKL, pixels: torch.Tensor, sample: bool = True) -> torch.Tensor:
    """Scaled latents (B, C, h, w) for ``pixels`` (B, 3, H, W) in [-1, 1], as SD training encodes."""
    dist = vae.encode(pixels).latent_dist
    return (dist.sample() if sample else dist.mode()) * vae.config.scaling_factor


@torch.no_grad()
def decode(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Pixels (B, 3, H, W) in [-1, 1] from scaled latents."""
    return vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)
