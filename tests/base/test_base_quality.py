import numpy as np
import pytest

from tasks.common.toy import COLOURS, GROUNDS, SHAPES, Scene, render_video
from tasks.common.toy_palette import (
    classify_shape,
    detect_ground,
    detect_object,
    iou,
    palette_labels,
    psnr,
    score_samples,
)


def _frame(colour, shape, ground, seed=0):
    rng = np.random.default_rng(seed)
    scene = Scene(colour, shape, ground, "jump", radius=9.0, params=(0.5, 1.0, 0.3))
    frames, masks = render_video(scene, 64, 4, rng)
    return frames[2], masks[2]


@pytest.mark.parametrize("ground", list(GROUNDS))
def test_detect_object_finds_colour_and_mask_on_every_ground(ground):
    for i, colour in enumerate(COLOURS):
        frame, mask = _frame(colour, SHAPES[i % len(SHAPES)], ground, seed=i)
        found, obj = detect_object(frame)
        assert found == colour
        assert iou(obj, mask) > 0.85


@pytest.mark.parametrize("ground", list(GROUNDS))
def test_detect_ground_on_every_ground_under_every_colour(ground):
    for i, colour in enumerate(COLOURS):
        frame, _ = _frame(colour, SHAPES[i % len(SHAPES)], ground, seed=10 + i)
        assert detect_ground(frame) == ground


def test_detect_ground_none_when_the_object_fills_the_frame():
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[:] = COLOURS["red"]
    assert detect_ground(frame) is None


def test_ground_alone_has_no_object():
    frame, _ = _frame("red", "circle", "grass")
    plain = frame.copy()
    plain[:] = (70, 140, 55)
    assert (palette_labels(plain) == -1).all()
    assert detect_object(plain)[0] is None


@pytest.mark.parametrize("shape", SHAPES)
def test_classify_shape_on_rendered_masks(shape):
    _, mask = _frame("black", shape, "sand")
    assert classify_shape(mask) == shape


def test_iou_known_values():
    a = np.zeros((8, 8), bool)
    a[:4] = True
    assert iou(a, a) == 1.0
    assert iou(a, ~a) == 0.0
    b = np.zeros_like(a)
    b[:2] = True
    assert iou(a, b) == 0.5
    assert iou(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_psnr_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 255) == pytest.approx(0.0)
    assert psnr(a, a + 1) == pytest.approx(10 * np.log10(255.0**2))


def test_score_samples_on_rendered_frames():
    cases = [("red", "star", "sand"), ("purple", "triangle", "water"), ("yellow", "square", "grass")]
    frames, masks = zip(*[_frame(*c, seed=k) for k, c in enumerate(cases)])
    got = score_samples(np.stack(frames), cases, np.stack(masks))
    assert got["colour_accuracy"] == got["shape_accuracy"] == got["both_accuracy"] == got["ground_accuracy"] == 1.0
    assert got["mask_iou"] > 0.85
    wrong = score_samples(np.stack(frames), [("pink", c[1], "rock") for c in cases])
    assert wrong["colour_accuracy"] == 0.0 and wrong["both_accuracy"] == 0.0 and wrong["ground_accuracy"] == 0.0
    assert wrong["shape_accuracy"] == 1.0 and "mask_iou" not in wrong


def test_per_object_figures_count_what_a_decoder_keeps_of_each_object():
    from tasks.base.quality_run import per_object_targets
    from tasks.common.toy_multi import multi_object_sequences

    sequences = list(multi_object_sequences((2, 3), seed=0, size=64, n_frames=6))
    rendered = per_object_targets(sequences, lambda f: f, min_pixels=4)
    assert rendered["objects"] == 5 and rendered["objects_at_both"] == 5 and rendered["iou"] > 0.9

    def paint_first_object_in_another_colour(frames):
        (objects, _, first, masks), *_ = sequences
        if frames is not first:
            return frames
        other = next(c for c in COLOURS if c not in {o.colour for o in objects} and c != "black")
        out = frames.copy()
        out[masks[0]] = COLOURS[other]
        return out

    painted = per_object_targets(sequences, paint_first_object_in_another_colour, min_pixels=4)
    assert painted["objects_at_both"] == 4  # that object is found nowhere: colour 0 and IoU 0
    assert painted["colour_accuracy"] == pytest.approx((rendered["colour_accuracy"] * 5 - 1) / 5, abs=1e-3)
