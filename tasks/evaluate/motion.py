"""Motion fidelity: does the generated object move inside itself as the few-shot clips taught?

A drawn mask places the object; what happens inside it (a turn, a squash) is what the few-shot
training is for, and a rigid mask cannot show it. This measures that motion on the object found in
each frame (by its colour, never from the input mask), for the toy world's two motions that live
inside the object, and compares it with the same measurement on the training clips' masks:

- ``spin``: the object's turn per frame, the best-fitting template of its shape (``shape_template``,
  2-degree steps across the shape's symmetry); its angular speed is the median frame-to-frame change,
  wrapped into half the symmetry (a square turning 80 degrees a frame looks like one turning -10).
  Fidelity = max(0, 1 - |w - w_ref| / |w_ref|): 1 at the training clips' speed and direction, 0 at
  rest or turning the other way.
- ``squash``: the log of the object's aspect (height / width) per frame from its second moments,
  less its shape's own. The true video squashes as the training clips do (the toy world renders it
  with their pattern, along the drawn path's hops), so the series is compared with the true video's,
  measured the same way (which cancels what moments make of a small star): b, the slope of the
  generated series on the true one, and their correlation r. Fidelity = max(0, 1 - |b - 1|) x
  max(0, r): the right depth of squash, tall and wide at the right frames. The training clips'
  amplitude (``reference``) is reported beside it.

Beside it (``drawn_mask_scores``): containment, the share of the object's pixels inside the drawn
mask; IoU against the true silhouettes (not the drawn, coarser mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.common.geometry import iou
from tasks.common.io import read_mask_pngs
from tasks.common.toy import render_object_mask
from tasks.common.toy_palette import SYMMETRY, shape_template

INSIDE_MOTIONS = ("spin", "squash")
ANGLE_STEP_DEG = 2.0


def turn_angle(mask: np.ndarray, shape: str) -> float:
    """The object's turn (radians, clockwise, in [0, the shape's symmetry)), NaN when too small to tell."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 8 or shape == "circle":
        return float("nan")
    centroid, size = np.array([xs.mean(), ys.mean()]), mask.shape[0]
    angles = np.arange(0.0, SYMMETRY[shape] - 1e-9, np.deg2rad(ANGLE_STEP_DEG))
    scores = [iou(mask, shape_template(shape, len(xs), centroid, size, float(a))) for a in angles]
    return float(angles[int(np.argmax(scores))])


def _moment_log_ratio(mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    return 0.5 * float(np.log(ys.var() / xs.var())) if len(xs) >= 8 and xs.var() > 0 and ys.var() > 0 else np.nan


_REST_LOG_RATIO: dict[str, float] = {}


def log_aspect(mask: np.ndarray, shape: str) -> float:
    """log(height / width) of an upright object, relative to its shape at rest (0 unstretched; the
    toy renderer's ``aspect`` a gives log a); NaN when too small."""
    if shape not in _REST_LOG_RATIO:
        _REST_LOG_RATIO[shape] = _moment_log_ratio(render_object_mask(shape, 48, 48, 30.0, 96) >= 0.5)
    return _moment_log_ratio(mask) - _REST_LOG_RATIO[shape]


def angular_speed(angles: np.ndarray, shape: str) -> float:
    """Median frame-to-frame turn (radians per frame, signed: + clockwise) of a series of turns
    (NaN where unknown), wrapped into (-symmetry/2, symmetry/2]; NaN with fewer than two known pairs."""
    period = SYMMETRY[shape]
    steps = np.diff(angles)
    steps = steps[np.isfinite(steps)]
    if len(steps) < 2:
        return float("nan")
    wrapped = (steps + period / 2) % period - period / 2
    return float(np.median(wrapped))


def motion_series(masks: np.ndarray, shape: str, motion: str) -> np.ndarray:
    """What the motion changes, per frame of bool masks (F, H, W): turn (spin) or log aspect (squash)."""
    measure = turn_angle if motion == "spin" else log_aspect
    return np.array([measure(m, shape) if m.any() else np.nan for m in masks])


def motion_summary(series: np.ndarray, shape: str, motion: str) -> float:
    """The figure compared across videos: angular speed (spin) or squash amplitude (squash)."""
    if motion == "spin":
        return angular_speed(series, shape)
    known = series[np.isfinite(series)]
    return float(known.std()) if len(known) >= 3 else float("nan")


def reference(clips: list[tuple[np.ndarray, str]], motion: str) -> float:
    """The training clips' figure: the median over clips of ``motion_summary`` of their masks
    (``clips``: (masks bool (F, H, W), shape) each)."""
    values = [motion_summary(motion_series(m, shape, motion), shape, motion) for m, shape in clips]
    values = [v for v in values if np.isfinite(v)]
    if not values:
        raise ValueError(f"no training clip shows a measurable {motion}")
    return float(np.median(values))


def fidelity(series: np.ndarray, shape: str, motion: str, ref: float, truth: np.ndarray | None = None) -> float:
    """Motion fidelity in [0, 1] of one video's ``motion_series``: spin against the training clips'
    angular speed ``ref``, squash against the true video's series ``truth``; 0 where nothing can be
    measured."""
    if motion == "spin":
        speed = angular_speed(series, shape)
        return max(0.0, 1.0 - abs(speed - ref) / abs(ref)) if np.isfinite(speed) else 0.0
    both = np.isfinite(series) & np.isfinite(truth)
    if both.sum() < 3 or series[both].std() == 0 or truth[both].std() == 0:
        return 0.0
    g, t = series[both], truth[both]
    slope = float(np.cov(g, t)[0, 1] / t.var(ddof=1))
    return max(0.0, 1.0 - abs(slope - 1.0)) * max(0.0, float(np.corrcoef(g, t)[0, 1]))


def drawn_mask_scores(found: np.ndarray, drawn: np.ndarray, truth: np.ndarray | None) -> dict:
    """Containment of the found object bool (F, H, W) in the drawn masks (mean over frames where it
    was found) and, with the true silhouettes, IoU against them (mean over frames)."""
    inside = [(f & d).sum() / f.sum() for f, d in zip(found, drawn) if f.any()]
    out = {"containment": float(np.mean(inside)) if inside else 0.0}
    if truth is not None:
        out["iou_truth"] = float(np.mean([iou(f, t) for f, t in zip(found, truth)]))
    return out


def prompt_word(prompt: str, words) -> str | None:
    """The first of ``words`` in a toy prompt ("a red square spins across ..." -> "square")."""
    return next((w for w in prompt.lower().split() if w in words), None)


def training_reference(clips_dir: str, masks_dir: str, motion: str) -> float:
    """``reference`` measured on the few-shot clips' own masks (the masks stage's), each clip's
    shape read from its prompt."""
    from tasks.common.toy import SHAPES
    from tasks.contract import read_clip_manifest, read_masks

    clips = []
    for row in read_clip_manifest(clips_dir).itertuples():
        shape = prompt_word(row.prompt, SHAPES)
        if shape is not None and shape != "circle":  # a circle's turn does not show
            clips.append((read_masks(masks_dir, row.id), shape))
    if not clips:
        raise ValueError(f"{clips_dir}: no clip names a toy shape whose {motion} can be measured")
    return reference(clips, motion)


@dataclass
class LearnedMotion:
    """The learned-motion columns, for the videos whose sequence (``evaluate.sequences``) names a motion
    that lives inside the object; ``rows`` maps such sequence ids to their manifest rows."""

    rows: dict
    folder: Path | None = None
    references: dict | None = None
    clips: tuple[str, str] = ("", "")

    @classmethod
    def from_config(cls, cfg) -> LearnedMotion:
        """From the evaluate stage's config (``sequences``, ``clips_dir``, ``masks_dir``)."""
        if cfg.sequences is None:
            return cls({})
        import yaml

        path = Path(cfg.sequences)
        path = path / "manifest.yaml" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"evaluate.sequences: manifest '{path}' not found")
        listed = (yaml.safe_load(path.read_text()) or {}).get("sequences") or []
        rows = {r["id"]: r for r in listed if r.get("motion") in INSIDE_MOTIONS}
        for r in rows.values():
            missing = [k for k in ("shape", "colour", "truth_masks") if not r.get(k)]
            if missing:
                raise ValueError(f"{path} (id '{r['id']}'): a {r['motion']} sequence needs {', '.join(missing)}")
        return cls(rows, path.parent, {}, (cfg.clips_dir, cfg.masks_dir))

    def scores(self, sequence: str, frames: np.ndarray, min_pixels: int) -> dict:
        """The columns for one video (frames uint8 (F, H, W, 3)); {} when its sequence has no such motion."""
        row = self.rows.get(sequence)
        if row is None:
            return {}
        from tasks.common.toy_palette import colour_regions, palette_labels

        motion, shape = row["motion"], row["shape"]
        if motion not in self.references:
            self.references[motion] = training_reference(*self.clips, motion)
        found = np.stack([colour_regions(palette_labels(f), row["colour"], min_pixels) for f in frames])
        truth = read_mask_pngs(self.folder / row["truth_masks"])
        drawn = read_mask_pngs(self.folder / row.get("masks", sequence))
        truth_series = motion_series(truth, shape, motion)
        series = motion_series(found, shape, motion)
        return {
            "motion_fidelity": fidelity(series, shape, motion, self.references[motion], truth_series),
            **drawn_mask_scores(found, drawn, truth),
        }
