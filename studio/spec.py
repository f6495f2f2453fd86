"""The page's state and the mask-sequence spec (``tasks.masks.sequences``), both ways.

The page sends its state as JSON: the spec's own fields (size, frames, each object's path, hop and
scale, exactly as a YAML spec writes them) plus what only the page knows (the prompt, the seed,
the first frame, each object's label, and where a PNG mask came from). An object's own prompt is a
spec key (``objects.<k>.prompt``); when any object has one, the page's prompt is the scene (the
spec's ``prompt``), which an object without words of its own takes. The spec part is validated
by the spec's own pydantic models and rendered by its own renderer, so the page shows the messages
``python -m tasks.masks.sequences`` gives for the same YAML, at the same keys (``objects.0.path...``).

A PNG mask is never named by a path from the browser: the page names an upload by its id, and the
spec written to disk names a copy beside it (``objects/<id>.png``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.masks.sequences import SequenceSpec, render_object

UPLOAD_ID = r"^[0-9a-f]{16}$"
MaskSource = Literal["drawn", "uploaded", "cut-out", "loaded"]


class _Page(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToyMask(_Page):
    source: Literal["toy"]
    shape: str  # checked by the spec's renderer (an unknown shape is named with the known ones)
    radius: float = 8.0  # checked by the spec (ObjectSpec.radius)


class PngMask(_Page):
    source: Literal["png"]
    upload: str = Field(pattern=UPLOAD_ID, description="an upload id (studio.uploads), never a path")
    how: MaskSource = "drawn"


class PageObject(_Page):
    label: str = Field("", max_length=60)
    prompt: str = Field("", description="the object's own words; empty: the video's prompt (length: studio.bounds)")
    mask: Annotated[ToyMask | PngMask, Field(discriminator="source")]
    # validated by the spec's own models below, so their messages are the YAML spec's
    path: Any
    hop: Any = None
    scale: Any = 1.0


class FirstFrame(_Page):
    source: Literal["controlnet", "image"] = "controlnet"
    upload: str | None = Field(None, pattern=UPLOAD_ID)
    origin: str = Field("", max_length=200, description="what the page says about it (file or clip frame)")


class PageState(_Page):
    # the spec's own fields are checked by the spec's models (SequenceSpec), not twice
    size: Any
    n_frames: Any
    prompt: str = ""  # its length is a studio bound (studio.bounds), checked before any work
    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int | None = Field(None, ge=1, le=500, description="denoising steps; none: generate's setting")
    first_frame: FirstFrame = FirstFrame()
    objects: list[PageObject] = Field(min_length=1)


class Problems(ValueError):
    """What is wrong with a page state: ``[{field, message}]``, each shown next to its field."""

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))


def problem(field: str, message: str) -> dict:
    return {"field": field, "message": message}


def _from_validation(err: ValidationError) -> list[dict]:
    return [problem(".".join(str(p) for p in e["loc"]), e["msg"]) for e in err.errors()]


def parse_state(raw: dict) -> PageState:
    try:
        return PageState.model_validate(raw)
    except ValidationError as err:
        raise Problems(_from_validation(err)) from None


def spec_dict(state: PageState, mask_name: Callable[[str], str]) -> dict:
    """The spec as a YAML would write it; ``mask_name(upload id)`` names a PNG mask's file."""
    objects = []
    for obj in state.objects:
        entry: dict = {}
        if isinstance(obj.mask, ToyMask):
            entry.update(mask=f"toy:{obj.mask.shape}", radius=obj.mask.radius)
        else:
            entry["mask"] = mask_name(obj.mask.upload)
        if obj.prompt.strip():
            entry["prompt"] = obj.prompt.strip()
        entry["path"] = obj.path
        if obj.hop is not None:
            entry["hop"] = obj.hop
        if obj.scale != 1.0:
            entry["scale"] = obj.scale
        objects.append(entry)
    spec = {"size": state.size, "n_frames": state.n_frames, "objects": objects}
    if any("prompt" in o for o in objects):  # the page's prompt is then the scene around the objects
        spec["prompt"] = state.prompt.strip() or None
    return spec


def to_spec(state: PageState, mask_name: Callable[[str], str]) -> SequenceSpec:
    """Validate the spec part with the spec's models (same messages and keys as a YAML file)."""
    try:
        return SequenceSpec.model_validate(spec_dict(state, mask_name))
    except ValidationError as err:
        raise Problems(_from_validation(err)) from None


def render(spec: SequenceSpec, relative_to: Path = Path(".")) -> list[np.ndarray]:
    """Each object's masks, bool (F, H, W), by the spec's renderer; their union is ``build_sequence``."""
    out = []
    for i, obj in enumerate(spec.objects):
        try:
            out.append(render_object(obj, spec.size, spec.n_frames, relative_to))
        except ValueError as err:
            raise Problems([problem(f"objects.{i}.{_field_of(str(err))}", f"objects.{i}: {err}")]) from None
    return out


def _field_of(message: str) -> str:
    # the renderer's messages start with the spec key they concern ("mask '...': ...", "scale: ...")
    return "scale" if message.startswith("scale") else "mask"


def sequence_problems(per_object: list[np.ndarray]) -> list[dict]:
    """What generate would refuse, said before it runs (the messages of ``tasks.generate.stage.read_sequence``),
    plus an object whose path never enters the frame (the spec renders it as nothing, silently)."""
    found = []
    for i, masks in enumerate(per_object):
        if not masks.any():
            found.append(problem(f"objects.{i}.path", "the path keeps the object outside the frame in every frame"))
    union = np.logical_or.reduce(per_object)
    for kind, frames in (
        ("background (an empty mask has no object to follow)", [f for f, m in enumerate(union) if not m.any()]),
        ("foreground (a full mask has no shape or position)", [f for f, m in enumerate(union) if m.all()]),
    ):
        if len(frames) == 1:
            found.append(problem("objects", f"frame {frames[0]} is all {kind}"))
        elif frames:
            found.append(problem("objects", f"frames {', '.join(map(str, frames))} are all {kind}"))
    return found


# ---------------------------------------------------------------------------------------------
# a spec back into a page state


PNG_IN_SPEC = re.compile(r"^[\w .-]+\.png$", re.IGNORECASE)


def from_spec(spec: SequenceSpec, upload_for: Callable[[str, int], str], extras: dict | None = None) -> dict:
    """A page state (JSON) from a spec: toy masks as they are, each PNG mask through ``upload_for(name,
    object index) -> upload id``; ``extras`` (studio.yaml: prompt, seed, steps, first frame, labels)
    fill in what a spec does not hold."""
    extras = extras or {}
    labels, how = extras.get("labels", []), extras.get("how", [])
    objects = []
    for i, obj in enumerate(spec.objects):
        if obj.mask.startswith("toy:"):
            mask = {"source": "toy", "shape": obj.mask.removeprefix("toy:"), "radius": obj.radius}
        else:
            mask = {"source": "png", "upload": upload_for(obj.mask, i), "how": _at(how, i, "loaded")}
        objects.append(
            {
                "label": _at(labels, i, ""),
                "prompt": obj.prompt or "",
                "mask": mask,
                "path": obj.path.model_dump(exclude_none=True),
                "hop": obj.hop.model_dump() if obj.hop else None,
                "scale": obj.scale,
            }
        )
    state = {
        "size": list(spec.size),
        "n_frames": spec.n_frames,
        "prompt": spec.prompt or extras.get("prompt", ""),  # a spec with a scene prompt brings it
        "seed": extras.get("seed", 0),
        "steps": extras.get("steps"),
        "first_frame": extras.get("first_frame") or {"source": "controlnet"},
        "objects": objects,
    }
    return parse_state(state).model_dump()


def _at(values: list, i: int, default):
    return values[i] if i < len(values) else default


def page_extras(state: PageState) -> dict:
    """What studio.yaml keeps beside spec.yaml: the page's fields a spec has no key for."""
    return {
        "prompt": state.prompt,
        "seed": state.seed,
        "steps": state.steps,
        "first_frame": state.first_frame.model_dump(),
        "labels": [o.label for o in state.objects],
        "how": [o.mask.how if isinstance(o.mask, PngMask) else "toy" for o in state.objects],
    }
