"""Generate: the trained mask-guided model over (prompt x mask sequence x seed).

Inputs: a checkpoint from the train stage (``latest``), the base folder it was trained on, and a
manifest of mask sequences (the toy world's held-out set by default: id, prompt, masks folder; a
sequence's objects may carry their own prompts: ``objects: [{prompt, masks}]``, each object's words
acting inside its own masks, the row's prompt, the scene, elsewhere).
Per video, written atomically under ``out_dir/<video id>/``::

    video.mp4  video.gif  sheet.png (frames with the mask contour)  masks/0000.png ...  meta.json
    objects/<k>/0000.png ...   each object's masks, for a sequence whose objects carry prompts

plus ``out_dir/manifest.csv`` over all videos. A video whose ``meta.json`` carries the same job key
(checkpoint, sampler settings, prompt, masks, seed) is kept, not generated again.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd
import torch
import yaml
from pydantic import Field

from model.pipeline import MaskVideoPipeline
from model.sampler_settings import SamplerSettings
from tasks.common.device import resolve_device
from tasks.common.io import atomic_dir, content_digest, read_mask_pngs, write_json, write_mask_pngs, write_rgb_png
from tasks.common.pretrained import ControlNetSettings
from tasks.common.video import write_gif, write_mp4
from tasks.common.visualize import contact_sheet
from tasks.contract import write_outputs_manifest
from tasks.generate.pipeline import checkpoint_folder, from_pretrained

log = logging.getLogger(__name__)
SAMPLER = SamplerSettings()  # the defaults


class GenerateConfig(ControlNetSettings):
    checkpoint_dir: str = "data/checkpoints"
    sequences: str = Field(
        "data/raw/toy/heldout",
        description=(
            "a sequences folder holding manifest.yaml (sequences: [{id, prompt, masks}]), or the manifest file itself"
        ),
    )
    prompts: list[str] | None = Field(None, description="if set, every sequence is generated with each of these")
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    out_dir: str = "data/outputs"
    # the sampler's settings: their defaults are SamplerSettings' (model/sampler_settings.py), the one place
    num_inference_steps: int = Field(SAMPLER.num_inference_steps, ge=1)
    guidance_scale: float = Field(
        SAMPLER.guidance_scale, ge=1.0, description="classifier-free guidance of frame 1 (and of 2..n by default)"
    )
    video_guidance_scale: float | None = Field(
        SAMPLER.video_guidance_scale, ge=1.0, description="guidance of frames 2..n; null = guidance_scale"
    )
    shared_noise: Literal["paper", "lamp", "off"] = SAMPLER.shared_noise
    alpha: float = Field(SAMPLER.alpha, ge=0.0, le=1.0)
    lowfreq_grid: int = Field(
        SAMPLER.lowfreq_grid, ge=0, description="> 0: frames 2..n take frame 1's g x g block means at x_T; 0 = off"
    )
    adain: bool = SAMPLER.adain
    adain_per_object: bool = Field(
        SAMPLER.adain_per_object,
        description="with per-object prompts, AdaIN matches each object's region to frame 1's, not the frame",
    )
    decode_per_object: bool = Field(
        SAMPLER.decode_per_object,
        description="with per-object prompts, each object's pixels decoded without the other objects' latents",
    )
    first_frame_source: Literal["controlnet", "text", "manifest"] = Field(
        SAMPLER.first_frame_source,
        description="controlnet (eq. 3) | text (w/o ControlNet) | manifest (each row's first_frame image)",
    )
    controlnet_scale: float = Field(
        SAMPLER.controlnet_conditioning_scale, ge=0.0, description="weight of the ControlNet's residuals for frame 1"
    )
    use_masks: bool = SAMPLER.use_masks
    mask_guidance_scale: float = Field(
        SAMPLER.mask_guidance_scale,
        ge=0.0,
        description=(
            "frames 2..n: adds w x (prediction with the masks - without them); 0 = off (one UNet pass fewer)"
        ),
    )
    window: int | None = Field(None, ge=2, description="frames per chunk; default: the trained window")
    height: int | None = Field(None, ge=8, description="output height (pixels); null = the masks' height")
    width: int | None = Field(None, ge=8, description="output width (pixels); null = the masks' width")
    fps: float = Field(8.0, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def sampler(self, trained_window: int) -> SamplerSettings:
        """These settings as the pipeline's keywords (the window: ``window``, else the trained one)."""
        return replace(
            SAMPLER,
            **self.model_dump(include=SHARED_WITH_SAMPLER),
            controlnet_conditioning_scale=self.controlnet_scale,
            window=self.window or trained_window,
        )


# The settings that change the pixels of a video (besides prompt, seed, masks and weights).
SAMPLER_FIELDS = {
    "num_inference_steps",
    "guidance_scale",
    "video_guidance_scale",
    "shared_noise",
    "alpha",
    "lowfreq_grid",
    "adain",
    "first_frame_source",
    "controlnet_scale",
    "use_masks",
    "mask_guidance_scale",
    "window",
    "controlnet_dir",
    "controlnet_condition",
    "seg_object_class",
    "seg_background_class",
    "height",
    "width",
}
# ... and those that change only the videos with per-object prompts (keyed only for them)
OBJECT_SAMPLER_FIELDS = {"adain_per_object", "decode_per_object"}
# GenerateConfig's fields that are SamplerSettings' under the same name
SHARED_WITH_SAMPLER = {f.name for f in fields(SamplerSettings)} & set(GenerateConfig.model_fields) - {"window"}


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


# ---------------------------------------------------------------------------------------------


# diffusers/accelerate build models under a context that patches torch globally (empty "meta"
# weights), which is not thread-safe: mapped tasks on a thread pool must load one at a time.
_LOAD_LOCK = threading.Lock()


def load_pipeline(checkpoint: Path, cfg: GenerateConfig) -> tuple[MaskVideoPipeline, dict]:
    """The trained model, loaded once per process and checkpoint file version."""
    stat = (checkpoint / "trainable.safetensors").stat()
    condition = cfg.controlnet_input()
    with _LOAD_LOCK:
        return _load_pipeline(
            str(checkpoint), stat.st_mtime_ns, stat.st_size, cfg.controlnet_dir, condition, device_of(cfg)
        )


@functools.lru_cache(maxsize=2)
def _load_pipeline(
    checkpoint: str, _mtime: int, _size: int, controlnet_dir: str | None, condition, device: str
) -> tuple[MaskVideoPipeline, dict]:
    """``from_pretrained`` (the file's mtime/size key the cache)."""
    pipe = from_pretrained(
        checkpoint,
        controlnet_dir=controlnet_dir,
        controlnet_condition=condition,
        device=device,
        setting="generate.checkpoint_dir",
        controlnet_setting="generate.controlnet_dir",
    )
    return pipe, pipe.checkpoint_config


def resolve_checkpoint(cfg: GenerateConfig) -> Path:
    return checkpoint_folder(cfg.checkpoint_dir, "generate.checkpoint_dir")


def device_of(cfg: GenerateConfig) -> str:
    return resolve_device(cfg.device, "generate.device").type


def job_key(
    job: Job,
    masks: np.ndarray,
    checkpoint: Path,
    cfg: GenerateConfig,
    base_dir: str,
    objects: np.ndarray | None = None,
) -> str:
    """What a video depends on: sampler settings, prompt, seed, masks, and the weights by content
    (the checkpoint, and the base it sits on: a retrained checkpoint or rebuilt base keeps its sizes)."""
    sampler = cfg.model_dump(include=SAMPLER_FIELDS)
    weights = content_digest(
        checkpoint / "trainable.safetensors",
        checkpoint / "config.json",
        base_dir,
        *([cfg.controlnet_dir] if cfg.controlnet_dir else []),
        *([job.first_frame] if job.first_frame else []),
    )
    keyed = [sampler, job.prompt, job.seed, checkpoint.name, weights]
    if job.object_prompts:  # per-object prompts and masks; a job without them keeps the key it had
        keyed += [list(job.object_prompts), cfg.model_dump(include=OBJECT_SAMPLER_FIELDS)]
    h = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode())
    h.update(np.packbits(masks).tobytes())
    if objects is not None:
        h.update(np.packbits(objects).tobytes())
    return h.hexdigest()[:16]


# A fast tokenizer keeps padding and truncation as state of its Rust backend: counting a prompt's tokens
# (no padding, no truncation) on one worker thread while encode_prompt pads on another mixes the two
# ("expected sequence of length 2 ... got 30"). Counting uses a copy of its own, one per tokenizer.
_COUNTERS: dict[int, object] = {}
_COUNTERS_LOCK = threading.Lock()


def _token_counter(tokenizer):
    with _COUNTERS_LOCK:
        if id(tokenizer) not in _COUNTERS:
            # the original is kept alive beside its copy, so its id cannot be reused by another tokenizer
            _COUNTERS[id(tokenizer)] = (tokenizer, copy.deepcopy(tokenizer))
        return _COUNTERS[id(tokenizer)][1]


def warn_if_truncated(pipe: MaskVideoPipeline, prompt: str, video_id: str) -> int:
    """Prompts past the text encoder's limit are truncated (as CLIP does): say so. Returns the token count."""
    limit = min(pipe.tokenizer.model_max_length, pipe.text_encoder.config.max_position_embeddings)
    counter = _token_counter(pipe.tokenizer)
    with _COUNTERS_LOCK:  # one counting call at a time on the shared copy
        n_tokens = len(counter(prompt, truncation=False).input_ids)
    if n_tokens > limit:
        log.warning(
            "%s: prompt has %d tokens, the text encoder reads %d; the rest is ignored", video_id, n_tokens, limit
        )
    return n_tokens


def native_size(pipe: MaskVideoPipeline) -> tuple[int, int]:
    """(H, W) in pixels the base UNet was trained at (SD1.4: 512x512; the toy world: 64x64)."""
    sample = pipe.base_unet.config.sample_size
    h, w = sample if isinstance(sample, (list, tuple)) else (sample, sample)
    return h * pipe.vae_scale_factor, w * pipe.vae_scale_factor


def size_multiple(pipe: MaskVideoPipeline) -> int:
    """Output sides must divide by this: the VAE's factor times the UNet's downsampling."""
    return pipe.vae_scale_factor * 2 ** (len(pipe.base_unet.config.block_out_channels) - 1)


_SIZE_WARNED: set = set()


def output_size(pipe: MaskVideoPipeline, cfg: GenerateConfig, masks_size: tuple[int, int], config: dict):
    """(H, W) of the video: ``generate.height``/``width``, else the masks' size; checked against the
    UNet's downsampling, and a warning (once per size) when the base or the training saw other sizes."""
    size = (cfg.height or masks_size[0], cfg.width or masks_size[1])
    multiple = size_multiple(pipe)
    for name, side in zip(("height", "width"), size):
        if side % multiple:
            source = f"generate.{name}" if getattr(cfg, name) else f"the masks' {name} (generate.sequences)"
            raise ValueError(f"{source}: {side} px is not a multiple of {multiple}, which this base model needs")
    trained = tuple(config["frame_size"]) if config.get("frame_size") else None
    for what, other in (("the base model was trained at", native_size(pipe)), ("train saw clips of", trained)):
        if other is not None and other != size and (what, size) not in _SIZE_WARNED:
            _SIZE_WARNED.add((what, size))
            log.warning(
                "generating %dx%d (W x H) but %s %dx%d; set generate.height/width or the masks' size to match",
                size[1],
                size[0],
                what,
                other[1],
                other[0],
            )
    return size


def generate_one(job: Job, cfg: GenerateConfig, checkpoint: Path, progress=None) -> dict:
    """Generate one video (or keep the one already made for the same key); returns its manifest row."""
    pipe, config = load_pipeline(checkpoint, cfg)
    masks = read_sequence(job)
    size = output_size(pipe, cfg, masks.shape[1:], config)
    masks, first_frame = read_sequence(job, size), read_first_frame(job, size)
    objects = read_objects(job, size)
    if objects is not None and objects.shape[1] != len(masks):
        raise ValueError(f"sequence '{job.sequence}': {objects.shape[1]} object mask frames, {len(masks)} masks")
    key = job_key(job, masks, checkpoint, cfg, config["base_dir"], objects)
    folder = Path(cfg.out_dir) / job.video_id
    meta_path = folder / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("key") == key:
        return json.loads(meta_path.read_text())
    for prompt in (job.prompt, *job.object_prompts):
        warn_if_truncated(pipe, prompt, job.video_id)
    t0 = time.perf_counter()
    frames = pipe(
        job.prompt,
        masks,
        first_frame=first_frame,
        object_prompts=list(job.object_prompts) or None,
        object_masks=objects,
        generator=torch.Generator().manual_seed(job.seed),
        callback=progress,
        **cfg.sampler(config["window"]).to_dict(),
    ).frames
    seconds = time.perf_counter() - t0
    log.info("%s: %d frames in %.1f s", job.video_id, len(frames), seconds)
    # meta.json and the manifest are cached outputs: only what the same inputs always give, no timings
    meta = {
        **job.record(),
        "key": key,
        "checkpoint": checkpoint.name,
        "n_frames": len(frames),
        "video": f"{job.video_id}/video.mp4",
        "sheet": f"{job.video_id}/sheet.png",
    }
    write_video(folder, frames, masks, meta, cfg.fps, objects)
    return meta


def write_video(
    folder: Path, frames: np.ndarray, masks: np.ndarray, meta: dict, fps: float, objects: np.ndarray | None = None
) -> None:
    """One video's folder, atomically: what the evaluate stage and people read (module docstring)."""
    with atomic_dir(folder) as tmp:
        for k, object_masks in enumerate([] if objects is None else objects):
            write_mask_pngs(object_masks, tmp / "objects" / str(k))
        write_mp4(tmp / "video.mp4", frames, fps)
        write_gif(tmp / "video.gif", frames, fps)
        np.save(tmp / "frames.npy", frames)  # exact pixels for evaluation (mp4 is lossy)
        write_mask_pngs(masks, tmp / "masks")
        sheet = contact_sheet([frames], masks=[masks], max_frames=len(frames))
        write_rgb_png(tmp / "sheet.png", sheet)
        write_json(tmp / "meta.json", meta)


def one_after_another(jobs: list[Job], cfg: GenerateConfig, checkpoint: Path) -> list[dict]:
    """Run the jobs in this process, in order, with a progress bar."""
    from tqdm import tqdm

    return [generate_one(job, cfg, checkpoint) for job in tqdm(jobs, desc="generate", unit="video")]


def generate(
    cfg: GenerateConfig,
    jobs: list[Job] | None = None,
    run_jobs: Callable[[list[Job], GenerateConfig, Path], list[dict]] = one_after_another,
) -> pd.DataFrame:
    """The generate loop: every job of ``cfg`` (or ``jobs``) with the latest checkpoint, then the outputs
    manifest. ``run_jobs`` says how the jobs run: here one after another; the generate flow (the stage,
    the batch deployment, the scheduled evaluation) maps them as Prefect tasks."""
    checkpoint = resolve_checkpoint(cfg)
    jobs = plan_jobs(cfg) if jobs is None else jobs
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    return write_outputs_manifest(cfg.out_dir, run_jobs(jobs, cfg, checkpoint))
