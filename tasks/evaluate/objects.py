"""Per-object scores of a video whose objects carry their own prompts (toy world: objects found by colour).

For object k, with its prompted colour ``c_k`` and its own input masks ``m_k``:

- ``iou``: per frame, IoU of the pixels of colour ``c_k`` in the generated frame (the toy palette
  segmenter: nearer ``c_k`` than any ground or other object colour, in 4-connected regions of at
  least ``min_pixels``) with ``m_k``, averaged over frames. The region is found by colour alone,
  never from the input mask: an object painted in another object's colour scores 0 there.
- ``colour_accuracy``: fraction of frames where object k's place shows object k's colour: of the
  generated frame's object-coloured pixels (any palette colour) inside ``m_k``, the most frequent
  colour is ``c_k``. Frames where ``m_k`` is empty (the object hidden behind another) are not counted.
- ``centroid_error_px``, ``missing_frames``: as the whole-video scores (``mask_scores``), for colour ``c_k``.
"""

from __future__ import annotations

import numpy as np

from tasks.common.toy import COLOURS
from tasks.common.toy_palette import colour_inside, colour_regions, palette_labels


def prompt_colour(prompt: str) -> str:
    """The first toy colour word of ``prompt`` (the object's prompted colour)."""
    for word in prompt.lower().split():
        if word in COLOURS:
            return word
    raise ValueError(f"prompt '{prompt}' names no toy colour ({', '.join(COLOURS)}): per-object scores need one")


def object_scores(frames: np.ndarray, object_masks: np.ndarray, colours: list[str], min_pixels: int) -> list[dict]:
    """One dict per object: frames uint8 (F, H, W, 3), object masks bool (K, F, H, W), K colour names."""
    from tasks.evaluate.stage import mask_scores

    labels = np.stack([palette_labels(f) for f in frames])  # (F, H, W): colour index or -1
    rows = []
    for k, (masks, colour) in enumerate(zip(object_masks, colours)):
        found = np.stack([colour_regions(lab, colour, min_pixels) for lab in labels])
        hits = [colour_inside(lab, m) == colour for lab, m in zip(labels, masks) if m.any()]
        scores = mask_scores(found, masks)
        rows.append(
            {
                "object": k,
                "colour": colour,
                "iou": scores["iou"],
                "colour_accuracy": float(np.mean(hits)) if hits else None,
                "centroid_error_px": scores["centroid_error_px"],
                "missing_frames": scores["missing_frames"],
            }
        )
    return rows
