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
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model.pipeline import MaskVideoPipeline
from model.text import token_limit
from tasks.common.device import resolve_device
from tasks.common.io import atomic_dir, content_digest, write_json, write_mask_pngs, write_rgb_png
from tasks.common.video import write_gif, write_mp4
from tasks.common.visualize import contact_sheet
from tasks.contract import write_outputs_manifest
from tasks.generate.config import OBJECT_SAMPLER_FIELDS, SAMPLER_FIELDS, GenerateConfig
from tasks.generate.jobs import Job, plan_jobs, read_first_frame, read_objects, read_sequence
from tasks.generate.pipeline import checkpoint_folder, from_pretrained

log = logging.getLogger(__name__)

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
    if device == "cpu":  # frames 2..n need neither the text encoder nor the ControlNet resident
        pipe.enable_idle_page_out()
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
    limit = token_limit(pipe.tokenizer, pipe.text_encoder)
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
