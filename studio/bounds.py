"""How much one request may ask of the studio: frames, frame size, objects, keyframes, prompt length,
request body. One place (``Bounds``, a studio setting like the port), applied to a page state, a
loaded spec and a saved run's spec alike, after the spec's own checks and before any mask is drawn.

Why each bound exists: the server renders every mask of a request in memory, on two shared cores.
Unbounded, one preview of 100000 frames, 4096 x 4096 pixels or 5000 objects runs it out of memory or
holds it for minutes. The defaults leave room well past what the toy model was trained on (64 x 64
frames, a motion window of 8; longer videos are chunks of it) and reach SD1.4's 512 x 512.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from tasks.masks.sequences import KeyframePath, SequenceSpec


class Bounds(BaseModel):
    """Each bound is a setting: ``--max-frames 128`` or ``MASKMOTION_STUDIO_MAX_FRAMES=128``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_frames: int = Field(128, ge=2, description="frames of one video (16 chunks of a motion window of 8)")
    max_side: int = Field(512, ge=16, description="pixels of a frame's height or width (SD1.4 makes 512)")
    max_objects: int = Field(8, ge=1, description="objects of one motion")
    max_keyframes: int = Field(128, ge=2, description="keyframes of one object's path")
    max_prompt_chars: int = Field(500, ge=1, description="characters of a prompt (CLIP reads 77 tokens)")
    max_scale: float = Field(4.0, gt=0, description="an object's scale (its mask grows this many times at most)")
    max_body_kb: float = Field(256.0, gt=0, description="a JSON request body (a page state is a few kB)")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_kb * 1024)


def readable(x) -> str:
    """A number as a person reads it: 1e+308, not 309 digits."""
    try:
        big = abs(float(x)) >= 1e6 or not math.isfinite(float(x))
    except (TypeError, ValueError, OverflowError):
        return str(x)[:40]
    if big:
        return f"{float(x):.3g}"
    return str(round(x, 2) if isinstance(x, float) else x)


def _over(field: str, what: str, value, bound, setting: str) -> dict:
    return {
        "field": field,
        "message": f"{what} {readable(value)}: the studio takes at most {readable(bound)} "
        f"(--{setting.replace('_', '-')})",
    }


def spec_bound_problems(spec: SequenceSpec, bounds: Bounds) -> list[dict]:
    """What in a validated spec is past the bounds, ``[{field, message}]``; nothing is rendered yet."""
    found = []
    if spec.n_frames > bounds.max_frames:
        found.append(_over("n_frames", "frames", spec.n_frames, bounds.max_frames, "max_frames"))
    for name, side in zip(("height", "width"), spec.size):
        if not 1 <= side <= bounds.max_side:
            found.append(_over("size", f"{name} (px)", side, bounds.max_side, "max_side"))
    if len(spec.objects) > bounds.max_objects:
        found.append(_over("objects", "objects", len(spec.objects), bounds.max_objects, "max_objects"))
        return found  # each object's own bounds would only repeat the point
    for i, obj in enumerate(spec.objects):
        found += _object_problems(i, obj, spec, bounds)
    top = bounds.max_prompt_chars
    if spec.prompt and len(spec.prompt) > top:
        found.append(_over("prompt", "prompt characters", len(spec.prompt), top, "max_prompt_chars"))
    return found


def _object_problems(i: int, obj, spec: SequenceSpec, bounds: Bounds) -> list[dict]:
    found, at = [], f"objects.{i}"
    if isinstance(obj.path, KeyframePath) and len(obj.path.points) > bounds.max_keyframes:
        found.append(_over(f"{at}.path", "keyframes", len(obj.path.points), bounds.max_keyframes, "max_keyframes"))
    scales = obj.scale if isinstance(obj.scale, list) else [obj.scale]
    if any(not math.isfinite(s) or s > bounds.max_scale for s in scales):
        found.append(_over(f"{at}.scale", "scale", max(scales), bounds.max_scale, "max_scale"))
    if obj.mask.startswith("toy:") and obj.radius > bounds.max_side / 2:
        found.append(_over(f"{at}.mask", "radius (px)", obj.radius, bounds.max_side / 2, "max_side (half)"))
    # a path far outside the frame is drawn as nothing; past this it is a number too big to place
    reach = 100 * max(spec.size)
    if any(not math.isfinite(v) or abs(v) > reach for v in _path_numbers(obj)):
        big = max(_path_numbers(obj), key=lambda v: abs(v) if math.isfinite(v) else math.inf)
        found.append(
            {"field": f"{at}.path", "message": f"a path number {readable(big)} is beyond ±{reach} (100 frame sides)"}
        )
    if obj.hop is not None and not (obj.hop.height <= reach and obj.hop.count <= bounds.max_frames):
        found.append({"field": f"{at}.hop", "message": "a hop higher than 100 frames or more hops than frames"})
    if obj.prompt and len(obj.prompt) > bounds.max_prompt_chars:
        found.append(
            _over(f"{at}.prompt", "prompt characters", len(obj.prompt), bounds.max_prompt_chars, "max_prompt_chars")
        )
    return found


def _path_numbers(obj) -> list[float]:
    p = obj.path
    if isinstance(p, KeyframePath):
        return [float(v) for point in p.points for v in point]
    values = [v for k, v in p.model_dump().items() if k != "type" and k != "easing" and v is not None]
    return [float(x) for v in values for x in (v if isinstance(v, (list, tuple)) else [v])]


def prompt_problems(state, bounds: Bounds) -> list[dict]:
    """The page's prompt and each object's, against ``max_prompt_chars`` (``state``: studio.spec.PageState)."""
    texts = [("prompt", state.prompt)] + [(f"objects.{i}.prompt", o.prompt) for i, o in enumerate(state.objects)]
    top = bounds.max_prompt_chars
    return [_over(field, "prompt characters", len(t), top, "max_prompt_chars") for field, t in texts if len(t) > top]
