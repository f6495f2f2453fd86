"""The training data: every clip encoded once per view (hue rotation x flip), batches of motion windows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from model.pipeline import MaskVideoPipeline
from tasks.common.io import load_clip
from tasks.common.prompts import warn_cut_prompts
from tasks.contract import read_clip_manifest, read_masks, read_object_masks, read_object_prompts
from tasks.train.coarse import CoarseMasks
from tasks.train.shift import RandomShift, shifted


class ClipLatents:
    """Every clip encoded once per view: hue rotation x horizontal flip.

    ``views[h][f]`` holds the latents ``(N, C, F, h, w)`` of hue rotation ``hue_shifts[h]`` and
    flip ``f`` (0 = as recorded, 1 = flipped; present only with ``hflip``); masks ``(N, F, H, W)``
    and prompts ``(N, L, D)`` are shared by all views (a flip flips the masks when sampled).

    When some clips' objects carry their own prompts (the clip manifest's ``object_prompts``, the
    masks stage's object masks), ``object_text`` ``(N, K, L, D)`` and ``object_masks``
    ``(N, K, F, H, W)`` hold them, K the most objects of any clip; the missing objects of a clip
    have zero masks, and a clip without object prompts has none at all: it is not routed
    (``model.attention``). Without object prompts in any clip, both are None.
    """

    def __init__(
        self,
        pipe: MaskVideoPipeline,
        clips_dir: str,
        masks_dir: str,
        hflip: bool,
        hue_shifts: tuple[float, ...] = (0.0,),
    ):
        table = read_clip_manifest(clips_dir)
        frames = np.stack([load_clip(Path(clips_dir) / c)["frames"] for c in table["clip"]])
        masks = np.stack([read_masks(masks_dir, vid) for vid in table["id"]])
        if masks.shape[:2] != frames.shape[:2]:
            raise ValueError(f"{masks_dir}: masks {masks.shape} do not match clips {frames.shape}")
        self.ids = list(table["id"])
        self.frame_size = tuple(int(x) for x in frames.shape[2:4])  # (H, W) of the clips
        self.masks = torch.from_numpy(masks).float()
        warn_cut_prompts(pipe.tokenizer, list(table["id"]), list(table["prompt"]))  # as ingest and generate do
        self.text = pipe.encode_prompt(list(table["prompt"]), None).float()
        self.empty_text = pipe.encode_prompt([""], None).float()[0]
        self.object_text, self.object_masks = self._objects(pipe, table, masks_dir, masks.shape[1:])
        self.hue_shifts = tuple(hue_shifts)
        self.coarse: CoarseMasks | None = None  # set to train on coarse masks some of the time
        self.shift: RandomShift | None = None  # set to move training windows about the frame
        self.views = []
        for degrees in self.hue_shifts:
            tinted = rotate_hue(frames, degrees)
            flips = [tinted, tinted[:, :, :, ::-1]] if hflip else [tinted]
            self.views.append([self._encode(pipe, f) for f in flips])

    def _objects(self, pipe, table, masks_dir: str, frame_shape) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        prompts = [read_object_prompts(row) for _, row in table.iterrows()]
        k = max(map(len, prompts))
        if k == 0:
            return None, None
        text = self.empty_text.expand(len(prompts), k, *self.empty_text.shape).clone()
        object_masks = torch.zeros(len(prompts), k, *frame_shape)
        for i, (vid, named) in enumerate(zip(table["id"], prompts)):
            if not named:
                continue
            found = read_object_masks(masks_dir, vid)
            if found is None or len(found) != len(named):
                raise ValueError(
                    f"{masks_dir}/{vid}.npz: {0 if found is None else len(found)} object masks for the "
                    f"{len(named)} object prompts of the clip manifest"
                )
            text[i, : len(named)] = pipe.encode_prompt(named, None).float()
            object_masks[i, : len(named)] = torch.from_numpy(found).float()
        return text, object_masks

    @property
    def latents(self) -> torch.Tensor:
        """The clips as recorded (no hue rotation, no flip)."""
        return self.views[0][0]

    @staticmethod
    def _encode(pipe: MaskVideoPipeline, frames: np.ndarray) -> torch.Tensor:
        n, f = frames.shape[:2]
        images = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0)
        images = images.reshape(n * f, *frames.shape[2:]).permute(0, 3, 1, 2)
        lat = torch.cat([pipe.encode_images(chunk) for chunk in images.split(16)]).float()
        return lat.reshape(n, f, *lat.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()

    def sample(
        self, batch: int, window: int, random_start: bool, generator: torch.Generator, prompt_dropout: float = 0.0
    ):
        """A batch of windows (``Batch``): latents (B, C, W, h, w), text (B, L, D), masks (B, W, H, W),
        and, when the clips have object prompts, object text (B, K, L, D) and masks (B, K, W, H, W).

        Draw order: clip, start, flip, then (only when used) hue view and prompt dropout, so the
        default settings draw exactly what they always drew (coarse masks and moves draw from their
        own generators). A dropped prompt drops the objects' prompts too (their masks are zeroed: the
        sample is unconditional).
        """
        n, frames = self.latents.shape[0], self.latents.shape[2]
        if window > frames:
            raise ValueError(f"train.window={window} is longer than the clips ({frames} frames)")
        idx = torch.randint(n, (batch,), generator=generator)
        starts = (
            torch.randint(frames - window + 1, (batch,), generator=generator)
            if random_start
            else torch.zeros(batch, dtype=torch.long)
        )
        flips = (
            torch.rand(batch, generator=generator) < 0.5
            if len(self.views[0]) == 2
            else torch.zeros(batch, dtype=torch.bool)
        )
        hues = (
            torch.randint(len(self.views), (batch,), generator=generator)
            if len(self.views) > 1
            else torch.zeros(batch, dtype=torch.long)
        )
        dropped = (
            torch.rand(batch, generator=generator) < prompt_dropout
            if prompt_dropout > 0
            else torch.zeros(batch, dtype=torch.bool)
        )
        lat, msk, text, obj_text, obj_msk = [], [], [], [], []
        for i, s, flip, hue, drop in zip(
            idx.tolist(), starts.tolist(), flips.tolist(), hues.tolist(), dropped.tolist()
        ):
            x = self.views[hue][int(flip)][i, :, s : s + window]
            m = self.masks[i, s : s + window]
            m = m.flip(-1) if flip else m  # frames and masks flip together
            dy, dx = self.shift.draw(m, x.shape[-1]) if self.shift is not None else (0, 0)
            scale = m.shape[-1] // x.shape[-1]  # pixels per latent cell
            lat.append(shifted(x, dy, dx))
            m = shifted(m, dy, dx, scale)  # the masks move with the latents
            msk.append(self.coarse(m) if self.coarse is not None else m)
            text.append(self.empty_text if drop else self.text[i])
            if self.object_text is not None:
                om = self.object_masks[i, :, s : s + window]
                om = shifted(om.flip(-1) if flip else om, dy, dx, scale)
                obj_msk.append(torch.zeros_like(om) if drop else om)
                obj_text.append(self.object_text[i])
        objects = (torch.stack(obj_text), torch.stack(obj_msk)) if obj_text else (None, None)
        return Batch(torch.stack(lat), torch.stack(text), torch.stack(msk), *objects)


class Batch(NamedTuple):
    """One training batch (``ClipLatents.sample``)."""

    latents: torch.Tensor
    text: torch.Tensor
    masks: torch.Tensor
    object_text: torch.Tensor | None = None
    object_masks: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        return Batch(*(None if t is None else t.to(device) for t in self))


def rotate_hue(frames: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue of uint8 RGB frames ``(..., 3)`` by ``degrees`` in YIQ space.

    The rotation turns the chroma plane (I, Q) and keeps luma (Y): greys stay grey, brightness
    stays, colours move round the colour wheel; results outside RGB's cube are clipped.
    """
    if degrees % 360 == 0:
        return frames
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    turn = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    rgb = np.linalg.inv(to_yiq) @ turn @ to_yiq
    out = frames.astype(np.float64) @ rgb.T
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
