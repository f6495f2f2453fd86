"""maskmotion: mask-guided video diffusion (first-frame attention, mask cross-attention, shared noise).

A trained model, from Python (after ``make demo``, from any working directory)::

    from maskmotion import MaskMotionPipeline, read_masks

    pipe = MaskMotionPipeline.from_pretrained("data/checkpoints")   # the latest checkpoint, on its base
    masks = read_masks("data/raw/toy/heldout/heldout-000")          # bool (F, H, W)
    video = pipe("a red circle runs across a green meadow", masks, seed=0)
    video.frames                                                    # np.uint8 (F, H, W, 3)
    pipe.save_pretrained("my-model")                                 # weights + base + settings, loadable anywhere

The same call with the same prompt, masks and seed gives the generate stage's video bit for bit
(tests/test_maskmotion.py). From a shell: ``maskmotion --help`` (``maskmotion.cli``).
"""

from maskmotion.pipeline import MaskMotionPipeline
from model.pipeline import MaskVideoOutput
from model.sampler_settings import PAPER_SAMPLER, SamplerSettings
from tasks.common.io import read_mask_pngs as read_masks

__all__ = ["MaskMotionPipeline", "MaskVideoOutput", "SamplerSettings", "PAPER_SAMPLER", "read_masks"]
