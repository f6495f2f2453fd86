"""from_pretrained: a checkpoint (or the train stage's folder) as a ready pipeline, as the README shows it."""

import numpy as np
import pytest
import torch

from model.conditioning import ControlNetCondition
from tasks.common.io import read_mask_pngs
from tasks.generate.pipeline import from_pretrained


def test_the_train_folder_loads_its_latest_checkpoint_and_generates(tiny_world, tiny_run):
    pipe = from_pretrained(tiny_run / "checkpoints", controlnet_condition=ControlNetCondition("scribble"))
    assert pipe.checkpoint.name == (tiny_run / "checkpoints" / "latest").read_text().strip()
    assert pipe.checkpoint_config["window"] >= 2 and pipe.controlnet is not None
    masks = read_mask_pngs(tiny_world / "data/raw/toy/heldout/heldout-000")[:4]
    steps = []
    out = pipe(
        "a red circle", masks, num_inference_steps=2, generator=torch.Generator().manual_seed(0), callback=steps.append
    )
    assert out.frames.dtype == np.uint8 and out.frames.shape == (4, *masks.shape[1:], 3)
    assert [s["step"] for s in steps if s["chunk"] == 0] == [0, 1]
    same = from_pretrained(pipe.checkpoint, controlnet_condition=ControlNetCondition("scribble"))
    again = same("a red circle", masks, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(again.frames, out.frames)  # the folder and its latest checkpoint are one model


def test_no_checkpoint_names_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate.checkpoint_dir: no checkpoint in"):
        from_pretrained(tmp_path, setting="generate.checkpoint_dir")
