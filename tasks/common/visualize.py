"""Pictures people look at: contact sheets of videos with the mask outlined."""

from __future__ import annotations

import cv2
import numpy as np

OUTLINE_RGB = (0, 255, 255)  # cyan: stands out against every toy ground and object colour


def outline_mask(frame: np.ndarray, mask: np.ndarray, colour=OUTLINE_RGB, thickness: int = 1) -> np.ndarray:
    """Draw the contour of a bool mask (H, W) on a copy of a uint8 RGB frame (H, W, 3)."""
    out = np.ascontiguousarray(frame.copy())
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, thickness)
    return out


def contact_sheet(
    videos: list[np.ndarray],
    masks: list[np.ndarray] | None = None,
    max_frames: int = 8,
    scale: int = 2,
    gap: int = 2,
) -> np.ndarray:
    """One row per video, up to ``max_frames`` evenly spaced frames per row, uint8 RGB.

    ``videos``: uint8 (F, H, W, 3) each; ``masks``: bool (F, H, W) each, outlined when given.
    Frames are enlarged ``scale`` times (nearest) so 64-pixel toy frames stay readable.
    """
    rows = []
    for v, video in enumerate(videos):
        idx = np.linspace(0, len(video) - 1, min(max_frames, len(video))).round().astype(int)
        tiles = []
        for i in idx:
            frame = cv2.resize(video[i], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            if masks is not None:
                m = cv2.resize(masks[v][i].astype(np.uint8), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                frame = outline_mask(frame, m)
            tiles.append(frame)
        rows.append(tiles)
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (h + gap) + gap, n_cols * (w + gap) + gap, 3), 255, np.uint8)
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            y, x = gap + r * (h + gap), gap + c * (w + gap)
            sheet[y : y + h, x : x + w] = tile
    return sheet
