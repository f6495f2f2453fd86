"""SAM (segment-anything) for the masks stage: building, loading, and segmenting one clip.

A model is built by an explicit builder per model type (every size at one call site), then its
weights are loaded from a local checkpoint with ``torch.load(weights_only=True)`` (a checkpoint
is data, never code to run). ``tiny`` is a ~0.2M-parameter SAM at image size 256 for tests and
speed checks: same modules, same loader, useless weights.

First frame: the manifest's box and/or points when given; otherwise SAM's automatic candidates,
and the subject is chosen by :func:`choose_subject` (the candidate that overlaps the clip's
moving region most). Later frames: :func:`tasks.segment.propagate.propagate`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.build_sam import build_sam_vit_b, build_sam_vit_h, build_sam_vit_l
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from tasks.common.geometry import iou
from tasks.common.io import BadInput
from tasks.segment.propagate import FirstFramePrompt, LostRule, Track, mask_box, propagate


def build_tiny_sam() -> Sam:
    """A SAM small enough for unit tests: image size 256, one ViT block, 32 channels."""
    image_size, patch, dim = 256, 16, 32
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=image_size,
            patch_size=patch,
            embed_dim=dim,
            depth=1,
            num_heads=2,
            mlp_ratio=2,
            out_chans=dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=0,
            global_attn_indexes=(0,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(image_size // patch, image_size // patch),
            input_image_size=(image_size, image_size),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


# Builders make the architecture only (checkpoint=None): weights are loaded by load_sam.
SAM_BUILDERS: dict[str, Callable[[], Sam]] = {
    "vit_b": partial(build_sam_vit_b, checkpoint=None),
    "vit_l": partial(build_sam_vit_l, checkpoint=None),
    "vit_h": partial(build_sam_vit_h, checkpoint=None),
    "tiny": build_tiny_sam,
}


def load_sam(checkpoint: str | Path, model_type: str, device: str = "cpu") -> Sam:
    """Build a ``model_type`` SAM and load its weights from ``checkpoint`` (a state dict file).

    Raises BadInput naming the file when it is missing, unreadable, not a plain state dict, or
    made for another model type; ValueError for an unknown model type.
    """
    if model_type not in SAM_BUILDERS:
        raise ValueError(
            f"masks.sam_model_type: unknown SAM model type '{model_type}', expected one of {sorted(SAM_BUILDERS)}"
        )
    path = Path(checkpoint)
    if not path.is_file():
        raise BadInput(path, "SAM checkpoint not found (set masks.sam_checkpoint to a local file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated, corrupt or unsafe files
        raise BadInput(
            path,
            f"cannot read SAM checkpoint, corrupt or not a weights file ({type(err).__name__}: {_first_line(err)})",
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(path, "SAM checkpoint is not a state dict of tensors")
    sam = SAM_BUILDERS[model_type]()
    problem = state_dict_mismatch(sam.state_dict(), state)
    if problem:
        raise BadInput(
            path, f"checkpoint does not fit SAM model type '{model_type}' ({problem}); check masks.sam_model_type"
        )
    sam.load_state_dict(state)
    return sam.to(device).eval()


def state_dict_mismatch(expected: dict, given: dict) -> str | None:
    """What keeps ``given`` from loading into a model whose state dict is ``expected``, or None."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        return f"{len(missing)} missing, {len(unexpected)} unexpected weights, e.g. '{example}'"
    for k, v in expected.items():
        if given[k].shape != v.shape:
            return f"'{k}' is {tuple(given[k].shape)} in the file, {tuple(v.shape)} in the model"
    return None


def _first_line(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else ""


class FramePredictor(SamPredictor):
    """A SamPredictor that computes each frame's image embedding once.

    The embedding is the expensive part (seconds per frame for vit_b on a CPU). Setting the
    same frame again is free, and the automatic mask generator's ``reset_image`` (it only wants
    to free memory) keeps the embedding, so the generator and propagation share one per frame.
    ``n_embeddings`` counts the real ones.
    """

    def __init__(self, model: Sam):
        self._frame_key = None
        self.n_embeddings = 0
        super().__init__(model)

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """``image``: uint8 (H, W, 3) in [0, 255]."""
        key = (image.shape, image_format, hashlib.blake2b(np.ascontiguousarray(image).tobytes()).digest())
        if self.is_image_set and key == self._frame_key:
            return
        super().set_image(image, image_format)
        self._frame_key = key
        self.n_embeddings += 1

    def reset_image(self) -> None:
        if getattr(self, "_frame_key", None) is None:
            super().reset_image()

    def forget(self) -> None:
        """Really drop the current embedding."""
        self._frame_key = None
        super().reset_image()


@dataclass(frozen=True)
class SamSettings:
    """SAM knobs of the masks stage (copied from ``MasksConfig``)."""

    points_per_side: int = 16  # automatic candidates: a grid of points_per_side^2 prompts
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.92
    max_subject_area: float = 0.5  # a candidate covering more of the frame is background
    min_motion_overlap: float = 0.1  # IoU with the moving region needed to call a candidate the subject
    box_padding: float = 0.1
    lost: LostRule = LostRule()


def automatic_candidates(predictor: FramePredictor, frame: np.ndarray, settings: SamSettings) -> list[np.ndarray]:
    """SamAutomaticMaskGenerator's masks, bool (H, W) each, for ``frame`` uint8 (H, W, 3)."""
    generator = SamAutomaticMaskGenerator(
        predictor.model,
        points_per_side=settings.points_per_side,
        pred_iou_thresh=settings.pred_iou_thresh,
        stability_score_thresh=settings.stability_score_thresh,
    )
    generator.predictor = predictor  # share the embedding cache with propagation
    return [np.asarray(a["segmentation"], bool) for a in generator.generate(frame)]


def choose_subject(candidates: list[np.ndarray], reference: np.ndarray, settings: SamSettings) -> np.ndarray | None:
    """The rule that picks the prompt's subject among automatic candidates, without a prompt.

    1. Candidates covering more than ``max_subject_area`` of the frame are background (ground,
       sky, water) and dropped.
    2. The subject is what moves: the candidate with the highest IoU with ``reference`` (the
       clip's moving region in this frame, from background subtraction, or the last good mask
       when re-prompting a lost object) wins; a larger area breaks ties.
    3. Below ``min_motion_overlap`` IoU no candidate is the subject (None).
    """
    total = reference.size
    kept = [c for c in candidates if 0 < c.sum() <= settings.max_subject_area * total]
    if not kept or not reference.any():
        return None
    best = max(kept, key=lambda c: (iou(c, reference), c.sum()))
    return best if iou(best, reference) >= settings.min_motion_overlap else None


def first_frame_mask(
    predictor: FramePredictor,
    frame: np.ndarray,
    prompt: FirstFramePrompt,
    motion: np.ndarray,
    settings: SamSettings,
    video_id: str,
) -> np.ndarray:
    """The subject's mask bool (H, W) in ``frame``, from the user's prompt or automatically.

    Without a prompt: :func:`choose_subject` among the automatic candidates with the moving
    region ``motion`` bool (H, W); if none qualifies, SAM is prompted with the moving region's
    box. Raises BadInput when there is neither a prompt nor anything moving.
    """
    predictor.set_image(frame)
    if prompt.given:
        points = prompt.points
        masks, scores, _ = predictor.predict(
            point_coords=points,
            point_labels=None if points is None else np.ones(len(points), int),
            box=prompt.box,
            multimask_output=prompt.box is None,
        )  # points alone are ambiguous: ask for 3
        mask = np.asarray(masks[int(np.argmax(scores))], bool)
        if not mask.any():
            raise BadInput(video_id, "frame 0: SAM found nothing at the manifest's box/points", video_id)
        return mask
    chosen = choose_subject(automatic_candidates(predictor, frame, settings), motion, settings)
    if chosen is not None:
        return chosen
    if not motion.any():
        raise BadInput(
            video_id,
            "frame 0: no box or points in the manifest and nothing moves in the clip "
            "to pick the subject by; add a first-frame box",
            video_id,
        )
    masks, scores, _ = predictor.predict(box=mask_box(motion), multimask_output=False)
    mask = np.asarray(masks[0], bool)
    return mask if mask.any() else motion


def segment_with_sam(
    predictor: FramePredictor,
    frames: np.ndarray,
    prompt: FirstFramePrompt,
    motion: np.ndarray,
    settings: SamSettings,
    video_id: str,
    on_frame=None,
) -> Track:
    """Masks for one clip, frames uint8 (F, H, W, 3); ``motion`` bool (F, H, W) is the moving region.

    A lost object is re-prompted with the automatic candidates of that frame, chosen by
    :func:`choose_subject` against the moving region there (or the last good mask if nothing moves).
    """

    def recover(t: int, last_good: np.ndarray) -> np.ndarray | None:
        reference = motion[t] if motion[t].any() else last_good
        return choose_subject(automatic_candidates(predictor, frames[t], settings), reference, settings)

    first = first_frame_mask(predictor, frames[0], prompt, motion[0], settings, video_id)
    return propagate(predictor, frames, first, settings.lost, settings.box_padding, recover, on_frame)
