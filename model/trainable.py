"""Which parameters of the video UNet train, and saving/loading exactly those.

Schemes (``TRAINABLE_SCHEMES``):
    ``paper``: the new layers (temporal conv, temporal attention, mask branches) plus the Q/K/V/out
        projections of every spatial self-attention (``attn1``) and cross-attention (``attn2``):
        "the newly added layers, as well as those in the self-attention and cross-attention layers".
    ``lamp``: LAMP's narrower set: the new layers plus the self-attention query (``attn1.to_q``).
    ``cross_attention``: the new layers plus the cross-attention projections (``attn2``); the
        self-attention, which carries frame 1's appearance to the other frames, stays as pretrained.
    ``new_layers``: the new layers only.
    ``all``: every weight (full fine-tuning). Nothing is shared with frame 1's UNet. On the toy world a
        diagnosis: can the few-shot clips teach the spatial layers a shape the base never drew (a
        turned square), or must the base learn it first?

State dicts are plain ``{name: tensor}`` dicts keyed by ``VideoUNet`` parameter names, meant to be
written with ``safetensors.torch.save_file`` by the caller; modules are never pickled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

# submodule names introduced by inflation (model.temporal, model.attention)
NEW_LAYER_PATTERN = r"\.(temporal_conv|temporal_attention|mask_branch)\."
_PROJECTIONS = r"(to_q|to_k|to_v|to_out)"

TRAINABLE_SCHEMES = {
    "paper": (NEW_LAYER_PATTERN, rf"\.attn[12]\.{_PROJECTIONS}\."),
    "lamp": (NEW_LAYER_PATTERN, r"\.attn1\.to_q\."),
    "cross_attention": (NEW_LAYER_PATTERN, rf"\.attn2\.{_PROJECTIONS}\."),
    "new_layers": (NEW_LAYER_PATTERN,),
    "all": (r".",),
}


@dataclass
class TrainableCounts:
    """Parameter counts after ``set_trainable``."""

    scheme: str
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total

    def __str__(self) -> str:
        return f"{self.scheme}: {self.trainable:,} trainable of {self.total:,} parameters ({100 * self.fraction:.2f}%)"


def _check_scheme(scheme: str) -> None:
    if scheme not in TRAINABLE_SCHEMES:
        raise ValueError(f"trainable scheme must be one of {tuple(TRAINABLE_SCHEMES)}, got {scheme!r}")


def trainable_parameter_names(video_unet: nn.Module, scheme: str = "paper") -> list[str]:
    """Names (as in ``video_unet.named_parameters()``) of the parameters ``scheme`` trains."""
    _check_scheme(scheme)
    patterns = [re.compile(p) for p in TRAINABLE_SCHEMES[scheme]]
    # a leading "." lets the patterns anchor on a module boundary even at the top level
    return [name for name, _ in video_unet.named_parameters() if any(p.search("." + name) for p in patterns)]


def frozen_parameters(unet2d: nn.Module, scheme: str = "paper") -> list[nn.Parameter]:
    """The parameters of a 2-D UNet that ``scheme`` leaves as pretrained once it is inflated (the same
    patterns read the 2-D names: inflation keeps them, and the new layers are not there yet)."""
    trained = set(trainable_parameter_names(unet2d, scheme))
    return [param for name, param in unet2d.named_parameters() if name not in trained]


def set_trainable(video_unet: nn.Module, scheme: str = "paper") -> TrainableCounts:
    """Freeze everything except ``scheme``'s parameters (``requires_grad``); report the counts."""
    names = set(trainable_parameter_names(video_unet, scheme))
    trainable = total = 0
    for name, param in video_unet.named_parameters():
        param.requires_grad_(name in names)
        total += param.numel()
        trainable += param.numel() if name in names else 0
    return TrainableCounts(scheme, trainable, total)


def trainable_state_dict(video_unet: nn.Module, scheme: str = "paper") -> dict[str, torch.Tensor]:
    """The weights ``scheme`` trains, detached and contiguous (ready for ``safetensors``)."""
    params = dict(video_unet.named_parameters())
    return {name: params[name].detach().contiguous() for name in trainable_parameter_names(video_unet, scheme)}


def load_trainable_state_dict(
    video_unet: nn.Module, state_dict: dict[str, torch.Tensor], scheme: str | None = None
) -> list[str]:
    """Copy ``state_dict`` into the matching parameters of ``video_unet``.

    Args:
        video_unet: a model inflated with the same ``VideoUNetConfig`` as the one saved.
        state_dict: ``{name: tensor}`` from ``trainable_state_dict``.
        scheme: if given, every parameter of that scheme must be present, and no other (a video
            UNet inflated with ``share_frozen`` shares the others with the 2-D UNet of frame 1).

    Returns:
        The names loaded. Raises on unknown names, shape mismatches and (with ``scheme``) missing names.
    """
    params = dict(video_unet.named_parameters())
    unknown = sorted(set(state_dict) - set(params))
    if unknown:
        raise KeyError(f"{len(unknown)} weights match no parameter of this model, e.g. {unknown[:3]}")
    if scheme is not None:
        names = set(trainable_parameter_names(video_unet, scheme))
        missing, extra = sorted(names - set(state_dict)), sorted(set(state_dict) - names)
        if missing:
            raise KeyError(f"{len(missing)} {scheme!r} weights missing from the state dict, e.g. {missing[:3]}")
        if extra:
            raise KeyError(f"{len(extra)} weights outside the {scheme!r} scheme in the state dict, e.g. {extra[:3]}")
    with torch.no_grad():
        for name, value in state_dict.items():
            if params[name].shape != value.shape:
                raise ValueError(f"{name}: shape {tuple(value.shape)} does not match {tuple(params[name].shape)}")
            params[name].copy_(value)
    return sorted(state_dict)
