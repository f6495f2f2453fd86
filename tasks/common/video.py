"""Video files: writing H.264 mp4/GIF and decoding with decord."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = 12) -> None:
    """Write uint8 RGB frames (F, H, W, 3) as an H.264 mp4 (yuv420p, so H and W must be even).

    A low CRF keeps small toy videos close to their source colours.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"{path}: H.264 with yuv420p needs an even frame size, got {w}x{h}")
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        macro_block_size=1,
        output_params=["-crf", str(crf), "-preset", "medium"],
        ffmpeg_log_level="error",
    )
    writer.send(None)  # start the generator
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def write_gif(path: str | Path, frames: np.ndarray, fps: float) -> None:
    iio.imwrite(path, np.asarray(frames), extension=".gif", duration=1000 / fps, loop=0)
