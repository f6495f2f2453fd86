"""What the page shows while a motion is edited: each object's masks, its path, a GIF over the first frame.

Masks travel as one base64 string per frame (``np.packbits`` of the row-major bool frame), small
enough to send on every edit; the page unpacks them to draw the scrubbed frame on its canvas.
"""

from __future__ import annotations

import base64

import cv2
import imageio.v3 as iio
import numpy as np

from tasks.common.visualize import outline_mask
from tasks.masks.sequences import SequenceSpec, path_centres

# object colours on the page and in the GIF (RGB); the page's style.css lists the same
OBJECT_COLOURS = [(255, 90, 90), (255, 210, 63), (63, 167, 255), (155, 93, 229), (0, 245, 212), (241, 91, 181)]
EMPTY_FRAME_GREY = 48  # no first frame yet (the ControlNet makes it): a dark ground the masks stand out on


def pack(masks: np.ndarray) -> list[str]:
    """bool (F, H, W) -> one base64 string of packed bits per frame."""
    return [base64.b64encode(np.packbits(m.reshape(-1)).tobytes()).decode() for m in masks]


def unpack(frames: list[str], size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return np.stack(
        [np.unpackbits(np.frombuffer(base64.b64decode(f), np.uint8))[: h * w].reshape(h, w) for f in frames]
    )


def centres(spec: SequenceSpec) -> list[list[list[float]]]:
    """Each object's centre per frame, [x, y], for drawing its path (hops included, as the renderer does)."""
    out = []
    u = np.linspace(0.0, 1.0, spec.n_frames)
    for obj in spec.objects:
        c = path_centres(obj.path, spec.n_frames)
        if obj.hop is not None:  # the renderer's hop (tasks.masks.sequences.render_object), for the overlay only
            c[:, 1] -= obj.hop.height * np.abs(np.sin(np.pi * obj.hop.count * u))
        out.append(np.round(c, 2).tolist())
    return out


def overlay(per_object: list[np.ndarray], first_frame: np.ndarray | None, scale: int) -> np.ndarray:
    """The mask sequence over the first frame, each object tinted, outlined: uint8 (F, H*s, W*s, 3)."""
    n, h, w = per_object[0].shape
    ground = (
        np.full((h, w, 3), EMPTY_FRAME_GREY, np.uint8) if first_frame is None else np.asarray(first_frame, np.uint8)
    )
    big = lambda a: cv2.resize(a, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)  # noqa: E731
    frames = []
    for f in range(n):
        frame = big(ground).astype(np.float32)
        union = np.zeros((h * scale, w * scale), bool)
        for i, masks in enumerate(per_object):
            m = big(masks[f].astype(np.uint8)).astype(bool)
            frame[m] = 0.45 * frame[m] + 0.55 * np.array(OBJECT_COLOURS[i % len(OBJECT_COLOURS)], np.float32)
            union |= m
        frames.append(outline_mask(frame.astype(np.uint8), union))
    return np.stack(frames)


def gif_data_url(frames: np.ndarray, fps: float) -> str:
    data = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000 / fps, loop=0)
    return "data:image/gif;base64," + base64.b64encode(data).decode()


def preview_scale(size: tuple[int, int], target: int = 256) -> int:
    return max(1, target // max(size))


def preview(spec: SequenceSpec, per_object: list[np.ndarray], first_frame: np.ndarray | None, fps: float) -> dict:
    union = np.logical_or.reduce(per_object)
    return {
        "objects": [{"masks": pack(m), "centres": c} for m, c in zip(per_object, centres(spec))],
        "gif": gif_data_url(overlay(per_object, first_frame, preview_scale(spec.size)), fps),
        "summary": (
            f"{spec.n_frames} masks of {spec.size[1]}x{spec.size[0]}, {len(per_object)} object(s), "
            f"foreground {union.mean():.1%} of pixels"
        ),
    }
