"""The studio's state of the world (settings, the model, uploads, the cut-out, the job queue) and the one
check every page state passes before any work: the spec's own checks, the studio's bounds, then what
generate would refuse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from studio.bounds import prompt_problems, spec_bound_problems
from studio.cutout import Cutter
from studio.familiar import Familiarity
from studio.jobqueue import Generator
from studio.jobs import Deployment, InProcess
from studio.model_info import ModelInfo, model_info, size_problems
from studio.runs import mask_file
from studio.settings import Settings, StageSettings, stage_settings
from studio.spec import PageState, Problems, parse_state, problem, render, sequence_problems, to_spec
from studio.uploads import UploadError, Uploads, ensure_data_dir
from tasks.common.toy import SHAPES
from tasks.contract import read_clip_manifest
from tasks.masks.sequences import SequenceSpec


@dataclass
class Studio:
    settings: Settings
    stages: StageSettings
    model: ModelInfo
    uploads: Uploads
    cutter: Cutter
    generator: Generator
    familiarity: Familiarity

    @property
    def runs_dir(self) -> Path:
        return self.settings.data_dir  # runs are <UTC time>-<id>/ beside uploads/

    def size_of(self, given) -> tuple[int, int]:
        """The frame size an upload is fitted to ([height, width] from the page, else the model's), checked."""
        try:
            size = (int(given[0]), int(given[1])) if given else self.model.default_size
        except (TypeError, ValueError, IndexError, OverflowError):
            raise UploadError("size", "height and width must be whole numbers") from None
        top = self.settings.bounds.max_side
        if not all(8 <= s <= top for s in size):
            raise UploadError("size", f"height and width must be 8 to {top} pixels (--max-side)", 422)
        return size

    def bounded_spec(self, spec: SequenceSpec) -> SequenceSpec:
        """``spec`` if it is within the studio's bounds, else Problems naming each field and its bound."""
        found = spec_bound_problems(spec, self.settings.bounds)
        if found:
            raise Problems(found)
        return spec

    def check(self, raw: dict, for_generate: bool = False) -> Checked:
        """A page state checked as generate would check it. A spec that does not validate, is past the
        bounds or does not render raises Problems; what only generate refuses (a size, an empty frame) is
        in ``errors``."""
        state = parse_state(raw)
        too_long = prompt_problems(state, self.settings.bounds)
        if too_long:
            raise Problems(too_long)
        spec = self.bounded_spec(to_spec(state, mask_file))
        per_object = render(spec, self.uploads.root)
        errors = sequence_problems(per_object)
        size_errors, warnings = size_problems(spec.size, self.model)
        errors += size_errors
        first = self._first_frame(state, spec, errors, warnings)
        if for_generate:
            if not state.prompt.strip():
                errors.append(problem("prompt", "empty prompt: say what the video shows"))
            if self.model.checkpoint is None:
                errors.append(problem("generate", self.model.problem))
        return Checked(state, spec, per_object, errors, warnings, first)

    def _first_frame(self, state: PageState, spec: SequenceSpec, errors: list, warnings: list) -> np.ndarray | None:
        if state.first_frame.source != "image":
            return None
        if state.first_frame.upload is None:
            errors.append(problem("first_frame", "choose an image or a clip frame, or let the ControlNet make it"))
            return None
        first = self.uploads.read_image(state.first_frame.upload)
        if first.shape[:2] != tuple(spec.size):
            errors.append(
                problem(
                    "first_frame",
                    f"the first frame is {first.shape[1]}x{first.shape[0]}, the video is "
                    f"{spec.size[1]}x{spec.size[0]}: choose it again",
                )
            )
            return None
        far = self.familiarity.warning(first)
        if far:
            warnings.append(problem("first_frame", far))
        return first


@dataclass
class Checked:
    state: PageState
    spec: SequenceSpec
    per_object: list[np.ndarray]
    errors: list[dict]
    warnings: list[dict]
    first_frame: np.ndarray | None


def build_studio(settings: Settings) -> Studio:
    stages = stage_settings(settings)
    ensure_data_dir(settings.data_dir)
    info = model_info(stages.generate)
    runner = Deployment(settings.deployment) if settings.via_deployment else InProcess()
    return Studio(
        settings,
        stages,
        info,
        Uploads(settings.data_dir / "uploads"),
        Cutter(stages.masks),
        Generator(runner, stages.generate, stages.evaluate, settings.max_queued),
        Familiarity(settings.clips_dir),
    )


def default_state(studio: Studio) -> dict:
    """What the page opens with: one toy circle crossing the frame, the held-out set's first prompt."""
    h, w = studio.model.default_size
    n = 16
    prompt = first_prompt(studio.stages.generate.sequences) or ""
    shape = next((s for s in SHAPES if s in prompt.split()), "circle")  # the toy prompt's shape, if it names one
    return {
        "size": [h, w],
        "n_frames": n,
        "prompt": prompt,
        "seed": 0,
        "steps": None,
        "first_frame": {"source": "controlnet"},
        "objects": [
            {
                "label": "object 1",
                "mask": {"source": "toy", "shape": shape, "radius": round(min(h, w) / 9)},
                "path": {"type": "keyframes", "points": [[0, w * 0.2, h * 0.7], [n - 1, w * 0.8, h * 0.7]]},
                "hop": None,
                "scale": 1.0,
            }
        ],
    }


def first_prompt(sequences: str) -> str | None:
    path = Path(sequences)
    path = path / "manifest.yaml" if path.is_dir() else path
    try:
        rows = yaml.safe_load(path.read_text()).get("sequences") or []
        return str(rows[0]["prompt"])
    except (OSError, AttributeError, IndexError, KeyError, TypeError, yaml.YAMLError):
        return None


def clip_ids(studio: Studio) -> list[str]:
    try:
        return read_clip_manifest(studio.settings.clips_dir)["id"].tolist()
    except FileNotFoundError:
        return []
