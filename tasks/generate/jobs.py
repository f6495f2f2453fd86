"""The generate stage's jobs: (sequence x prompt x seed) from a sequences manifest, and what each reads
(its masks, each object's masks, a given first frame), checked with errors that name the file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from tasks.common.io import read_mask_pngs
from tasks.generate.config import GenerateConfig


@dataclass(frozen=True)
class Job:
    video_id: str
    sequence: str
    prompt: str
    masks_dir: str
    seed: int
    first_frame: str | None = None  # an image file, with first_frame_source: manifest
    object_prompts: tuple[str, ...] = ()  # per-object prompts (regional text); () = the prompt alone
    object_masks: tuple[str, ...] = ()  # each object's masks folder, with object_prompts

    def record(self) -> dict:
        """The job as meta.json and the outputs manifest record it (no per-object fields when it has none,
        so their columns stay what they were before per-object prompts)."""
        fields = asdict(self)
        if not self.object_prompts:
            del fields["object_prompts"], fields["object_masks"]
        else:
            fields.update(object_prompts=list(self.object_prompts), object_masks=list(self.object_masks))
        return fields


def sequences_manifest(sequences: str | Path, setting: str = "generate.sequences") -> Path:
    """The manifest file that ``sequences`` names: the file itself, or ``<folder>/manifest.yaml``."""
    path = Path(sequences)
    if path.is_dir():
        path = path / "manifest.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{setting}: manifest '{path}' not found")
    return path


def plan_jobs(cfg: GenerateConfig) -> list[Job]:
    """Every (sequence x prompt x seed) to generate, from the sequences manifest."""
    path = sequences_manifest(cfg.sequences)
    rows = (yaml.safe_load(path.read_text()) or {}).get("sequences")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{path}: expected a non-empty list under 'sequences:'")
    jobs = []
    for n, row in enumerate(rows, start=1):
        sid = str(row.get("id", "")).strip()
        if not sid:
            raise ValueError(f"{path}: row {n} has no id")
        first_frame = None
        if cfg.first_frame_source == "manifest":
            if not row.get("first_frame"):
                raise ValueError(
                    f"{path} (id '{sid}'): no first_frame, which generate.first_frame_source=manifest needs"
                )
            first_frame = str(path.parent / row["first_frame"])
        object_prompts, object_masks = _objects_of(row, path, sid)
        prompts = cfg.prompts if cfg.prompts is not None else [row.get("prompt")]
        for p, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                where = f"generate.prompts[{p}]" if cfg.prompts is not None else f"{path} (id '{sid}')"
                raise ValueError(f"{where}: empty prompt")
            for seed in cfg.seeds:
                suffix = f"-p{p}" if cfg.prompts is not None else ""
                jobs.append(
                    Job(
                        f"{sid}{suffix}-s{seed}",
                        sid,
                        prompt.strip(),
                        str(path.parent / row.get("masks", sid)),
                        seed,
                        first_frame,
                        object_prompts,
                        object_masks,
                    )
                )
    return jobs


def _objects_of(row: dict, path: Path, sid: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A manifest row's per-object prompts and masks folders (``objects: [{prompt, masks}]``), checked."""
    objects = row.get("objects") or []
    if not isinstance(objects, list):
        raise ValueError(f"{path} (id '{sid}'): objects must be a list of {{prompt, masks}}")
    prompts, masks = [], []
    for k, obj in enumerate(objects):
        prompt = obj.get("prompt") if isinstance(obj, dict) else None
        if not isinstance(prompt, str) or not prompt.strip() or not obj.get("masks"):
            raise ValueError(f"{path} (id '{sid}'): objects[{k}] needs a prompt and a masks folder")
        prompts.append(prompt.strip())
        masks.append(str(path.parent / obj["masks"]))
    return tuple(prompts), tuple(masks)


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Masks (F, H, W) as bool at ``size`` (H, W), nearest-neighbour (a mask stays binary)."""
    if masks.shape[1:] != size:
        masks = np.stack([cv2.resize(m.astype(np.uint8), size[::-1], interpolation=cv2.INTER_NEAREST) for m in masks])
    return masks.astype(bool)


def read_sequence(job: Job, size: tuple[int, int] | None = None) -> np.ndarray:
    """The job's masks, bool (F, H, W), checked: >= 2 frames, never all empty/full; resized (nearest)
    to ``size`` (H, W) when given."""
    try:
        masks = read_mask_pngs(job.masks_dir)
    except ValueError as err:
        raise ValueError(f"sequence '{job.sequence}': {err}") from None
    where = f"{job.masks_dir} (sequence '{job.sequence}')"
    if len(masks) < 2:
        raise ValueError(f"{where}: {len(masks)} mask frame(s); a video needs at least 2")
    if size is not None:
        masks = resize_masks(masks, size)
    for i, m in enumerate(masks):
        if not m.any():
            raise ValueError(f"{where}: frame {i} is all background (an empty mask has no object to follow)")
        if m.all():
            raise ValueError(f"{where}: frame {i} is all foreground (a full mask has no shape or position)")
    return masks


def read_objects(job: Job, size: tuple[int, int]) -> np.ndarray | None:
    """Each object's masks, bool (K, F, H, W) at ``size`` (nearest); None for a job without object prompts.
    An object may leave the frame (an empty mask); every object has the union's frame count."""
    if not job.object_prompts:
        return None
    out = []
    for k, folder in enumerate(job.object_masks):
        try:
            masks = read_mask_pngs(folder)
        except ValueError as err:
            raise ValueError(f"sequence '{job.sequence}', object {k}: {err}") from None
        out.append(resize_masks(masks, size))
    frames = {len(m) for m in out}
    if len(frames) != 1:
        raise ValueError(f"sequence '{job.sequence}': its objects' mask folders hold {sorted(frames)} frames")
    return np.stack(out)


def read_first_frame(job: Job, size: tuple[int, int]) -> np.ndarray | None:
    """The job's given first frame, uint8 RGB (H, W, 3) at the model's size; None when it has none."""
    if job.first_frame is None:
        return None
    where = f"{job.first_frame} (sequence '{job.sequence}')"
    image = cv2.imread(job.first_frame, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{where}: first frame not found or not an image")
    if image.shape[:2] != size:
        raise ValueError(
            f"{where}: first frame is {image.shape[1]}x{image.shape[0]}, the model generates {size[1]}x{size[0]}"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
