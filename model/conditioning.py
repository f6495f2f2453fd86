"""What the ControlNet of frame 1 (eq. 3) is shown: the first mask drawn as its ControlNet was trained.

Public ControlNets were trained on other pictures than a binary mask:

- ``mask``: white object on black (the toy world's mask ControlNet, trained on exactly this);
- ``seg``: a semantic map in the ADE20K palette (``lllyasviel/sd-controlnet-seg``,
  ``control_v11p_sd15_seg``): the object in the colour of its class, the rest in the colour of the
  background's class (or black, ADE20K's "unlabelled");
- ``scribble``: white strokes on black (``lllyasviel/sd-controlnet-scribble``,
  ``control_v11p_sd15_scribble``): the mask's outline, a few pixels wide, not a filled shape.

Every condition is an RGB float image ``(B, 3, H, W)`` in [0, 1], the range diffusers' ControlNet
pipelines feed (``controlnet_conditioning_channel_order: rgb``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

CONDITION_KINDS = ("mask", "seg", "scribble")

# Colours of the ADE20K palette (the 150-class palette the segmentation ControlNets' annotator
# paints with, as mmsegmentation's ade_palette), for the classes a moving object or its ground
# plausibly is. Checked entry by entry against that palette; tests/model/test_conditioning.py pins a few.
ADE20K_COLOURS: dict[str, tuple[int, int, int]] = {
    "wall": (120, 120, 120),
    "building": (180, 120, 120),
    "sky": (6, 230, 230),
    "floor": (80, 50, 50),
    "tree": (4, 200, 3),
    "ceiling": (120, 120, 80),
    "road": (140, 140, 140),
    "bed": (204, 5, 255),
    "grass": (4, 250, 7),
    "sidewalk": (235, 255, 7),
    "person": (150, 5, 61),
    "earth": (120, 120, 70),
    "door": (8, 255, 51),
    "table": (255, 6, 82),
    "mountain": (143, 255, 140),
    "plant": (204, 255, 4),
    "chair": (204, 70, 3),
    "car": (0, 102, 200),
    "water": (61, 230, 250),
    "sea": (9, 7, 230),
    "field": (112, 9, 255),
    "rock": (255, 41, 10),
    "sand": (160, 150, 20),
    "river": (11, 200, 200),
    "bridge": (255, 82, 0),
    "flower": (255, 0, 0),
    "hill": (255, 102, 0),
    "boat": (173, 255, 0),
    "ball": (255, 0, 163),
    "animal": (255, 0, 122),
    "bicycle": (255, 245, 0),
    "lake": (10, 190, 212),
    "minibike": (163, 0, 255),
}


@dataclass(frozen=True)
class ControlNetCondition:
    """How a mask becomes the ControlNet's input.

    Args:
        kind: ``mask`` | ``seg`` | ``scribble`` (module docstring).
        object_class: ``seg``: the ADE20K class of the moving object (a key of ``ADE20K_COLOURS``).
        background_class: ``seg``: the class of everything else; None = black (unlabelled).
        stroke: ``scribble``: line width as a fraction of the image's shorter side (1/128: 4 px at 512).
    """

    kind: str = "mask"
    object_class: str = "person"
    background_class: str | None = None
    stroke: float = 1 / 128

    def __post_init__(self):
        if self.kind not in CONDITION_KINDS:
            raise ValueError(f"controlnet condition must be one of {CONDITION_KINDS}, got {self.kind!r}")
        for name in (self.object_class, self.background_class):
            if self.kind == "seg" and name is not None and name not in ADE20K_COLOURS:
                raise ValueError(f"unknown ADE20K class {name!r}; one of: {', '.join(sorted(ADE20K_COLOURS))}")
        if not 0 < self.stroke < 0.5:
            raise ValueError(f"scribble stroke must be a fraction in (0, 0.5), got {self.stroke}")

    def __call__(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``masks`` ``(B, H, W)`` in [0, 1] -> the condition image ``(B, 3, *size)`` in [0, 1]."""
        resized = F.interpolate(masks[:, None].float(), size=size, mode="nearest")
        if self.kind == "mask":
            return resized.expand(-1, 3, -1, -1)
        if self.kind == "seg":
            return seg_map(resized, self.object_class, self.background_class)
        width = max(1, round(self.stroke * min(size)))
        return outline(resized, width).expand(-1, 3, -1, -1)


def seg_map(masks: torch.Tensor, object_class: str, background_class: str | None) -> torch.Tensor:
    """``(B, 1, H, W)`` {0, 1} -> ``(B, 3, H, W)``: the object's class colour over the background's."""
    fg = torch.tensor(ADE20K_COLOURS[object_class], dtype=masks.dtype, device=masks.device) / 255
    bg = torch.zeros(3, dtype=masks.dtype, device=masks.device)
    if background_class is not None:
        bg = torch.tensor(ADE20K_COLOURS[background_class], dtype=masks.dtype, device=masks.device) / 255
    inside = (masks > 0.5).to(masks.dtype)
    return inside * fg[None, :, None, None] + (1 - inside) * bg[None, :, None, None]


def outline(masks: torch.Tensor, width: int) -> torch.Tensor:
    """``(B, 1, H, W)`` {0, 1} -> 1 on the mask's inner boundary band ``width`` pixels wide, else 0.

    A pixel is on the band when it is inside the mask and some pixel within ``width`` of it (a
    square neighbourhood) lies outside, or off the image: the mask minus its erosion by a
    ``(2 width + 1)`` square.
    """
    inside = (masks > 0.5).to(masks.dtype)
    # erosion = 1 - dilation of the outside; padding with 1 counts off-image pixels as outside
    outside = F.pad(1 - inside, (width,) * 4, value=1.0)
    eroded = 1 - F.max_pool2d(outside, kernel_size=2 * width + 1, stride=1)
    return inside - eroded


def controlnet_image(controlnet, condition: ControlNetCondition, masks: torch.Tensor, latent_size) -> torch.Tensor:
    """The condition of ``masks`` ``(B, H, W)`` at the size ``controlnet``'s conditioning embedding maps onto
    latents of ``latent_size``, with as many channels as it takes: ``(B, C, H', W')`` in [0, 1]."""
    factor = 2 ** (len(controlnet.config.conditioning_embedding_out_channels) - 1)
    image = condition(masks.float(), (latent_size[0] * factor, latent_size[1] * factor))
    channels = controlnet.config.conditioning_channels
    if image.shape[1] != channels:
        if condition.kind == "seg":
            raise ValueError(f"a seg condition is RGB; this ControlNet takes {channels} channel(s)")
        image = image[:, :1].expand(-1, channels, -1, -1)
    return image
