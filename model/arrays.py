"""What the pipeline takes and gives, converted: masks, first frames and output frames as tensors or uint8."""

from __future__ import annotations

import numpy as np
import torch


def to_masks(masks) -> torch.Tensor:
    """``(F, H, W)`` / ``(B, F, H, W)`` bool, {0, 1} float or {0, 255} uint8 -> float ``(B, F, H, W)`` in [0, 1]."""
    masks = torch.as_tensor(np.asarray(masks) if not torch.is_tensor(masks) else masks)
    if masks.ndim == 3:
        masks = masks[None]
    if masks.ndim != 4:
        raise ValueError(f"masks must be (F, H, W) or (B, F, H, W), got {tuple(masks.shape)}")
    if masks.dtype == torch.uint8 and masks.max() > 1:
        masks = masks > 127
    masks = masks.float()
    if masks.min() < 0 or masks.max() > 1:
        raise ValueError("masks must lie in [0, 1] (or be uint8 0/255, or bool)")
    return masks


def to_images(frames) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` / ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in [-1, 1]."""
    frames = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"first_frame must be uint8 (H, W, 3) or (B, H, W, 3), got {frames.dtype} {tuple(frames.shape)}"
        )
    return frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float ``(N, 3, H, W)`` in [-1, 1] -> uint8 ``(N, H, W, 3)``."""
    images = ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()
