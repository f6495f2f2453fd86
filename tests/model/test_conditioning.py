"""ControlNet conditions: the first mask drawn as each public ControlNet was trained, pixel by pixel."""

import pytest
import torch

from model.conditioning import ADE20K_COLOURS, ControlNetCondition, outline


def square(size=16, lo=4, hi=12) -> torch.Tensor:
    m = torch.zeros(1, size, size)
    m[:, lo:hi, lo:hi] = 1
    return m


def test_mask_condition_is_white_on_black_resized_nearest():
    image = ControlNetCondition("mask")(square(), (32, 32))
    assert image.shape == (1, 3, 32, 32)
    assert torch.equal(image[0, :, 8:24, 8:24], torch.ones(3, 16, 16))
    assert image.sum() == 3 * 16 * 16


def test_seg_condition_paints_ade20k_class_colours():
    image = ControlNetCondition("seg", object_class="person", background_class="grass")(square(), (16, 16))
    assert torch.equal((image[0, :, 6, 6] * 255).round(), torch.tensor([150.0, 5, 61]))  # person
    assert torch.equal((image[0, :, 0, 0] * 255).round(), torch.tensor([4.0, 250, 7]))  # grass
    unlabelled = ControlNetCondition("seg", object_class="car")(square(), (16, 16))
    assert unlabelled[0, :, 0, 0].sum() == 0 and torch.equal(
        (unlabelled[0, :, 6, 6] * 255).round(), torch.tensor([0.0, 102, 200])
    )
    # a few entries of the palette, by ADE20K index: wall 0, sky 2, tree 4, animal 126, lake 128
    assert ADE20K_COLOURS["wall"] == (120, 120, 120) and ADE20K_COLOURS["sky"] == (6, 230, 230)
    assert ADE20K_COLOURS["tree"] == (4, 200, 3) and ADE20K_COLOURS["animal"] == (255, 0, 122)
    assert ADE20K_COLOURS["lake"] == (10, 190, 212)
    assert len(set(ADE20K_COLOURS.values())) == len(ADE20K_COLOURS)  # one class per colour


def test_scribble_condition_is_the_outline_not_the_filled_shape():
    image = ControlNetCondition("scribble", stroke=2 / 16)(square(), (16, 16))  # 2-pixel strokes
    band = image[0, 0]
    assert torch.equal(band[4:12, 4:6], torch.ones(8, 2)) and torch.equal(band[4:6, 4:12], torch.ones(2, 8))
    assert band[6:10, 6:10].sum() == 0  # the inside stays black
    assert band[:4].sum() == 0 and band[:, 12:].sum() == 0  # nothing outside the mask
    assert band.sum() == 8 * 8 - 4 * 4


def test_outline_counts_the_image_border_as_outside():
    full = torch.ones(1, 1, 8, 8)
    ring = outline(full, 1)
    assert ring[0, 0, 0].sum() == 8 and ring[0, 0, 1:7, 1:7].sum() == 0


def test_bad_conditions_are_refused_by_name():
    with pytest.raises(ValueError, match="controlnet condition"):
        ControlNetCondition("canny")
    with pytest.raises(ValueError, match="unknown ADE20K class 'unicorn'"):
        ControlNetCondition("seg", object_class="unicorn")
