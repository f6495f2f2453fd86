"""``MaskMotionPipeline``: the video pipeline as diffusers users load, call and save one."""

from __future__ import annotations

from pathlib import Path

import torch

from model.pipeline import MaskVideoOutput, MaskVideoPipeline
from tasks.generate.pipeline import from_pretrained, save_pipeline


class MaskMotionPipeline(MaskVideoPipeline):
    """``MaskVideoPipeline`` (model/pipeline.py) with diffusers' loading habits and a ``seed`` keyword.

    ``from_pretrained(path)`` takes a train stage's checkpoint folder (or its ``out_dir``, for the
    latest) or a folder ``save_pretrained`` wrote; the pipeline samples with the settings the folder
    records (``pipe.sampler``: the generate stage's defaults, or what was saved), so a call with a
    prompt, masks and seed gives the generate stage's video.
    """

    @classmethod
    def from_pretrained(cls, path: str | Path, **options) -> MaskMotionPipeline:
        """Load a trained model: ``tasks.generate.pipeline.from_pretrained``, the one loader, says where each
        part is found and holds the keywords.

        Args:
            path: a checkpoint folder, the train stage's ``out_dir`` (its latest), or a saved folder.
            base_dir, controlnet_dir, controlnet_condition: override what the folder records.
            variant: base weights files (``auto`` | ``fp32`` | ``fp16``); default: as at training.
            device, torch_dtype: where and in what precision to run (``pipe.to``).
        """
        return from_pretrained(path, **options, setting="path", pipeline_class=cls)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the trained weights and a config recording the base, the ControlNet and its condition,
        and ``self.sampler`` into ``path``; ``from_pretrained(path)`` gives this pipeline back, also
        after ``path`` is moved or copied, from any working directory. The base weights stay where
        they are (recorded by absolute path and by path relative to ``path``)."""
        return save_pipeline(self, path)

    def __call__(
        self, prompt, masks, first_frame=None, *, seed: int | None = None, generator=None, **kwargs
    ) -> MaskVideoOutput:
        """``MaskVideoPipeline.__call__`` (its docstring lists every keyword); ``seed`` is short for
        ``generator=torch.Generator().manual_seed(seed)``, the generator the generate stage uses."""
        if seed is not None and generator is not None:
            raise ValueError("pass seed or generator, not both")
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
        return super().__call__(prompt, masks, first_frame, generator=generator, **kwargs)
