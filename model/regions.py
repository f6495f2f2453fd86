"""Per-object prompts: each object's words act inside its own masks, the scene's prompt elsewhere.

Frame 1 is drawn once for the scene and once per object from the same noise and composed in pixels
(``compose_regions``); frames 2..n route every text cross-attention by the masks (``model.attention``)
and, with AdaIN, match each object's region to frame 1's (``adain_regions``); decoding takes each
object's pixels from latents without the other objects' cells (``objects_alone``). Measurements:
docs/results.md#per-object-prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from model.arrays import to_masks
from model.attention import ObjectPrompts, object_shares


def compose_regions(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Frame 1 with per-object prompts: ``images`` ``(K + 1, B, C, H, W)``, the scene's then each
    object's, drawn from the same noise and masks; ``masks`` ``(B, K, Hm, Wm)`` in [0, 1]. Returns
    ``(1 - sum_k s_k) scene + sum_k s_k image_k`` ``(B, C, H, W)``, ``s_k`` object k's share of each
    pixel (``object_shares`` of the masks area-resized to the images)."""
    shares = object_shares(F.interpolate(masks, size=images.shape[-2:], mode="area"))
    scene, objects = images[0], images[1:].transpose(0, 1)  # (B, C, H, W), (B, K, C, H, W)
    return (1 - shares.sum(1, keepdim=True)) * scene + (shares[:, :, None] * objects).sum(1)


def adain_regions(object_masks: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """The regions of ``regional_adain``: each object's share of every latent position (its masks
    ``(B, K, F, H, W)`` area-resized: the fraction of the position it covers), then the rest of the
    frame. Returns ``(B, K + 1, F, h, w)``, summing to 1 over the regions."""
    b, k, f = object_masks.shape[:3]
    shares = F.interpolate(object_masks.flatten(1, 2), size=tuple(latent_size), mode="area")
    shares = object_shares(shares.view(b, k, f, *latent_size))
    return torch.cat([shares, 1 - shares.sum(1, keepdim=True)], dim=1)


def objects_alone(latents: torch.Tensor, object_masks: torch.Tensor) -> torch.Tensor:
    """For each object k, ``latents`` ``(N, C, h, w)`` with the cells of the other objects (cells any
    of whose pixels they cover; object k's own cells excepted) set to the mean of the ground's cells.
    ``object_masks`` ``(N, K, H, W)``. Returns ``(K * N, C, h, w)``, object 0's rows first."""
    k = object_masks.shape[1]
    cells = F.adaptive_max_pool2d(object_masks.to(latents.device, latents.dtype), latents.shape[-2:]) > 0
    ground = ~cells.any(1, keepdim=True)  # (N, 1, h, w)
    ground_mean = (latents * ground).sum((-2, -1), keepdim=True) / ground.sum((-2, -1), keepdim=True).clamp(min=1)
    others = [cells[:, [j for j in range(k) if j != i]].any(1, keepdim=True) & ~cells[:, i : i + 1] for i in range(k)]
    return torch.cat([torch.where(other, ground_mean, latents) for other in others])


@dataclass
class ObjectInputs:
    """A call's per-object prompts, checked: ``prompts`` K per video (``B`` lists of K), ``masks`` float
    ``(B, K, F, H, W)`` in [0, 1]."""

    prompts: list[list[str]]
    masks: torch.Tensor


def check_objects(object_prompts, object_masks, masks: torch.Tensor) -> ObjectInputs | None:
    """``object_prompts`` (K for one video, or K per video) and ``object_masks`` (``(K, F, H, W)`` or
    ``(B, K, F, H, W)``) checked against the union ``masks`` ``(B, F, H, W)``; None without them."""
    if object_prompts is None and object_masks is None:
        return None
    if object_prompts is None or object_masks is None:
        raise ValueError("object_prompts and object_masks go together")
    batch, num_frames = masks.shape[:2]
    nested = [object_prompts] if object_prompts and isinstance(object_prompts[0], str) else object_prompts
    if len(nested) != batch or len({len(p) for p in nested}) != 1 or not nested[0]:
        raise ValueError(f"object_prompts: give K prompts for each of the {batch} videos, the same K for all")
    k = len(nested[0])
    om = torch.as_tensor(np.asarray(object_masks) if not torch.is_tensor(object_masks) else object_masks)
    if om.ndim not in (4, 5):
        raise ValueError(f"object_masks must be (K, F, H, W) or (B, K, F, H, W), got {tuple(om.shape)}")
    shape = om.shape if om.ndim == 5 else (1, *om.shape)
    om = to_masks(om.reshape(-1, *shape[-3:])).reshape(shape)
    if om.shape[:3] != (batch, k, num_frames) or om.shape[-2:] != masks.shape[-2:]:
        raise ValueError(
            f"object_masks must be (B, K, F, H, W) = ({batch}, {k}, {num_frames}, {masks.shape[-2]}, "
            f"{masks.shape[-1]}) for {k} object prompts, got {tuple(om.shape)}"
        )
    return ObjectInputs([list(p) for p in nested], om)


def encode_objects(encode_prompt, objects: ObjectInputs, guided: bool) -> torch.Tensor:
    """Per-object embeddings ``(2B | B, K, L, D)``: ``encode_prompt`` of every object's prompt, rows
    doubled under guidance (the unconditional rows are not routed: their masks are zero; any text will do)."""
    batch, k = objects.masks.shape[:2]
    text = encode_prompt([p for prompts in objects.prompts for p in prompts], None)
    text = text.reshape(batch, k, *text.shape[1:])
    return torch.cat([text, text]) if guided else text


def first_objects(object_text, object_masks, guided: bool, device, dtype) -> ObjectPrompts | None:
    """Frame 1's regions: the objects' prompts (the positive rows) and first masks."""
    if object_text is None:
        return None
    text = object_text.chunk(2)[1] if guided else object_text
    return ObjectPrompts(text, object_masks[:, :, 0].to(device, dtype))
