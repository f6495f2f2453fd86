"""Ingest: videos + a manifest in, fixed-size RGB clips + a clip manifest out.

Each video is decoded with decord, ``n_frames`` are sampled (uniformly or by stride), resized so
the short side fits and centre-cropped to ``height x width``. User masks and ground-truth masks
go through the same indices and crop. Output, written atomically under ``out_dir``::

    <id>.npz        frames uint8 (F, H, W, 3); user_masks / truth_masks bool (F, H, W) when given,
                    object_masks bool (K, F, H, W) for a video whose objects have their own prompts
    manifest.csv    id, clip, source_path, fps, orig_width, orig_height, n_source_frames,
                    frame_indices, content_hash, prompt, mask_source, has_truth, box, + extra columns
                    (+ object_prompts, tasks.contract, when some video has objects)
    report.json     which videos were ingested, which were skipped and why
    preview.png     contact sheet of the clips
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from tqdm import tqdm

from tasks.common.io import (
    BadInput,
    atomic_dir,
    file_sha256,
    parse_numbers,
    read_mask_pngs,
    save_clip,
    write_json,
    write_rgb_png,
)
from tasks.common.params import StageConfig
from tasks.common.visualize import contact_sheet
from tasks.contract import OBJECT_PROMPTS, object_prompts_cell
from tasks.ingest.manifest import ManifestRow, parse_manifest

log = logging.getLogger(__name__)

# Container signatures we recognise, to tell "truncated video" from "not a video at all".
_MAGIC = {b"ftyp": 4, b"\x1aE\xdf\xa3": 0, b"RIFF": 0, b"OggS": 0, b"FLV": 0, b"\x00\x00\x01\xba": 0}


class IngestConfig(StageConfig):
    manifest: str = "data/raw/toy/manifest.yaml"
    input_dir: str = Field("data/raw/toy", description="the DVC dependency: folder holding manifest + media")
    data_root: str = Field("data", description="every manifest path must stay inside this folder")
    out_dir: str = "data/clips"
    n_frames: int = Field(16, ge=2)
    sampling: Literal["uniform", "stride"] = "uniform"
    stride: int = Field(1, ge=1)
    start: int = Field(0, ge=0, description="first frame for stride sampling")
    height: int = Field(64, ge=8, multiple_of=2)
    width: int = Field(64, ge=8, multiple_of=2)
    max_long_side: int = Field(4096, ge=64, description="larger videos are refused, not silently decoded")
    allow_grayscale: bool = False
    allow_vfr: bool = Field(False, description="accept variable frame rate; frames are then sampled by time")
    vfr_tolerance: float = Field(0.1, gt=0, description="max relative deviation of frame intervals from median")
    on_bad_input: Literal["fail", "skip"] = "fail"
    tokenizer: str | None = Field(
        "base/toy/tokenizer", description="the text encoder's tokenizer folder: prompts it would cut are reported"
    )

    @model_validator(mode="after")
    def _manifest_inside_input_dir(self):
        if not Path(self.manifest).resolve().is_relative_to(Path(self.input_dir).resolve()):
            raise ValueError(f"manifest '{self.manifest}' must lie inside input_dir '{self.input_dir}'")
        return self


@dataclass
class Clip:
    row: ManifestRow
    frames: np.ndarray  # uint8 (F, H, W, 3)
    indices: np.ndarray  # source frame index of each clip frame
    fps: float
    orig_size: tuple[int, int]  # (width, height)
    n_source_frames: int
    user_masks: np.ndarray | None
    truth_masks: np.ndarray | None
    object_masks: np.ndarray | None = None  # (K, F, H, W), the manifest's objects in order


def sample_indices(n_source: int, cfg: IngestConfig, timestamps: np.ndarray | None = None) -> np.ndarray:
    """Source frame indices for the clip; raises ValueError when the video is too short.

    With ``timestamps`` (seconds, per frame) uniform sampling is uniform in time, which is what a
    variable-frame-rate video needs; otherwise it is uniform in frame index.
    """
    n = cfg.n_frames
    if cfg.sampling == "stride":
        need = cfg.start + (n - 1) * cfg.stride + 1
        if n_source < need:
            raise ValueError(
                f"has {n_source} frames; ingest.n_frames={n} with stride {cfg.stride} "
                f"from frame {cfg.start} needs at least {need}"
            )
        return cfg.start + np.arange(n) * cfg.stride
    if n_source < n:
        raise ValueError(f"has {n_source} frames, fewer than ingest.n_frames={n}")
    if timestamps is None:
        return np.linspace(0, n_source - 1, n).round().astype(int)
    targets = np.linspace(timestamps[0], timestamps[-1], n)
    idx = np.abs(timestamps[None, :] - targets[:, None]).argmin(axis=1)
    return np.maximum.accumulate(idx)  # nearest-in-time, never going backwards


def fit_and_crop(image: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    """Resize so the image covers ``height x width`` (short side fits), then centre-crop."""
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    y0, x0 = (new_h - height) // 2, (new_w - width) // 2
    return resized[y0 : y0 + height, x0 : x0 + width]


def to_clip_pixels(xy: np.ndarray, orig_size: tuple[int, int], cfg: IngestConfig) -> np.ndarray:
    """Map source-pixel coordinates (..., 2) as x, y through fit_and_crop's scale and centre crop."""
    w, h = orig_size
    scale = max(cfg.height / h, cfg.width / w)
    new_w, new_h = max(cfg.width, round(w * scale)), max(cfg.height, round(h * scale))
    offset = np.array([(new_w - cfg.width) // 2, (new_h - cfg.height) // 2])
    xy = np.asarray(xy, float).reshape(-1, 2) * np.array([new_w / w, new_h / h]) - offset
    return np.clip(xy, 0, [cfg.width, cfg.height])


def _coords_text(values: np.ndarray) -> str:
    return " ".join(f"{v:g}" for v in np.round(values.ravel(), 2))


def resample_masks(masks: np.ndarray, indices: np.ndarray, cfg: IngestConfig) -> np.ndarray:
    """Pick a mask per clip frame and crop it like the frames; area-average then threshold at 0.5."""
    out = [fit_and_crop(masks[i].astype(np.float32), cfg.height, cfg.width) >= 0.5 for i in indices]
    return np.stack(out)


def _describe_undecodable(path: Path, err: Exception) -> str:
    head = path.read_bytes()[:12]
    known = any(head[off : off + len(magic)] == magic for magic, off in _MAGIC.items())
    if known:
        return f"truncated or corrupt video: the container is recognised but cannot be decoded ({err})"
    return f"not a video (decoder could not open it: {err})"


def _check_user_masks(masks: np.ndarray, folder: Path, n_source: int, orig_size: tuple[int, int]) -> None:
    if len(masks) != n_source:
        raise BadInput(folder, f"{len(masks)} mask PNGs for a video of {n_source} frames (need one per frame)")
    w, h = orig_size
    if masks.shape[1:] != (h, w):
        raise BadInput(folder, f"masks are {masks.shape[2]}x{masks.shape[1]}, the video is {w}x{h}")


def decode_clip(row: ManifestRow, cfg: IngestConfig) -> Clip:
    """Decode, validate and crop one video. Raises BadInput naming the file and the problem."""
    from decord import DECORDError, VideoReader, cpu  # decord is heavy; import when needed

    path = row.video
    if not path.is_file():
        raise BadInput(path, "video file not found", row.id)
    if path.stat().st_size == 0:
        raise BadInput(path, "empty file (0 bytes), not a video", row.id)
    try:
        reader = VideoReader(str(path), ctx=cpu(0))
        n_source = len(reader)
        first = reader[0].asnumpy()
    except (DECORDError, RuntimeError, IndexError) as err:
        raise BadInput(path, _describe_undecodable(path, _first_line(err)), row.id) from None
    h, w = first.shape[:2]
    if max(h, w) > cfg.max_long_side:
        raise BadInput(
            path,
            f"resolution {w}x{h} exceeds ingest.max_long_side={cfg.max_long_side}; "
            "downscale it first or raise the cap",
            row.id,
        )
    fps = float(reader.get_avg_fps())
    stamps = reader.get_frame_timestamp(np.arange(n_source))[:, 0]
    intervals = np.diff(stamps)
    vfr = len(intervals) > 1 and np.abs(intervals - np.median(intervals)).max() > cfg.vfr_tolerance * np.median(
        intervals
    )
    if vfr and not cfg.allow_vfr:
        raise BadInput(
            path,
            f"variable frame rate (frame intervals {intervals.min():.3f}-{intervals.max():.3f} s); "
            "re-encode at a constant rate or set ingest.allow_vfr: true",
            row.id,
        )
    try:
        indices = sample_indices(n_source, cfg, stamps if vfr else None)
    except ValueError as err:
        raise BadInput(path, str(err), row.id) from None
    try:
        raw = reader.get_batch(indices.tolist()).asnumpy()
    except (DECORDError, RuntimeError) as err:
        raise BadInput(
            path, f"truncated or corrupt video: decoding frames failed ({_first_line(err)})", row.id
        ) from None
    if len(raw) != len(indices):
        raise BadInput(path, f"truncated video: got {len(raw)} of {len(indices)} frames", row.id)
    spread = np.abs(raw[..., 0].astype(int) - raw[..., 1]).max(), np.abs(raw[..., 1].astype(int) - raw[..., 2]).max()
    if max(spread) <= 2 and not cfg.allow_grayscale:
        raise BadInput(
            path,
            "grayscale video (R = G = B in every sampled frame); the model needs colour "
            "(set ingest.allow_grayscale: true to use it anyway)",
            row.id,
        )
    frames = np.stack([fit_and_crop(f, cfg.height, cfg.width) for f in raw])

    def clip_masks(folder: Path | None) -> np.ndarray | None:
        if folder is None:
            return None
        try:
            full = read_mask_pngs(folder)
        except ValueError as err:
            raise BadInput(folder, str(err).removeprefix(f"{folder}: "), row.id) from None
        _check_user_masks(full, folder, n_source, (w, h))
        return resample_masks(full, indices, cfg)

    objects = np.stack([clip_masks(folder) for _, folder in row.objects]) if row.objects else None
    return Clip(
        row, frames, indices, fps, (w, h), n_source, clip_masks(row.masks), clip_masks(row.truth_masks), objects
    )


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def clip_record(clip: Clip, cfg: IngestConfig) -> dict:
    row = clip.row
    return {
        "id": row.id,
        "clip": f"{row.id}.npz",
        "source_path": _relative(row.video, Path(cfg.data_root)),
        "fps": round(clip.fps, 4),
        "orig_width": clip.orig_size[0],
        "orig_height": clip.orig_size[1],
        "n_source_frames": clip.n_source_frames,
        "frame_indices": " ".join(map(str, clip.indices.tolist())),
        "content_hash": file_sha256(row.video),
        "prompt": row.prompt,
        "mask_source": "user" if clip.user_masks is not None or clip.object_masks is not None else "none",
        "has_truth": clip.truth_masks is not None,
        **row.extra,
        # first-frame prompts for SAM are given in source pixels and stored in clip pixels
        "box": "" if row.box is None else _coords_text(to_clip_pixels(row.box, clip.orig_size, cfg)),
        **({OBJECT_PROMPTS: object_prompts_cell([p for p, _ in row.objects])} if row.objects else {}),
        **(
            {
                "points": _coords_text(
                    to_clip_pixels(
                        parse_numbers(row.extra["points"], "points", cfg.manifest, row.id), clip.orig_size, cfg
                    )
                )
            }
            if str(row.extra.get("points", "")).strip()
            else {}
        ),
    }


def _relative(path: Path, root: Path) -> str:
    return str(path.resolve().relative_to(root.resolve().parent))


def prompts_cut(rows: list[ManifestRow], tokenizer_dir: str | None) -> dict[str, str]:
    """Video id (``<id> objects[k]`` for an object's prompt) -> the words of its prompt past the text
    encoder's limit (CLIP: 77 tokens with start and end), for each prompt the tokenizer would truncate;
    a warning names the video and the words. Training and generation truncate as CLIP does; this says
    so before anything is trained."""
    if tokenizer_dir is None:
        return {}
    if not Path(tokenizer_dir).is_dir():
        raise FileNotFoundError(f"ingest.tokenizer: tokenizer folder '{tokenizer_dir}' not found")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    limit, cut = tokenizer.model_max_length, {}
    for row in rows:
        named = [(row.id, "prompt", row.prompt)]
        named += [(f"{row.id} objects[{k}]", f"objects[{k}].prompt", p) for k, (p, _) in enumerate(row.objects)]
        for key, what, prompt in named:
            ids = tokenizer(prompt, truncation=False).input_ids
            if len(ids) > limit:
                rest = tokenizer.decode(
                    ids[limit - 1 : -1], skip_special_tokens=True
                )  # past the kept ones and the end token
                cut[key] = rest
                log.warning(
                    "%s: %s has %d tokens, the text encoder reads %d; cut: '%s'", row.id, what, len(ids), limit, rest
                )
    return cut


def ingest(cfg: IngestConfig) -> dict:
    """Run the ingest stage. Returns the report; raises BadInput on the first problem when on_bad_input=fail."""
    rows, problems = parse_manifest(cfg.manifest, cfg.data_root)
    if problems and cfg.on_bad_input == "fail":
        raise problems[0]
    cut = prompts_cut(rows, cfg.tokenizer)
    clips: list[Clip] = []
    for row in tqdm(rows, desc="ingest", unit="video"):
        try:
            clips.append(decode_clip(row, cfg))
        except BadInput as err:
            if cfg.on_bad_input == "fail":
                raise
            problems.append(err)
    for err in problems:
        log.warning("skipped: %s", err)
    if not clips:
        raise BadInput(cfg.manifest, "no usable videos: " + "; ".join(str(p) for p in problems))
    report = {
        "ingested": [c.row.id for c in clips],
        "skipped": [{"id": p.video_id, "file": p.where, "problem": p.problem} for p in problems],
        "prompts_cut": cut,
    }
    with atomic_dir(cfg.out_dir) as out:
        for clip in clips:
            save_clip(
                out / f"{clip.row.id}.npz",
                clip.frames,
                user_masks=clip.user_masks,
                truth_masks=clip.truth_masks,
                object_masks=clip.object_masks,
            )
        pd.DataFrame([clip_record(c, cfg) for c in clips]).to_csv(out / "manifest.csv", index=False)
        write_json(out / "report.json", report)
        sheet = contact_sheet([c.frames for c in clips], max_frames=8)
        write_rgb_png(out / "preview.png", sheet)
    return report
